"""trimo-sbx run: the sandbox core (issue 2), as root and as the test user."""
import os
import pty
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import cgroup2_only, make_rootfs

PODMAN_CAPS = 0x800405FB  # the 11 capabilities podman keeps


def default_caps(sbx):
    """podman's set; as root without CAP_SETFCAP (31): a file capability
    set inside would be valid for host root."""
    return PODMAN_CAPS & ~(1 << 31) if not sbx.rootless else PODMAN_CAPS

# Every syscall the sandbox must refuse; each runs in its own probe so one
# that changes the process (unshare) cannot colour the next.
REFUSED = [
    "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsmount",
    "fspick", "fsconfig", "mount_setattr", "unshare_user", "unshare_mount", "unshare_net",
    "clone_newuser", "clone_newpid", "clone3", "setns", "keyctl", "add_key", "request_key",
    "bpf", "perf_event_open", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "open_by_handle_at", "reboot", "swapon", "swapoff", "userfaultfd",
    "personality", "acct", "syscall_500",
]
# With the filter off these reach the kernel, which answers otherwise.
REACH_KERNEL = {
    "mount": "ok", "unshare_user": "ok", "unshare_mount": "ok", "unshare_net": "ok",
    "clone_newuser": "ok", "clone3": "ok", "keyctl": None, "setns": "EBADF",
    "move_mount": "ENOENT", "fsmount": "EBADF", "fsconfig": "EINVAL",
    "mount_setattr": "EINVAL", "personality": "ok", "pivot_root": "ENOENT", "fsopen": "ok",
}


def kv(text):
    out = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def probe(sbx, rootfs, *args, opts=(), **kw):
    return sbx.run("run", *opts, f"dir:{rootfs}", "--", "/bin/probe", *args, **kw)


def test_ids_single_map(sbx, rootfs):
    r = probe(sbx, rootfs, "status")
    assert r.returncode == 0, r.stderr
    s = kv(r.stdout)
    assert s["uid"] == "0" and s["gid"] == "0" and s["euid"] == "0"
    assert s["uid_map"].split() == ["0", str(sbx.uid), "1"]
    assert s["gid_map"].split() == ["0", str(sbx.gid), "1"]
    assert s["setgroups"] == "deny"


def test_pid_namespace(sbx, rootfs):
    r = probe(sbx, rootfs, "pids")
    assert r.returncode == 0, r.stderr
    assert kv(r.stdout)["pids"].split() == ["1", "2"]
    s = kv(probe(sbx, rootfs, "status").stdout)
    assert s["pid"] == "2" and s["ppid"] == "1"


def test_only_loopback(sbx, rootfs):
    r = probe(sbx, rootfs, "ifaces")
    assert kv(r.stdout)["ifaces"].split() == ["lo"]


def test_hostname(sbx, rootfs):
    assert kv(probe(sbx, rootfs, "hostname", opts=["--name", "jwt-auth"]).stdout)[
        "hostname"] == "jwt-auth"
    assert kv(probe(sbx, rootfs, "hostname", opts=["--hostname", "box1"]).stdout)[
        "hostname"] == "box1"
    assert kv(probe(sbx, rootfs, "hostname").stdout)["hostname"].startswith("run-")
    assert os.uname().nodename not in ("jwt-auth", "box1")


def caps(s, key):
    return int(s[key], 16)


def test_default_caps_nnp_seccomp(sbx, rootfs):
    s = kv(probe(sbx, rootfs, "status").stdout)
    for key in ("CapEff", "CapPrm", "CapBnd"):
        assert caps(s, key) == default_caps(sbx), key
    assert caps(s, "CapInh") == 0  # as docker and podman since CVE-2022-24769
    assert caps(s, "CapAmb") == 0
    assert s["NoNewPrivs"] == "1"
    assert s["Seccomp"] == "2"


def test_cap_add_drop(sbx, rootfs):
    s = kv(probe(sbx, rootfs, "status", opts=["--cap-drop", "ALL"]).stdout)
    assert caps(s, "CapEff") == 0 and caps(s, "CapBnd") == 0
    s = kv(probe(sbx, rootfs, "status", opts=["--cap-add", "NET_ADMIN", "--cap-drop",
                                               "cap_chown"]).stdout)
    assert caps(s, "CapEff") == (default_caps(sbx) | (1 << 12)) & ~1
    s = kv(probe(sbx, rootfs, "status", opts=["--cap-drop", "ALL", "--cap-add",
                                               "SYS_ADMIN"]).stdout)
    assert caps(s, "CapEff") == 1 << 21
    r = probe(sbx, rootfs, "status", opts=["--cap-add", "NOPE"])
    assert r.returncode == 2
    assert r.stderr.strip() == "trimo-sbx: run: --cap-add: unknown capability 'NOPE'"


@pytest.mark.parametrize("name", REFUSED)
def test_refused_syscall_even_with_all_caps(sbx, rootfs, name):
    r = probe(sbx, rootfs, "syscall", name, opts=["--cap-add", "ALL"])
    assert r.returncode == 0, r.stderr
    assert kv(r.stdout)[name] in ("EPERM", "ENOSYS"), r.stdout


@pytest.mark.parametrize("name", sorted(REACH_KERNEL))
def test_unconfined_reaches_kernel(sbx, rootfs, name):
    r = probe(sbx, rootfs, "syscall", name,
              opts=["--cap-add", "ALL", "--security-opt", "seccomp=unconfined"])
    assert r.returncode == 0, r.stderr
    got = kv(r.stdout)[name]
    want = REACH_KERNEL[name]
    if want is None:
        assert got not in ("EPERM", "ENOSYS")
    else:
        assert got == want
    assert kv(probe(sbx, rootfs, "status",
                    opts=["--security-opt", "seccomp=unconfined"]).stdout)["Seccomp"] == "0"


def run_on_pty(sbx, args):
    """Run trimo-sbx with a pseudo-terminal as stdin/stdout/stderr."""
    master, slave = pty.openpty()
    sbx.chown(os.ttyname(slave))
    p = sbx.popen(["setsid", "-w"] + [sbx.bin] + list(args), stdin=slave, stdout=slave,
                  stderr=slave)
    os.close(slave)
    out = b""
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    p.wait(timeout=30)
    os.close(master)
    return p.returncode, out.decode(errors="replace")


def test_tiocsti_refused_on_controlling_tty(sbx, rootfs):
    # -t: the command's own pty is its controlling terminal
    code, out = run_on_pty(sbx, ["run", "-t", f"dir:{rootfs}", "--", "/bin/probe",
                                 "tiocsti"])
    assert code == 0, out
    s = kv(out.replace("\r", ""))
    assert s["tiocsti"] == "EPERM" and s["tiocsti_high"] == "EPERM"
    assert s["tioclinux"] == "EPERM"
    code, out = run_on_pty(sbx, ["run", "-t", f"dir:{rootfs}", "--", "/bin/probe", "status"])
    assert kv(out.replace("\r", ""))["ctty"] == "yes"


def test_caller_terminal_is_not_controlling_tty(sbx, rootfs):
    # without -t the caller's terminal is passed as fds but is not the
    # sandbox's controlling terminal, and pushing input into it fails
    code, out = run_on_pty(sbx, ["run", f"dir:{rootfs}", "--", "/bin/probe", "status"])
    s = kv(out.replace("\r", ""))
    assert s["ctty"] != "yes"
    assert s["sid"] == "2"
    code, out = run_on_pty(sbx, ["run", "--security-opt", "seccomp=unconfined",
                                 f"dir:{rootfs}", "--", "/bin/probe", "tiocsti"])
    assert kv(out.replace("\r", ""))["tiocsti"] == "EPERM"  # not its controlling tty


def test_tty_relays_and_restores(sbx, rootfs):
    code, out = run_on_pty(sbx, ["run", "-t", f"dir:{rootfs}", "--", "/bin/sh", "-c",
                                 "stty size; echo hello-from-pty; exit 3"])
    assert code == 3
    assert "hello-from-pty" in out


def test_exit_codes(sbx, rootfs):
    assert probe(sbx, rootfs, "exit", "7").returncode == 7
    assert probe(sbx, rootfs, "kill", "9").returncode == 137
    r = sbx.run("run", f"dir:{rootfs}", "--", "no-such-command")
    assert r.returncode == 127
    assert r.stderr.startswith("trimo-sbx: exec 'no-such-command': not found in PATH")
    r = sbx.run("run", f"dir:{rootfs}", "--", "/tmp")
    assert r.returncode == 126
    assert r.stderr.strip() == "trimo-sbx: exec '/tmp': Permission denied"
    r = sbx.run("run", f"dir:{rootfs}", "/bin/sh", "-c", "exit 0")
    assert r.returncode == 0  # "--" is optional


def test_signal_forwarding(sbx, rootfs):
    p = sbx.popen([sbx.bin, "run", f"dir:{rootfs}", "--", "/bin/probe", "signals", "20"],
                  stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    for sig in (signal.SIGUSR1, signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        p.send_signal(sig)
        time.sleep(0.2)
    out, _ = p.communicate(timeout=20)
    got = [int(v) for k, v in (line.split("=") for line in out.split()) if k == "signal"]
    assert got == [signal.SIGUSR1, signal.SIGHUP, signal.SIGINT, signal.SIGTERM]
    assert p.returncode == 42


def test_zombies_reaped(sbx, rootfs):
    r = probe(sbx, rootfs, "orphans", "5")
    assert kv(r.stdout)["zombies"] == "0"


def descendants(pid):
    out = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return out
    for k in kids:
        out.append(k)
        out.extend(descendants(k))
    return out


def start_time(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


def test_sigkill_of_runner_leaves_nothing(sbx, rootfs):
    p = sbx.popen([sbx.bin, "run", f"dir:{rootfs}", "--", "/bin/sh", "-c",
                   "sleep 300 & sleep 300 & exec /bin/probe sleep 300"])
    runner = p.pid
    if sbx.rootless:  # setpriv execs trimo-sbx in place: same pid
        pass
    deadline = time.time() + 10
    procs = []
    while time.time() < deadline:
        procs = descendants(runner)
        if len(procs) >= 4:  # init, probe, two sleeps
            break
        time.sleep(0.05)
    assert len(procs) >= 4, procs
    started = {pid: start_time(pid) for pid in procs}
    p.kill()
    p.wait(timeout=10)
    deadline = time.time() + 10
    while time.time() < deadline:
        alive = [pid for pid in procs if start_time(pid) == started[pid]]
        if not alive:
            break
        time.sleep(0.05)
    assert not alive, f"left behind: {alive}"


def test_no_fd_leak(sbx, rootfs):
    r, w = os.pipe()
    try:
        res = sbx.run("run", f"dir:{rootfs}", "--", "/bin/probe", "fds", pass_fds=(r, w))
    finally:
        os.close(r)
        os.close(w)
    assert kv(res.stdout)["fds"].split() == ["0", "1", "2"]


def test_clean_environment(sbx, rootfs):
    r = sbx.run("run", "--env", "FOO=bar", "--env", "PASSME", "--env", "UNSET_ONE",
                "--name", "envtest", f"dir:{rootfs}", "--", "/bin/probe", "env",
                env={"SECRET_TOKEN": "s3cr3t", "PASSME": "yes"})
    assert r.returncode == 0, r.stderr
    env = dict(line.split("=", 1) for line in r.stdout.splitlines())
    assert env == {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root", "HOSTNAME": "envtest", "FOO": "bar", "PASSME": "yes",
    }
    r = sbx.run("run", "--env", "1BAD=x", f"dir:{rootfs}", "--", "/bin/probe", "env")
    assert r.returncode == 2
    assert "--env '1BAD=x': not a variable name" in r.stderr


def test_rootfs_read_only_by_default(sbx, rootfs):
    r = probe(sbx, rootfs, "write", "/etc/newfile")
    assert kv(r.stdout)["write"] == "EROFS"
    r = probe(sbx, rootfs, "write", "/tmp/newfile")
    assert kv(r.stdout)["write"] == "ok"
    assert not os.path.exists(os.path.join(rootfs, "etc/newfile"))


def test_rw_writes_in_place(sbx, tools):
    root = make_rootfs(os.path.join(sbx.tmp, "rwroot"), tools["probe"])
    for dirpath, dirs, files in os.walk(root):
        sbx.chown(dirpath)
    r = sbx.run("run", "--rw", f"dir:{root}", "--", "/bin/probe", "write", "/etc/marker", "x")
    assert kv(r.stdout)["write"] == "ok", r.stderr
    with open(os.path.join(root, "etc/marker")) as f:
        assert f.read() == "x"


def test_mount_inside_never_reaches_host(sbx, rootfs):
    shared = os.path.join(sbx.tmp, "shared")
    os.makedirs(shared)
    with open(os.path.join(shared, "marker"), "w") as f:
        f.write("host")
    sbx.chown(shared)
    p = sbx.popen([sbx.bin, "run", "--cap-add", "SYS_ADMIN", "--security-opt",
                   "seccomp=unconfined", "--bind", f"{shared}:/mnt", f"dir:{rootfs}", "--",
                   "/bin/sh", "-c", "mount -t tmpfs none /mnt && echo mounted && sleep 3"],
                  stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "mounted"
    # while the sandbox lives, the host still sees its own folder
    assert os.listdir(shared) == ["marker"]
    with open("/proc/self/mountinfo") as f:
        assert shared not in f.read()
    p.kill()
    p.wait()


def test_bind_ro_rw_and_workdir(sbx, rootfs):
    data = os.path.join(sbx.tmp, "data")
    os.makedirs(data)
    sbx.chown(data)
    r = sbx.run("run", "--bind", f"{data}:/data", "--workdir", "/data", f"dir:{rootfs}",
                "--", "/bin/sh", "-c", "pwd && echo hi > out.txt")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "/data"
    with open(os.path.join(data, "out.txt")) as f:
        assert f.read() == "hi\n"
    r = sbx.run("run", "--bind", f"{data}:/data:ro", f"dir:{rootfs}", "--", "/bin/probe",
                "write", "/data/x")
    assert kv(r.stdout)["write"] == "EROFS"


def nested_opts(sbx, rootfs):
    """--nested as the test user; on cgroup v1 (not in the v2 guest) only
    without caps.  As root it is refused: sandbox uid 0 is host uid 0."""
    if not sbx.rootless:
        r = sbx.run("run", "--nested", f"dir:{rootfs}", "--", "/bin/true")
        assert r.returncode == 2
        assert r.stderr.startswith("trimo-sbx: run: --nested is refused as root"), r.stderr
        pytest.skip("--nested is refused as root (checked)")
    if cgroup2_only():
        return ["--nested"]
    r = sbx.run("run", "--nested", f"dir:{rootfs}", "--", "/bin/true")
    assert r.returncode == 2
    assert "--nested with resource caps needs cgroup v2" in r.stderr, r.stderr
    return ["--nested", "--no-limits"]


def test_nested_unshare(sbx, rootfs):
    r = sbx.run("run", *nested_opts(sbx, rootfs), f"dir:{rootfs}", "--", "unshare", "-Urmpf",
                "--mount-proc", "/bin/probe", "pids")
    assert r.returncode == 0, r.stderr
    assert kv(r.stdout)["pids"] == "1"
    r = sbx.run("run", f"dir:{rootfs}", "--", "unshare", "-Urmpf", "--mount-proc", "true")
    assert r.returncode != 0
    assert "Operation not permitted" in r.stderr


def copy_with_libs(binary, root):
    """Copy a dynamically linked host binary and its libraries into root."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    paths = [binary] + re.findall(r"(/\S+)\s+\(0x", out)
    for p in paths:
        dst = os.path.join(root, p.lstrip("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.realpath(p), dst)


@pytest.fixture(scope="session")
def bwrap_rootfs(tools, tmp_path_factory):
    bwrap = shutil.which("bwrap")
    if not bwrap:
        pytest.skip("bubblewrap is not installed (scripts/install-deps installs it)")
    root = str(tmp_path_factory.mktemp("bwrap-root"))
    make_rootfs(root, tools["probe"])
    copy_with_libs(bwrap, root)
    for dirpath, dirs, files in os.walk(root):
        os.chmod(dirpath, 0o755)
    p = tmp_path_factory.getbasetemp()
    while str(p) != "/":
        os.chmod(p, os.stat(p).st_mode | 0o005)
        p = p.parent
    return root


def test_nested_bwrap(sbx, bwrap_rootfs):
    args = ["/usr/bin/bwrap", "--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc",
            "--dev", "/dev", "/bin/probe", "pids"]
    r = sbx.run("run", *nested_opts(sbx, bwrap_rootfs), f"dir:{bwrap_rootfs}", "--", *args)
    assert r.returncode == 0, r.stderr
    assert kv(r.stdout)["pids"].split() in (["1"], ["1", "2"])
    r = sbx.run("run", f"dir:{bwrap_rootfs}", "--", *args)
    assert r.returncode != 0


def test_rootfs_without_mountpoints_is_not_written(sbx, tools):
    root = make_rootfs(os.path.join(sbx.tmp, "bare"), tools["probe"], extra_dirs=False)
    before = sorted(os.listdir(root))
    r = sbx.run("run", "--workdir", "/work/here", f"dir:{root}", "--", "/bin/sh", "-c",
                "pwd; ls /proc/self >/dev/null && echo proc-ok")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["/work/here", "proc-ok"]
    assert sorted(os.listdir(root)) == before


def test_symlinks_in_image_cannot_aim_outside(sbx, tools, request):
    root = make_rootfs(os.path.join(sbx.tmp, "evil"), tools["probe"], extra_dirs=False)
    # a host folder outside /tmp (the sandbox mounts its own /tmp)
    target = tempfile.mkdtemp(prefix="trimo-escape-", dir="/var/tmp")
    request.addfinalizer(lambda: shutil.rmtree(target, ignore_errors=True))
    sbx.chown(target)
    # /evil climbs out with ../.. to a host folder: inside the sandbox that
    # path is resolved within the root (where the image has the same
    # folders), and the bind lands there, in the sandbox's private upper
    os.makedirs(root + target)
    os.symlink("../../../../../../.." + target, os.path.join(root, "evil"))
    for dirpath, dirs, files in os.walk(root):
        sbx.chown(dirpath)
    src = os.path.join(sbx.tmp, "src")
    os.makedirs(src)
    sbx.chown(src)
    r = sbx.run("run", "--bind", f"{src}:/evil/sub", f"dir:{root}", "--", "/bin/sh", "-c",
                "test -d /evil/sub && echo inside")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "inside"
    assert os.listdir(target) == []
    assert os.listdir(root + target) == []
    # /proc as an absolute symlink to a host folder the image lacks:
    # refused, nothing made anywhere
    other = tempfile.mkdtemp(prefix="trimo-escape-", dir="/var/tmp")
    request.addfinalizer(lambda: shutil.rmtree(other, ignore_errors=True))
    sbx.chown(other)
    os.symlink(other, os.path.join(root, "proc"))
    r = sbx.run("run", f"dir:{root}", "--", "/bin/probe", "pids")
    assert r.returncode == 125
    assert r.stderr == ("trimo-sbx: mount point '/proc': a symlink in the image points "
                        "to a missing path\n")
    assert os.listdir(other) == [] and os.listdir(target) == []
    with open("/proc/self/mountinfo") as f:
        mi = f.read()
        assert target not in mi and other not in mi


def test_bad_input(sbx, rootfs, tools):
    r = sbx.run("run", f"dir:{sbx.tmp}/missing", "--", "/bin/true")
    assert r.returncode == 2
    assert r.stderr == f"trimo-sbx: rootfs '{sbx.tmp}/missing': No such file or directory\n"
    empty = os.path.join(sbx.tmp, "empty")
    os.makedirs(empty)
    r = sbx.run("run", f"dir:{empty}", "--", "/bin/true")
    assert r.returncode == 2
    assert r.stderr == (f"trimo-sbx: rootfs '{empty}' has no /bin: not a root file "
                        "system\n")
    r = sbx.run("run", "--frobnicate", f"dir:{rootfs}", "--", "/bin/true")
    assert r.returncode == 2
    assert r.stderr == ("trimo-sbx: run: unknown option '--frobnicate' "
                        "(see trimo-sbx run --help)\n")
    r = sbx.run("run", f"dir:{rootfs}")
    assert r.returncode == 2 and "missing COMMAND" in r.stderr
    r = sbx.run("run", "--bind", "/nonexistent-src:/x", f"dir:{rootfs}", "--", "/bin/true")
    assert r.returncode == 2
    assert r.stderr == "trimo-sbx: bind '/nonexistent-src': No such file or directory\n"
    r = sbx.run("run", "--bind", f"{sbx.tmp}:../x", f"dir:{rootfs}", "--", "/bin/true")
    assert r.returncode == 2 and "absolute path" in r.stderr
    r = sbx.run("frobnicate")
    assert r.returncode == 2
    assert r.stderr == "trimo-sbx: unknown command 'frobnicate' (see trimo-sbx help)\n"


def test_seccomp_profile_file(sbx, rootfs):
    prof = os.path.join(sbx.tmp, "profile.json")
    with open(prof, "w") as f:
        f.write('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir",'
                ' "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}')
    sbx.chown(prof)
    r = sbx.run("run", "--security-opt", f"seccomp={prof}", f"dir:{rootfs}", "--",
                "/bin/sh", "-c", "mkdir /tmp/d")
    assert r.returncode != 0
    assert "Permission denied" in r.stderr
    with open(prof, "w") as f:
        f.write('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], '
                '"action": "SCMP_ACT_BOGUS"}]}')
    r = sbx.run("run", "--security-opt", f"seccomp={prof}", f"dir:{rootfs}", "--", "/bin/true")
    assert r.returncode == 2
    assert r.stderr == f'trimo-sbx: {prof}: syscalls[0]: unknown action "SCMP_ACT_BOGUS"\n'
    with open(prof, "w") as f:
        f.write('{"defaultAction": ')
    r = sbx.run("run", "--security-opt", f"seccomp={prof}", f"dir:{rootfs}", "--", "/bin/true")
    assert r.returncode == 2
    assert r.stderr.startswith(f"trimo-sbx: seccomp profile {prof}:1:")


def test_ulimit(sbx, rootfs):
    r = sbx.run("run", "--ulimit", "nofile=64:128", "--ulimit", "core=0", f"dir:{rootfs}",
                "--", "/bin/sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["64", "128", "0"]
    r = sbx.run("run", "--ulimit", "bogus=1", f"dir:{rootfs}", "--", "/bin/true")
    assert r.returncode == 2 and "unknown limit name" in r.stderr


def test_init_hides_runner_environment(sbx, rootfs):
    r = sbx.run("run", "--cap-add", "ALL", f"dir:{rootfs}", "--", "/bin/sh", "-c",
                "cat /proc/1/cmdline; echo; cat /proc/1/environ",
                env={"SECRET_TOKEN": "s3cr3t-canary"})
    assert r.stdout.split("\x00")[0].strip() == "trimo-init"
    assert "s3cr3t-canary" not in r.stdout + r.stderr
    assert "Permission denied" in r.stderr


def test_check_reports_a_working_host(sbx):
    r = sbx.run("check")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = {line[:30].strip(): line[30:].split(None, 1)[0] for line in r.stdout.splitlines()
             if len(line) > 31}
    for feature in ("user namespaces", "overlay in a user namespace", "mount API", "seccomp"):
        assert lines[feature] == "ok", r.stdout
    assert r.stdout.rstrip().endswith("trimo-sbx run works on this host.")
