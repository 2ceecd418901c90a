"""fuse-overlayfs for a sandbox's copy-on-write root (issue 3): forced with
`[storage] overlay = fuse`, and chosen by `auto` where the kernel refuses
the overlay -- here an upper on overlayfs, as when trimo-sbx runs inside a
container whose / is an overlay.  As root and as the test user.

/dev/fuse is root-only on the CI machine.  For the user half root prepares
a private mount namespace with a 0666 copy of the fuse node bound over
/dev/fuse (and, where asked, an overlayfs to hold the state folder), then
switches to the user with setpriv: nothing outside that namespace changes.
"""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from test_cow import image_tar, store_tree, tree_digest  # noqa: F401 (fixture)

# $1: "fuse" for a 0666 fuse node, else "-"; $2: a folder to cover with an
# overlayfs owned by $3:$4, else "-"; then the command.
_NS_SCRIPT = r'''
set -e
if [ "$1" = fuse ]; then
    d=$(mktemp -d /tmp/trimo-fuse-XXXXXX)
    mknod "$d/fuse" c 10 229
    chmod 0666 "$d/fuse"
    mount --bind "$d/fuse" /dev/fuse
    rm -f "$d/fuse"; rmdir "$d"
fi
if [ "$2" != - ]; then
    mkdir -p "$2.l" "$2.u" "$2.w" "$2"
    mount -t overlay overlay -o "lowerdir=$2.l,upperdir=$2.u,workdir=$2.w" "$2"
    chown "$3:$4" "$2"
fi
shift 4
exec "$@"
'''


def fuse_skip_reason():
    if not shutil.which("fuse-overlayfs"):
        return "fuse-overlayfs is not installed (scripts/install-deps installs it)"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing (no fuse module in this kernel)"
    if os.geteuid() != 0:
        return "the tests prepare /dev/fuse and overlay mounts as root"
    for tool in ("unshare", "setpriv", "mknod", "mount"):
        if not shutil.which(tool):
            return f"{tool} is missing"
    return None


pytestmark = pytest.mark.skipif(fuse_skip_reason() is not None,
                                reason=str(fuse_skip_reason()))


def ns_argv(sbx, args, fuse=True, overlay_dir=None):
    """args as sbx's user in a private mount namespace made by root."""
    return (["unshare", "-m", "--propagation", "private", "sh", "-c", _NS_SCRIPT, "sh",
             "fuse" if fuse else "-", overlay_dir or "-", str(sbx.uid), str(sbx.gid)]
            + sbx.argv(args))


def ns_run(sbx, args, timeout=60, **kw):
    return subprocess.run(ns_argv(sbx, args, **kw), env=sbx.env(), timeout=timeout,
                          capture_output=True, text=True, cwd=sbx.tmp)


def fuse_servers():
    """pids of every fuse-overlayfs on the host (read, never signalled)."""
    out = set()
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/comm") as f:
                if f.read().strip() == "fuse-overlayfs":
                    out.add(int(p))
        except OSError:
            pass
    return out


def gone_soon(pids, secs=5):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if not (pids & fuse_servers()):
            return True
        time.sleep(0.05)
    return False


def use(sbx, mode, state_dir=None):
    # small admission figures: the check-vm guest has less than 1G
    sbx.write_config(f"[storage]\noverlay = {mode}\n[orchestrator]\nmemory_reserve = 64M\n"
                     f"default_memory = 64M\n", state_dir=state_dir)


WRITE = ("echo hi > /etc/new && rm -r /sbin && mkdir /d && touch /d/x && mv /d /e && "
         "cat /etc/new && ls /e && ls -d /sbin 2>&1; stat -c %a /; "
         "grep ' / / ' /proc/self/mountinfo")


def test_forced_fuse_root_is_copy_on_write(sbx, image_tar):  # noqa: F811
    use(sbx, "fuse")
    before = fuse_servers()
    r = ns_run(sbx, [sbx.bin, "run", "--no-limits", image_tar, "--", "/bin/sh", "-c", WRITE])
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0:2] == ["hi", "x"]
    assert "No such file" in out[2]  # a lower folder removed through the overlay
    assert out[3] == "755"  # / as in the image
    assert " - fuse.fuse-overlayfs " in out[4]
    tree = store_tree(sbx)
    digest = tree_digest(tree)
    r = ns_run(sbx, [sbx.bin, "run", "--no-limits", image_tar, "--", "/bin/sh", "-c",
                     "ls /etc/new 2>&1; ls -d /sbin"])
    assert r.returncode == 0, r.stderr
    assert "No such file" in r.stdout.splitlines()[0]  # the next sandbox starts clean
    assert r.stdout.splitlines()[1] == "/sbin"
    assert tree_digest(tree) == digest  # the store is unchanged
    assert not os.path.exists(os.path.join(tree, "etc/new"))
    assert os.listdir(os.path.join(sbx.state_dir, "run")) == []
    assert gone_soon(fuse_servers() - before), "a fuse-overlayfs outlived its sandbox"


def test_server_is_outside_the_sandbox(sbx, image_tar):  # noqa: F811
    """The sandbox cannot see or signal its file system's server."""
    use(sbx, "fuse")
    r = ns_run(sbx, [sbx.bin, "run", "--no-limits", image_tar, "--", "/bin/sh", "-c",
                     "cat /proc/[0-9]*/comm | sort | tr '\\n' ' '; echo; kill -9 -1; "
                     "echo alive > /etc/still && cat /etc/still"])
    assert r.returncode == 0, r.stderr
    names, last = r.stdout.splitlines()[0].split(), r.stdout.splitlines()[-1]
    assert "fuse-overlayfs" not in names
    # busybox runs some applets through /proc/self/exe: "exe"
    assert set(names) <= {"sh", "cat", "sort", "tr", "exe", "trimo-init"}, names
    assert last == "alive"


def test_auto_uses_fuse_where_the_kernel_refuses(sbx, image_tar):  # noqa: F811
    """An upper on overlayfs: the kernel says no, auto takes fuse-overlayfs;
    kernel mode fails with the kernel's reason; auto without a usable
    /dev/fuse names both."""
    ovl = os.path.join(sbx.tmp, "ovl")
    state = os.path.join(ovl, "state")
    use(sbx, "auto", state_dir=state)
    argv = [sbx.bin, "run", "--no-limits", image_tar, "--", "/bin/sh", "-c",
            "echo hi > /etc/new && cat /etc/new && grep ' / / ' /proc/self/mountinfo"]
    r = ns_run(sbx, argv, overlay_dir=ovl)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "hi"
    assert " - fuse.fuse-overlayfs " in r.stdout.splitlines()[1]

    use(sbx, "kernel", state_dir=state)
    r = ns_run(sbx, argv, overlay_dir=ovl)
    assert r.returncode == 125
    # the kernel's own words come with the error where it gives them (6.1 logs them only)
    assert "mount the rootfs overlay" in r.stderr
    assert "not supported as upperdir" in r.stderr or "Invalid argument" in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2  # the limits warning, the error

    if sbx.rootless and not os.stat("/dev/fuse").st_mode & 0o006:
        use(sbx, "auto", state_dir=state)
        r = ns_run(sbx, argv, overlay_dir=ovl, fuse=False)
        assert r.returncode == 125
        err = r.stderr.strip().splitlines()[-1]
        assert "fuse-overlayfs: open /dev/fuse: Permission denied" in err
        assert "chmod 0666 /dev/fuse" in err
        assert "used because the kernel refused" in err and "upperdir" in err


def test_fuse_mode_without_fuse_overlayfs(sbx, image_tar, tmp_path):  # noqa: F811
    use(sbx, "fuse")
    r = ns_run(sbx, ["env", "PATH=/nonexistent", sbx.bin, "run", "--no-limits", image_tar,
                     "--", "/bin/true"])
    assert r.returncode == 125
    assert r.stderr.strip().endswith(
        "[storage] overlay = fuse: fuse-overlayfs is not installed "
        "(apt-get install fuse-overlayfs)")
    assert os.listdir(os.path.join(sbx.state_dir, "run")) == []


def test_bad_overlay_value(sbx, image_tar):  # noqa: F811
    path = sbx.write_config("[storage]\noverlay = fusee\n")
    r = sbx.run("run", image_tar, "--", "/bin/true")
    assert r.returncode == 2
    assert f"{path}:" in r.stderr and "overlay" in r.stderr and "fuse" in r.stderr


def test_server_ends_with_a_killed_runner(sbx, image_tar):  # noqa: F811
    use(sbx, "fuse")
    before = fuse_servers()
    p = subprocess.Popen(ns_argv(sbx, [sbx.bin, "run", "--no-limits", image_tar, "--",
                                       "/bin/sh", "-c", "echo ready; sleep 60"]),
                         env=sbx.env(), stdout=subprocess.PIPE, text=True, cwd=sbx.tmp)
    try:
        assert p.stdout.readline().strip() == "ready"
        mine = fuse_servers() - before
        assert len(mine) == 1
        p.send_signal(signal.SIGKILL)  # the runner: unshare, sh and setpriv exec'ed it
        p.wait(timeout=10)
        assert gone_soon(mine), "fuse-overlayfs outlived a SIGKILLed runner"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_task_on_fuse_keeps_its_layer_across_runs(sbx, image_tar):  # noqa: F811
    use(sbx, "fuse")
    task = os.path.join(sbx.tmp, "t.ini")
    with open(task, "w") as f:
        f.write(f"[task]\nname = fz\ncommand = echo one >> /etc/log; cat /etc/log; "
                f"grep ' / / ' /proc/self/mountinfo\n[image]\nsource = {image_tar}\n"
                f"[limits]\nenabled = no\n")
    sbx.chown(task)
    r = ns_run(sbx, [sbx.bin, "launch", "-f", task], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "one" in r.stdout and "fuse.fuse-overlayfs" in r.stdout
    (tid,) = [t["id"] for t in json.loads(sbx.run("ps", "-a", "--json").stdout)]
    r = ns_run(sbx, [sbx.bin, "followup", tid, "--prompt", "again"])
    assert r.returncode == 0, r.stderr
    r = ns_run(sbx, [sbx.bin, "wait", tid])
    assert r.returncode == 0, r.stderr
    r = sbx.run("logs", "--run", "2", tid)
    assert r.stdout.count("one") == 2, r.stdout  # the second run saw the first's write


def test_a_server_that_dies_is_explained(sbx, image_tar):  # noqa: F811
    """fuse-overlayfs that ends at start: one line with the setup error and
    what the server said, exit 125, nothing left behind."""
    use(sbx, "fuse")
    fake = os.path.join(sbx.tmp, "fakebin")
    os.makedirs(fake, exist_ok=True)
    prog = os.path.join(fake, "fuse-overlayfs")
    with open(prog, "w") as f:
        f.write("#!/bin/sh\necho 'fuse-overlayfs: cannot serve this (test)' >&2\nexit 3\n")
    os.chmod(prog, 0o755)
    os.chmod(fake, 0o755)
    t = time.monotonic()
    r = ns_run(sbx, ["env", f"PATH={fake}:/usr/bin:/bin", sbx.bin, "run", "--no-limits",
                     image_tar, "--", "/bin/true"])
    assert r.returncode == 125, r.stderr
    err = r.stderr.strip().splitlines()[-1]
    assert "fuse-overlayfs exited with 3: fuse-overlayfs: cannot serve this (test)" in err, err
    assert time.monotonic() - t < 30
    assert os.listdir(os.path.join(sbx.state_dir, "run")) == []
