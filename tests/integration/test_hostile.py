"""Hostile tests: what a sandboxed command tries against the host, other
sandboxes, the caller's terminal and its own limits.  Each test runs as root
and as the unprivileged test user (the `sbx` fixture).

Tests marked xfail(strict=True, reason="finding N: ...") show a real hole
today; they turn into failures (XPASS) when it is fixed: then drop the mark.
The findings are described in tests/integration/HOSTILE-FINDINGS.md.
"""
import ctypes
import os
import pty
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tarfile
import tempfile
import termios
import time

import pytest

from conftest import cgroup2_only, make_rootfs

CLONE_NEWUSER = 0x10000000
SIGSYS_EXIT = 128 + signal.SIGSYS


def kv(text):
    out = {}
    for line in text.replace("\r", "").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def probe(sbx, rootfs, *args, opts=(), **kw):
    return sbx.run("run", *opts, f"dir:{rootfs}", "--", "/bin/probe", *args, **kw)


def sh(sbx, rootfs, script, opts=(), **kw):
    return sbx.run("run", *opts, f"dir:{rootfs}", "--", "/bin/sh", "-c", script, **kw)


def xfail_when(request, cond, reason):
    """Mark this half of the test as a known hole (strict: a fix shows)."""
    if cond:
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=reason))


def public_dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)
    return d


def own_tree(sbx, root):
    for dirpath, dirs, files in os.walk(root):
        sbx.chown(dirpath)
        for n in files:
            if not os.path.islink(os.path.join(dirpath, n)):
                sbx.chown(os.path.join(dirpath, n))


# ---- the init (pid 1) is out of reach ---------------------------------------

# Every way in: with the init, all of them must be refused.
PEEK_KEYS = ["ptrace_attach", "ptrace_seize", "process_vm_readv", "process_vm_writev",
             "pidfd_getfd", "kcmp", "open_mem", "open_environ", "open_maps", "open_auxv",
             "open_stack", "open_syscall", "readlink_root", "readlink_cwd", "readlink_exe",
             "readlink_fd_0", "readlink_ns_mnt", "open_root"]


@pytest.mark.parametrize("caps", [[], ["--cap-add", "ALL"]], ids=["default", "all-caps"])
def test_init_is_out_of_reach(sbx, rootfs, caps):
    # The init holds the runner's memory (its environment, the caller's
    # terminal as fds 0-2) and runs with the filter but a host-owned mm:
    # non-dumpable, nothing inside may attach, read, write or borrow an fd.
    r = probe(sbx, rootfs, "peek", "1", opts=caps)
    assert r.returncode == 0, r.stderr
    s = kv(r.stdout)
    for k in PEEK_KEYS:
        assert s[k] in ("EPERM", "EACCES"), (k, r.stdout)
    # the same probe against a sibling of the command reaches it: the
    # refusals above are about the init, not a broken probe
    r = sh(sbx, rootfs, "/bin/probe sleep 5 & sleep 0.2; /bin/probe peek $!; kill $!",
           opts=caps)
    s = kv(r.stdout)
    for k in ("ptrace_attach", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
              "kcmp", "open_environ", "readlink_root", "open_root"):
        assert s[k] == "ok", (k, r.stdout)


def test_init_shows_nothing_of_the_runner(sbx, rootfs):
    canary = "s3cr3t-canary-7d1f"
    r = sh(sbx, rootfs,
           "for p in /proc/[0-9]*; do cat $p/cmdline $p/environ $p/status; done 2>/dev/null;"
           " echo; cat /proc/1/cmdline | tr '\\0' '|'; echo; env",
           opts=["--hostname", "box"], env={"SECRET_TOKEN": canary})
    assert r.returncode == 0, r.stderr
    assert canary not in r.stdout + r.stderr
    # the whole argument area of the runner was written over
    assert "trimo-init|" in r.stdout
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("trimo-init|")][0]
    assert set(line[len("trimo-init|"):]) <= {"|"}, line


# ---- the seccomp filter -----------------------------------------------------

MORE_REFUSED = [
    "io_uring_setup", "io_uring_enter", "io_uring_register", "prctl_set_mm", "syslog",
    "iopl", "ioperm", "modify_ldt", "fanotify_init", "settimeofday", "clock_settime",
    "clock_adjtime", "vhangup", "lookup_dcookie", "migrate_pages", "move_pages", "quotactl",
    "unshare_cgroup", "unshare_ipc", "unshare_uts", "unshare_pid", "unshare_time",
    "unshare_user_hi", "clone_newns", "clone_newnet", "clone_newcgroup", "clone_newipc",
    "clone_newuts", "clone_newuser_hi",
]
# Without the filter (and all capabilities) these reach the kernel and work:
# the refusal above is the filter's.
MORE_REACH = {
    "io_uring_setup": "ok", "modify_ldt": "ok", "move_pages": "ok", "clock_settime": "EINVAL",
    "unshare_cgroup": "ok", "unshare_ipc": "ok", "unshare_uts": "ok", "unshare_pid": "ok",
    "clone_newns": "ok", "clone_newnet": "ok", "clone_newuser_hi": "ok",
}


def test_more_syscalls_refused_even_with_all_caps(sbx, rootfs):
    script = "; ".join(f"/bin/probe syscall {n}" for n in MORE_REFUSED)
    r = sh(sbx, rootfs, script, opts=["--cap-add", "ALL"])
    assert r.returncode == 0, r.stderr
    s = kv(r.stdout)
    for n in MORE_REFUSED:
        assert s[n] in ("EPERM", "ENOSYS"), (n, s[n])
    script = "; ".join(f"/bin/probe syscall {n}" for n in MORE_REACH)
    r = sh(sbx, rootfs, script, opts=["--cap-add", "ALL", "--security-opt",
                                      "seccomp=unconfined"])
    s = kv(r.stdout)
    for n, want in MORE_REACH.items():
        if n == "io_uring_setup" and s[n] == "EPERM":
            continue  # kernel.io_uring_disabled on this host
        assert s[n] == want, (n, s[n])


def test_a_second_filter_loosens_nothing(sbx, rootfs):
    r = probe(sbx, rootfs, "stackfilter", "mount", "unshare_user", "keyctl",
              opts=["--cap-add", "ALL"])
    s = kv(r.stdout)
    assert s["stackfilter"] == "ok"  # an allow-all filter was loaded on top
    assert s["mount"] == "EPERM" and s["unshare_user"] == "EPERM"
    assert s["keyctl"] == "EPERM"


def test_foreign_syscall_abis_are_killed(sbx, rootfs):
    # i386 through int 0x80: 310 is unshare there (and process_vm_readv,
    # allowed, on x86_64): the filter must not read it with the 64-bit table
    for args in (["int80", "20"], ["int80", "310", hex(CLONE_NEWUSER)], ["x32", "39"],
                 ["x32", "272", hex(CLONE_NEWUSER)]):
        r = probe(sbx, rootfs, *args, opts=["--cap-add", "ALL"])
        key = args[0]
        assert f"{key}=attempt" in r.stdout, r.stdout + r.stderr
        assert f"{key}=ok" not in r.stdout, args
        # killed (SIGSYS from the filter; SIGSEGV without i386 emulation) or
        # refused with an errno: never run
        assert r.returncode in (SIGSYS_EXIT, 128 + signal.SIGSEGV) or \
            kv(r.stdout)[key] != "attempt", (args, r.returncode, r.stdout)
    # without the filter int 0x80 works here, so the kill above is the filter's
    r = probe(sbx, rootfs, "int80", "20", opts=["--security-opt", "seccomp=unconfined"])
    if r.returncode == 128 + signal.SIGSEGV:
        pytest.skip("this kernel has no i386 emulation (ia32_emulation=0)")
    assert kv(r.stdout)["int80"] == "ok", r.stdout


# ---- terminals ---------------------------------------------------------------

def pty_run(sbx, args, wait_after=0.0):
    """trimo-sbx ARGS with a fresh pty as stdin/stdout/stderr (the caller's
    terminal).  Returns (code, output, lflag of the pty after the run,
    seconds the runner took)."""
    master, slave = pty.openpty()
    sbx.chown(os.ttyname(slave))
    t0 = time.time()
    p = sbx.popen(["setsid", "-w", sbx.bin] + list(args), stdin=slave, stdout=slave,
                  stderr=slave)
    out = b""
    deadline = time.time() + 30
    while p.poll() is None and time.time() < deadline:
        r, _, _ = select.select([master], [], [], 0.05)
        if r:
            try:
                out += os.read(master, 4096)
            except OSError:
                break
    p.wait(timeout=30)
    took = time.time() - t0
    # whatever still writes to the caller's terminal after the runner is gone
    end = time.time() + wait_after
    while time.time() < end:
        r, _, _ = select.select([master], [], [], 0.05)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            out += chunk
    lflag = termios.tcgetattr(slave)[3]
    os.close(slave)
    os.close(master)
    return p.returncode, out.decode(errors="replace").replace("\r", ""), lflag, took


@pytest.mark.parametrize("tty", [True, False], ids=["tty", "no-tty"])
def test_tiocsti_refused_on_every_fd(sbx, rootfs, tty):
    script = "for fd in 0 1 2; do /bin/probe tiocsti $fd; done"
    code, out, _, _ = pty_run(sbx, ["run"] + (["-t"] if tty else []) +
                              [f"dir:{rootfs}", "--", "/bin/sh", "-c", script])
    assert code == 0, out
    lines = [ln for ln in out.splitlines() if "=" in ln]
    assert len([ln for ln in lines if ln.startswith("tiocsti=")]) == 3, out
    for ln in lines:
        k, v = ln.split("=", 1)
        assert v not in ("ok",), (k, out)
        if k.startswith("tiocsti"):
            assert v == "EPERM", (k, out)


def test_command_holds_only_its_stdio(sbx, rootfs):
    # with -t: the pty slave three times, no sync socket, no caller terminal
    code, out, _, _ = pty_run(sbx, ["run", "-t", f"dir:{rootfs}", "--", "/bin/probe",
                                    "fdinfo"])
    assert code == 0, out
    s = kv(out)
    assert sorted(s) == ["fd0", "fd1", "fd2"], out
    assert len(set(s.values())) == 1 and s["fd0"].startswith("/dev/"), out
    assert "socket" not in out


@pytest.mark.parametrize("tty", [True, False], ids=["tty", "no-tty"])
def test_nothing_writes_to_the_terminal_after_exit(sbx, rootfs, tty):
    # a background process of the command: the command's exit ends the
    # sandbox, so it never gets to write (or inject) anything afterwards
    script = "(sleep 1; echo LATE-WRITE; /bin/probe tiocsti 0) & echo early; exit 0"
    code, out, _, took = pty_run(sbx, ["run"] + (["-t"] if tty else []) +
                                 [f"dir:{rootfs}", "--", "/bin/sh", "-c", script],
                                 wait_after=1.5)
    assert code == 0, out
    assert "early" in out
    assert "LATE-WRITE" not in out and "tiocsti" not in out, out
    assert took < 1.0, took


def test_caller_terminal_settings_restored_with_tty(sbx, rootfs):
    code, out, lflag, _ = pty_run(sbx, ["run", "-t", f"dir:{rootfs}", "--", "/bin/probe",
                                        "termios", "0"])
    assert kv(out)["termios"] == "ok", out  # it changed its own terminal
    assert lflag & termios.ECHO


def test_caller_terminal_settings_restored_without_tty(sbx, rootfs, request):
    code, out, lflag, _ = pty_run(sbx, ["run", f"dir:{rootfs}", "--", "/bin/probe",
                                        "termios", "0"])
    assert "termios=" in out, out  # attempted
    assert lflag & termios.ECHO, "the caller's terminal was left with echo off"


# ---- the file system view ----------------------------------------------------

def test_old_root_is_gone(sbx, rootfs):
    r = probe(sbx, rootfs, "mounts")
    assert r.returncode == 0, r.stderr
    st = os.stat("/")
    host_root_dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    points = []
    for line in r.stdout.splitlines():
        f = line.split()
        dev, root, point = f[2], f[3], f[4]
        points.append(point)
        # the host's / is nowhere, not even under another name
        assert not (dev == host_root_dev and root == "/"), line
    assert points[0] == "/"
    allowed = ("/proc", "/dev", "/tmp", "/sys")
    for p in points[1:]:
        assert p.startswith(allowed), p


def test_proc_and_sys_masks(sbx, rootfs):
    masked_files = ["/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                    "/proc/timer_stats", "/proc/sched_debug", "/proc/interrupts"]
    masked_dirs = ["/proc/acpi", "/proc/scsi", "/sys/firmware", "/sys/kernel/security",
                   "/sys/kernel/debug", "/sys/devices/virtual/powercap"]
    present_files = [p for p in masked_files if os.path.exists(p)]
    present_dirs = [p for p in masked_dirs if os.path.isdir(p) and os.listdir(p)]
    assert present_files  # something to hide on this host
    script = "; ".join([f"echo {p}=$(wc -c < {p})" for p in present_files] +
                       [f"echo {p}=$(ls -A {p} | wc -l)" for p in present_dirs] +
                       # opened for writing, never written: nothing happens
                       # on the host even if an open succeeded
                       ["for f in /proc/sys/vm/stat_interval /proc/sys/kernel/core_pattern "
                        "/proc/sysrq-trigger /sys/kernel/profiling /sys/kernel/mm/ksm/run; do "
                        "[ -e $f ] || continue; if (: > $f); then echo $f=opened; "
                        "else echo $f=refused; fi; done 2>/dev/null",
                        "echo kmsg=$(head -c 1 /proc/kmsg 2>/dev/null | wc -c)",
                        "grep -c -v '^0000000000000000 ' /proc/kallsyms || true"])
    r = sh(sbx, rootfs, script, opts=["--cap-add", "ALL"])
    assert r.returncode == 0, r.stderr
    s = kv(r.stdout)
    for p in present_files + present_dirs:
        assert s[p].strip() == "0", (p, s[p])
    writes = {k: v for k, v in s.items() if v in ("opened", "refused")}
    assert "/proc/sys/vm/stat_interval" in writes
    assert set(writes.values()) == {"refused"}, writes
    assert s["kmsg"] == "0"
    # kernel addresses hidden: every /proc/kallsyms line shows zeros
    assert r.stdout.strip().splitlines()[-1] == "0", r.stdout


def test_dev_holds_only_harmless_nodes(sbx, rootfs):
    r = sh(sbx, rootfs, "ls -A /dev; echo ==; find /dev -type b | wc -l")
    names, blocks = r.stdout.split("==")
    assert set(names.split()) == {"null", "zero", "full", "random", "urandom", "tty", "fd",
                                  "stdin", "stdout", "stderr", "ptmx", "pts", "shm"}, names
    assert blocks.strip() == "0"


def test_read_only_bind_is_read_only_all_the_way_down(sbx, rootfs, request):
    src = os.path.join(sbx.tmp, "robind")
    os.makedirs(os.path.join(src, "sub"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=777", "none",
                    os.path.join(src, "sub")], check=True)
    request.addfinalizer(lambda: subprocess.run(["umount", "-l", os.path.join(src, "sub")]))
    sbx.chown(src)
    r = sh(sbx, rootfs, "/bin/probe write /x/f; /bin/probe write /x/sub/f; "
           "grep ' /x' /proc/self/mountinfo | wc -l", opts=["--bind", f"{src}:/x:ro"])
    assert r.stdout.count("write=EROFS") == 2, r.stdout
    assert r.stdout.split()[-1] == "2"  # the submount came along, read-only
    assert os.listdir(os.path.join(src, "sub")) == []


def test_symlinks_planted_at_run_time_stay_inside(sbx, tools, request):
    # A first run writes its rootfs (--rw) and plants symlinks where a later
    # run's bind and workdir go, aiming at a host folder: the later run
    # resolves them inside its own root and never touches the host folder.
    root = make_rootfs(os.path.join(sbx.tmp, "planted"), tools["probe"])
    own_tree(sbx, root)
    target = tempfile.mkdtemp(prefix="trimo-planted-", dir="/var/tmp")
    request.addfinalizer(lambda: shutil.rmtree(target, ignore_errors=True))
    os.chmod(target, 0o777)
    r = sbx.run("run", "--rw", f"dir:{root}", "--", "/bin/sh", "-c",
                f"mkdir -p {target} && ln -s /../../../../../../..{target} /opt && "
                f"ln -s ../../../../../../..{target} /srv && echo planted")
    assert r.stdout.strip() == "planted", r.stderr
    src = os.path.join(sbx.tmp, "bsrc")
    os.makedirs(src)
    sbx.chown(src)
    r = sbx.run("run", "--bind", f"{src}:/opt/data", "--workdir", "/srv/wd/deeper",
                f"dir:{root}", "--", "/bin/sh", "-c", "pwd; test -d /opt/data && echo ok")
    assert r.returncode == 0, r.stderr
    # (busybox's pwd prints the path the symlink led to, inside the root)
    assert r.stdout.split()[0].endswith("/wd/deeper") and r.stdout.split()[1] == "ok"
    assert os.listdir(target) == []
    assert os.listdir(root + target) == []  # nor the image's (a tmpfs took them)
    with open("/proc/self/mountinfo") as f:
        assert target not in f.read()


# ---- what a root-run sandbox may do to host files ----------------------------

DEV_NODES = ["null", "zero", "full", "random", "urandom", "tty"]


def test_host_device_nodes_cannot_be_changed(sbx, rootfs, request):
    before = {n: os.stat(f"/dev/{n}").st_ctime_ns for n in DEV_NODES}
    script = "; ".join(
        f"m=$(stat -c %a /dev/{n}); if chmod $m /dev/{n} 2>/dev/null || "
        f"chown 0:0 /dev/{n} 2>/dev/null; then echo {n}=changed; else echo {n}=refused; fi"
        for n in DEV_NODES)
    r = sh(sbx, rootfs, script, opts=["--cap-add", "ALL"])
    s = kv(r.stdout)
    assert sorted(s) == sorted(DEV_NODES), r.stdout + r.stderr  # each one tried
    after = {n: os.stat(f"/dev/{n}").st_ctime_ns for n in DEV_NODES}
    assert after == before, "the host's device nodes were changed"
    assert set(s.values()) == {"refused"}, s


def file_caps_root(path):
    """The host uid a file capability xattr is valid for (0: the host's
    root, as good as setuid root), or None without one."""
    try:
        raw = os.getxattr(path, "security.capability")
    except OSError:
        return None
    magic = struct.unpack_from("<I", raw)[0] & 0xFF000000
    if magic == 0x03000000 and len(raw) >= 24:
        return struct.unpack_from("<I", raw, 20)[0]
    return 0  # version 1 or 2: valid in the initial user namespace


def test_no_privileged_files_planted_in_binds(sbx, rootfs, request):
    # finding 4: no setuid/setgid modes (seccomp on every mode argument) and,
    # as root, no CAP_SETFCAP: nothing planted is privileged on the host
    w = os.path.join(sbx.tmp, "plant")
    os.makedirs(w)
    sbx.chown(w)
    r = sh(sbx, rootfs, "cp /bin/probe /w/suid && chmod 4755 /w/suid && echo suid=done; "
           "cp /bin/probe /w/fcap && /bin/probe setfcap /w/fcap; "
           "cp /bin/probe /w/sgid && chmod 2755 /w/sgid && echo sgid=done",
           opts=["--bind", f"{w}:/w"])
    # attempted: the copies exist on the host, their chmod was refused
    assert sorted(os.listdir(w)) == ["fcap", "sgid", "suid"], r.stdout + r.stderr
    assert r.stderr.count("chmod: ") == 2 and "Operation not permitted" in r.stderr
    assert "setfcap=" in r.stdout, r.stdout
    bad = []
    for name in ("suid", "fcap", "sgid"):
        st = os.lstat(os.path.join(w, name))
        if st.st_uid == 0 and st.st_mode & stat.S_ISUID:
            bad.append(f"{name}: setuid root")
        if st.st_gid == 0 and st.st_mode & stat.S_ISGID:
            bad.append(f"{name}: setgid root")
        if file_caps_root(os.path.join(w, name)) == 0:
            bad.append(f"{name}: file capabilities of host root")
    assert not bad, bad


def test_root_only_kernel_files_unreadable(sbx, rootfs, request):
    files = [p for p in ("/proc/kpageflags", "/proc/kpagecount", "/proc/kpagecgroup")
             if os.path.exists(p)]
    if not files:
        pytest.skip("no /proc/kpage* on this kernel")
    r = sh(sbx, rootfs, "; ".join(f"echo {p}=$(head -c 8 {p} 2>/dev/null | wc -c)"
                                  for p in files))
    s = kv(r.stdout)
    assert sorted(s) == sorted(files), r.stdout
    for p in files:
        assert s[p] == "0", p


def test_image_device_nodes_unusable(sbx, tools, request):
    # a dir: image is bound in place as the root: device nodes in it (a
    # disk, /dev/uinput, /dev/input/*, a VT...) must not work inside; the
    # sandbox's own /dev is separate binds
    root = make_rootfs(os.path.join(sbx.tmp, "devimg"), tools["probe"])
    os.makedirs(os.path.join(root, "opt"))
    for name, mode in (("zero-private", 0o600), ("zero-public", 0o666)):
        os.mknod(os.path.join(root, "opt", name), stat.S_IFCHR | mode, os.makedev(1, 5))
    r = sh(sbx, root, "for n in zero-private zero-public; do if head -c 4 /opt/$n > /tmp/o; "
           "then echo $n=read-$(wc -c < /tmp/o); else echo $n=refused; fi; done")
    s = kv(r.stdout)
    assert sorted(s) == ["zero-private", "zero-public"], r.stdout + r.stderr  # attempted
    assert s == {"zero-private": "refused", "zero-public": "refused"}, s


# ---- --nested ----------------------------------------------------------------

def test_nested_cannot_write_host_sysctls(sbx, rootfs, request):
    # finding 1 (fixed by refusal): as root, --nested would leave /proc
    # unmasked and writable with sandbox uid 0 = host uid 0
    if not sbx.rootless:
        r = sh(sbx, rootfs, "true", opts=["--nested"])
        assert r.returncode == 2
        assert "--nested is refused as root" in r.stderr, r.stderr
        return
    path = "/proc/sys/vm/stat_interval"
    with open(path) as f:
        host_before = f.read()
    r = sh(sbx, rootfs, f"v=$(cat {path}) && echo read=$v && "
           f"if echo $v > {path} 2>/dev/null; then echo sysctl=written; "
           "else echo sysctl=refused; fi",
           opts=["--nested"] + ([] if cgroup2_only() else ["--no-limits"]))
    s = kv(r.stdout)
    assert s["read"] == host_before.strip(), r.stdout + r.stderr  # attempted
    with open(path) as f:
        assert f.read() == host_before
    assert s["sysctl"] == "refused"


@pytest.mark.cgroup
def test_nested_cannot_lift_its_own_caps(sbx, rootfs, request):
    v1 = not cgroup2_only()
    if not sbx.rootless or v1:
        # finding 2 (fixed by refusal): on cgroup v1 a nested sandbox could
        # mount the hierarchy in its own cgroup namespace and raise its caps;
        # as root --nested is refused altogether (finding 1)
        r = sh(sbx, rootfs, "true", opts=["--nested", "--memory", "64M"])
        assert r.returncode == 2, r.stderr
        assert ("--nested is refused as root" in r.stderr or
                "--nested with resource caps needs cgroup v2" in r.stderr), r.stderr
        return
    if v1:
        raise_caps = ("/bin/probe cgroup1 cgroup memory memory.memsw.limit_in_bytes -1 "
                      "memory.limit_in_bytes -1; /bin/probe cgroup1 cgroup pids pids.max max")
    else:
        raise_caps = ("/bin/probe cgroup1 cgroup2 - memory.swap.max max memory.max max "
                      "pids.max max")
    r = sh(sbx, rootfs, f"{raise_caps}; /bin/probe forkbomb 100; /bin/probe memhog 160",
           opts=["--nested", "--memory", "64M", "--pids", "64"])
    s = kv(r.stdout)
    assert s.get("unshare") == "ok" and "forked" in s, r.stdout + r.stderr  # attempted
    lifted = []
    if int(s["forked"]) >= 100:
        lifted.append("pids (forked 100 under --pids 64)")
    if "memhog=done 160 MB" in r.stdout:
        lifted.append("memory (160 MB under --memory 64M)")
    assert not lifted, f"caps lifted from inside: {lifted}"


# ---- other sandboxes, the host's IPC ----------------------------------------

def test_host_ipc_and_abstract_sockets_invisible(sbx, rootfs, tools, request):
    name = f"trimo-hostile-{os.getpid()}-{sbx.who}"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(b"\0" + name.encode())
    srv.listen(1)
    request.addfinalizer(srv.close)
    libc = ctypes.CDLL(None, use_errno=True)
    key = 0x7A000000 + (os.getpid() & 0xFFFF) + (0x10000 if sbx.rootless else 0)
    shmid = libc.shmget(key, 4096, 0o1000 | 0o666)  # IPC_CREAT
    assert shmid >= 0
    request.addfinalizer(lambda: libc.shmctl(shmid, 0, None))  # IPC_RMID
    marker = f"/dev/shm/trimo-hostile-{os.getpid()}"
    with open(marker, "w") as f:
        f.write("host")
    request.addfinalizer(lambda: os.unlink(marker))
    # the probe itself reaches both from the host
    host = subprocess.run([tools["probe"], "uconnect", "@" + name], capture_output=True,
                          text=True)
    assert kv(host.stdout)["uconnect"] == "ok"
    host = subprocess.run([tools["probe"], "ipc", hex(key)], capture_output=True, text=True)
    assert kv(host.stdout)["shmget"] == "ok"
    r = sh(sbx, rootfs, f"/bin/probe uconnect @{name}; /bin/probe ipc {hex(key)}; "
           f"ls -A /dev/shm | wc -l; cat /proc/sysvipc/shm | wc -l")
    s = kv(r.stdout)
    assert s["uconnect"] == "ECONNREFUSED", r.stdout
    assert s["shmget"] == "ENOENT"
    assert r.stdout.split()[-2:] == ["0", "1"]  # nothing in /dev/shm, the header only


def test_sandboxes_cannot_reach_each_other(sbx, rootfs):
    key = hex(0x7B000000 + (os.getpid() & 0xFFFF) + (0x10000 if sbx.rootless else 0))
    name = f"@trimo-peer-{os.getpid()}"
    a = sbx.popen([sbx.bin, "run", "--name", "peer-a", f"dir:{rootfs}", "--", "/bin/sh",
                   "-c", f"/bin/probe hold {name} {key} 10 & sleep 0.3; "
                   f"/bin/probe uconnect {name}; /bin/probe ipc {key}; echo a-up; wait"],
                  stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        while True:
            line = a.stdout.readline()
            assert line, lines
            lines.append(line.strip())
            if line.strip() == "a-up":
                break
        sa = kv("\n".join(lines))
        # A reaches its own socket and segment: B's refusals below are isolation
        assert sa["uconnect"] == "ok" and sa["shmget"] == "ok", lines
        r = sh(sbx, rootfs, f"/bin/probe uconnect {name}; /bin/probe ipc {key}; "
               "/bin/probe pids; for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; "
               "echo; done", opts=["--name", "peer-b"])
        sb = kv(r.stdout)
        assert sb["uconnect"] == "ECONNREFUSED" and sb["shmget"] == "ENOENT", r.stdout
        pids = sb["pids"].split()
        assert len(pids) == 3 and pids[:2] == ["1", "2"], pids  # init, sh, the probe
        assert "probe hold" not in r.stdout
    finally:
        a.kill()
        a.wait()


def host_has_vsock():
    try:
        socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM).close()
        return True
    except (OSError, AttributeError):
        return False


def test_no_vsock(sbx, rootfs, request):
    # AF_VSOCK is not bound to a network namespace: with it a sandbox with
    # --network none talks to the hypervisor's (or the host's) vsock services
    r = probe(sbx, rootfs, "vsock")
    s = kv(r.stdout)
    assert "vsock_stream" in s, r.stdout + r.stderr
    assert s["vsock_stream"] != "ok" and s["vsock_dgram"] != "ok", s


# ---- cgroups and per-user kernel resources ---------------------------------

@pytest.mark.cgroup
def test_cgroup_files_read_only_even_with_all_caps(sbx, rootfs):
    base = "/sys/fs/cgroup" if cgroup2_only() else "/sys/fs/cgroup/pids"
    r = sh(sbx, rootfs, f"echo cap=$(cat {base}/pids.max); "
           f"if echo max > {base}/pids.max; then echo raise=done; else echo raise=refused; fi; "
           f"if echo 1 > {base}/cgroup.procs; then echo move=done; else echo move=refused; "
           f"fi; if mkdir {base}/child; then echo mkdir=done; else echo mkdir=refused; fi",
           opts=["--pids", "64", "--cap-add", "ALL"])
    s = kv(r.stdout)
    assert s["cap"] == "64", r.stdout + r.stderr  # its own limit, readable
    assert (s["raise"], s["move"], s["mkdir"]) == ("refused",) * 3, s


def test_inotify_instances_not_taken_from_host_user(sbx, rootfs, request):
    if not sbx.rootless:
        pytest.skip("not run as root: it would take every inotify instance of the host's "
                    "root for a moment (finding 7 holds there the same way)")
    p = sbx.popen([sbx.bin, "run", f"dir:{rootfs}", "--", "/bin/probe", "inotify", "100000",
                   "4"], stdout=subprocess.PIPE, text=True)
    try:
        out = ""
        while "ready" not in out:
            line = p.stdout.readline()
            assert line, out
            out += line
        assert int(kv(out)["inotify"]) > 0
        code = ("import ctypes, os; l = ctypes.CDLL(None, use_errno=True); "
                "r = l.inotify_init1(0); print('host=' + ('ok' if r >= 0 else "
                "os.strerror(ctypes.get_errno())))")
        host = sbx.cmd(["/usr/bin/python3", "-c", code])
        assert kv(host.stdout)["host"] == "ok", (out, host.stdout)
    finally:
        p.kill()
        p.wait()


# ---- capabilities ------------------------------------------------------------

def test_dropped_caps_not_regained_through_files(sbx, tools, request):
    # a setuid-root binary and one with every file capability, made by the
    # host's root in the image: with the bounding set and no_new_privs the
    # command gains nothing from either
    root = make_rootfs(os.path.join(sbx.tmp, "fcaps"), tools["probe"])
    for name in ("probe-suid", "probe-fcap"):
        shutil.copy2(tools["probe"], os.path.join(root, "bin", name))
    os.chmod(os.path.join(root, "bin/probe-suid"), 0o4755)
    caps = struct.pack("<IIIII", 0x02000000 | 1, 0xFFFFFFFF, 0, 0x1FF, 0)
    os.setxattr(os.path.join(root, "bin/probe-fcap"), "security.capability", caps)
    podman = 0x800405FB if sbx.rootless else 0x800405FB & ~(1 << 31)  # root: no SETFCAP
    for args, want in ((["--cap-drop", "ALL"], 0),
                       (["--cap-drop", "SETUID"], podman & ~(1 << 7))):
        for b in ("/bin/probe-suid", "/bin/probe-fcap"):
            r = sbx.run("run", *args, f"dir:{root}", "--", b, "status")
            if r.returncode == 126 and b.endswith("fcap"):
                # the kernel refuses to run a capability-aware binary whose
                # file capabilities it cannot all grant: nothing gained
                assert "Operation not permitted" in r.stderr, r.stderr
                continue
            s = kv(r.stdout)
            assert r.returncode == 0, r.stderr
            for k in ("CapEff", "CapPrm", "CapBnd"):
                assert int(s[k], 16) == want, (args, b, k, s[k])
            assert int(s["CapAmb"], 16) == 0 and s["NoNewPrivs"] == "1"


def test_inheritable_caps_empty(sbx, rootfs, request):
    s = kv(probe(sbx, rootfs, "status").stdout)
    assert int(s["CapEff"], 16) != 0  # the probe ran, with its usual caps
    assert int(s["CapInh"], 16) == 0


# ---- the run's writable layer ------------------------------------------------

@pytest.fixture(scope="session")
def rootfs_tar(rootfs):
    d = public_dir("trimo-hostile-tar-")
    path = os.path.join(d, "rootfs.tar")
    with tarfile.open(path, "w") as t:
        t.add(rootfs, arcname=".")
    os.chmod(path, 0o644)
    yield path
    shutil.rmtree(d, ignore_errors=True)


def test_writable_layer_removed_even_when_deep(sbx, rootfs_tar, request):
    run_dir = os.path.join(sbx.state_dir, "run")
    request.addfinalizer(lambda: subprocess.run(["rm", "-rf", run_dir]))
    deep = ("i=0; while [ $i -lt 1100 ]; do mkdir d && cd d || exit 1; i=$((i+1)); done; "
            "echo deep")
    r = sbx.cmd(["sh", "-c", 'ulimit -Sn 1024 && exec "$@"', "sh", sbx.bin, "run",
                 rootfs_tar, "--", "/bin/sh", "-c", deep])
    assert r.returncode == 0 and r.stdout.strip() == "deep", r.stderr
    left = os.listdir(run_dir) if os.path.isdir(run_dir) else []
    assert left == [], f"left on disk: {left}"
