"""trimo-sbx launch and the task verbs (issue 5): the detached supervisor,
the state folder, ps/logs/stop/rm/wait/inspect/followup, the admission
queue; as root and as the unprivileged user."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

ID_RE = re.compile(r"^[a-z0-9-]+-[0-9a-f]{4}$")
STAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


class Tasks:
    """trimo-sbx task verbs for one sbx runner, with helpers."""

    def __init__(self, sbx, rootfs):
        self.sbx = sbx
        self.rootfs = rootfs
        self.env = {}
        self.config("")

    def config(self, text="", max_parallel=8, memory_reserve="64M", default_memory="64M"):
        """The user config: our own folders, room for 8 tasks at once (the
        qemu guest has one CPU: the default would be 1), and small memory
        defaults (its 1 GiB could not hold the default reserve of 1G)."""
        self.sbx.write_config(f"[orchestrator]\nmax_parallel = {max_parallel}\n"
                              f"memory_reserve = {memory_reserve}\n"
                              f"default_memory = {default_memory}\n" + text)

    def task_file(self, name, command, prompt=None, extra="", task="", fname=None):
        body = f"[task]\nname = {name}\ncommand = {command}\n" + task
        if prompt is not None:
            body += f"prompt = {prompt}\n"
        body += f"[image]\nsource = dir:{self.rootfs}\n" + extra
        path = os.path.join(self.sbx.tmp, fname or f"{name}.ini")
        with open(path, "w") as f:
            f.write(body)
        self.sbx.chown(path)
        return path

    def run(self, *args, **kw):
        env = dict(self.env)
        env.update(kw.pop("env", {}))
        return self.sbx.run(*args, env=env, **kw)

    def launch(self, name, command, *args, **kw):
        path = self.task_file(name, command, prompt=kw.pop("prompt", None),
                              extra=kw.pop("extra", ""), task=kw.pop("task", ""))
        r = self.run("launch", *args, path, **kw)
        assert r.returncode == 0, r.stderr
        tid = r.stdout.strip()
        assert ID_RE.match(tid) and tid.startswith(name + "-"), r.stdout
        return tid

    def ps(self):
        r = self.run("ps", "-a", "--json")
        assert r.returncode == 0, r.stderr
        return {t["id"]: t for t in json.loads(r.stdout)}

    def state(self, tid):
        return self.ps()[tid]

    def wait_for(self, tid, states, timeout=20):
        deadline = time.time() + timeout
        while True:
            t = self.state(tid)
            if t["state"] in states:
                return t
            if time.time() > deadline:
                pytest.fail(f"{tid} is {t['state']}, not {states} after {timeout}s: {t}")
            time.sleep(0.1)

    def folder(self, tid):
        return os.path.join(self.sbx.state_dir, "tasks", tid)

    def raw_state(self, tid):
        with open(os.path.join(self.folder(tid), "state")) as f:
            return json.load(f)

    def release(self, tid, name="go"):
        """Create workspace/<name>: the tasks below wait for it."""
        p = os.path.join(self.folder(tid), "workspace", name)
        with open(p, "w") as f:
            f.write("1")
        self.sbx.chown(p)

    def cleanup(self):
        r = self.sbx.run("ps", "-a", "-q", timeout=30)
        ids = r.stdout.split()
        if ids:
            self.sbx.run("rm", "-f", *ids, timeout=60)


# A command that runs until workspace/go exists (the host creates it).
WAIT_GO = "while [ ! -e /workspace/go ]; do sleep 0.05; done"


@pytest.fixture
def tasks(sbx, rootfs):
    t = Tasks(sbx, rootfs)
    yield t
    t.cleanup()


def proc_stat(pid):
    """(state, ppid, session, tty_nr) of a live pid, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except FileNotFoundError:
        return None
    f = s[s.rindex(")") + 2:].split()
    return f[0], int(f[1]), int(f[3]), int(f[4])


def gone(pid):
    st = proc_stat(pid)
    return st is None or st[0] in "ZX"


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    f = s[s.rindex(")") + 2:].split()
    return int(f[11]) + int(f[12])  # utime + stime


def children(pid):
    out = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(x) for x in f.read().split()]
    except FileNotFoundError:
        pass
    return out


def test_launch_ps_logs_wait(tasks):
    t0 = time.monotonic()
    tid = tasks.launch("hello", "echo out1; echo err1 >&2; echo out2; echo \"$TRIMO_PROMPT\"; "
                       "cat /run/trimo/prompt; echo; pwd; hostname; echo data > /workspace/f; "
                       + WAIT_GO, prompt="say hi")
    assert time.monotonic() - t0 < 5  # returns at once: the task runs on
    t = tasks.wait_for(tid, {"running"})
    for key in ("id", "name", "state", "run", "exit_code", "supervisor_pid", "memory_peak",
                "memory_max", "branch", "queued_reason"):
        assert key in t, key
    assert t["name"] == "hello" and t["run"] == 1 and t["exit_code"] is None
    # the supervisor: detached (no terminal, its own session), alive
    sup = t["supervisor_pid"]
    st = proc_stat(sup)
    assert st and st[0] not in "ZX"
    assert st[3] == 0, "the supervisor has a controlling terminal"
    assert st[2] != os.getsid(0)
    # a plain ps lists running tasks, -a is not needed
    r = tasks.run("ps")
    assert r.returncode == 0 and tid in r.stdout and "running" in r.stdout, r.stdout
    tasks.release(tid)
    r = tasks.run("wait", tid, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0"
    t = tasks.state(tid)
    assert t["state"] == "exited" and t["exit_code"] == 0
    assert t["started"] and t["ended"] >= t["started"]
    r = tasks.run("logs", tid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["out1", "err1", "out2", "say hi", "say hi", "/workspace",
                                     "hello"]
    r = tasks.run("logs", "-t", tid)
    lines = r.stdout.splitlines()
    assert len(lines) == 7 and all(STAMP_RE.match(x) for x in lines), lines
    # the workspace is the host folder
    with open(os.path.join(tasks.folder(tid), "workspace", "f")) as f:
        assert f.read() == "data\n"
    # ended tasks only with -a
    assert tid not in tasks.run("ps").stdout
    assert tid in tasks.run("ps", "-a").stdout
    # inspect: config and runs
    r = tasks.run("inspect", tid)
    assert r.returncode == 0, r.stderr
    i = json.loads(r.stdout)
    assert i["id"] == tid and i["state"] == "exited"
    assert i["config"]["image"]["rootfs"] == tasks.rootfs
    assert len(i["runs"]) == 1 and i["runs"][0]["prompt"] == "say hi"
    assert i["runs"][0]["exit_code"] == 0 and i["runs"][0]["memory_peak"] is not None
    # a prefix or the name finds the task too
    assert tasks.run("wait", "hello").stdout.strip() == "0"


def test_failure_exit_codes_and_follow(tasks):
    path = tasks.task_file("three", "echo before; exit 3")
    r = tasks.run("launch", "-f", path, timeout=30)
    assert r.returncode == 3, r.stderr
    lines = r.stdout.splitlines()
    assert ID_RE.match(lines[0]) and lines[1:] == ["before"], r.stdout
    tid = lines[0]
    r = tasks.run("wait", tid)
    assert r.returncode == 3 and r.stdout.strip() == "3"
    assert tasks.state(tid)["state"] == "failed"
    # a command that does not exist: 127, and the reason in the log
    tid = tasks.launch("nocmd", "exec /no/such/agent")
    r = tasks.run("wait", tid, timeout=30)
    assert r.returncode == 127, r.stdout
    assert tasks.state(tid)["state"] == "failed"
    r = tasks.run("wait", "no-such-task")
    assert r.returncode == 2 and "no such task" in r.stderr


def test_env_and_pass_env(tasks):
    tasks.env = {"SECRET_TOKEN": "s3cr3t-value", "NOT_PASSED": "x"}
    path = tasks.task_file("envs", "[ \"${SECRET_TOKEN#s3cr3t-}\" = value ] && T=ok; "
                           "echo T=$T F=$FOO N=${NOT_PASSED:-none} "
                           "ID=$TRIMO_TASK R=$TRIMO_RUN H=$HOME",
                           task="env = FOO=bar\npass_env = SECRET_TOKEN\n")
    r = tasks.run("launch", "-f", path, timeout=30)
    assert r.returncode == 0, r.stderr
    tid = r.stdout.splitlines()[0]
    assert r.stdout.splitlines()[1:] == [f"T=ok F=bar N=none ID={tid} R=1 H=/root"]
    # the secret reached the sandbox, never the disk
    for d, _, files in os.walk(tasks.folder(tid)):
        for n in files:
            p = os.path.join(d, n)
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    assert b"s3cr3t-value" not in f.read(), p


def test_stop(tasks):
    tid = tasks.launch("polite", "trap 'echo got-term; exit 7' TERM; echo up; " + WAIT_GO)
    tasks.wait_for(tid, {"running"})
    time.sleep(0.3)  # the shell has set its trap
    r = tasks.run("stop", tid, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == tid
    t = tasks.state(tid)
    assert t["state"] == "stopped" and t["exit_code"] == 7
    assert "got-term" in tasks.run("logs", tid).stdout
    # a command that ignores SIGTERM is killed after the grace period
    tid = tasks.launch("stubborn", "trap '' TERM; echo up; " + WAIT_GO)
    tasks.wait_for(tid, {"running"})
    time.sleep(0.3)
    t0 = time.monotonic()
    r = tasks.run("stop", "-t", "1", tid, timeout=30)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 8
    t = tasks.state(tid)
    assert t["state"] == "stopped" and t["exit_code"] == 137
    # stopping an ended task does nothing, and says so with success
    assert tasks.run("stop", tid).returncode == 0
    assert tasks.state(tid)["exit_code"] == 137


def test_timeout(tasks):
    path = tasks.task_file("slow", "echo started; sleep 30", task="timeout = 1\n")
    t0 = time.monotonic()
    r = tasks.run("launch", "-f", path, timeout=30)
    assert time.monotonic() - t0 < 10
    assert r.returncode == 143, (r.returncode, r.stdout, r.stderr)
    tid = r.stdout.splitlines()[0]
    t = tasks.state(tid)
    assert t["state"] == "failed" and t["error"] == "timed out after 1s", t
    assert "timeout of 1s reached" in tasks.run("logs", tid).stdout


def test_rm(tasks):
    tid = tasks.launch("busy", WAIT_GO)
    tasks.wait_for(tid, {"running"})
    sandbox = tasks.raw_state(tid)["sandbox_pid"]
    r = tasks.run("rm", tid)
    assert r.returncode == 2 and "rm -f" in r.stderr, r.stderr
    assert os.path.isdir(tasks.folder(tid))
    assert tasks.state(tid)["state"] == "running"
    r = tasks.run("rm", "-f", tid, timeout=30)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(tasks.folder(tid))
    assert tid not in tasks.ps()
    deadline = time.time() + 5
    while not gone(sandbox) and time.time() < deadline:
        time.sleep(0.05)
    assert gone(sandbox)
    # an ended task goes without -f, with its files (also root-owned ones from inside)
    tid = tasks.launch("done", "mkdir -p /var/x && chmod 000 /var/x; touch /workspace/a")
    assert tasks.run("wait", tid).returncode == 0
    r = tasks.run("rm", tid)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(tasks.folder(tid))
    assert os.listdir(os.path.join(tasks.sbx.state_dir, "tasks")) == []


def test_followup_sees_earlier_run(tasks):
    tid = tasks.launch("multi", "echo \"run=$TRIMO_RUN prompt=$TRIMO_PROMPT\"; "
                       "cat /marker 2>/dev/null || echo no-marker; "
                       "echo \"from run $TRIMO_RUN\" >> /marker; "
                       "echo w$TRIMO_RUN > /workspace/w$TRIMO_RUN; ls /workspace; "
                       "echo ---; cat /run/trimo/history; echo ---; exit $TRIMO_RUN",
                       prompt="first prompt")
    r = tasks.run("wait", tid, timeout=30)
    assert r.returncode == 1
    # the image itself is never written: the change is in the task's layer
    assert not os.path.exists(os.path.join(tasks.rootfs, "marker"))
    assert os.path.exists(os.path.join(tasks.folder(tid), "upper", "marker"))
    r = tasks.run("followup", tid, "--prompt", "second prompt", "-f", timeout=30)
    assert r.returncode == 2, r.stderr  # exit $TRIMO_RUN
    out = r.stdout.splitlines()
    assert out[0] == tid
    assert out[1] == "run=2 prompt=second prompt"
    assert out[2] == "from run 1"  # the earlier run's change to the root
    assert out[3:5] == ["w1", "w2"]  # and its workspace
    hist = r.stdout.split("---\n")[1]
    assert "## Run 1: failed (exit code 1)" in hist, hist
    assert "first prompt" in hist
    assert "second prompt" not in hist
    t = tasks.state(tid)
    assert t["run"] == 2 and t["state"] == "failed" and t["exit_code"] == 2
    # each run keeps its own log; the task log has both
    r1 = tasks.run("logs", "--run", "1", tid).stdout
    r2 = tasks.run("logs", "--run", "2", tid).stdout
    assert "run=1" in r1 and "run=2" not in r1
    assert "run=2" in r2 and "run=1 " not in r2
    both = tasks.run("logs", tid).stdout
    assert both.index("run=1") < both.index("run=2")
    # prompt from a file, and inspect's history
    pf = os.path.join(tasks.sbx.tmp, "p3.md")
    with open(pf, "w") as f:
        f.write("third\n\nwith a paragraph\n")
    tasks.sbx.chown(pf)
    r = tasks.run("followup", tid, "--prompt-file", pf, timeout=30)
    assert r.returncode == 0, r.stderr
    tasks.run("wait", tid, timeout=30)
    i = json.loads(tasks.run("inspect", tid).stdout)
    assert [x["prompt"] for x in i["runs"]] == ["first prompt", "second prompt",
                                               "third\n\nwith a paragraph\n"]
    assert [x["exit_code"] for x in i["runs"]] == [1, 2, 3]


def test_followup_refuses_running_task(tasks):
    tid = tasks.launch("busy", WAIT_GO)
    tasks.wait_for(tid, {"running"})
    r = tasks.run("followup", tid, "--prompt", "more")
    assert r.returncode == 2 and "running" in r.stderr, r.stderr
    assert tasks.state(tid)["run"] == 1
    r = tasks.run("followup", tid)
    assert r.returncode == 2 and "--prompt" in r.stderr


def test_max_parallel_queues_in_order(tasks):
    tasks.config(max_parallel=2)
    ids = [tasks.launch(f"q{i}", WAIT_GO) for i in range(3)]
    tasks.wait_for(ids[0], {"running"})
    tasks.wait_for(ids[1], {"running"})
    time.sleep(1.5)  # past a re-check: it still waits
    t = tasks.state(ids[2])
    assert t["state"] == "queued", t
    assert t["queued_reason"] == "max_parallel 2 reached", t
    r = tasks.run("ps")
    assert "max_parallel 2 reached" in r.stdout
    t0 = time.monotonic()
    tasks.release(ids[1])
    tasks.wait_for(ids[2], {"running"}, timeout=10)
    assert time.monotonic() - t0 < 3  # woken by the state change, not a slow poll
    assert tasks.state(ids[0])["state"] == "running"
    for i in (0, 2):
        tasks.release(ids[i])
    for i in ids:
        assert tasks.run("wait", i, timeout=30).returncode == 0


def test_stop_and_rm_while_queued(tasks):
    tasks.config(max_parallel=1)
    a = tasks.launch("qa", WAIT_GO)
    tasks.wait_for(a, {"running"})
    b = tasks.launch("qb", WAIT_GO)
    c = tasks.launch("qc", WAIT_GO)
    d = tasks.launch("qd", WAIT_GO)
    time.sleep(1.2)
    assert tasks.state(b)["queued_reason"] == "max_parallel 1 reached"
    assert tasks.state(c)["queued_reason"] == "behind 1 queued task (" + b + ")"
    # waiting costs nothing: no busy loop among the queued supervisors
    sups = [tasks.raw_state(x)["supervisor_pid"] for x in (b, c, d)]
    before = sum(cpu_ticks(p) for p in sups)
    time.sleep(2)
    spent = (sum(cpu_ticks(p) for p in sups) - before) / os.sysconf("SC_CLK_TCK")
    assert spent < 0.2, f"3 queued supervisors used {spent:.2f}s of CPU in 2s"
    sup = tasks.raw_state(b)["supervisor_pid"]
    r = tasks.run("stop", b, timeout=30)
    assert r.returncode == 0, r.stderr
    t = tasks.state(b)
    assert t["state"] == "stopped" and t["exit_code"] is None and t["started"] is None
    deadline = time.time() + 5
    while not gone(sup) and time.time() < deadline:
        time.sleep(0.05)
    assert gone(sup)  # its supervisor left
    r = tasks.run("rm", c)
    assert r.returncode == 2 and "queued" in r.stderr
    assert tasks.run("rm", "-f", c, timeout=30).returncode == 0
    assert c not in tasks.ps()
    time.sleep(1.2)
    assert tasks.state(d)["queued_reason"] == "max_parallel 1 reached"
    tasks.release(a)
    tasks.wait_for(d, {"running"}, timeout=10)
    tasks.release(d)
    assert tasks.run("wait", a, d, timeout=30).returncode == 0


def write_meminfo(tasks, total_gb, avail_gb):
    p = os.path.join(tasks.sbx.tmp, "meminfo")
    with open(p + ".new", "w") as f:
        f.write(f"MemTotal: {total_gb * 1048576} kB\nMemFree: 0 kB\n"
                f"MemAvailable: {avail_gb * 1048576} kB\n")
    os.chmod(p + ".new", 0o644)
    os.rename(p + ".new", p)
    return p


def test_memory_rule_queues(tasks):
    # 4G machine, 1G reserve: room for one 2G cap at a time
    tasks.config(memory_reserve="1G")
    tasks.env = {"TRIMO_SBX_MEMINFO": write_meminfo(tasks, 4, 3)}
    a = tasks.launch("mem-a", WAIT_GO, extra="[limits]\nmemory = 2G\n")
    tasks.wait_for(a, {"running"})
    b = tasks.launch("mem-b", WAIT_GO, extra="[limits]\nmemory = 2G\n")
    time.sleep(1.5)
    t = tasks.state(b)
    assert t["state"] == "queued", t
    assert t["queued_reason"] == "memory: running 2G + this 2G > MemTotal 4G - memory_reserve 1G"
    assert t["memory_max"] == 2 << 30
    # a task without a cap counts as default_memory
    tasks.config(memory_reserve="1G", default_memory="512M")
    c = tasks.launch("mem-c", WAIT_GO)
    time.sleep(1.2)
    assert tasks.state(c)["queued_reason"].startswith("behind 1 queued task"), tasks.state(c)
    # when a ends, b fits the sum but MemAvailable says 1G: b waits for memory
    write_meminfo(tasks, 4, 1)
    tasks.release(a)
    assert tasks.run("wait", a, timeout=30).returncode == 0
    time.sleep(1.5)
    t = tasks.state(b)
    assert t["state"] == "queued", t
    assert t["queued_reason"] == "memory: this 2G > MemAvailable 1G", t
    assert tasks.state(c)["state"] == "queued"
    # memory freed elsewhere makes no event: the timer re-checks
    write_meminfo(tasks, 4, 3)
    tasks.wait_for(b, {"running"}, timeout=10)
    tasks.wait_for(c, {"running"}, timeout=10)  # 2G + 512M fit in 3G
    for x in (b, c):
        tasks.release(x)
        assert tasks.run("wait", x, timeout=30).returncode == 0


def write_psi(tasks, avg10):
    p = os.path.join(tasks.sbx.tmp, "psi-cpu")
    with open(p + ".new", "w") as f:
        f.write(f"some avg10={avg10:.2f} avg60=0.00 avg300=0.00 total=1\n"
                "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    os.chmod(p + ".new", 0o644)
    os.rename(p + ".new", p)
    return p


def test_cpu_pressure_rule(tasks):
    tasks.env = {"TRIMO_SBX_PSI_CPU": write_psi(tasks, 91.5)}
    # off by default: the pressure does not matter
    a = tasks.launch("calm", "true")
    assert tasks.run("wait", a, timeout=30).returncode == 0
    tasks.config("[orchestrator]\nmax_cpu_pressure = 50\n")
    b = tasks.launch("pressed", "true")
    time.sleep(1.5)
    t = tasks.state(b)
    assert t["state"] == "queued", t
    assert t["queued_reason"] == "cpu pressure 91.50% >= max_cpu_pressure 50.00%", t
    write_psi(tasks, 10)
    r = tasks.run("wait", b, timeout=30)
    assert r.returncode == 0, r.stdout


def test_cap_that_can_never_fit_is_refused(tasks):
    tasks.env = {"TRIMO_SBX_MEMINFO": write_meminfo(tasks, 4, 3)}
    path = tasks.task_file("huge", "true", extra="[limits]\nmemory = 8G\n")
    r = tasks.run("launch", path)
    assert r.returncode == 2, r.stderr
    assert "can never fit" in r.stderr
    assert tasks.ps() == {}


def test_lost_supervisor_takes_its_sandbox(tasks):
    tid = tasks.launch("victim", "sleep 1000 & " + WAIT_GO)
    tasks.wait_for(tid, {"running"})
    raw = tasks.raw_state(tid)
    sup, init = raw["supervisor_pid"], raw["sandbox_pid"]
    deadline = time.time() + 5
    inside = []
    while time.time() < deadline:
        inside = children(init)
        inside += [g for c in inside for g in children(c)]
        if len(inside) >= 2:
            break
        time.sleep(0.05)
    assert len(inside) >= 2, inside  # sh and sleep
    os.kill(sup, signal.SIGKILL)
    deadline = time.time() + 5
    while time.time() < deadline and not all(gone(p) for p in [init] + inside):
        time.sleep(0.05)
    assert all(gone(p) for p in [init] + inside), [proc_stat(p) for p in [init] + inside]
    t = tasks.state(tid)
    assert t["state"] == "lost"
    assert tid in tasks.run("ps").stdout  # lost tasks show without -a
    r = tasks.run("wait", tid, timeout=10)
    assert r.returncode == 1 and r.stdout.strip() == "lost"
    assert tasks.run("stop", tid).returncode == 0
    # a lost task can be followed up (same layer) or removed without -f
    r = tasks.run("followup", tid, "--prompt", "again")
    assert r.returncode == 0, r.stderr
    tasks.wait_for(tid, {"running"})
    assert tasks.run("rm", "-f", tid, timeout=30).returncode == 0


def test_concurrent_launches(tasks):
    tasks.config(max_parallel=20)
    path = tasks.task_file("many", "echo hi from $TRIMO_TASK")
    procs = [tasks.sbx.popen([tasks.sbx.bin, "launch", path], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(20)]
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        ids.append(out.strip())
    assert len(set(ids)) == 20
    for tid in ids:
        r = tasks.run("wait", tid, timeout=60)
        assert r.returncode == 0, (tid, r.stdout, r.stderr)
        assert tasks.run("logs", tid).stdout == f"hi from {tid}\n"
    ps = tasks.ps()
    assert sorted(ps) == sorted(ids)
    assert all(t["state"] == "exited" and t["run"] == 1 for t in ps.values())
    assert sorted(os.listdir(os.path.join(tasks.sbx.state_dir, "tasks"))) == sorted(ids)
    for tid in ids:
        left = [n for n in os.listdir(tasks.folder(tid)) if ".tmp." in n]
        assert left == [] and not os.path.exists(os.path.join(tasks.folder(tid),
                                                              "control.sock"))


def test_malformed_task_starts_nothing(tasks):
    bad = tasks.task_file("bad", "true", extra="[limits]\nmemroy = 2G\n")
    r = tasks.run("launch", bad)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"trimo-sbx: {bad}:7: [limits] memroy: unknown key (did you mean memory?)"], r.stderr
    missing = tasks.task_file("gone", "true")
    with open(missing) as f:
        body = f.read().replace(f"dir:{tasks.rootfs}", "dir:/no/such/rootfs")
    with open(missing, "w") as f:
        f.write(body)
    r = tasks.run("launch", missing)
    assert r.returncode == 2 and "/no/such/rootfs" in r.stderr, r.stderr
    r = tasks.run("launch", tasks.task_file("net", "true", extra="[network]\npublish = 8080:80\n"))
    assert r.returncode == 2 and "[network] publish: needs mode = nat" in r.stderr, r.stderr
    r = tasks.run("launch", "--set", "limits.memory=lots", tasks.task_file("s", "true"))
    assert r.returncode == 2 and "--set" in r.stderr, r.stderr
    r = tasks.run("launch", os.path.join(tasks.sbx.tmp, "nonexistent.ini"))
    assert r.returncode == 2
    tdir = os.path.join(tasks.sbx.state_dir, "tasks")
    assert not os.path.exists(tdir) or os.listdir(tdir) == []


@pytest.mark.cgroup
def test_oom_state_and_memory_figures(tasks):
    tid = tasks.launch("hog", "ulimit -v 1048576; exec probe memhog 512",
                       extra="[limits]\nmemory = 64M\n")
    r = tasks.run("wait", tid, timeout=60)
    assert r.returncode == 137, r.stdout
    t = tasks.state(tid)
    assert t["state"] == "oom", t
    assert t["memory_max"] == 64 << 20
    assert 32 << 20 < t["memory_peak"] <= 64 << 20
    assert "killed by the OOM killer" in tasks.run("logs", tid).stdout
    r = tasks.run("ps", "-a")
    assert re.search(rf"{tid}\s+hog\s+oom \(137\)\s+1\s+\S+\s+-/6\dM/64M", r.stdout), r.stdout


def test_help_texts(sbx):
    r = sbx.run("help", "task.ini")
    assert r.returncode == 0
    assert "[task]" in r.stdout and "prompt_file = PATH" in r.stdout
    r = sbx.run("help", "config")
    assert r.returncode == 0 and "max_parallel" in r.stdout
    for verb in ("launch", "ps", "logs", "stop", "rm", "wait", "inspect", "followup"):
        r = sbx.run(verb, "--help")
        assert r.returncode == 0 and r.stdout.startswith(f"usage: trimo-sbx {verb}"), verb
    r = sbx.run("ps", "--bogus")
    assert r.returncode == 2
