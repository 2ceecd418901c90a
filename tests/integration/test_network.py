"""trimo-sbx run --network none|nat|host, --publish, --allow-host-loopback,
--allow (issue 7), as root and as the test user.

The tests that need `--network` skip with "--network not wired into run
yet" until `trimo-sbx run --help` lists it; the same behaviour is tested now
through runtime/network's own driver (test_network_real.py).

/dev/net/tun is root-only on the CI machine, so pasta and slirp4netns fail
for an ordinary user there.  For the user half of a test, root prepares a
private mount namespace with a 0666 copy of the tun node bound over
/dev/net/tun and only then switches to the user with setpriv: if the user
made that namespace itself, trimo-sbx would take its root code path.
"""
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

# $1 uid, $2 gid, then the command.  The node's source is unlinked right
# after the bind (the mount keeps it), so nothing is left behind.
_TUN_SCRIPT = r'''
set -e
d=$(mktemp -d /tmp/trimo-tun-XXXXXX)
mknod "$d/tun" c 10 200
chmod 0666 "$d/tun"
mount --bind "$d/tun" /dev/net/tun
rm -f "$d/tun"; rmdir "$d"
uid=$1; gid=$2; shift 2
exec setpriv --reuid="$uid" --regid="$gid" --init-groups --inh-caps=-all -- "$@"
'''


def tun_ok_for(sbx):
    """Why the user half cannot get a tun node, or None."""
    if not sbx.rootless:
        return None
    if os.access("/dev/net/tun", os.R_OK | os.W_OK) and os.geteuid() != 0:
        return None
    for tool in ("unshare", "setpriv", "mknod", "mount"):
        if not shutil.which(tool):
            return f"{tool} is missing: cannot give the test user a tun node"
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return f"root cannot make a mount namespace for the tun node: {r.stderr.strip()}"
    return None


def argv_with_tun(sbx, args):
    """args run as sbx's user, with a usable /dev/net/tun."""
    if not sbx.rootless:
        return list(args)
    return (["unshare", "-m", "--propagation", "private", "sh", "-c", _TUN_SCRIPT, "sh",
             str(sbx.uid), str(sbx.gid)] + list(args))


def run_with_tun(sbx, args, env=None, timeout=60, **kw):
    return subprocess.run(argv_with_tun(sbx, args), env=sbx.env(env), timeout=timeout,
                          capture_output=True, text=True, cwd=kw.pop("cwd", sbx.tmp), **kw)


def popen_with_tun(sbx, args, env=None, **kw):
    kw.setdefault("cwd", sbx.tmp)
    return subprocess.Popen(argv_with_tun(sbx, args), env=sbx.env(env), **kw)


def free_port(ip="127.0.0.1"):
    s = socket.socket()
    s.bind((ip, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """A TCP server on the host: answers each connection with `reply` (a
    line) or echoes; records how many connections it accepted."""

    def __init__(self, ip="127.0.0.1", reply=None):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, 0))
        self.sock.listen(16)
        self.ip, self.port = self.sock.getsockname()
        self.reply = reply
        self.accepted = 0
        self.received = b""
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        with c:
            if self.reply is not None:
                c.sendall(self.reply.encode() + b"\n")
                return
            c.settimeout(10)
            try:
                while True:
                    data = c.recv(65536)
                    if not data:
                        return
                    self.received += data
                    c.sendall(data)
            except OSError:
                return

    def close(self):
        self._stop = True
        self.sock.close()


def children_of(pid):
    """Pids whose parent is pid (from /proc, no names involved)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out.append(int(d))
    return out


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except OSError:
        return False


# ---- the tests -------------------------------------------------------------

def kv(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def need_wired(sbx):
    r = sbx.run("run", "--help")
    if "--network" not in r.stdout:
        pytest.skip("--network not wired into run yet")


def host_has_default_route():
    with open("/proc/net/route") as f:
        return any(line.split()[1] == "00000000" for line in f.readlines()[1:])


def need_nat(sbx):
    need_wired(sbx)
    if not (shutil.which("pasta") or shutil.which("slirp4netns")):
        pytest.skip("neither pasta nor slirp4netns is installed")
    if not host_has_default_route():
        # pasta copies the host's addresses and routes (the qemu guest of
        # make check-vm runs with -net none: only lo)
        pytest.skip("the host has no default route for nat to copy")
    why = tun_ok_for(sbx)
    if why:
        pytest.skip(why)


def sbx_argv(sbx, *args):
    return [sbx.bin] + list(args)


def test_none_has_only_lo(sbx, rootfs):
    """The default: lo only, and the host's loopback listeners are not the
    sandbox's (127.0.0.1 inside is its own)."""
    srv = Server()
    try:
        r = sbx.run("run", f"dir:{rootfs}", "--", "/bin/sh", "-c",
                    f"/bin/probe ifaces; /bin/probe connect 127.0.0.1 {srv.port}")
        assert r.returncode == 0, r.stderr
        out = kv(r.stdout)
        assert out["ifaces"] == "lo"
        assert out["connect"] == "ECONNREFUSED"
        assert srv.accepted == 0
    finally:
        srv.close()


def wait_answer(port, timeout=15):
    """Connect to a published host port until the server inside answers."""
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                data = s.recv(100)
                if data:
                    return data.decode().strip()
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"no answer on 127.0.0.1:{port}: {last}")


def serve_line(sbx, rootfs, host_port, line, extra=()):
    """A sandbox whose server on port 3000 answers `line`, published."""
    cmd = f"while true; do echo {line} | nc -l -p 3000; done"
    return popen_with_tun(sbx, sbx_argv(sbx, "run", "--network", "nat", "--publish",
                                        f"{host_port}:3000", *extra, f"dir:{rootfs}", "--",
                                        "/bin/sh", "-c", cmd),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_two_sandboxes_same_port(sbx, rootfs):
    need_nat(sbx)
    p1, p2 = free_port(), free_port()
    a = serve_line(sbx, rootfs, p1, "one")
    b = serve_line(sbx, rootfs, p2, "two")
    try:
        assert wait_answer(p1) == "one"
        assert wait_answer(p2) == "two"
        assert wait_answer(p1) == "one"
        # nothing binds 3000 on the host (pasta's `auto` would)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", 3000), timeout=1).close()
    finally:
        for p in (a, b):
            p.kill()
            p.wait()


def test_publish_port_taken(sbx, rootfs):
    need_nat(sbx)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        r = run_with_tun(sbx, sbx_argv(sbx, "run", "--network", "nat", "--publish",
                                       f"{port}:3000", f"dir:{rootfs}", "--", "/bin/echo",
                                       "started"))
        assert r.returncode != 0
        assert "started" not in r.stdout
        assert f"host port {port}/tcp on 127.0.0.1 is already in use" in r.stderr
    finally:
        busy.close()


GATEWAY = "ip route | awk '/^default/ {print $3; exit}'"


@pytest.mark.parametrize("allow", [False, True], ids=["default", "allow_host_loopback"])
def test_nat_host_loopback(sbx, rootfs, allow):
    need_nat(sbx)
    srv = Server(reply="host")
    try:
        extra = ["--allow-host-loopback"] if allow else []
        r = run_with_tun(sbx, sbx_argv(sbx, "run", "--network", "nat", *extra, f"dir:{rootfs}",
                                       "--", "/bin/sh", "-c",
                                       f"gw=$({GATEWAY}); echo gw=$gw; "
                                       f"timeout 5 nc $gw {srv.port} </dev/null; true"))
        assert r.returncode == 0, r.stderr
        assert kv(r.stdout)["gw"], r.stdout
        if allow:
            assert "host" in r.stdout.splitlines()
            assert srv.accepted == 1
        else:
            assert "host" not in r.stdout.splitlines()
            assert srv.accepted == 0
    finally:
        srv.close()


def helper_of(runner_pid, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        for c in children_of(runner_pid):
            name = comm(c) or ""
            # pasta is a link to passt, which may exec passt.avx2
            if name.startswith(("pasta", "passt")) or name == "slirp4netns":
                return c
        time.sleep(0.05)
    raise AssertionError("no pasta/slirp4netns child of the runner")


def runner_pid(proc, sbx):
    """trimo-sbx's own pid under the unshare/setpriv wrapper (exec'ed)."""
    return proc.pid


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_helper_ends_with_sandbox(sbx, rootfs, how):
    need_nat(sbx)
    p = popen_with_tun(sbx, sbx_argv(sbx, "run", "--network", "nat", f"dir:{rootfs}", "--",
                                     "/bin/sh", "-c", "sleep 3"),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    helper = helper_of(runner_pid(p, sbx))
    assert alive(helper)
    if how == "sigkill":
        p.kill()
    p.wait(timeout=30)
    end = time.time() + 5
    while alive(helper) and time.time() < end:
        time.sleep(0.05)
    assert not alive(helper), f"{comm(helper)} {helper} outlived the sandbox ({how})"


def proxy_script(requests):
    """sh that sends each raw request to the proxy inside and prints the
    answer, separated by '--'."""
    parts = []
    for req in requests:
        data = req.replace("\r", "\\r").replace("\n", "\\n")
        parts.append(f"printf '{data}' | timeout 5 nc -w 2 127.0.0.1 3128; echo; echo --")
    return "; ".join(parts)


def test_allowlist(sbx, rootfs, tmp_path):
    need_wired(sbx)
    allowed = Server("127.0.0.1")       # allowed.test
    other = Server("127.0.0.2")         # other.test: never reached
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 allowed.test\n127.0.0.2 other.test\n")
    os.chmod(hosts, 0o644)
    a, o = allowed.port, other.port
    reqs = [
        f"CONNECT allowed.test:{a} HTTP/1.1\r\n\r\nhello\n",
        f"CONNECT other.test:{o} HTTP/1.1\r\n\r\n",            # unlisted name
        f"CONNECT allowed.test:{o} HTTP/1.1\r\n\r\n",          # unlisted port
        f"CONNECT 127.0.0.1:{a} HTTP/1.1\r\n\r\n",             # raw IP
        # a CONNECT sent through the tunnel is data for the allowed server
        f"CONNECT allowed.test:{a} HTTP/1.1\r\n\r\nCONNECT other.test:{o} HTTP/1.1\r\n\r\n",
    ]
    try:
        r = sbx.run("run", "--allow", f"allowed.test:{a}", f"dir:{rootfs}", "--", "/bin/sh",
                    "-c", "env; " + proxy_script(reqs),
                    env={"TRIMO_SBX_HOSTS_FILE": str(hosts)})
        assert r.returncode == 0, r.stderr
        assert "HTTPS_PROXY=http://127.0.0.1:3128" in r.stdout
        answers = r.stdout.split("\n--\n")
        assert "HTTP/1.1 200 Connection established" in answers[0] and "hello" in answers[0]
        for i in (1, 2, 3):
            assert "HTTP/1.1 403 Forbidden" in answers[i], answers[i]
        assert "HTTP/1.1 200" in answers[4]
        assert f"CONNECT other.test:{o}" in answers[4]       # echoed back verbatim
        assert other.accepted == 0
        log = r.stdout + r.stderr
        for target in (f"other.test:{o}", f"allowed.test:{o}", f"127.0.0.1:{a}"):
            assert f"egress refused: {target}" in log, log
        assert "egress refused: allowed.test" not in log.replace(f"allowed.test:{o}", "")
    finally:
        allowed.close()
        other.close()
