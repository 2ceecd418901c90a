"""runtime/network's own driver (tests/unit/test_network_real.c) against
real namespaces, pasta and slirp4netns, as root and as the test user (with
a tun node prepared by root, see test_network.py): the nat, publish, host
loopback, PDEATHSIG and in-namespace proxy behaviour before the wiring
into `trimo-sbx run`."""
import os
import shutil
import subprocess

import pytest

from test_network import run_with_tun, tun_ok_for

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DRIVER = os.path.join(REPO, "build", "tests", "test_network_real")


@pytest.fixture(scope="session")
def driver(tools):
    if not os.path.exists(DRIVER):
        subprocess.run(["make", "-C", REPO, "build/tests/test_network_real"], check=True,
                       capture_output=True)
    dst = os.path.join(tools["dir"], "test_network_real")
    shutil.copy2(DRIVER, dst)
    os.chmod(dst, 0o755)
    return dst


def test_network_driver(sbx, driver):
    why = tun_ok_for(sbx)
    if why:
        pytest.skip(why)
    r = run_with_tun(sbx, [driver], env={"TRIMO_NET_REAL": "1"}, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "FAILED" not in out, out
    # everything ran: only test_no_tun (for users without tun) may skip
    assert "SKIPPED ] 1 test(s)" in out and "SKIPPED ] test_no_tun" in out, out


def test_no_tun_error(sbx, driver):
    """Without tun access (the user, no node prepared): the error names the
    cause and the fix."""
    if not sbx.rootless:
        pytest.skip("root can open /dev/net/tun")
    if os.stat("/dev/net/tun").st_mode & 0o006:
        pytest.skip("/dev/net/tun is open to every user here")
    r = sbx.cmd([driver], env={"TRIMO_NET_REAL": "1"}, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "[       OK ] test_no_tun" in out, out
