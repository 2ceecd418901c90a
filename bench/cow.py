#!/usr/bin/python3
"""Rootfs preparation for a cached image (issue 3): `run IMAGE -- /bin/true`
for a 3 MB busybox image and for a Debian minbase (its own /bin/true)
against `run dir:` of the busybox tree, and the 3 MB image again on
fuse-overlayfs (`[storage] overlay = fuse`, the fallback where the kernel
refuses an overlay) when it is installed and /dev/fuse can be opened;
median of RUNS alternating runs, and the disk a sandbox adds (only what it
writes).  The minbase comes from bench/image-import's cache
($TRIMO_BENCH_CACHE or /var/tmp/trimo-bench-cache); without it only the
small image is measured, and the table says so."""
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SBX = os.path.join(ROOT, "bin/trimo-sbx")
RUNS = int(os.environ.get("BENCH_RUNS", "30"))
CACHE = os.environ.get("TRIMO_BENCH_CACHE", "/var/tmp/trimo-bench-cache")


def du(path):
    out = subprocess.run(["du", "-sk", path], capture_output=True, text=True).stdout
    return int(out.split()[0]) if out else 0


def main():
    base = tempfile.mkdtemp(prefix="trimo-bench-cow-", dir="/var/tmp")
    env = dict(os.environ, TRIMO_SBX_CONFIG=os.path.join(base, "config.ini"))
    fuse_env = dict(os.environ, TRIMO_SBX_CONFIG=os.path.join(base, "fuse.ini"))
    for e, extra in ((env, ""), (fuse_env, "overlay = fuse\n")):
        with open(e["TRIMO_SBX_CONFIG"], "w") as f:
            f.write(f"[storage]\nstate_dir = {base}/state\nimage_dir = {base}/images\n{extra}")
    small = os.path.join(base, "busybox")
    subprocess.run([os.path.join(ROOT, "scripts/mkrootfs"), small], check=True)
    with tarfile.open(os.path.join(base, "small.tar"), "w") as t:
        t.add(small, arcname=".")
    cases = {"dir: (busybox)": f"dir:{small}", "image 3 MB": os.path.join(base, "small.tar")}
    big_root = os.path.join(CACHE, "minbase.rootfs")
    if os.path.isdir(big_root):
        big = os.path.join(base, "big.tar")
        with tarfile.open(big, "w") as t:
            t.add(big_root, arcname=".")
        cases["image %d MB" % (os.path.getsize(big) >> 20)] = big
    envs = {k: env for k in cases}
    if shutil.which("fuse-overlayfs") and os.access("/dev/fuse", os.R_OK | os.W_OK):
        cases["image 3 MB, fuse"] = cases["image 3 MB"]
        envs["image 3 MB, fuse"] = fuse_env
    else:
        print("  (no fuse-overlayfs row: not installed, or /dev/fuse not usable)")
    for src in cases.values():  # import once: the benchmark is about a cached image
        subprocess.run([SBX, "run", src, "--", "/bin/true"], env=env, check=True)
    times = {k: [] for k in cases}
    for _ in range(RUNS):
        for k, src in cases.items():
            t = time.perf_counter()
            subprocess.run([SBX, "run", src, "--", "/bin/true"], env=envs[k], check=True)
            times[k].append((time.perf_counter() - t) * 1000)
    r = subprocess.run([SBX, "run", "--keep", cases["image 3 MB"], "--", "/bin/sh", "-c",
                        "head -c 1048576 /dev/zero > /written"], env=env, capture_output=True,
                       text=True, check=True)
    upper = r.stderr.strip().rsplit(" ", 1)[1]
    print(f"run IMAGE -- /bin/true, median of {RUNS} (ms), kernel {os.uname().release}")
    for k, v in times.items():
        print(f"  {k:<18} {statistics.median(v):7.2f}")
    med = {k: statistics.median(v) for k, v in times.items()}
    imgs = [k for k in med if k.startswith("image") and "fuse" not in k]
    if len(imgs) == 2:
        print(f"  large / small image: {med[imgs[1]] / med[imgs[0]]:.2f}x (goal: within 1.2x)")
    else:
        print(f"  no large image: {big_root} is missing (run bench/image-import first)")
    print(f"  added over dir: {med['image 3 MB'] - med['dir: (busybox)']:.2f} ms (goal: < 2 ms)")
    if "image 3 MB, fuse" in med:
        print(f"  fuse-overlayfs over the kernel's overlay: "
              f"+{med['image 3 MB, fuse'] - med['image 3 MB']:.2f} ms")
    print(f"  disk of a sandbox that wrote 1 MiB: {du(os.path.dirname(upper))} KiB")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
