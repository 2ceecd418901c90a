#!/usr/bin/python3
"""Start-up benchmark (issue 2): median wall time of `/bin/true` in a
busybox rootfs, trimo-sbx against bubblewrap, crun and runc, alternating,
as root and (with TRIMO_TEST_USER) as an unprivileged user; and the
runner's private memory (Private_Clean + Private_Dirty of smaps_rollup)
while a sandbox runs.

On a hybrid cgroup host crun refuses to run ("cgroups in hybrid mode not
supported") because of the controller-less cgroup2 at
/sys/fs/cgroup/unified: the whole benchmark then runs in a private mount
namespace with that mount removed, so every tool runs under the same
conditions.
"""
import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SBX = os.path.join(ROOT, "bin/trimo-sbx")
RUNS = int(os.environ.get("BENCH_RUNS", "30"))
USER = os.environ.get("TRIMO_TEST_USER", "")


def hybrid():
    return os.path.ismount("/sys/fs/cgroup/unified")


def timed(argv, env=None):
    t = time.perf_counter()
    r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"{argv[:3]}... failed: {r.stderr.decode()[:300]}")
    return dt


def as_user(argv, uid, gid):
    if uid == 0:
        return argv
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--"] + argv


def bundle(base, rootfs, rootless, name, tool):
    """An OCI bundle of the same rootfs, with the tool's own default spec."""
    b = os.path.join(base, name)
    os.makedirs(b)
    args = [tool, "spec"] + (["--rootless"] if rootless else [])
    subprocess.run(args, cwd=b, check=True)
    with open(os.path.join(b, "config.json")) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    cfg["root"] = {"path": rootfs, "readonly": True}
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(cfg, f)
    return b


def own_cgroup_v1(controller):
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return path
    return None


def delegate_v1(uid, gid, made):
    """The classic v1 delegation for the benchmark user, below our own
    cgroups; returns the [cgroups] parent or None (v2: not set up here)."""
    if uid == 0 or os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return None
    name = f"trimo-bench.user-{uid}"
    for c in ("memory", "cpu", "cpuacct", "pids"):
        own = own_cgroup_v1(c)
        if own is None or not os.path.isdir(f"/sys/fs/cgroup/{c}"):
            continue
        d = f"/sys/fs/cgroup/{c}{own.rstrip('/')}/{name}"
        os.makedirs(d, exist_ok=True)
        for f in ("", "cgroup.procs", "tasks"):
            os.chown(os.path.join(d, f) if f else d, uid, gid)
        made.append(d)
    return f"./{name}"


def tools(base, rootfs, uid, gid, made):
    rootless = uid != 0
    state = os.path.join(base, f"state-{uid}")
    os.makedirs(state)
    os.chown(state, uid, gid)
    parent = delegate_v1(uid, gid, made)
    conf = os.path.join(state, "config.ini")
    with open(conf, "w") as f:
        f.write(f"[storage]\nstate_dir = {state}/sbx\nimage_dir = {state}/images\n")
        if parent:
            f.write(f"[cgroups]\nparent = {parent}\n")
    os.chown(conf, uid, gid)
    b = bundle(base, rootfs, rootless, f"crun-{uid}", "crun")
    rb = bundle(base, rootfs, rootless, f"runc-{uid}", "runc")
    for d in (b, rb):
        os.chown(d, uid, gid)
        os.chown(os.path.join(d, "config.json"), uid, gid)
    n = [0]

    def cid():
        n[0] += 1
        return f"bench{uid}-{n[0]}"
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": state,
           "XDG_RUNTIME_DIR": state, "TRIMO_SBX_CONFIG": conf}
    out = {
        "trimo-sbx": lambda: as_user([SBX, "run", f"dir:{rootfs}", "--", "/bin/true"], uid, gid),
        "trimo-sbx --no-limits": lambda: as_user([SBX, "run", "--no-limits", f"dir:{rootfs}",
                                                  "--", "/bin/true"], uid, gid),
        "bwrap": lambda: as_user(["bwrap", "--unshare-all", "--ro-bind", rootfs, "/", "--proc",
                                  "/proc", "--dev", "/dev", "/bin/true"], uid, gid),
        "crun": lambda: as_user(["crun", "--root", state + "/crun", "run", "-b", b, cid()],
                                uid, gid),
        "runc": lambda: as_user(["runc", "--root", state + "/runc", "run", "-b", rb, cid()],
                                uid, gid),
    }
    return out, env


def private_kib(pid):
    total = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total


def runner_memory(rootfs, uid, gid, env):
    p = subprocess.Popen(as_user([SBX, "run", f"dir:{rootfs}", "--", "/bin/sleep", "2"], uid,
                                 gid), env=env)
    time.sleep(1.0)
    kib = private_kib(p.pid)
    p.wait()
    q = subprocess.Popen(as_user(["bwrap", "--unshare-all", "--ro-bind", rootfs, "/", "--proc",
                                  "/proc", "--dev", "/dev", "/bin/sleep", "2"], uid, gid))
    time.sleep(1.0)
    bk = private_kib(q.pid)
    q.wait()
    return kib, bk


def main():
    if hybrid() and not os.environ.get("BENCH_IN_NS"):
        os.execvp("unshare", ["unshare", "-m", "sh", "-c",
                              "umount /sys/fs/cgroup/unified && BENCH_IN_NS=1 exec "
                              + " ".join([sys.executable] + sys.argv)])
    base = tempfile.mkdtemp(prefix="trimo-bench-", dir="/tmp")
    os.chmod(base, 0o755)
    rootfs = os.path.join(base, "rootfs")
    subprocess.run([os.path.join(ROOT, "scripts/mkrootfs"), rootfs], check=True)
    who = [("root", 0, 0)]
    if USER:
        pw = pwd.getpwnam(USER)
        who.append((USER, pw.pw_uid, pw.pw_gid))
    rows = []
    made = []
    for name, uid, gid in who:
        t, env = tools(base, rootfs, uid, gid, made)
        samples = {k: [] for k in t}
        skipped = {}
        for i in range(RUNS):
            for k, mk in t.items():
                if k in skipped:
                    continue
                try:
                    samples[k].append(timed(mk(), env))
                except RuntimeError as e:
                    skipped[k] = str(e).splitlines()[0]
        med = {k: statistics.median(v) * 1000 for k, v in samples.items() if v}
        mem, bmem = runner_memory(rootfs, uid, gid, env)
        rows.append((name, med, skipped, mem, bmem))
    shutil.rmtree(base, ignore_errors=True)
    for d in made:
        try:
            os.rmdir(d)
        except OSError:
            pass
    print(f"start-up of /bin/true, median of {RUNS} runs (ms); kernel {os.uname().release}"
          + (", hybrid cgroups: cgroup2 hidden for all tools" if hybrid() or
             os.environ.get("BENCH_IN_NS") else ""))
    print(f"{'as':<12}{'trimo-sbx':>10}{'no caps':>9}{'bwrap':>8}{'crun':>8}{'runc':>8}"
          f"{'vs bwrap':>10}{'vs crun':>9}{'caps add':>10}")
    for name, med, skipped, mem, bmem in rows:
        def f(k):
            return f"{med[k]:.1f}" if k in med else "n/a"
        ratio_b = med["trimo-sbx"] / med["bwrap"] if "bwrap" in med else float("nan")
        ratio_c = med["trimo-sbx"] / med["crun"] if "crun" in med else float("nan")
        caps = med["trimo-sbx"] - med.get("trimo-sbx --no-limits", float("nan"))
        print(f"{name:<12}{f('trimo-sbx'):>10}{f('trimo-sbx --no-limits'):>9}{f('bwrap'):>8}"
              f"{f('crun'):>8}{f('runc'):>8}{ratio_b:>9.2f}x{ratio_c:>8.2f}x{caps:>8.2f}ms")
        for k, why in skipped.items():
            print(f"  {k} skipped as {name}: {why}")
        print(f"  runner private memory as {name}: trimo-sbx {mem} KiB, bwrap {bmem} KiB")


if __name__ == "__main__":
    main()
