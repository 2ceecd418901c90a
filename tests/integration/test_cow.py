"""Copy-on-write per sandbox (issue 3): a stored image is the read-only
lower layer; each sandbox writes into a private layer of its own; the store
never changes.  As root and as the unprivileged user."""
import hashlib
import os
import signal
import subprocess
import tarfile
import time

import pytest


@pytest.fixture(scope="session")
def image_tar(rootfs, tmp_path_factory):
    """The probe rootfs as a plain .tar.gz image."""
    d = tmp_path_factory.mktemp("cow-image")
    path = str(d / "probe-image.tar.gz")
    with tarfile.open(path, "w:gz") as t:
        t.add(rootfs, arcname=".")
    p = d
    while str(p) != "/":
        os.chmod(p, os.stat(p).st_mode | 0o005)
        p = p.parent
    os.chmod(path, 0o644)
    return path


def tree_digest(root):
    h = hashlib.sha256()
    for dirpath, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for n in sorted(files) + dirs:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            h.update(f"{os.path.relpath(p, root)} {st.st_mode} {st.st_size}\n".encode())
    return h.hexdigest()


def run(sbx, image, *args, **kw):
    return sbx.run("run", *kw.pop("opts", ()), image, "--", "/bin/sh", "-c", *args, **kw)


def store_tree(sbx):
    roots = os.path.join(sbx.image_dir, "rootfs")
    (only,) = os.listdir(roots)
    return os.path.join(roots, only)


def test_writes_go_to_a_private_layer(sbx, image_tar):
    r = run(sbx, image_tar, "echo hi > /etc/new && rm -rf /root /etc/passwd && rm -r /sbin && "
            "cat /etc/new && ls /sbin 2>&1 | head -1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "hi"  # removing lower folders works (userxattr)
    tree = store_tree(sbx)
    before = tree_digest(tree)
    r = run(sbx, image_tar, "ls /etc/new 2>&1; ls /etc/passwd")
    assert "No such file" in r.stdout.splitlines()[0]  # the next sandbox starts clean
    assert r.stdout.splitlines()[1] == "/etc/passwd"
    assert tree_digest(tree) == before
    assert not os.path.exists(os.path.join(tree, "etc/new"))
    assert os.listdir(os.path.join(sbx.state_dir, "run")) == []  # the layer is gone


def test_two_sandboxes_do_not_see_each_others_writes(sbx, image_tar):
    a = sbx.popen([sbx.bin, "run", image_tar, "--", "/bin/sh", "-c",
                   "echo A > /etc/mine && echo ready && sleep 5 && cat /etc/mine"],
                  stdout=subprocess.PIPE, text=True)
    assert a.stdout.readline().strip() == "ready"
    b = run(sbx, image_tar, "cat /etc/mine 2>&1; echo B > /etc/mine; cat /etc/mine")
    assert b.stdout.split("\n")[1:3] == ["B", ""] or b.stdout.splitlines()[-1] == "B"
    assert "No such file" in b.stdout.splitlines()[0]
    out, _ = a.communicate(timeout=30)
    assert out.strip().splitlines()[-1] == "A"


def test_read_only_and_keep(sbx, image_tar):
    r = run(sbx, image_tar, "touch /etc/x", opts=["--read-only"])
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    r = run(sbx, image_tar, "echo kept > /kept", opts=["--keep", "--name", "keeper"])
    assert r.returncode == 0, r.stderr
    line = [x for x in r.stderr.splitlines() if "kept its writable layer" in x][0]
    upper = line.rsplit(" ", 1)[1]
    with open(os.path.join(upper, "kept")) as f:
        assert f.read() == "kept\n"
    # a later run leaves a kept layer alone
    run(sbx, image_tar, "true")
    assert os.path.exists(os.path.join(upper, "kept"))
    r = run(sbx, image_tar, "true", opts=["--rw"])
    assert r.returncode == 2
    assert "--rw writes a dir: image in place" in r.stderr


def test_leftover_of_a_killed_runner_is_swept(sbx, image_tar):
    p = sbx.popen([sbx.bin, "run", "--name", "victim", image_tar, "--", "/bin/sh", "-c",
                   "echo x > /big && echo ready && sleep 60"], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    rundir = os.path.join(sbx.state_dir, "run")
    (left,) = os.listdir(rundir)
    assert left.startswith("victim-")
    p.send_signal(signal.SIGKILL)
    p.wait()
    time.sleep(0.2)
    assert os.listdir(rundir) == [left]  # nobody removed it ...
    r = run(sbx, image_tar, "true")
    assert r.returncode == 0, r.stderr
    assert os.listdir(rundir) == []  # ... until the next run


def test_image_rm_refused_while_a_sandbox_uses_it(sbx, image_tar):
    p = sbx.popen([sbx.bin, "run", image_tar, "--", "/bin/sh", "-c", "echo ready; sleep 30"],
                  stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    digest = "sha256:" + os.path.basename(store_tree(sbx))
    r = sbx.run("image", "rm", digest)
    assert r.returncode == 125
    assert "is in use by pid" in r.stderr
    p.kill()
    p.wait()
    r = sbx.run("image", "rm", digest)
    assert r.returncode == 0, r.stderr


def test_bad_image_sources(sbx, tmp_path):
    r = sbx.run("run", "/nonexistent/image.tar", "--", "/bin/true")
    assert r.returncode == 2
    assert r.stderr.startswith("trimo-sbx: image '/nonexistent/image.tar': ")
    junk = os.path.join(sbx.tmp, "junk.tar")
    with open(junk, "w") as f:
        f.write("not a tar archive")
    sbx.chown(junk)
    r = sbx.run("run", junk, "--", "/bin/true")
    assert r.returncode == 2
    assert r.stderr.startswith(f"trimo-sbx: image '{junk}': not a tar archive")
    assert not os.path.exists(os.path.join(sbx.image_dir, "rootfs")) or \
        os.listdir(os.path.join(sbx.image_dir, "rootfs")) == []
