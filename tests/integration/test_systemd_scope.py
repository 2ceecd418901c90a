"""Resource caps through the real systemd user manager (issue 4).

On a pure cgroup v2 host, a rootless caller whose own cgroup is not
delegated asks its `systemd --user` over the user bus (bin/trimo-sbx-scope,
sd-bus) for a transient scope with Delegate=yes, and uses it only if the
scope offers memory, cpu and pids.  tests/unit/test_cgroup_systemd.c checks
the messages against a stand-in; here the real manager (Debian 12: systemd
252) answers.  It is started the way root starts it at a login (logind and
user@UID.service): as the user, alone in a cgroup of its own that is the
user's and offers cpu memory pids (Delegate=pids memory cpu), with
/run/user/UID (0700, the user's) as XDG_RUNTIME_DIR; its own dbus.socket
(package dbus-user-session) makes the user bus there.

Only in the throw-away guest of `make check-vm` (TRIMO_VM=1): it makes
cgroups and /run/user/UID as root, and while the manager starts it creates
/run/systemd/system, the one thing sd_booted() looks at: `systemd --user`
refuses to start without it ("the system has not been booted with
systemd"), and the guest's PID 1 is a shell script.

What it cannot show: a caller in a root-owned cgroup outside the manager's
tree (a login's session-N.scope) moved into the scope.  The kernel lets a
process move another only with write access to cgroup.procs of the common
ancestor of both cgroups (user-UID.slice: root's).  The user manager then
asks PID 1 (AttachProcessesToUnit on the system bus) to move it, and no
systemd runs as PID 1 here.  So the caller starts in a root-owned cgroup
inside the manager's tree (not delegated either: trimo-sbx must take the
scope path), and the outside case is checked for its error message."""
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import TEST_USER, cgroup2_only
from test_launch import WAIT_GO, Tasks

CG = "/sys/fs/cgroup"
SYSTEMD = next((p for p in ("/usr/lib/systemd/systemd", "/lib/systemd/systemd")
                if os.access(p, os.X_OK)), None)
DBUS_SOCKET_UNIT = "/usr/lib/systemd/user/dbus.socket"
ALL = ("cpu", "memory", "pids")


def _skip_reason():
    if os.environ.get("TRIMO_VM") != "1":
        return ("starts its own systemd --user and cgroups as root: only in the throw-away "
                "guest of `make check-vm`")
    if os.geteuid() != 0:
        return "needs root to start the user's systemd"
    if not TEST_USER:
        return "no unprivileged user: set TRIMO_TEST_USER"
    if not cgroup2_only():
        return "needs a pure cgroup v2 host"
    if not SYSTEMD:
        return "no /usr/lib/systemd/systemd (package systemd)"
    if not os.path.exists(DBUS_SOCKET_UNIT):
        return f"no {DBUS_SOCKET_UNIT}: no user bus (package dbus-user-session)"
    return None


_SKIP = _skip_reason()
pytestmark = [pytest.mark.cgroup, pytest.mark.skipif(_SKIP is not None, reason=str(_SKIP))]


def _read(path):
    with open(path) as f:
        return f.read()


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _rel(path):
    """A cgroup's path inside the hierarchy, as /proc/PID/cgroup shows it."""
    return path[len(CG):]


def _remove_tree(top):
    """Kill what is left below a cgroup we made, then remove it bottom-up."""
    if not os.path.isdir(top):
        return
    try:
        _write(os.path.join(top, "cgroup.kill"), "1")
    except OSError:
        pass
    deadline = time.monotonic() + 10
    while True:
        for d, _dirs, _files in os.walk(top, topdown=False):
            try:
                os.rmdir(d)
            except OSError:
                pass
        if not os.path.exists(top) or time.monotonic() > deadline:
            return
        time.sleep(0.1)


class UserManager:
    """`systemd --user` for the test user in its own cgroup
    (<slice>/user@UID.service, the slice standing for logind's
    user-UID.slice) that offers the controllers given; with user_bus=False
    its dbus.socket is masked, as on a host without dbus-user-session."""

    def __init__(self, controllers, user_bus=True):
        pw = pwd.getpwnam(TEST_USER)
        self.uid, self.gid, self.home = pw.pw_uid, pw.pw_gid, pw.pw_dir
        self.controllers = tuple(controllers)
        self.user_bus = user_bus
        self.mask = os.path.join(self.home, ".config/systemd/user/dbus.socket")
        self.slice = f"{CG}/trimo-test-user-{self.uid}-{'-'.join(self.controllers)}.slice"
        self.cgroup = f"{self.slice}/user@{self.uid}.service"
        self.runtime = f"/run/user/{self.uid}"
        self.notify = f"/run/trimo-test-notify-{os.getpid()}"
        self.env = {"HOME": self.home, "USER": TEST_USER, "LOGNAME": TEST_USER,
                    "SHELL": "/bin/sh", "LANG": "C.UTF-8",
                    "PATH": "/usr/local/bin:/usr/bin:/bin",
                    "XDG_RUNTIME_DIR": self.runtime}
        self.proc = None
        self.stderr = None
        self._booted_flag = False
        self._kmsg_mode = None
        self._devkmsg = None

    def _as_user(self):
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups",
                "--inh-caps=-all", "--"]

    def start(self):
        # the cgroup as the system manager hands it to user@UID.service
        _remove_tree(self.slice)
        os.makedirs(self.cgroup)
        _write(f"{self.slice}/cgroup.subtree_control",
               " ".join("+" + c for c in self.controllers))
        for f in ("", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"):
            os.chown(os.path.join(self.cgroup, f), self.uid, self.gid)
        # /run/user/UID as user-runtime-dir@UID.service makes it
        shutil.rmtree(self.runtime, ignore_errors=True)
        os.makedirs(self.runtime, mode=0o700)
        os.chown(self.runtime, self.uid, self.gid)
        if not self.user_bus:
            os.makedirs(os.path.dirname(self.mask), exist_ok=True)
            os.symlink("/dev/null", self.mask)
        if not os.path.exists("/run/systemd/system"):
            os.makedirs("/run/systemd/system")
            self._booted_flag = True
        self._log_to_kmsg()
        # Type=notify, as user@.service: READY=1 once the manager is up
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            os.unlink(self.notify)
        except FileNotFoundError:
            pass
        sock.bind(self.notify)
        os.chmod(self.notify, 0o666)
        env = dict(self.env, NOTIFY_SOCKET=self.notify, SYSTEMD_LOG_TARGET="kmsg")
        argv = ["sh", "-c", 'echo $$ >"$0/cgroup.procs" && exec "$@"', self.cgroup,
                *self._as_user(), SYSTEMD, "--user"]
        t0 = time.monotonic()
        # what it says before its log is set up ("not been booted with systemd")
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=self.stderr)
        sock.settimeout(1)
        try:
            while True:
                try:
                    msg = sock.recv(4096).decode(errors="replace")
                except socket.timeout:
                    msg = ""
                if "READY=1" in msg.split("\n"):
                    break
                if self.proc.poll() is not None or time.monotonic() - t0 > 90:
                    self.stderr.seek(0)
                    pytest.fail(f"systemd --user did not start (exit {self.proc.poll()}):\n"
                                + self.stderr.read() + self.log())
        finally:
            sock.close()
            os.unlink(self.notify)
        # only sd_booted() at start-up wanted it; trimo-sbx must not need it
        if self._booted_flag:
            os.rmdir("/run/systemd/system")
            self._booted_flag = False

    def _log_to_kmsg(self):
        """The manager's log, for failures: without journald it would go
        nowhere (the user may not write /dev/console).  The guest's
        /dev/kmsg is opened to the user while the manager lives, without
        the kernel's rate limit."""
        self._kmsg_mode = os.stat("/dev/kmsg").st_mode & 0o7777
        os.chmod("/dev/kmsg", self._kmsg_mode | 0o222)
        try:
            self._devkmsg = _read("/proc/sys/kernel/printk_devkmsg").strip()
            _write("/proc/sys/kernel/printk_devkmsg", "on\n")
        except OSError:
            self._devkmsg = None

    def log(self, last=40):
        """The manager's last log lines (from the kernel's ring buffer)."""
        if not self.proc:
            return ""
        r = subprocess.run(["dmesg"], capture_output=True, text=True)
        tag = f"systemd[{self.proc.pid}]"
        lines = [x for x in r.stdout.splitlines() if tag in x]
        return "\n".join(lines[-last:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            # SIGTERM: the user manager starts exit.target, as at a logout
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.stderr:
            self.stderr.close()
        _remove_tree(self.slice)
        shutil.rmtree(self.runtime, ignore_errors=True)
        if os.path.islink(self.mask):
            os.unlink(self.mask)
        if self._booted_flag:
            os.rmdir("/run/systemd/system")
        if self._kmsg_mode is not None:
            os.chmod("/dev/kmsg", self._kmsg_mode)
        if self._devkmsg is not None:
            _write("/proc/sys/kernel/printk_devkmsg", self._devkmsg + "\n")

    def systemctl(self, *args):
        return subprocess.run(self._as_user() + ["systemctl", "--user", "--no-pager", *args],
                              env=self.env, capture_output=True, text=True, timeout=60)

    def units(self):
        """Our units the manager still has loaded, in any state."""
        r = self.systemctl("list-units", "--all", "--plain", "--no-legend", "trimo-*")
        assert r.returncode == 0, r.stderr
        return [x.split()[0] for x in r.stdout.splitlines() if x.strip()]

    def scopes(self):
        """Our scopes' cgroups below the manager's app.slice."""
        app = os.path.join(self.cgroup, "app.slice")
        if not os.path.isdir(app):
            return []
        return sorted(d for d in os.listdir(app) if re.fullmatch(r"trimo-.*\.scope", d))

    def wait_clean(self, timeout=20):
        """systemd stops a scope once its cgroup is empty and removes the
        cgroup; a transient unit then is unloaded."""
        deadline = time.monotonic() + timeout
        while self.units() or self.scopes():
            if time.monotonic() > deadline:
                pytest.fail(f"left behind: units {self.units()}, cgroups {self.scopes()}\n"
                            + self.log())
            time.sleep(0.2)


@pytest.fixture(scope="module")
def managers():
    """One user manager at a time (they share /run/user/UID): get(controllers)
    returns the running one or replaces it."""

    class Managers:
        current = None

        def get(self, controllers=ALL, user_bus=True):
            if (self.current and self.current.controllers == tuple(controllers)
                    and self.current.user_bus == user_bus):
                return self.current
            if self.current:
                self.current.stop()
                self.current = None
            m = UserManager(controllers, user_bus)
            try:
                m.start()
            except BaseException:
                m.stop()
                raise
            self.current = m
            return m

    ms = Managers()
    yield ms
    if ms.current:
        ms.current.stop()


@pytest.fixture
def caller():
    """A root-owned cgroup the user's commands start in: not delegated,
    and (inside the manager's tree) one the manager may move them out of."""
    made = []

    def make(parent, name="trimo-test-caller"):
        path = os.path.join(parent, name)
        os.makedirs(path, exist_ok=True)
        made.append(path)
        return path

    yield make
    for p in reversed(made):
        _remove_tree(p)


def place(sbx, manager, cgroup):
    """Every command of this runner starts as the user in `cgroup` (root
    moves it there first), with the manager's runtime folder, and no
    [cgroups] parent: trimo-sbx picks its parent itself."""
    sbx.cgroup = None
    sbx.write_config("")
    argv, env = sbx.argv, sbx.env
    sbx.argv = lambda args, cgroup_leaf=True: (
        ["sh", "-c", 'echo $$ >"$0/cgroup.procs" && exec "$@"', cgroup]
        + argv(args, cgroup_leaf=False))
    sbx.env = lambda extra=None: dict(env(extra), XDG_RUNTIME_DIR=manager.runtime)
    return sbx


def wait_for_file(path, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"exited {proc.returncode} early:\n{out}{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not appear in {timeout} s")
        time.sleep(0.05)


@pytest.mark.parametrize("sbx", ["user"], indirect=True)
def test_run_lives_in_a_delegated_scope_of_the_user_manager(sbx, rootfs, managers, caller):
    m = managers.get()
    place(sbx, m, caller(m.cgroup))
    sig = os.path.join(sbx.tmp, "sig")
    os.makedirs(sig)
    sbx.chown(sig)
    p = sbx.popen([sbx.bin, "run", "--name", "scoped", "--memory", "96M", "--pids", "77",
                   "--cpus", "0.5", "--bind", f"{sig}:/sig", f"dir:{rootfs}", "--", "/bin/sh",
                   "-c", "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max "
                   "/sys/fs/cgroup/cpu.max; touch /sig/ready; "
                   "while [ ! -e /sig/go ]; do sleep 0.05; done; echo done"],
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_file(os.path.join(sig, "ready"), p)
        # trimo-sbx itself (sh and setpriv exec it: same pid) now lives in a
        # new scope below the manager, in its runner leaf
        own = _read(f"/proc/{p.pid}/cgroup")
        hit = re.fullmatch(rf"0::{re.escape(_rel(m.cgroup))}/app\.slice/"
                           rf"(trimo-scoped-[0-9a-f]{{8}}\.scope)/trimo-runner-{p.pid}\n", own)
        assert hit, f"{own!r}\n{m.log()}"
        unit = hit.group(1)
        scope = os.path.join(m.cgroup, "app.slice", unit)
        # the sandbox in its own capped leaf next to it
        leaves = [d for d in os.listdir(scope) if re.fullmatch(r"trimo-scoped-[0-9a-f]{8}", d)]
        assert len(leaves) == 1, os.listdir(scope)
        leaf = os.path.join(scope, leaves[0])
        assert _read(f"{leaf}/memory.max").strip() == "100663296"
        assert _read(f"{leaf}/pids.max").strip() == "77"
        assert _read(f"{leaf}/cpu.max").strip() == "50000 100000"
        assert _read(f"{leaf}/cgroup.procs").split(), "no process in the sandbox's leaf"
        # the manager's view: its own active scope, delegated
        r = m.systemctl("show", unit, "-p", "ActiveState,Delegate,ControlGroup")
        props = dict(x.split("=", 1) for x in r.stdout.splitlines() if "=" in x)
        assert props == {"ActiveState": "active", "Delegate": "yes",
                         "ControlGroup": _rel(scope)}, r.stdout + r.stderr
        _write(os.path.join(sig, "go"), "")
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert out.split() == ["100663296", "77", "50000", "100000", "done"], out + err
    m.wait_clean()


@pytest.mark.parametrize("sbx", ["user"], indirect=True)
def test_memory_hog_in_the_scope_is_oom_killed(sbx, rootfs, managers, caller):
    m = managers.get()
    place(sbx, m, caller(m.cgroup))
    ooms_before = int(re.search(r"^oom_kill (\d+)$", _read(f"{m.cgroup}/memory.events"),
                                re.M).group(1))
    # RLIMIT_AS and a timeout: a cap that was not applied fails the test
    # instead of hurting the guest
    r = sbx.run("run", "--name", "hog", "--memory", "64M", "--stats", f"dir:{rootfs}", "--",
                "/bin/sh", "-c", "ulimit -v 1048576; exec probe memhog 512", timeout=120)
    assert r.returncode == 137, r.stderr + m.log()
    assert ("trimo-sbx: hog: killed by the OOM killer (memory cap 64M, peak 64M)"
            in r.stderr.splitlines()), r.stderr
    assert re.search(r"memory peak \S+ of 64M, oom kills [1-9]", r.stderr), r.stderr
    assert "memhog=done" not in r.stdout
    # the kill happened below the user manager's cgroup
    ooms = int(re.search(r"^oom_kill (\d+)$", _read(f"{m.cgroup}/memory.events"),
                         re.M).group(1))
    assert ooms > ooms_before
    m.wait_clean()


@pytest.mark.parametrize("sbx", ["user"], indirect=True)
def test_launched_task_runs_in_a_scope_and_leaves_none(sbx, rootfs, managers, caller):
    m = managers.get()
    place(sbx, m, caller(m.cgroup))
    tasks = Tasks(sbx, rootfs)
    try:
        tid = tasks.launch("scoped", WAIT_GO, extra="[limits]\nmemory = 80M\npids = 66\n")
        t = tasks.wait_for(tid, {"running"}, timeout=60)
        # the detached supervisor moved itself into a scope of its own
        sup = t["supervisor_pid"]
        own = _read(f"/proc/{sup}/cgroup")
        hit = re.fullmatch(rf"0::{re.escape(_rel(m.cgroup))}/app\.slice/"
                           rf"(trimo-{tid}-[0-9a-f]{{8}}\.scope)/trimo-runner-{sup}\n", own)
        assert hit, f"{own!r}\n{m.log()}"
        scope = os.path.join(m.cgroup, "app.slice", hit.group(1))
        # the task's recorded cgroup is the sandbox's leaf in that scope
        leaf = tasks.raw_state(tid)["cgroup"]
        assert os.path.dirname(leaf) == scope, leaf
        assert _read(f"{leaf}/memory.max").strip() == str(80 << 20)
        assert _read(f"{leaf}/pids.max").strip() == "66"
        tasks.release(tid)
        r = tasks.run("wait", tid, timeout=60)
        assert r.returncode == 0 and r.stdout.strip() == "0", r.stdout + r.stderr
        m.wait_clean()
    finally:
        tasks.cleanup()


@pytest.mark.parametrize("sbx", ["user"], indirect=True)
def test_caller_outside_the_managers_tree_gets_the_reason(sbx, rootfs, managers, caller):
    m = managers.get()
    # root-owned and outside the manager's tree, as a login's session-N.scope:
    # only PID 1 could move the caller, and none runs here
    place(sbx, m, caller(CG, "trimo-test-session.scope"))
    r = sbx.run("run", "--memory", "64M", f"dir:{rootfs}", "--", "/bin/true")
    assert r.returncode == 125, r.stderr
    # the failed scope is not kept as a failed unit (CollectMode): the
    # user's `systemctl --user --failed` stays clean
    m.wait_clean()
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("trimo-sbx: cgroup v2: nothing delegated to uid "), lines[0]
    assert "Fix:" in lines[0] and "--no-limits" in lines[0]
    assert re.search(r"user scope: start (trimo-run-[0-9a-f]{4}-[0-9a-f]{8}\.scope): job failed "
                     r"\(`journalctl --user -u \1`\)$", lines[0]), lines[0]


@pytest.mark.parametrize("sbx", ["user"], indirect=True)
def test_without_a_user_bus_the_managers_own_socket_serves(sbx, rootfs, managers, caller):
    # no dbus-user-session: nothing at /run/user/UID/bus, but systemd --user
    # always listens on /run/user/UID/systemd/private
    m = managers.get(ALL, user_bus=False)
    assert not os.path.exists(os.path.join(m.runtime, "bus"))
    place(sbx, m, caller(m.cgroup))
    r = sbx.run("run", "--name", "nobus", "--memory", "64M", "--stats", f"dir:{rootfs}", "--",
                "/bin/sh", "-c", "cat /sys/fs/cgroup/memory.max")
    # the caller's cgroup is root's: a capped run means a scope was made
    assert r.returncode == 0, r.stderr + m.log()
    assert r.stdout.split() == ["67108864"], r.stdout
    assert re.search(r"memory peak \S+ of 64M", r.stderr), r.stderr
    m.wait_clean()


@pytest.mark.parametrize("missing", ["cpu", "pids"])
@pytest.mark.parametrize("sbx", ["user"], indirect=True)
def test_scope_without_a_controller_is_refused_with_the_fix(sbx, rootfs, managers, caller,
                                                            missing):
    m = managers.get(tuple(c for c in ALL if c != missing))
    place(sbx, m, caller(m.cgroup))
    r = sbx.run("run", "--memory", "64M", f"dir:{rootfs}", "--", "/bin/echo", "ran")
    assert r.returncode == 125, r.stdout + r.stderr
    assert "ran" not in r.stdout  # not a silently unlimited run
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("trimo-sbx: cgroup v2: the user's systemd cannot delegate "
                               f"memory/cpu/pids limits to uid {m.uid}: "), lines[0]
    assert re.search(rf"\.scope offers only '[a-z ]+', not {missing}\. ", lines[0]), lines[0]
    assert ("Fix: an admin adds `Delegate=cpu memory pids` to user@.service" in lines[0]
            and lines[0].endswith("or --no-limits")), lines[0]
    # the scope trimo-sbx tried is gone with it
    m.wait_clean()
