"""Hostile review of the fuse-overlayfs root (test_fuse_overlay.py tests that
it works).  A sandbox on fuse-overlayfs talks to a server that runs outside
it, with the runner's ids (host root in a root run) and the whole host file
system in view: these tests try to make that server read or write outside
the sandbox's layers, change the shared image store, outlive or starve the
run, and check what a task's layer looks like when the next run mounts it
with the other overlay.  As root and as the test user.

Findings are marked xfail(strict=True) with the reason; a fix turns them
into XPASS, which fails the run: then drop the mark.
"""
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import pwd
import shutil
import signal
import struct
import subprocess
import tarfile
import time

import pytest

from conftest import TEST_USER
from test_cow import image_tar, store_tree  # noqa: F401 (fixture)
from test_fuse_overlay import fuse_servers, fuse_skip_reason, gone_soon, ns_argv, ns_run, use

pytestmark = pytest.mark.skipif(fuse_skip_reason() is not None,
                                reason=str(fuse_skip_reason()))

SECRET = "HOST-CANARY-SECRET"


@pytest.fixture(scope="session")
def canary(tmp_path_factory):
    """Host folders no sandbox may read or change: one root's (0700), one
    the test user's (0700), so that a server following a path out of its
    layers would have the permission to do harm and the tests would see it."""
    base = str(tmp_path_factory.mktemp("fuse-canary"))
    p = base
    while p != "/":
        os.chmod(p, os.stat(p).st_mode | 0o005)
        p = os.path.dirname(p)
    out = {}
    for who in ("root", "user"):
        d = os.path.join(base, who)
        os.makedirs(d)
        with open(os.path.join(d, "secret"), "w") as f:
            f.write(f"{SECRET}-{who}\n")
        os.chmod(d, 0o700)
        if who == "user" and TEST_USER:
            pw = pwd.getpwnam(TEST_USER)
            for x in (d, os.path.join(d, "secret")):
                os.chown(x, pw.pw_uid, pw.pw_gid)
        out[who] = d
    return out


def canary_state(d):
    """Names, modes, sizes, times and contents: any change shows."""
    out = []
    for n in sorted(os.listdir(d)):
        p = os.path.join(d, n)
        st = os.lstat(p)
        with open(p, "rb") as f:
            data = hashlib.sha256(f.read()).hexdigest()
        out.append((n, st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns, st.st_ctime_ns, data))
    st = os.stat(d)
    return out, st.st_mode, st.st_mtime_ns


@pytest.fixture(scope="session")
def hostile_image(rootfs, canary, tmp_path_factory):
    """The probe rootfs plus absolute symlinks into the canary folders (as
    any Debian image has /var/run -> /run) and a folder to move around."""
    d = tmp_path_factory.mktemp("fuse-hostile-image")
    tree = str(d / "tree")
    shutil.copytree(rootfs, tree, symlinks=True)
    for who, path in canary.items():
        os.symlink(path, os.path.join(tree, f"escape-{who}"))
    os.makedirs(os.path.join(tree, "srcdir"))
    with open(os.path.join(tree, "srcdir/own"), "w") as f:
        f.write("own\n")
    os.makedirs(os.path.join(tree, "data"))
    with open(os.path.join(tree, "data/file"), "w") as f:
        f.write("lower data\n")
    os.link(os.path.join(tree, "data/file"), os.path.join(tree, "data/hardlink"))
    path = str(d / "hostile.tar.gz")
    with tarfile.open(path, "w:gz") as t:
        t.add(tree, arcname=".")
    p = str(d)
    while p != "/":
        os.chmod(p, os.stat(p).st_mode | 0o005)
        p = os.path.dirname(p)
    os.chmod(path, 0o644)
    return path


def full_digest(root):
    """Every entry of a tree: type, mode, owner, size, mtime, ctime, inode,
    link count, extended attributes, inode flags and content."""
    h = hashlib.sha256()
    for dirpath, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for n in sorted(files) + dirs + ([""] if dirpath == root else []):
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            xattrs = sorted((a, os.getxattr(p, a, follow_symlinks=False))
                            for a in os.listxattr(p, follow_symlinks=False))
            data = ""
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    data = hashlib.sha256(f.read()).hexdigest()
            h.update(f"{os.path.relpath(p, root)} {st.st_mode} {st.st_uid} {st.st_gid} "
                     f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino} "
                     f"{st.st_nlink} {xattrs} {data}\n".encode())
    flags = subprocess.run(["lsattr", "-R", "-a", root], capture_output=True, text=True)
    h.update(flags.stdout.encode())
    return h.hexdigest()


def sh(sbx, image, script, opts=(), timeout=120, **kw):
    return ns_run(sbx, [sbx.bin, "run", "--no-limits", *opts, image, "--", "/bin/sh", "-c",
                        script], timeout=timeout, **kw)


# ---- the shared image store -------------------------------------------------

MUTATE_LOWER = r"""
set +e
truncate -s 1 /etc/group
chmod 600 /etc/passwd
touch -d '2001-01-01 00:00' /root /etc/passwd
echo more >> /data/file
dd if=/dev/zero of=/data/hardlink bs=1 count=1 seek=2 conv=notrunc 2>/dev/null
fallocate -l 100000 /bin/probe
probe setxattr /srcdir/own user.mark y
probe setxattr /srcdir user.overlay.opaque y
probe fsflags /etc/passwd 80
probe fsflags /bin/busybox 40
ln /data/file /data/third && echo x >> /data/third
mv /srcdir /moved
probe exchange /etc /root
ln -sf /nowhere /etc/hostname
mkfifo /bin/fifo
rm -rf /usr /sbin
cat /data/file /data/hardlink | tr '\n' ' '
"""


def test_store_is_unchanged_by_any_write(sbx, hostile_image):
    """Data, modes, times, xattrs, inode flags, hard links, renames and
    removals of lower files all stay in the sandbox's layer: the store other
    sandboxes share is bit for bit the same afterwards."""
    use(sbx, "fuse")
    r = sh(sbx, hostile_image, "true")
    assert r.returncode == 0, r.stderr
    tree = store_tree(sbx)
    before = full_digest(tree)
    r = sh(sbx, hostile_image, MUTATE_LOWER)
    assert r.returncode == 0, r.stderr
    assert "more" in r.stdout  # the writes did happen, in the sandbox's view
    assert full_digest(tree) == before
    r = sh(sbx, hostile_image, "cat /data/file; stat -c %a /etc/passwd; ls /usr")
    assert r.stdout.split() == ["lower", "data", "644", "bin"], r.stdout


# ---- paths out of the layers ------------------------------------------------

ESCAPES = r"""
set +e
C=/escape-{who}
H={host}
cat $C/secret 2>/dev/null
rm $C && mkdir $C && ls -A $C && cat $C/secret
rm -r $C && mkdir /m && echo m > /m/f && mv /m $C && cat $C/secret
rm -r $C && ln -s $H $C
probe exchange /srcdir $C
cat /srcdir/secret $C/secret
ln -s $H /mine && rm /mine && mkdir /mine && cat /mine/secret
mkdir /a && echo in > /a/x && cd /a && exec 3<>/a/x
mv /a /b && ln -s $H /a
touch ./planted; echo pwned > ./secret; chmod 777 .; mkdir ./dir
chmod 600 /proc/self/fd/3; truncate -s 0 /proc/self/fd/3; touch -d 2001-01-01 /proc/self/fd/3
probe setxattr /proc/self/fd/3 user.x y
cd / && mkdir /d && cd /d && rm -r /d && ln -s $H /d && touch ./planted2
cd /etc && mv /etc /etc2 && ln -s $H /etc && touch ./planted3 && cat ./secret
echo done
"""


def test_symlinks_never_lead_the_server_out(sbx, hostile_image, canary):
    """Absolute symlinks of the image (and ones made inside) that point at a
    host folder, replaced by folders, renamed over, exchanged, and swapped in
    under a folder the sandbox still has open: the server never reads or
    writes the host folder, though it has the permission to."""
    use(sbx, "fuse")
    who = "user" if sbx.rootless else "root"
    host = canary[who]
    before = canary_state(host)
    r = sh(sbx, hostile_image, ESCAPES.format(who=who, host=host))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "done", r.stdout + r.stderr
    assert SECRET not in r.stdout + r.stderr
    assert canary_state(host) == before


XATTRS = r"""
for n in user.fuseoverlayfs.opaque user.fuseoverlayfs.origin trusted.overlay.opaque \
         user.containers.override_stat; do
    echo "$n $(probe setxattr /etc/passwd $n 0:0:4755)"
done
probe setfcap /bin/busybox
stat -c '%a %u' /etc/passwd
"""


def test_server_metadata_xattrs_are_refused(sbx, hostile_image):
    """The xattrs fuse-overlayfs keeps its own metadata in (opaque folders,
    origins, overridden owner and mode) cannot be set from inside.  A file
    capability needs CAP_SETFCAP (not in a root run's set) and, rootless,
    lands in the layer owned by the user's namespace (version 3, root id
    the user's uid): it means nothing to the host."""
    use(sbx, "fuse")
    r = sh(sbx, hostile_image, XATTRS, opts=["--keep", "--name", "fcap"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(line.endswith("setxattr=EPERM") for line in lines[:4]), lines
    assert lines[5] == "644 0"
    upper = r.stderr.strip().split("kept its writable layer in ")[-1]
    assert os.path.isdir(upper), r.stderr
    if not sbx.rootless:
        assert lines[4] == "setfcap=EPERM"
        assert not os.path.exists(os.path.join(upper, "bin/busybox"))
        return
    assert lines[4] == "setfcap=ok"
    v = os.getxattr(os.path.join(upper, "bin/busybox"), "security.capability")
    magic, rootid = struct.unpack("<I", v[:4])[0], struct.unpack("<I", v[20:24])[0]
    assert (magic >> 24, rootid) == (3, sbx.uid), v


# Put where fuse-overlayfs is found: the process the runner confined, which
# then becomes the real server (exec keeps a Landlock domain; nothing can
# leave one).  It tries what a compromised server would, and writes what it
# got into the sandbox's upper, where the sandbox finds it as /server-report.
STAND_IN = r"""#!/bin/sh
up=$(echo "$3" | sed 's/.*upperdir=\([^,]*\).*/\1/')
try() {{
    what=$1; shift
    if out=$("$@" 2>&1); then echo "$what=ok"
    else case "$out" in *"Permission denied"*) echo "$what=denied";;
                        *) echo "$what=failed: $out" | head -1;; esac; fi
}}
{{
    try read-canary cat {canary}/secret
    try list-canary ls {canary}
    try write-canary sh -c 'echo x > {canary}/planted'
    try read-home cat "$HOME/.ssh/id_canary"
    try write-home touch "$HOME/planted"
    try write-tmp touch {tmp_planted}
    try list-root ls /
    try read-passwd cat /etc/passwd
    try read-shadow cat /etc/shadow
    try exec-outside {probe} status
    try write-image touch lower/planted
    try list-run-folder ls layer
    try write-run-folder touch layer/planted
    try read-image cat lower/data/file
}} > "$up/server-report"
exec /usr/bin/fuse-overlayfs "$@"
"""


def test_server_opens_only_its_layers(sbx, hostile_image, canary, tools):
    """The fuse-overlayfs server is confined (Landlock) to the system's
    libraries, the image (read) and the sandbox's upper and work folders.
    A stand-in takes the server's place and tries, in the very process that
    then execs the real server, what a bug in it could be made to do: read
    or change the runner's user's files (0700, the user's own: the server
    has the permission), the host's /tmp, /etc and /, the image store, the
    rest of the run folder, and run a program from outside /usr."""
    use(sbx, "fuse")
    who = "user" if sbx.rootless else "root"
    fake = os.path.join(sbx.tmp, "fakebin")
    os.makedirs(fake)
    tmp_planted = os.path.join("/tmp", f"trimo-server-planted-{os.getpid()}-{who}")
    with open(os.path.join(fake, "fuse-overlayfs"), "w") as f:
        f.write(STAND_IN.format(canary=canary[who], tmp_planted=tmp_planted,
                                probe=tools["probe"]))
    os.chmod(os.path.join(fake, "fuse-overlayfs"), 0o755)
    ssh = os.path.join(sbx.home, ".ssh")
    os.makedirs(ssh, mode=0o700)
    with open(os.path.join(ssh, "id_canary"), "w") as f:
        f.write(f"{SECRET}-home\n")
    for x in (fake, os.path.join(fake, "fuse-overlayfs"), ssh, os.path.join(ssh, "id_canary")):
        sbx.chown(x)
    before_canary = canary_state(canary[who])
    before = fuse_servers()
    env = sbx.env({"PATH": f"{fake}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"})
    p = subprocess.Popen(ns_argv(sbx, [sbx.bin, "run", "--no-limits", hostile_image, "--",
                                       "/bin/sh", "-c",
                                       "cat /server-report; echo ready; sleep 30"]),
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=sbx.tmp)
    lines, ready = [], False
    try:
        for line in p.stdout:
            if line.strip() == "ready":
                ready = True
                break
            lines.append(line.strip())
        if ready:
            (pid,) = fuse_servers() - before
            exe = os.readlink(f"/proc/{pid}/exe")
            with open(f"/proc/{pid}/status") as f:
                nnp = [x.split()[1] for x in f if x.startswith("NoNewPrivs:")]
    finally:
        p.kill()
        _, err = p.communicate()
        planted = os.path.exists(tmp_planted)
        if planted:
            os.unlink(tmp_planted)
    assert ready, err
    got = dict(x.split("=", 1) for x in lines if "=" in x)
    assert got.get("read-image") == "ok", lines  # the stand-in ran as the server would
    assert exe == "/usr/bin/fuse-overlayfs"  # and became the real server, which served
    assert nnp == ["1"]
    denied = ["read-canary", "list-canary", "write-canary", "read-home", "write-home",
              "write-tmp", "list-root", "read-passwd", "exec-outside", "write-image",
              "list-run-folder", "write-run-folder"]
    if not sbx.rootless:
        denied.append("read-shadow")  # root's 0640: the user cannot read it anyway
    assert {k: got.get(k) for k in denied} == {k: "denied" for k in denied}, lines
    assert SECRET not in "\n".join(lines)
    assert canary_state(canary[who]) == before_canary
    assert not planted
    assert not os.path.exists(os.path.join(sbx.home, "planted"))
    assert not os.path.exists(os.path.join(store_tree(sbx), "planted"))


# ---- the run: signals, resources, the end ------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT, signal.SIGHUP],
                         ids=["INT", "QUIT", "HUP"])
def test_terminal_signals_leave_the_root_served(sbx, image_tar, sig):  # noqa: F811
    """^C, ^\\ and a hangup reach the whole foreground process group: the
    runner relays them to the sandbox, whose command may catch them and go
    on.  Its file system must still be there."""
    use(sbx, "fuse")
    name = signal.Signals(sig).name[3:]
    script = (f"trap 'echo caught' {name}; echo ready; sleep 2; cat /etc/group | head -1; "
              f"echo rc=$?")
    p = subprocess.Popen(ns_argv(sbx, [sbx.bin, "run", "--no-limits", image_tar, "--",
                                       "/bin/sh", "-c", script]),
                         env=sbx.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=sbx.tmp, start_new_session=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        os.killpg(p.pid, sig)  # what the terminal does
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "caught" in out, out + err
    assert "root:x:0:" in out and "rc=0" in out, out + err


def test_server_memory_is_within_the_sandbox_cap(sbx, image_tar):  # noqa: F811
    """fuse-overlayfs keeps a node with the full path of every file the
    kernel knows: many files deep down cost the server far more than the
    sandbox's own share of them.  The server lives in the sandbox's cgroup
    (finding 2, fixed): it never holds more than the cap; when it would, the
    OOM killer ends it and this sandbox's root with it, nothing else."""
    use(sbx, "fuse")
    cap = 32 << 20
    long = "x" * 250
    script = (f"d=/root; for k in $(seq 15); do d=$d/{long}; done; mkdir -p $d; cd $d; "
              f"i=0; while [ $i -lt 12000 ]; do : > $i; i=$((i+1)); done; echo made")
    before = fuse_servers()
    p = subprocess.Popen(ns_argv(sbx, [sbx.bin, "run", "--memory", "32M", image_tar, "--",
                                       "/bin/sh", "-c", script]),
                         env=sbx.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=sbx.tmp)
    peak = 0
    cgroups = set()
    deadline = time.monotonic() + 240
    while p.poll() is None and time.monotonic() < deadline:
        for pid in fuse_servers() - before:
            try:
                with open(f"/proc/{pid}/status") as f:
                    status = f.read().splitlines()
                if f"PPid:\t{p.pid}" not in status:  # another test's (the runner is p)
                    continue
                for line in status:
                    if line.startswith("VmRSS:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
                with open(f"/proc/{pid}/cgroup") as f:
                    lines = [x.strip().split(":", 2) for x in f]
                # the memory controller's (v1), else the unified one (v2)
                mem = [x[2] for x in lines if "memory" in x[1].split(",")]
                cgroups |= set(mem or [x[2] for x in lines if x[0] == "0"])
            except OSError:
                pass
        time.sleep(0.2)
    if p.poll() is None:
        p.kill()
    out, err = p.communicate()
    assert "made" in out, err  # the shell goes on either way (files fail once the root is gone)
    assert cgroups and all("trimo-" in c.rsplit("/", 1)[-1] for c in cgroups), cgroups
    assert peak <= cap, f"fuse-overlayfs peaked at {peak >> 20} MiB, the sandbox's cap is 32 MiB"


def test_run_ends_promptly_with_files_busy(sbx, image_tar):  # noqa: F811
    """The command exits while its children keep writing and hold files and
    a folder open: the runner ends in seconds and leaves neither a server
    nor the layer behind."""
    use(sbx, "fuse")
    before = fuse_servers()
    script = ("mkdir -p /w && cd /w && "
              "(while :; do echo x >> /w/f; done) & "
              "(exec 3</etc/passwd; cd /w; sleep 100) & "
              "sleep 0.5; echo bye")
    t = time.monotonic()
    r = sh(sbx, image_tar, script, timeout=60)
    took = time.monotonic() - t
    assert r.returncode == 0 and r.stdout.strip() == "bye", r.stderr
    assert took < 10, f"the run took {took:.1f} s"
    assert gone_soon(fuse_servers() - before)
    assert os.listdir(os.path.join(sbx.state_dir, "run")) == []


def test_no_sync_socket_inside(sbx, image_tar):  # noqa: F811
    """The socket a /dev/fuse fd travels on never reaches the command: no
    process inside holds a socket it could pass fds to the runner with."""
    use(sbx, "fuse")
    r = sh(sbx, image_tar, "ls -l /proc/[0-9]*/fd/ 2>/dev/null | grep -c 'socket:\\|fuse'; true")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0", r.stdout


# ---- a task's layer across runs with the other overlay -----------------------

TASK_CMD = ("if [ -e /etc/only ]; then ls -A /etc | tr '\\n' ' '; echo; "
            "else rm -r /etc && mkdir /etc && echo x > /etc/only && echo replaced; fi; "
            "grep ' / / ' /proc/self/mountinfo | sed 's/.* - //' | cut -d' ' -f1")


def task_runs(sbx, image, first, second, command=TASK_CMD):
    use(sbx, first)
    task = os.path.join(sbx.tmp, "t.ini")
    with open(task, "w") as f:
        f.write(f"[task]\nname = swap\ncommand = {command}\n[image]\nsource = {image}\n"
                f"[limits]\nenabled = no\n")
    sbx.chown(task)
    r = ns_run(sbx, [sbx.bin, "launch", "-f", task], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    (tid,) = [t["id"] for t in json.loads(sbx.run("ps", "-a", "--json").stdout)]
    use(sbx, second)
    r = ns_run(sbx, [sbx.bin, "followup", tid, "--prompt", "again"])
    assert r.returncode == 0, r.stderr
    r = ns_run(sbx, [sbx.bin, "wait", tid])
    assert r.returncode == 0, r.stderr
    one = sbx.run("logs", "--run", "1", tid).stdout
    two = sbx.run("logs", "--run", "2", tid).stdout
    return one, two


def test_task_layer_from_kernel_overlay_then_fuse(sbx, image_tar):  # noqa: F811
    """fuse-overlayfs reads the kernel's whiteouts and user.overlay.opaque."""
    one, two = task_runs(sbx, image_tar, "kernel", "fuse")
    assert "replaced" in one and "\noverlay\n" in one, one
    assert "fuse.fuse-overlayfs" in two, two
    assert two.split("\n")[1].split() == ["only"], two


def test_task_layer_from_fuse_then_kernel_overlay(sbx, image_tar):  # noqa: F811
    """fuse-overlayfs marks a replaced folder opaque with its own
    user.fuseoverlayfs.opaque, which the kernel's overlay ignores (finding
    4): a layer fuse-overlayfs wrote stays on it, whatever the config says
    at a follow-up, and the image's files do not come back."""
    one, two = task_runs(sbx, image_tar, "fuse", "kernel")
    assert "replaced" in one and "fuse.fuse-overlayfs" in one, one
    assert "fuse.fuse-overlayfs" in two, two
    assert two.split("\n")[1].split() == ["only"], two



def ovl_origin(path):
    """The overlay origin xattr (struct ovl_fb) naming path's inode: what
    the kernel's overlay would decode to find a file's copy-up origin."""
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(8 + 128)
    struct.pack_into("Ii", buf, 0, 128, 0)
    mnt = ctypes.c_int()
    if libc.name_to_handle_at(-100, path.encode(), buf, ctypes.byref(mnt), 0) != 0:
        raise OSError(ctypes.get_errno(), path)
    size, kind = struct.unpack_from("Ii", buf, 0)
    fd = os.open(path, os.O_RDONLY)
    try:
        u = bytearray(17)
        fcntl.ioctl(fd, 0x80111500, u)  # FS_IOC_GETFSUUID
    finally:
        os.close(fd)
    fid = buf.raw[8:8 + size]
    return bytes([0, 0xfb, 21 + size, 0, kind]) + bytes(u[1:17]) + fid


PLANT = ("if [ -e /planted ]; then cat /newfile; echo; ls /etc | tr '\\n' ' '; echo; "
         "else echo decoy > /newfile && probe setxattr /newfile user.overlay.metacopy '' "
         "&& probe setxattr /newfile user.overlay.origin hex:{origin} "
         "&& probe setxattr /etc user.overlay.redirect /srcdir && touch /planted; fi")


def test_overlay_xattrs_planted_through_fuse_are_inert(sbx, hostile_image, canary):
    """fuse-overlayfs lets the sandbox set user.overlay.* (it guards only
    its own names), which the kernel's overlay would act on: a metacopy file
    whose origin names a host file, a folder redirected elsewhere.  Since
    finding 4's fix a layer fuse-overlayfs served stays on it (the config
    asks for the kernel's overlay at the follow-up and does not get it), and
    fuse-overlayfs ignores both: the host file is never read.  (Before that
    fix the kernel mounted such a layer and refused both in a user
    namespace: no redirect_dir, no metacopy.)"""
    who = "user" if sbx.rootless else "root"
    try:
        origin = ovl_origin(os.path.join(canary[who], "secret")).hex()
    except OSError as e:
        if e.errno != errno.ENOTTY:
            raise
        pytest.skip("the file system's uuid for an overlay origin needs FS_IOC_GETFSUUID "
                    "(Linux 6.5 or later)")
    one, two = task_runs(sbx, hostile_image, "fuse", "kernel",
                         command=PLANT.format(origin=origin))
    assert one.count("setxattr=ok") == 3, one
    assert SECRET not in two, two
    lines = [x for x in two.splitlines() if not x.startswith("trimo-sbx: warning")]
    assert lines[0] == "decoy", two  # the file's own content: no origin followed
    assert lines[2].split() == ["group", "passwd"], two  # the image's /etc: no redirect
