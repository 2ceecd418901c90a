"""Shared fixtures for the integration tests.

Every test that takes the `sbx` fixture runs twice: once as root and once
as the unprivileged user named by $TRIMO_TEST_USER (.ci/run creates one).
Without that variable the "user" half is skipped with its reason.

Environment (set by `make integration`):
  TRIMO_SBX        path of bin/trimo-sbx
  TRIMO_PROBE      path of the static probe program (tests/probe.c)
  TRIMO_TEST_USER  name of an unprivileged user
"""
import os
import pwd
import shutil
import stat
import subprocess
import tempfile

import pytest

SBX_SRC = os.environ.get("TRIMO_SBX", os.path.abspath("bin/trimo-sbx"))
PROBE_SRC = os.environ.get("TRIMO_PROBE", os.path.abspath("build/probe"))
TEST_USER = os.environ.get("TRIMO_TEST_USER", "")
BUSYBOX = shutil.which("busybox") or "/bin/busybox"

_skips = []


def pytest_configure(config):
    config.addinivalue_line("markers", "cgroup: resource caps; `make check-vm` runs these "
                            "on a cgroup v2 kernel too")

CGROUP_V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")


def cgroup2_only():
    """A pure cgroup v2 host (the qemu guest), not this hybrid machine."""
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def own_cgroup_v1(controller):
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return path
    return None


@pytest.fixture(scope="session")
def user_cgroup():
    """Where the unprivileged test user may create cgroups, as a [cgroups]
    parent, and the cgroup its processes must start in (v2), or None.

    v2 (the qemu guest): tests/vm delegates a subtree and names it.
    v1 (this hybrid host): root delegates the classic way, below its own
    cgroup of each controller: a folder chowned to the user, with its
    cgroup.procs and tasks; removed at the end of the session."""
    if not TEST_USER or os.geteuid() != 0:
        yield None
        return
    pw = pwd.getpwnam(TEST_USER)
    if os.environ.get("TRIMO_TEST_CGROUP_PARENT"):
        parent = os.environ["TRIMO_TEST_CGROUP_PARENT"]
        yield {"parent": parent[len("/sys/fs/cgroup"):] if parent.startswith("/sys/fs/cgroup")
               else parent, "leaf": os.environ.get("TRIMO_TEST_CGROUP_LEAF")}
        return
    if cgroup2_only():
        yield None
        return
    # one per session: sessions running side by side must not remove
    # each other's delegation
    name = f"trimo-test.user-{pw.pw_uid}.{os.getpid()}"
    made = []
    for c in CGROUP_V1_CONTROLLERS:
        own = own_cgroup_v1(c)
        base = f"/sys/fs/cgroup/{c}"
        if own is None or not os.path.isdir(base):
            continue
        d = os.path.join(base + own, name)
        os.makedirs(d, exist_ok=True)
        for f in ("", "cgroup.procs", "tasks"):
            os.chown(os.path.join(d, f) if f else d, pw.pw_uid, pw.pw_gid)
        made.append(d)
    yield {"parent": f"./{name}", "leaf": None}
    for d in made:
        try:
            os.rmdir(d)
        except OSError:
            pass


def _public_tmpdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)
    return d


@pytest.fixture(scope="session")
def tools():
    """The binaries under test, copied where any user can execute them
    (the checkout may live in a folder only root can read)."""
    d = _public_tmpdir("trimo-test-bin-")
    out = {}
    bindir = os.path.dirname(SBX_SRC)
    helpers = [(n, os.path.join(bindir, n)) for n in sorted(os.listdir(bindir))
               if n.startswith("trimo-sbx-") or n.startswith("git-remote-")]
    for name, src in [("trimo-sbx", SBX_SRC), ("probe", PROBE_SRC)] + helpers:
        if not os.path.exists(src):
            pytest.fail(f"{src} is missing: run the tests through `make integration`")
        dst = os.path.join(d, name)
        shutil.copy2(src, dst)
        os.chmod(dst, 0o755)
        out[name] = dst
    out["dir"] = d
    yield out
    shutil.rmtree(d, ignore_errors=True)


def make_rootfs(path, probe, extra_dirs=True):
    """A minimal rootfs: busybox-static with its applet links, and our probe.
    With extra_dirs=False the standard mount points are left out."""
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)
    for d in ("bin", "etc", "root", "usr/bin", "sbin"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    if extra_dirs:
        for d in ("proc", "dev", "tmp", "sys"):
            os.makedirs(os.path.join(path, d), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(path, "bin/busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for a in applets:
        if a == "busybox":
            continue
        link = os.path.join(path, "bin", a)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    shutil.copy2(probe, os.path.join(path, "bin/probe"))
    with open(os.path.join(path, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    with open(os.path.join(path, "etc/group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")
    for root, dirs, files in os.walk(path):
        for n in dirs:
            os.chmod(os.path.join(root, n), 0o755)
    return path


@pytest.fixture(scope="session")
def rootfs(tools):
    """The probe rootfs (read-only for the tests), built once a session."""
    d = _public_tmpdir("trimo-test-rootfs-")
    make_rootfs(d, tools["probe"])
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Runner:
    """Runs trimo-sbx (or any command) as root or as the test user, with a
    private HOME/XDG tree so tests never share state."""

    def __init__(self, who, tools, base, cgroup=None):
        self.who = who
        self.cgroup = cgroup
        self.tools = tools
        self.bin = tools["trimo-sbx"]
        if who == "root":
            self.uid, self.gid = 0, 0
            self.user = "root"
        else:
            pw = pwd.getpwnam(TEST_USER)
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
            self.user = TEST_USER
        self.home = os.path.join(base, "home")
        os.makedirs(self.home, exist_ok=True)
        for sub in (".config", ".local/share", ".local/state", "run"):
            os.makedirs(os.path.join(self.home, sub), exist_ok=True)
        self.tmp = os.path.join(base, "tmp")
        os.makedirs(self.tmp, exist_ok=True)
        os.chmod(base, 0o755)
        if self.uid:
            for root, dirs, files in os.walk(base):
                os.chown(root, self.uid, self.gid)
                for n in files:
                    os.chown(os.path.join(root, n), self.uid, self.gid)
        os.chmod(os.path.join(self.home, "run"), 0o700)
        self.state_dir = os.path.join(self.home, ".local/state/trimo-sbx")
        self.image_dir = os.path.join(self.home, ".local/share/trimo-sbx/images")
        self.write_config("")

    def write_config(self, text, state_dir=None, image_dir=None):
        """The user config (named by TRIMO_SBX_CONFIG, root too): the test's
        own state and image folders, the delegated cgroup, and text."""
        base = (f"[storage]\nstate_dir = {state_dir or self.state_dir}\n"
                f"image_dir = {image_dir or self.image_dir}\n")
        if self.cgroup:
            base += f"[cgroups]\nparent = {self.cgroup['parent']}\n"
        text = base + text
        d = os.path.join(self.home, ".config", "trimo-sbx")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "config.ini")
        with open(path, "w") as f:
            f.write(text)
        for x in (d, path):
            self.chown(x)
        return path

    @property
    def rootless(self):
        return self.uid != 0

    def env(self, extra=None):
        e = {
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": self.home,
            "USER": self.user,
            "LANG": "C.UTF-8",
            "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
            "XDG_DATA_HOME": os.path.join(self.home, ".local/share"),
            "XDG_STATE_HOME": os.path.join(self.home, ".local/state"),
            "XDG_RUNTIME_DIR": os.path.join(self.home, "run"),
            "TRIMO_SBX_CONFIG": os.path.join(self.home, ".config/trimo-sbx/config.ini"),
        }
        if extra:
            e.update(extra)
        return e

    def argv(self, args, cgroup_leaf=True):
        if self.uid == 0:
            return list(args)
        argv = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups",
                "--inh-caps=-all", "--"] + list(args)
        leaf = self.cgroup and self.cgroup.get("leaf")
        if leaf and cgroup_leaf:
            # cgroup v2 moves processes only within a delegation: start there
            argv = ["sh", "-c", f'echo $$ >"{leaf}/cgroup.procs" && exec "$@"', "sh"] + argv
        return argv

    def cmd(self, args, env=None, timeout=60, input=None, check=False, **kw):
        """Run any command as this user; returns CompletedProcess (text)."""
        return subprocess.run(self.argv(args), env=self.env(env), timeout=timeout,
                              input=input, capture_output=True, text=True, check=check,
                              cwd=kw.pop("cwd", self.tmp), **kw)

    def run(self, *args, **kw):
        """trimo-sbx ARGS..."""
        return self.cmd([self.bin] + list(args), **kw)

    def popen(self, args, env=None, **kw):
        kw.setdefault("cwd", self.tmp)
        return subprocess.Popen(self.argv(args), env=self.env(env), **kw)

    def chown(self, path):
        """Give a file the test user created as root to the test user."""
        if self.uid:
            os.chown(path, self.uid, self.gid)


def _who_params():
    return ["root", "user"]


@pytest.fixture(params=_who_params())
def sbx(request, tools, tmp_path, user_cgroup):
    who = request.param
    if who == "root" and os.geteuid() != 0:
        pytest.skip("the root half needs the tests to run as root")
    if who == "user":
        if os.geteuid() != 0:
            pytest.skip("the unprivileged half needs root to switch users (setpriv)")
        if not TEST_USER:
            pytest.skip("no unprivileged user: set TRIMO_TEST_USER (.ci/run creates one)")
        try:
            pwd.getpwnam(TEST_USER)
        except KeyError:
            pytest.skip(f"TRIMO_TEST_USER={TEST_USER} does not exist")
    os.chmod(tmp_path, 0o755)
    p = tmp_path
    while str(p) != "/":
        mode = os.stat(p).st_mode
        if not (mode & stat.S_IXOTH):
            os.chmod(p, mode | stat.S_IXOTH)
        p = p.parent
    return Runner(who, tools, str(tmp_path / who), user_cgroup if who == "user" else None)
