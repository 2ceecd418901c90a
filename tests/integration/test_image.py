"""`trimo-sbx image import|ls|rm|prune` through the CLI, as root and as the
unprivileged user, on fixtures built by tests/fixtures/mkimages.py.

The hostile archives aim at a canary folder (world-writable, so that the
unprivileged half could really damage it if an escape worked): each must
fail with its exact error and exit 2, leave the canary as it was and
publish nothing.
"""
import fcntl
import json
import os
import platform
import pty
import select
import signal
import stat
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MKIMAGES = os.path.join(HERE, "..", "fixtures", "mkimages.py")
BIG_FILES = 40000
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


@pytest.fixture(scope="session")
def canary():
    d = tempfile.mkdtemp(prefix="trimo-canary-", dir="/tmp")
    with open(os.path.join(d, "canary"), "w") as f:
        f.write("canary\n")
    os.chmod(os.path.join(d, "canary"), 0o666)
    os.chmod(d, 0o777)
    yield d
    subprocess.run(["rm", "-rf", d])


def canary_state(d):
    st = os.stat(d)
    with open(os.path.join(d, "canary")) as f:
        content = f.read()
    cst = os.stat(os.path.join(d, "canary"))
    return (sorted(os.listdir(d)), content, stat.S_IMODE(st.st_mode), st.st_mtime_ns,
            cst.st_nlink, stat.S_IMODE(cst.st_mode))


@pytest.fixture(scope="session")
def fx(canary):
    d = tempfile.mkdtemp(prefix="trimo-images-", dir="/tmp")
    os.chmod(d, 0o755)
    subprocess.run([sys.executable, MKIMAGES, d, "--canary", canary, "--big", str(BIG_FILES)],
                   check=True)
    with open(os.path.join(d, "fixtures.json")) as f:
        data = json.load(f)
    yield data
    subprocess.run(["rm", "-rf", d])


class Images:
    """The image CLI for one Runner, with its own store."""

    def __init__(self, sbx):
        self.sbx = sbx
        # the user config's image_dir (the test's own: never /var/lib)
        self.store = sbx.image_dir
        self.env = {}

    def run(self, *args, **kw):
        env = dict(self.env, **kw.pop("env", {}))
        return self.sbx.run("image", *args, env=env, **kw)

    def imp(self, source, *args, ok=True):
        r = self.run("import", source, "--json", *args, timeout=120)
        if ok:
            assert r.returncode == 0, r.stderr
            return json.loads(r.stdout)
        return r

    def ls(self):
        r = self.run("ls", "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def sub(self, name):
        p = os.path.join(self.store, name)
        return sorted(os.listdir(p)) if os.path.isdir(p) else []

    def tree(self, digest):
        return os.path.join(self.store, "rootfs", digest.split(":", 1)[1])


@pytest.fixture
def img(sbx):
    return Images(sbx)


def read(path):
    with open(path) as f:
        return f.read()


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def owners(root):
    out = set()
    for d, dirs, files in os.walk(root):
        for n in dirs + files + ["."]:
            st = os.lstat(os.path.join(d, n))
            out.add((st.st_uid, st.st_gid))
    return out


# --- sources ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["plain_tar", "plain_tar_gz", "plain_tar_zst", "plain_tar_xz",
                                  "plain_tar_bz2"])
def test_plain_tar(img, fx, name):
    f = fx[name]
    r = img.run("import", f["source"], "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["digest"] == f["digest"]  # the archive's own sha256
    assert out["imported"] is True and out["layers"] == 1
    t = img.tree(f["digest"])
    assert out["path"] == t
    assert read(f"{t}/bin/hello") == "#!/bin/sh\necho hello\n"
    assert os.readlink(f"{t}/bin/hello-link") == "hello"
    assert os.stat(f"{t}/bin/hello").st_ino == os.stat(f"{t}/bin/hello-hard").st_ino
    assert stat.S_ISFIFO(os.lstat(f"{t}/run/fifo").st_mode)
    assert (mode(f"{t}/locked"), mode(f"{t}/locked/inside")) == (0o500, 0o400)
    assert (mode(f"{t}/sealed"), mode(f"{t}/sealed/secret")) == (0, 0)
    assert (mode(f"{t}/ro"), mode(f"{t}/ro/file")) == (0o555, 0o444)
    xattrs = set(os.listxattr(f"{t}/xattrs"))
    assert "user.trimo" in xattrs
    assert not xattrs & {"user.overlay.opaque", "trusted.overlay.opaque"}
    if img.sbx.rootless:
        assert owners(t) == {(img.sbx.uid, img.sbx.gid)}
        assert mode(f"{t}/usr/bin/su") == 0o755  # setuid dropped
        assert not os.path.lexists(f"{t}/dev/null")
        assert "security.trimo" not in xattrs
        assert out["skipped_devices"] == 1 and r.stderr == ""  # --json: in the object
    else:
        assert mode(f"{t}/usr/bin/su") == 0o4755
        assert os.stat(f"{t}/usr/bin/su").st_uid == 0
        assert (os.stat(f"{t}/home/user").st_uid, os.stat(f"{t}/home/user").st_gid) == (1000, 1000)
        assert os.stat(f"{t}/etc/shadow").st_gid == 42
        st = os.lstat(f"{t}/dev/null")
        assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
        assert "security.trimo" in xattrs
        assert out["skipped_devices"] == 0 and r.stderr == ""
    # only the tree is published; no work left behind
    assert img.sub("rootfs") == [f["digest"][7:]] and img.sub("tmp") == []
    assert stat.S_IMODE(os.stat(os.path.join(img.store, "rootfs")).st_mode) == 0o700
    # a second import reuses it
    again = img.imp(f["source"])
    assert again["imported"] is False and again["digest"] == f["digest"]
    # and the owner can remove it, 0000 folders and all
    r = img.run("rm", f["digest"])
    assert (r.returncode, r.stdout) == (0, f"removed {f['digest']}\n"), r.stderr
    assert img.sub("rootfs") == [] and img.sub("tmp") == []
    # without --json: the digest, and the one warning on stderr
    r = img.run("import", f["source"])
    assert (r.returncode, r.stdout) == (0, f["digest"] + "\n")
    assert r.stderr == ("trimo-sbx: warning: skipped 1 device nodes (not root)\n"
                        if img.sbx.rootless else "")


def check_tree(t, files, gone):
    for path, content in files.items():
        assert read(os.path.join(t, path)) == content, path
    for path in gone:
        assert not os.path.lexists(os.path.join(t, path)), path
    for d, dirs, names in os.walk(t):
        assert not [n for n in dirs + names if n.startswith(".wh.")], d


@pytest.mark.parametrize("name", ["oci_layered", "oci_layered_tag", "oci_archive"])
def test_oci_layers(img, fx, name):
    f = fx[name]
    out = img.imp(f["source"])
    assert out["digest"] == f["digest"]  # the manifest's digest
    assert out["layers"] == 3
    assert out["size"] == sum(len(c) for c in f["files"].values())  # what is left, not the sum
    t = img.tree(f["digest"])
    check_tree(t, f["files"], f["gone"])
    assert mode(f"{t}/locked") == 0o500  # a later layer wrote into it, rootless too
    assert img.sub("tmp") == []  # the staging folder of oci-archive is gone too
    meta = json.loads(read(os.path.join(img.store, "meta", f["digest"][7:] + ".json")))
    assert meta["config"] == {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"]}


def test_docker_archive(img, fx):
    f = fx["docker_archive"]
    out = img.imp(f["source"])
    assert out["digest"] == f["digest"]  # the config's digest
    check_tree(img.tree(f["digest"]), f["files"], f["gone"])


def test_platforms(img, fx):
    for name in ("oci_multi", "oci_nested"):
        f = fx[name]
        out = img.imp(f["source"])
        assert out["digest"] == f["digests"][ARCH], name
        assert read(os.path.join(img.tree(out["digest"]), "platform")) == ARCH


def test_tags(img, fx):
    f = fx["oci_tags"]
    r = img.run("import", f["source"])
    assert r.returncode == 2
    assert r.stderr == f"trimo-sbx: image import '{f['source']}': {f['error']}\n"
    for tag in ("one", "two"):
        out = img.imp(f["source"] + ":" + tag)
        assert out["digest"] == f["digests"][tag]
        assert read(os.path.join(img.tree(out["digest"]), "which")) == tag
    r = img.run("import", f["source"] + ":three")
    assert (r.returncode, r.stderr) == (2, f"trimo-sbx: image import '{f['source']}:three': "
                                           "index.json: no image tagged 'three' (tags: one, two)\n")


# --- hostile archives -------------------------------------------------------

HOSTILE = ["hostile_dotdot", "hostile_abs", "hostile_symlink_write", "hostile_hardlink_abs",
           "hostile_hardlink_dotdot", "hostile_hardlink_symlink", "hostile_wh_symlink",
           "hostile_wh_dotdot", "hostile_truncated", "hostile_wrong_digest",
           "hostile_wrong_diffid", "hostile_manifest_not_json", "hostile_index_not_json",
           "hostile_huge"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile(img, fx, canary, name):
    f = fx[name]
    before = canary_state(canary)
    r = img.run("import", f["source"], "--name", "evil")
    assert r.stderr == f"trimo-sbx: image import '{f['source']}': {f['error']}\n"
    assert r.returncode == 2 and r.stdout == ""
    assert canary_state(canary) == before
    assert not os.path.lexists("/abs-" + os.path.basename(canary))
    # nothing published, nothing named, no work left behind
    assert img.sub("rootfs") == [] and img.sub("refs") == [] and img.sub("tmp") == []
    assert img.ls() == []


def test_json_errors(img, fx):
    """With --json (what image_unpack_helper reads) an error is one object
    on stdout, with its errno, and nothing on stderr."""
    f = fx["hostile_dotdot"]
    r = img.run("import", f["source"], "--json")
    assert r.returncode == 2 and r.stderr == ""
    assert json.loads(r.stdout) == {"error": f["error"], "errno": 74}  # EBADMSG
    r = img.run("import", "dir:/tmp", "--json")
    assert r.returncode == 2 and r.stderr == ""
    assert json.loads(r.stdout)["errno"] == 22  # EINVAL


def test_store_option_and_base_dir(img, fx, sbx):
    """--store and --base-dir, as the helper is run."""
    other = os.path.join(sbx.tmp, "other-store")
    src = fx["plain_tar"]["source"]
    r = img.run("import", "--store", other, "--base-dir", os.path.dirname(src), "--json",
                os.path.basename(src))
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["path"].startswith(other + "/rootfs/")
    r = img.run("ls", "--json", "--store", other)
    assert [i["digest"] for i in json.loads(r.stdout)] == [fx["plain_tar"]["digest"]]
    assert img.ls() == []  # the default store was not touched


def test_deferred_chmod_does_not_follow(img, fx, canary):
    """A directory replaced by a symlink in the same archive: libarchive's
    end-of-archive chmod of the directory must not land on the target."""
    before = canary_state(canary)
    img.imp(fx["fixup_symlink"]["source"])
    assert canary_state(canary) == before


# --- the store ----------------------------------------------------------------

def test_names_rm_and_prune(img, fx):
    a, b = fx["plain_tar_gz"], fx["oci_layered"]
    img.imp(a["source"], "--name", "one")
    img.imp(a["source"], "--name", "two")
    img.imp(b["source"])
    ls = img.ls()
    assert sorted((tuple(i["names"]), i["digest"]) for i in ls) == \
        sorted([((), b["digest"]), (("one", "two"), a["digest"])])
    for i in ls:
        assert i["size"] > 0 and i["created"].endswith("Z") and i["in_use_by"] == []
    # a name is a source
    out = img.imp("one")
    assert (out["digest"], out["imported"]) == (a["digest"], False)
    # a name shared with another only goes itself
    r = img.run("rm", "one")
    assert (r.returncode, r.stdout) == (0, "untagged one\n")
    assert a["digest"][7:] in img.sub("rootfs")
    # prune takes the unnamed image, not the named one
    r = img.run("prune")
    assert (r.returncode, r.stdout) == (0, "removed 1 images (33 B) and 0 leftovers of "
                                           "interrupted imports\n"), r.stderr
    assert img.sub("rootfs") == [a["digest"][7:]]
    # a name moves to the image imported last with it
    img.imp(b["source"], "--name", "two")
    assert {i["digest"]: i["names"] for i in img.ls()} == {b["digest"]: ["two"],
                                                          a["digest"]: []}
    # by digest prefix; unknown names are bad input
    r = img.run("rm", a["digest"][7:19])
    assert (r.returncode, r.stdout) == (0, f"removed {a['digest'][7:19]}\n")
    r = img.run("rm", "nope")
    assert (r.returncode, r.stderr) == (2, "trimo-sbx: image rm 'nope': no image 'nope'\n")
    r = img.run("rm", "two")
    assert (r.returncode, r.stdout) == (0, "removed two\n")
    assert img.sub("rootfs") == [] and img.sub("refs") == []


def test_hold_blocks_rm(img, fx):
    """A running sandbox holds its image with a shared flock on the tree
    (image_hold); rm and prune must leave it alone while it does."""
    f = fx["plain_tar_gz"]
    img.imp(f["source"], "--name", "held")
    fd = os.open(img.tree(f["digest"]), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        r = img.run("rm", "held")
        assert r.returncode == 125
        assert r.stderr == (f"trimo-sbx: image rm 'held': image sha256:{f['digest'][7:19]} "
                            f"is in use by pid {os.getpid()}\n")
        assert img.ls()[0]["in_use_by"] == [os.getpid()]
        r = img.run("ls")
        assert f"pid {os.getpid()}" in r.stdout
        assert img.run("rm", f["digest"]).returncode == 125
        img.run("import", fx["plain_tar"]["source"])
        r = img.run("prune")  # unnamed and not held goes; held stays
        assert r.stdout.startswith("removed 1 images"), r.stdout
        assert f["digest"][7:] in img.sub("rootfs") and "held" in img.sub("refs")
    finally:
        os.close(fd)
    assert img.run("rm", "held").returncode == 0
    assert img.sub("rootfs") == []


def test_changed_file_is_imported_again(img, fx, sbx):
    """The store remembers a file's digest by identity; a rewrite must not
    reuse the old image."""
    src = os.path.join(sbx.tmp, "mine.tar")
    with open(fx["plain_tar"]["source"], "rb") as f:
        data = f.read()
    with open(src, "wb") as f:
        f.write(data)
    sbx.chown(src)
    first = img.imp(src)
    assert first["digest"] == fx["plain_tar"]["digest"]
    with open(src, "r+b") as f:  # same size, same inode, other bytes
        f.seek(data.index(b"echo hello"))
        f.write(b"echo HELLO")
    second = img.imp(src)
    assert second["digest"] != first["digest"] and second["imported"] is True
    assert "HELLO" in read(os.path.join(img.tree(second["digest"]), "bin/hello"))


def test_bad_usage(img, fx):
    r = img.run("import")
    assert r.returncode == 2 and r.stderr.startswith("trimo-sbx: image: import takes one SOURCE")
    r = img.run("import", "/nonexistent/x.tar")
    assert (r.returncode, r.stderr) == (2, "trimo-sbx: image import '/nonexistent/x.tar': "
                                           "'/nonexistent/x.tar' does not exist\n")
    r = img.run("import", "nosuchname")
    assert r.returncode == 2 and "no image named 'nosuchname' and no file" in r.stderr
    r = img.run("import", fx["plain_tar"]["source"], "--name", "bad/name")
    assert (r.returncode, r.stderr) == (2, f"trimo-sbx: image import '{fx['plain_tar']['source']}"
                                           "': 'bad/name' is not a valid image name\n")
    r = img.run("import", "dir:/tmp")
    assert (r.returncode, r.stderr) == (2, "trimo-sbx: image import 'dir:/tmp': dir: sources are "
                                           "used in place; there is nothing to import\n")
    r = img.run("import", "docker://debian:12")
    assert r.returncode == 2 and "the docker transport is not supported" in r.stderr
    # a store that cannot be created is a runtime error
    blocker = os.path.join(img.sbx.tmp, "a-file")
    with open(blocker, "w"):
        pass
    img.sbx.write_config("", image_dir=blocker + "/store")
    r = img.run("import", fx["plain_tar"]["source"])
    assert r.returncode == 125, r.stderr
    assert r.stderr == (f"trimo-sbx: image import '{fx['plain_tar']['source']}': image store: "
                        f"mkdir '{blocker}/store': Not a directory\n")


def test_store_is_private(img, fx, sbx):
    """The configured store ([storage] image_dir) is made 0700: as root its
    trees keep setuid binaries and device nodes."""
    img.imp(fx["plain_tar"]["source"])
    assert os.path.isdir(os.path.join(img.store, "rootfs"))
    assert stat.S_IMODE(os.stat(img.store).st_mode) == 0o700


# --- concurrency and interruption ------------------------------------------------

def test_ten_parallel_imports_unpack_once(img, fx):
    f = fx["big"]
    procs = []
    for _ in range(10):
        p = img.sbx.popen([img.sbx.bin, "image", "import", f["source"], "--json"],
                          env=img.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
        procs.append(p)
    outs = []
    first_done = None
    for p in procs:
        out, err = p.communicate(timeout=300)
        first_done = first_done or time.monotonic()
        assert p.returncode == 0, err
        outs.append(json.loads(out))
    assert {o["digest"] for o in outs} == {f["digest"]}
    assert sorted(o["imported"] for o in outs) == [False] * 9 + [True]
    # the nine others really waited for the one unpack (not vacuous: the
    # unpack takes long enough that all ten were running at once)
    slow = [o for o in outs if o["imported"]][0]
    assert slow["seconds"] > 0.3, slow
    assert max(o["seconds"] for o in outs if not o["imported"]) > 0.2
    assert len(os.listdir(os.path.join(img.tree(f["digest"]), "many"))) == f["files"]
    assert img.sub("rootfs") == [f["digest"][7:]] and img.sub("tmp") == []


def wait_for_unpack(img, hexdigest, min_entries, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for n in img.sub("tmp"):
            many = os.path.join(img.store, "tmp", n, "many")
            if n.startswith(hexdigest + ".") and os.path.isdir(many):
                if len(os.listdir(many)) >= min_entries:
                    return n
        time.sleep(0.01)
    raise AssertionError("the import never got going")


def our_processes(binary):
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.readlink(f"/proc/{p}/exe") == binary:
                    pids.append(int(p))
            except OSError:
                pass
    return pids


@pytest.mark.parametrize("cleanup", ["prune", "import"])
def test_sigkill_mid_import(img, fx, cleanup):
    f = fx["big"]
    p = img.sbx.popen([img.sbx.bin, "image", "import", f["source"]], env=img.env,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    leftover = wait_for_unpack(img, f["digest"][7:], 200)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    time.sleep(0.2)
    assert our_processes(img.sbx.bin) == []  # the decompressor died with it
    assert img.sub("rootfs") == [] and img.ls() == []
    assert img.sub("tmp") == [leftover]
    if cleanup == "prune":
        r = img.run("prune")
        assert (r.returncode, r.stdout) == (0, "removed 0 images (0 B) and 1 leftovers of "
                                               "interrupted imports\n")
        assert img.sub("tmp") == []
    else:
        out = img.imp(f["source"])
        assert out["imported"] is True
        assert img.sub("tmp") == []
        assert len(os.listdir(os.path.join(img.tree(f["digest"]), "many"))) == f["files"]


def test_progress_line_on_a_tty(img, fx):
    def run_on_pty(source):
        master, slave = pty.openpty()
        t0 = time.monotonic()
        p = img.sbx.popen([img.sbx.bin, "image", "import", source], env=img.env,
                          stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        err = b""
        while True:
            r, _, _ = select.select([master], [], [], 60)
            if not r:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
        out = p.communicate(timeout=60)[0]
        os.close(master)
        return p.returncode, out, err.decode(), time.monotonic() - t0

    rc, out, err, _ = run_on_pty(fx["oci_layered"]["source"])
    assert rc == 0 and err == ""  # quick imports stay quiet
    rc, out, err, took = run_on_pty(fx["big"]["source"])
    assert rc == 0 and out.decode() == fx["big"]["digest"] + "\n"
    if took < 1.5:
        pytest.skip(f"the import took {took:.2f} s here; the line appears after 1 s")
    assert "\r\x1b[Kimporting: layer 1/1  " in err and " MB/s" in err
    assert err.endswith("\r\x1b[K")  # and is cleared at the end


def test_disk_full_publishes_nothing(img, fx, sbx):
    """ENOSPC mid-import: a runtime error (125), nothing published, the
    partial tree removed.  The store is a 2 MB tmpfs mounted in a private
    mount namespace (the user's own user namespace for the rootless half:
    root there, but without the full id map it still unpacks rootless)."""
    store = os.path.join(sbx.tmp, "small")
    os.makedirs(store)
    sbx.chown(store)
    script = ('mount -t tmpfs -o size=2m tmpfs "$S" && "$B" image import --store "$S" "$SRC"; rc=$?; '
              'echo "rootfs=$(ls -A "$S/rootfs") tmp=$(ls -A "$S/tmp")"; exit $rc')
    flags = "-Urm" if sbx.rootless else "-m"
    r = sbx.cmd(["unshare", flags, "sh", "-c", script],
                env={"S": store, "B": sbx.bin, "SRC": fx["big"]["source"]}, timeout=120)
    assert r.returncode == 125, r.stderr
    assert r.stderr.startswith(f"trimo-sbx: image import '{fx['big']['source']}': entry 'many/")
    assert r.stderr.endswith(": No space left on device\n"), r.stderr
    assert r.stdout == "rootfs= tmp=\n"
