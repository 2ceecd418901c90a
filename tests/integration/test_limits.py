"""Resource caps (issue 4): memory, CPU and pids limits in a cgroup per
sandbox, OOM reporting, accounting; as root and as the unprivileged user
(through a delegated cgroup).  Every hog here also carries its own
RLIMIT_AS (ulimit -v) or a small fork count, and a timeout, so a cap that
was silently not applied fails the test instead of hurting the machine."""
import os
import re
import subprocess

import pytest

from conftest import cgroup2_only

pytestmark = pytest.mark.cgroup

STATS = re.compile(r"wall (?P<wall>[\d.]+)s, cpu (?P<cpu>[\d.]+)s, memory peak (?P<peak>\S+) "
                   r"of (?P<cap>\S+), oom kills (?P<ooms>\d+), pids peak (?P<pids>\d+), "
                   r"cpu throttled (?P<thr>\d+) times")


def stats(stderr):
    m = STATS.search(stderr)
    assert m, stderr
    return m.groupdict()


def leftovers():
    """trimo-* cgroups anywhere we may create them."""
    out = []
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids",
                 "/sys/fs/cgroup/cpu"):
        for d, dirs, files in os.walk(base):
            out += [os.path.join(d, x) for x in dirs
                    if re.fullmatch(r"trimo-.*-[0-9a-f]{8}|trimo-runner-\d+", x)]
    return out


def run(sbx, rootfs, *opts, cmd, timeout=60):
    return sbx.run("run", "--name", "capped", *opts, f"dir:{rootfs}", "--", "/bin/sh", "-c",
                   cmd, timeout=timeout)


def test_memory_hog_is_killed_and_reported(sbx, rootfs):
    r = run(sbx, rootfs, "--memory", "64M", "--stats",
            cmd="ulimit -v 1048576; exec probe memhog 512")
    assert r.returncode == 137, r.stderr
    assert ("trimo-sbx: capped: killed by the OOM killer (memory cap 64M, peak 64M)"
            in r.stderr.splitlines()), r.stderr
    s = stats(r.stderr)
    assert int(s["ooms"]) >= 1
    assert "memhog=done" not in r.stdout


def test_agent_survives_a_childs_oom_by_default(sbx, rootfs):
    r = run(sbx, rootfs, "--memory", "64M",
            cmd="ulimit -v 1048576; probe memhog 512; echo agent-alive")
    assert r.returncode == 0, r.stderr
    assert "agent-alive" in r.stdout
    assert "memhog=done" not in r.stdout


def test_oom_kill_group_takes_everything(sbx, rootfs):
    r = run(sbx, rootfs, "--memory", "64M", "--oom-kill", "group",
            cmd="ulimit -v 1048576; probe memhog 512; echo agent-alive")
    assert r.returncode == 137, r.stderr
    assert "agent-alive" not in r.stdout


def test_forkbomb_stops_at_pids_cap(sbx, rootfs):
    r = run(sbx, rootfs, "--pids", "20", "--stats", cmd="probe forkbomb 200")
    assert r.returncode == 0, r.stderr
    forked = int(re.search(r"forked=(\d+)", r.stdout).group(1))
    assert 0 < forked < 20
    assert "fork_error=EAGAIN" in r.stdout


def test_cpu_cap_throttles(sbx, rootfs):
    r = run(sbx, rootfs, "--cpus", "0.2", "--stats", cmd="probe spin 3")
    assert r.returncode == 0, r.stderr
    s = stats(r.stderr)
    # measured from the cgroup's own usage; no lower bound: the machine is shared
    assert float(s["cpu"]) / float(s["wall"]) < 0.30, s
    assert int(s["thr"]) > 0, s


def test_sandbox_sees_its_own_limits(sbx, rootfs):
    if cgroup2_only():
        cmd = "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max"
        want = ["100663296", "77", "50000", "100000"]
    else:
        cmd = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
               "/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
        want = ["100663296", "77", "50000"]
    r = run(sbx, rootfs, "--memory", "96M", "--pids", "77", "--cpus", "0.5", cmd=cmd)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == want
    r = run(sbx, rootfs, "--memory", "96M", cmd="echo 1 > /sys/fs/cgroup/x 2>&1 || echo ro")
    assert "ro" in r.stdout


def test_no_cgroups_left_behind(sbx, rootfs):
    before = set(leftovers())
    for _ in range(3):
        run(sbx, rootfs, "--memory", "64M", cmd="true")
    run(sbx, rootfs, "--memory", "64M", cmd="ulimit -v 1048576; probe memhog 512")
    assert set(leftovers()) - before == set()


def test_no_limits_warns(sbx, rootfs):
    r = run(sbx, rootfs, "--no-limits", "--stats", cmd="true")
    assert r.returncode == 0, r.stderr
    assert ("trimo-sbx: warning: capped runs without resource limits (no memory, CPU or "
            "pids cap)") in r.stderr


def test_rootless_without_delegation_fails_with_the_fix(sbx, rootfs):
    if not sbx.rootless:
        pytest.skip("a root runner always may create cgroups")
    sbx.cgroup = None
    sbx.write_config("")  # no [cgroups] parent
    # started outside the delegated cgroup too (v2: a session scope's place)
    argv = sbx.argv([sbx.bin, "run", "--memory", "64M", f"dir:{rootfs}", "--", "/bin/true"],
                    cgroup_leaf=False)
    r = subprocess.run(argv, env=sbx.env(), capture_output=True, text=True, timeout=60,
                       cwd=sbx.tmp)
    assert r.returncode == 125, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert re.match(r"trimo-sbx: cgroup v[12]: ", lines[0]), lines[0]
    assert "--no-limits" in lines[0]
    assert "Fix:" in lines[0]
