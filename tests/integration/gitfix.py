"""Fixtures for the git tests (issue 6): a rootfs with a real git, a host
repository with a local bare repository as its remote, the task workspace
made by trimo-sbx-git, a push socket served the way the supervisor serves
it, and agents that run in `trimo-sbx run` sandboxes.

Everything a test creates belongs to the user the test runs as (root or
$TRIMO_TEST_USER); the git helpers run as that user too.
"""
import os
import shutil
import socket
import stat
import struct
import subprocess
import tempfile
import time

import pytest

from conftest import SBX_SRC, make_rootfs

BIN_DIR = os.path.dirname(SBX_SRC)
GIT_HELPER = os.path.join(BIN_DIR, "trimo-sbx-git")
REMOTE_HELPER = os.path.join(BIN_DIR, "git-remote-trimo")
HOST_GIT = shutil.which("git") or "/usr/bin/git"
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/run/trimo/bin"

IDENT = {
    "GIT_AUTHOR_NAME": "Host User", "GIT_AUTHOR_EMAIL": "host@example.com",
    "GIT_COMMITTER_NAME": "Host User", "GIT_COMMITTER_EMAIL": "host@example.com",
}


@pytest.fixture(scope="session")
def git_tools(tools):
    """trimo-sbx-git and git-remote-trimo next to the tests' trimo-sbx (it
    finds its helper there)."""
    out = {}
    for name, src in (("trimo-sbx-git", GIT_HELPER), ("git-remote-trimo", REMOTE_HELPER)):
        if not os.path.exists(src):
            pytest.fail(f"{src} is missing: run the tests through `make integration`")
        dst = os.path.join(tools["dir"], name)
        shutil.copy2(src, dst)
        os.chmod(dst, 0o755)
        out[name] = dst
    out["trimo-sbx"] = tools["trimo-sbx"]
    return out


def _copy_lib(root, lib):
    dst = root + lib
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if not os.path.exists(dst):
        shutil.copy2(os.path.realpath(lib), dst)


@pytest.fixture(scope="session")
def git_rootfs(tools):
    """The probe rootfs plus the host's git: /usr/bin/git, /usr/lib/git-core
    and the libraries ldd lists."""
    d = tempfile.mkdtemp(prefix="trimo-test-gitrootfs-", dir="/tmp")
    os.chmod(d, 0o755)
    make_rootfs(d, tools["probe"])
    shutil.copy2(HOST_GIT, os.path.join(d, "usr/bin/git"))
    shutil.copytree("/usr/lib/git-core", os.path.join(d, "usr/lib/git-core"), symlinks=True)
    libs = subprocess.run(["ldd", HOST_GIT], capture_output=True, text=True,
                          check=True).stdout
    for word in libs.split():
        if word.startswith("/"):
            _copy_lib(d, word)
    for root, dirs, _ in os.walk(d):
        for n in dirs:
            os.chmod(os.path.join(root, n), 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


class GitEnv:
    """One task's git world: host repository (with `origin` a bare
    repository), workspace, push socket."""

    def __init__(self, sbx, tools, rootfs, branch="trimo/demo"):
        self.sbx = sbx
        self.tools = tools
        self.rootfs = rootfs
        self.branch = branch
        self.base = os.path.join(sbx.tmp, "git")
        os.makedirs(self.base)
        sbx.chown(self.base)
        self.host = os.path.join(self.base, "host")
        self.remote = os.path.join(self.base, "remote.git")
        self.ws = os.path.join(self.base, "workspace")
        self.record = os.path.join(self.base, "git.json")
        # a short folder: a socket path has 107 bytes at most
        self.rundir = tempfile.mkdtemp(prefix="tgit", dir="/tmp")
        os.chmod(self.rundir, 0o755)
        sbx.chown(self.rundir)
        self.sock = os.path.join(self.rundir, "push.sock")
        # the mount point of git-remote-trimo, as the supervisor makes it
        os.makedirs(os.path.join(self.rundir, "bin"))
        open(os.path.join(self.rundir, "bin", "git-remote-trimo"), "w").close()
        for p in ("bin", "bin/git-remote-trimo"):
            sbx.chown(os.path.join(self.rundir, p))
        self.server = None
        self.serve_log = os.path.join(self.base, "serve.log")

    # -- host side ----------------------------------------------------
    def git(self, *args, cwd=None, check=True, env=None):
        e = dict(IDENT)
        if env:
            e.update(env)
        r = self.sbx.cmd([HOST_GIT] + list(args), cwd=cwd or self.host, env=e)
        if check and r.returncode != 0:
            raise AssertionError(f"git {' '.join(args)}: {r.stderr}")
        return r.stdout.strip()

    def make_host(self, files=None):
        self.git("init", "-q", "--bare", self.remote, cwd=self.base)
        self.git("init", "-q", "-b", "main", self.host, cwd=self.base)
        for name, text in (files or {"README": "hello\n"}).items():
            p = os.path.join(self.host, name)
            with open(p, "w") as f:
                f.write(text)
            self.sbx.chown(p)
        self.git("add", "-A")
        self.git("commit", "-qm", "initial")
        self.git("remote", "add", "origin", self.remote)
        self.git("push", "-q", "origin", "main")

    def tip(self, ref, repo=None):
        r = self.git("rev-parse", "-q", "--verify", ref, cwd=repo or self.host, check=False)
        return r or None

    def remote_tip(self, branch):
        return self.tip(f"refs/heads/{branch}", repo=self.remote)

    def helper(self, *args, **kw):
        return self.sbx.cmd([self.tools["trimo-sbx-git"]] + list(args), **kw)

    def make_workspace(self, *extra):
        r = self.helper("workspace", "--repo", self.host, "--dest", self.ws, "--branch",
                        self.branch, *extra)
        assert r.returncode == 0, r.stderr
        return r

    def policy_args(self, push_mode="auto", protected=("main", "master", "release/*"),
                    push_tags=False, extra=()):
        a = ["--repo", self.host, "--branch", self.branch, "--push-mode", push_mode,
             "--record", self.record]
        for p in protected:
            a += ["--protected", p]
        if push_tags:
            a.append("--push-tags")
        return a + list(extra)

    def serve(self, env=None, **kw):
        """`trimo-sbx-git serve-push`: the supervisor's accept loop."""
        self.stop()
        log = open(self.serve_log, "a")
        argv = [self.tools["trimo-sbx-git"], "serve-push", "--socket", self.sock] + \
            self.policy_args(**kw)
        self.server = self.sbx.popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        for _ in range(200):
            if os.path.exists(self.sock):
                return
            time.sleep(0.02)
        raise AssertionError("serve-push did not create its socket: " + self.log())

    def stop(self):
        if self.server:
            self.server.terminate()
            self.server.wait(timeout=30)
            self.server = None

    def log(self):
        try:
            with open(self.serve_log) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # -- the sandbox ---------------------------------------------------
    def agent(self, script, env=None, extra_opts=(), timeout=120):
        """Run script with /bin/sh -c in a sandbox over the workspace, with
        git-remote-trimo on PATH and the push socket at /run/trimo."""
        opts = ["--bind", f"{self.ws}:/workspace",
                "--bind", f"{self.rundir}:/run/trimo:ro",
                "--bind", f"{self.tools['git-remote-trimo']}:/run/trimo/bin/git-remote-trimo:ro",
                "-e", f"PATH={SANDBOX_PATH}", "-w", "/workspace"] + list(extra_opts)
        prelude = "git config user.name Agent && git config user.email agent@example.com\n"
        return self.sbx.run("run", *opts, f"dir:{self.rootfs}", "--", "/bin/sh", "-c",
                            prelude + script, env=env, timeout=timeout)

    def job(self, job, *extra, push_mode="on-exit", auto_commit="exit", **kw):
        """`trimo-sbx __git-job JOB` for this task, every setting given."""
        argv = [self.tools["trimo-sbx"], "__git-job", job, "--task-dir", self.base,
                "--id", "demo-0001", "--name", "demo", "--repo", self.host, "--branch", self.branch,
                "--push-mode", push_mode, "--auto-commit", auto_commit,
                "--rootfs", self.rootfs, "--protected", "main"] + list(extra)
        return self.sbx.cmd(argv, timeout=kw.pop("timeout", 120), **kw)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.rundir, ignore_errors=True)


@pytest.fixture
def gitenv(sbx, git_tools, git_rootfs):
    g = GitEnv(sbx, git_tools, git_rootfs)
    g.make_host()
    yield g
    g.cleanup()


# ---- the push socket's protocol, spoken by the test itself ----------------

ZERO = "0" * 40


def encode_request(kind, updates=(), pack_len=0, flags=0):
    b = b"TRIMOPQ1" + bytes([kind, flags, len(updates)])
    for force, old, new, ref in updates:
        r = ref.encode()
        b += bytes([1 if force else 0]) + old.encode() + new.encode() + struct.pack(">H", len(r)) + r
    return b + struct.pack(">Q", pack_len)


def decode_answer(b):
    assert b[:8] == b"TRIMOPA1", b[:40]
    pos = 8
    status = b[pos]
    pos += 1
    (n,) = struct.unpack(">H", b[pos:pos + 2])
    msg = b[pos + 2:pos + 2 + n].decode()
    pos += 2 + n
    count = b[pos]
    pos += 1
    entries = []
    for _ in range(count):
        ok = b[pos]
        oid = b[pos + 1:pos + 41].decode()
        pos += 41
        (n,) = struct.unpack(">H", b[pos:pos + 2])
        ref = b[pos + 2:pos + 2 + n].decode()
        pos += 2 + n
        (n,) = struct.unpack(">H", b[pos:pos + 2])
        emsg = b[pos + 2:pos + 2 + n].decode()
        pos += 2 + n
        entries.append((bool(ok), oid, ref, emsg))
    return status, msg, entries


def raw_push(sock_path, header, body=b"", close_early=False):
    """Send header and body; return the decoded answer."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(sock_path)
    try:
        s.sendall(header)
        if body:
            s.sendall(body)
    except (BrokenPipeError, ConnectionResetError):
        pass
    if close_early:
        s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    return decode_answer(data)


def inodes(path):
    """(st_dev, st_ino) of every regular file below path."""
    out = set()
    for root, dirs, files in os.walk(path):
        for n in files:
            st = os.lstat(os.path.join(root, n))
            if stat.S_ISREG(st.st_mode):
                out.add((st.st_dev, st.st_ino))
    return out
