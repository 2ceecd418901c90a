"""[network] of a launched task: the egress allowlist proxy, its log lines
in the task log and its counts in inspect.  As root and as the user."""
import json
import os

from test_launch import Tasks  # noqa: F401  (the fixture's class)
from test_network import Server, proxy_script

import pytest


@pytest.fixture
def tasks(sbx, rootfs):
    return Tasks(sbx, rootfs)


def test_allowlist_task(tasks, tmp_path):
    allowed = Server("127.0.0.1")
    other = Server("127.0.0.2")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 allowed.test\n127.0.0.2 other.test\n")
    os.chmod(hosts, 0o644)
    os.chmod(tmp_path, 0o755)
    a, o = allowed.port, other.port
    script = proxy_script([f"CONNECT allowed.test:{a} HTTP/1.1\r\n\r\nhello\n",
                           f"CONNECT other.test:{o} HTTP/1.1\r\n\r\n"])
    try:
        path = tasks.task_file("egress", f"'{script}'", extra=f"[network]\nallow = allowed.test:{a}\n")
        # the command is one line for sh -c; quote it as task.ini keeps it
        with open(path) as f:
            body = f.read().replace(f"command = '{script}'", "command = " + script)
        with open(path, "w") as f:
            f.write(body)
        r = tasks.run("launch", path, env={"TRIMO_SBX_HOSTS_FILE": str(hosts)})
        assert r.returncode == 0, r.stderr
        tid = r.stdout.strip()
        r = tasks.run("wait", tid, timeout=60)
        log = tasks.run("logs", tid).stdout
        assert r.returncode == 0, log
        answers = log.split("\n--\n")
        assert "HTTP/1.1 200 Connection established" in answers[0] and "hello" in answers[0]
        assert "HTTP/1.1 403 Forbidden" in answers[1]
        assert f"egress refused: other.test:{o}" in log
        assert other.accepted == 0 and allowed.accepted == 1
        info = json.loads(tasks.run("inspect", tid).stdout)
        run = info["runs"][-1]
        assert (run["egress_allowed"], run["egress_refused"]) == (1, 1), run
    finally:
        allowed.close()
        other.close()
