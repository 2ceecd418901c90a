"""Git through `launch` (issue 6): the workspace made at launch, pushes from
the agent through the supervisor's push socket, auto-commit on exit and on
interval, push = on-exit / manual, `trimo-sbx push`, `trimo-sbx diff`,
inspect, followup, and the host's secrets.  As root and as the test user."""
import json
import os
import shutil
import time

import pytest

from gitfix import gitenv, git_rootfs, git_tools, inodes  # noqa: F401 (fixtures)


class GitTasks:
    def __init__(self, g):
        self.g = g
        self.sbx = g.sbx
        self.sbx.write_config("[orchestrator]\nmax_parallel = 8\nmemory_reserve = 64M\n"
                              "default_memory = 64M\n")

    def task_file(self, command, repo="", name="demo", rootfs=None, task=""):
        body = (f"[task]\nname = {name}\ncommand = {command}\n{task}"
                f"[image]\nsource = dir:{rootfs or self.g.rootfs}\n"
                f"[repo]\npath = {self.g.host}\nbase = main\n{repo}")
        path = os.path.join(self.sbx.tmp, f"{name}.ini")
        with open(path, "w") as f:
            f.write(body)
        self.sbx.chown(path)
        return path

    def launch(self, command, repo="", *args, env=None, **kw):
        r = self.sbx.run("launch", *args, self.task_file(command, repo, **kw), env=env)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def wait(self, tid, code=0, timeout=120):
        r = self.sbx.run("wait", tid, timeout=timeout)
        assert r.returncode == code, (r.stdout, r.stderr, self.log(tid))
        return r

    def log(self, tid):
        return self.sbx.run("logs", tid).stdout

    def inspect(self, tid):
        r = self.sbx.run("inspect", tid)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def folder(self, tid):
        return os.path.join(self.sbx.state_dir, "tasks", tid)


@pytest.fixture
def tasks(gitenv):
    return GitTasks(gitenv)


AGENT = ("git config user.name Agent && git config user.email a@example.com && "
         "echo work > work.txt && git add work.txt && git commit -qm 'agent work' && git push")


def test_launch_clone_push_on_exit(tasks):
    g = tasks.g
    tid = tasks.launch(AGENT, "push = on-exit\n")
    tasks.wait(tid)
    ws = os.path.join(tasks.folder(tid), "workspace")
    head = g.git("rev-parse", "HEAD", cwd=ws)
    assert g.git("log", "-1", "--format=%s", head) == "agent work"
    assert g.tip("refs/heads/trimo/demo") == head
    assert g.remote_tip("trimo/demo") == head
    log = tasks.log(tid)
    assert "saved on the host; the host pushes it to its remote after the run" in log
    assert "push from the sandbox: trimo/demo" in log and "accepted" in log
    assert "git: pushing trimo/demo to origin (push = on-exit)" in log
    assert "pushed trimo/demo" in log
    info = tasks.inspect(tid)
    assert info["git"]["sandbox"]["ok"] and info["git"]["remote"]["ok"]
    assert info["config"]["repo"]["push"] == "on-exit"
    assert not inodes(os.path.join(g.host, ".git")) & inodes(ws)


def test_launch_refuses_existing_branch(tasks):
    g = tasks.g
    g.git("branch", "trimo/demo")
    path = tasks.task_file("true")
    r = tasks.sbx.run("launch", path)
    assert r.returncode == 2
    assert "branch trimo/demo already exists in the host repository" in r.stderr
    assert "--reuse-branch" in r.stderr
    tasks_dir = os.path.join(tasks.sbx.state_dir, "tasks")
    assert not os.path.isdir(tasks_dir) or os.listdir(tasks_dir) == []
    tid = tasks.launch("git log -1 --format=%s", "", "--reuse-branch")
    tasks.wait(tid)
    assert "initial" in tasks.log(tid)


def test_launch_refuses_auto_commit_without_git(tasks, tmp_path):
    nogit = tmp_path / "nogit"
    shutil.copytree(os.path.join(tasks.g.rootfs, "bin"), nogit / "bin", symlinks=True)
    os.chmod(tmp_path, 0o755)
    path = tasks.task_file("true", "auto_commit = exit\n", rootfs=str(nogit))
    r = tasks.sbx.run("launch", path)
    assert r.returncode == 2
    assert "[repo] auto_commit: the image has no git" in r.stderr
    assert tasks.g.tip("refs/heads/trimo/demo") is None


def test_auto_commit_on_exit(tasks):
    g = tasks.g
    tid = tasks.launch("echo a > a.txt; mkdir -p sub; echo b > sub/b.txt",
                       "auto_commit = exit\npush = on-exit\nauthor = Robo <robo@example.com>\n")
    tasks.wait(tid)
    assert g.git("log", "-1", "--format=%an <%ae>|%s", "refs/heads/trimo/demo") == \
        "Robo <robo@example.com>|trimo-sbx: auto-commit of task demo (run 1, exit)"
    files = g.git("ls-tree", "-r", "--name-only", "refs/heads/trimo/demo").split()
    assert "a.txt" in files and "sub/b.txt" in files
    assert g.remote_tip("trimo/demo") == g.tip("refs/heads/trimo/demo")


def test_auto_commit_interval(tasks):
    g = tasks.g
    tid = tasks.launch("echo early > early.txt; sleep 14; echo late > late.txt",
                       "auto_commit = 10s\n")
    deadline = time.time() + 40
    while time.time() < deadline:
        msg = g.git("log", "-1", "--format=%s", "refs/heads/trimo/demo")
        if "interval" in msg:
            break
        time.sleep(0.5)
    assert msg == "trimo-sbx: auto-commit of task demo (run 1, interval)"
    files = g.git("ls-tree", "-r", "--name-only", "refs/heads/trimo/demo").split()
    assert "early.txt" in files and "late.txt" not in files
    tasks.wait(tid)
    assert g.git("log", "-1", "--format=%s", "refs/heads/trimo/demo") == \
        "trimo-sbx: auto-commit of task demo (run 1, exit)"
    assert "late.txt" in g.git("ls-tree", "-r", "--name-only", "refs/heads/trimo/demo")
    assert "git: interval auto-commit" in tasks.log(tid)


def test_manual_push_and_diff(tasks):
    g = tasks.g
    tid = tasks.launch("git config user.name A && git config user.email a@x && "
                       "echo c > committed.txt && git add -A && git commit -qm committed && "
                       "echo u >> README && echo n > new.txt", "push = manual\n")
    tasks.wait(tid)
    # the agent did not push: the sync after the run brought its commit
    assert g.git("log", "-1", "--format=%s", "refs/heads/trimo/demo") == "committed"
    assert g.remote_tip("trimo/demo") is None
    r = tasks.sbx.run("diff", tid)
    assert r.returncode == 0, r.stderr
    host, _, local = r.stdout.partition("## uncommitted in the workspace\n")
    assert "## trimo/demo against main, as the host has it" in host
    assert "+++ b/committed.txt" in host
    assert "+u" in local and "untracked: new.txt" in local
    r = tasks.sbx.run("diff", "--stat", tid)
    assert "committed.txt | 1 +" in r.stdout and "README | 1 +" in r.stdout
    r = tasks.sbx.run("push", tid)
    assert r.returncode == 0, r.stderr
    assert "pushed trimo/demo" in r.stdout
    assert g.remote_tip("trimo/demo") == g.tip("refs/heads/trimo/demo")
    assert tasks.inspect(tid)["git"]["remote"]["ok"]


def test_policy_through_launch(tasks):
    g = tasks.g
    tid = tasks.launch("git config user.name A && git config user.email a@x && "
                       "echo x > x && git add x && git commit -qm x && "
                       "git push origin HEAD:main; git push --dry-run; "
                       "git push origin :trimo/demo; true")
    tasks.wait(tid)
    log = tasks.log(tid)
    assert "main is protected by trimo-sbx policy" in log
    assert "dry run: the host would accept this update" in log
    assert "deleting branches is refused by trimo-sbx policy" in log
    assert g.remote_tip("main") == g.tip("refs/heads/main", repo=g.remote)
    assert g.remote_tip("trimo/demo") is None


def test_followup_continues_the_branch(tasks):
    g = tasks.g
    tid = tasks.launch("echo $TRIMO_RUN > run-$TRIMO_RUN.txt", "auto_commit = exit\n")
    tasks.wait(tid)
    first = g.tip("refs/heads/trimo/demo")
    r = tasks.sbx.run("followup", tid, "--prompt", "more")
    assert r.returncode == 0, r.stderr
    tasks.wait(tid)
    assert g.git("rev-parse", "refs/heads/trimo/demo~1") == first
    assert "(run 2, exit)" in g.git("log", "-1", "--format=%s", "refs/heads/trimo/demo")


def test_no_secrets_through_launch(tasks):
    canary = "trimo-canary-launch-51c2"
    for name, text in ((".git-credentials", f"https://u:{canary}@example.com\n"),
                       (".ssh/id_ed25519", canary)):
        p = os.path.join(tasks.sbx.home, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        tasks.sbx.chown(os.path.dirname(p))
        tasks.sbx.chown(p)
    env = {"SSH_AUTH_SOCK": f"/tmp/{canary}", "GIT_ASKPASS": canary, "GITHUB_TOKEN": canary,
           "PASSED_ON": "visible"}
    tid = tasks.launch(AGENT + "; env; cat /proc/*/environ | tr '\\0' '\\n'; "
                       "for d in $(ls / | grep -v -e '^proc$' -e '^sys$' -e '^dev$' "
                       f"-e '^usr$' -e '^lib$'); do grep -rl {canary} /$d; done; true",
                       env=env, task="pass_env = PASSED_ON\n")
    tasks.wait(tid)
    log = tasks.log(tid)
    assert "PASSED_ON=visible" in log
    assert canary not in log
    assert "SSH_AUTH_SOCK" not in log and "GIT_ASKPASS" not in log
    assert tasks.g.tip("refs/heads/trimo/demo") == \
        tasks.g.git("rev-parse", "HEAD", cwd=os.path.join(tasks.folder(tid), "workspace"))
