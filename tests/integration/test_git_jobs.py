"""Git (issue 6): the jobs the supervisor runs with the image's git inside
a sandbox (auto-commit, syncing the branch to the host, uncommitted
changes), the on-exit and manual pushes, diff, and the image check.
Driven through `trimo-sbx __git-job` with every setting on its command
line (the supervisor gives it the task folder instead)."""
import json
import os
import pty
import shutil
import subprocess
import time

from gitfix import gitenv, git_rootfs, git_tools  # noqa: F401 (fixtures)


def log_of(g, ref="refs/heads/trimo/demo", fmt="%an <%ae>|%s"):
    return g.git("log", "-1", f"--format={fmt}", ref)


def test_auto_commit_on_exit_and_push(gitenv):
    g = gitenv
    g.make_workspace()
    # the agent leaves changes behind without committing
    r = g.agent("echo feature > feature.txt && echo changed >> README && "
                "printf 'secret.env\\n' > .gitignore && echo KEY=1 > secret.env")
    assert r.returncode == 0, r.stderr
    r = g.job("after-run", "--run", "1")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "git: auto-commit and sync after run 1" in out
    assert "auto-commit: " in out and "trimo-sbx: auto-commit of task demo (run 1, exit)" in out
    assert "push from the sandbox: trimo/demo" in out and "accepted" in out
    assert "git: pushing trimo/demo to origin (push = on-exit)" in out
    assert "pushed trimo/demo" in out
    assert log_of(g) == "trimo-sbx <trimo-sbx@localhost>|trimo-sbx: auto-commit of task " \
                        "demo (run 1, exit)"
    files = g.git("ls-tree", "-r", "--name-only", "refs/heads/trimo/demo").split()
    assert "feature.txt" in files and ".gitignore" in files
    assert "secret.env" not in files  # .gitignore respected
    assert g.remote_tip("trimo/demo") == g.tip("refs/heads/trimo/demo")
    # the workspace's own branch has the commit too: it was made there
    assert g.git("rev-parse", "HEAD", cwd=g.ws) == g.tip("refs/heads/trimo/demo")
    rec = json.load(open(g.record))
    assert rec["sandbox"]["ok"] and rec["remote"]["ok"]
    # nothing changed: no new commit
    tip = g.tip("refs/heads/trimo/demo")
    r = g.job("after-run", "--run", "2")
    assert "auto-commit: nothing to commit" in r.stdout
    assert g.tip("refs/heads/trimo/demo") == tip
    # the job's folder is gone
    assert not [n for n in os.listdir(g.base) if n.startswith("git-job-")]


def test_auto_commit_author(gitenv):
    g = gitenv
    g.make_workspace()
    g.agent("echo x > x.txt")
    r = g.job("commit", "--run", "3", "--why", "interval", "--author-name", "Robo Coder",
              "--author-email", "robo@example.com")
    assert r.returncode == 0, r.stderr + r.stdout
    assert log_of(g) == "Robo Coder <robo@example.com>|trimo-sbx: auto-commit of task demo " \
                        "(run 3, interval)"


def test_auto_commit_while_the_agent_runs(gitenv):
    """Interval commits run in a second sandbox over the same workspace
    while the agent's own sandbox still runs."""
    g = gitenv
    g.make_workspace()
    opts = ["--bind", f"{g.ws}:/workspace", "-w", "/workspace"]
    agent = g.sbx.popen([g.sbx.bin, "run", *opts, f"dir:{g.rootfs}", "--", "/bin/sh", "-c",
                         "echo early > early.txt; sleep 3; echo late > late.txt"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            if os.path.exists(os.path.join(g.ws, "early.txt")):
                break
            time.sleep(0.05)
        r = g.job("commit", "--run", "1", "--why", "interval")
        assert r.returncode == 0, r.stderr + r.stdout
        files = g.git("ls-tree", "-r", "--name-only", "refs/heads/trimo/demo").split()
        assert "early.txt" in files and "late.txt" not in files
    finally:
        assert agent.wait(timeout=60) == 0


def test_auto_commit_skips_other_branch(gitenv):
    g = gitenv
    g.make_workspace()
    g.agent("git checkout -q -b elsewhere && echo y > y.txt")
    r = g.job("after-run", "--run", "1")
    assert "auto-commit skipped: HEAD is refs/heads/elsewhere, not trimo/demo" in r.stdout
    assert g.tip("refs/heads/trimo/demo") == g.tip("refs/heads/main")


def test_sync_without_auto_commit(gitenv):
    """auto_commit off: the agent's own commits still reach the host after
    the run (push = manual: not the remote)."""
    g = gitenv
    g.make_workspace()
    r = g.agent("echo z > z.txt && git add z.txt && git commit -qm 'agent commit'")
    assert r.returncode == 0, r.stderr
    r = g.job("after-run", "--run", "1", push_mode="manual", auto_commit="off")
    assert r.returncode == 0
    assert "git: sync after run 1" in r.stdout
    assert "`trimo-sbx push` sends it to the host's remote (push = manual)" in r.stdout
    assert log_of(g, fmt="%s") == "agent commit"
    assert g.remote_tip("trimo/demo") is None
    # `trimo-sbx push ID`
    r = g.job("push", push_mode="manual", auto_commit="off")
    assert r.returncode == 0, r.stderr
    assert g.remote_tip("trimo/demo") == g.tip("refs/heads/trimo/demo")


def test_manual_push_syncs_first(gitenv):
    g = gitenv
    g.make_workspace()
    g.agent("echo m > m.txt && git add m.txt && git commit -qm 'not pushed by the agent'")
    r = g.job("push", push_mode="manual", auto_commit="off")
    assert r.returncode == 0, r.stderr
    assert g.remote_tip("trimo/demo") == g.git("rev-parse", "HEAD", cwd=g.ws)
    assert "pushed trimo/demo" in r.stdout


def test_sync_refuses_rewritten_history(gitenv):
    g = gitenv
    g.make_workspace()
    g.agent("echo 1 > a && git add a && git commit -qm one")
    assert g.job("push", push_mode="manual", auto_commit="off").returncode == 0
    tip = g.tip("refs/heads/trimo/demo")
    g.agent("git commit -q --amend -m rewritten")
    r = g.job("after-run", "--run", "2", push_mode="manual", auto_commit="off")
    assert "pushing trimo/demo to the host failed" in r.stdout
    assert g.tip("refs/heads/trimo/demo") == tip


def test_diff(gitenv):
    g = gitenv
    g.make_workspace()
    g.agent("echo pushed > pushed.txt && git add -A && git commit -qm pushed && "
            "echo uncommitted >> README && echo new > untracked.txt")
    assert g.job("push", push_mode="manual", auto_commit="off").returncode == 0
    r = g.job("diff")
    assert r.returncode == 0, r.stderr
    host, _, local = r.stdout.partition("## uncommitted in the workspace\n")
    assert host.startswith("## trimo/demo against its base, as the host has it\n")
    assert "+++ b/pushed.txt" in host and "uncommitted" not in host
    assert "+uncommitted" in local
    assert "untracked: untracked.txt" in local
    r = g.job("stat")
    assert "pushed.txt | 1 +" in r.stdout
    assert "README | 1 +" in r.stdout
    # diff reads the workspace only in a sandbox: nothing changed there
    assert g.git("status", "--porcelain", cwd=g.ws) == " M README\n?? untracked.txt".strip() \
        or "untracked.txt" in g.git("status", "--porcelain", cwd=g.ws)


def test_diff_on_a_terminal_drops_escapes(gitenv):
    g = gitenv
    g.make_workspace()
    g.agent("printf 'title\\033]0;pwned\\007 \\033[2J\\n' >> README")
    argv = g.sbx.argv([g.tools["trimo-sbx"], "__git-job", "diff", "--task-dir", g.base,
                       "--repo", g.host,
                       "--branch", g.branch, "--rootfs", g.rootfs])
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, g.sbx.env())
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    assert b"+title" in out
    assert b"\x1b" not in out and b"\x07" not in out
    assert b"+title?]0;pwned? ?[2J" in out


def test_image_without_git(gitenv, tmp_path):
    g = gitenv
    r = g.job("check-image")
    assert r.returncode == 0, r.stderr
    bare = tmp_path / "nogit"
    shutil.copytree(os.path.join(g.rootfs, "bin"), bare / "bin", symlinks=True)
    os.chmod(tmp_path, 0o755)
    r = g.job("check-image", "--rootfs", str(bare))
    assert r.returncode == 2
    assert "[repo] auto_commit: the image has no git" in r.stderr
    # auto_commit off: no git needed
    r = g.job("check-image", "--rootfs", str(bare), auto_commit="off")
    assert r.returncode == 0


def test_git_dir_symlink_job(gitenv):
    """.git replaced by a symlink to the host repository: the jobs run the
    image's git inside, where the link points nowhere; the host repository
    stays as it was."""
    g = gitenv
    g.make_workspace()
    g.agent(f"mv .git .git-real && ln -s {g.host}/.git .git && echo x > x.txt")
    before = g.git("for-each-ref")
    head = g.git("rev-parse", "HEAD")
    r = g.job("after-run", "--run", "1", push_mode="manual")
    assert "git: the workspace is not a git repository any more" in r.stdout
    assert g.git("for-each-ref") == before
    assert g.git("rev-parse", "HEAD") == head
    assert g.git("status", "--porcelain") == ""


def test_hostile_hooks_in_jobs(gitenv, tmp_path):
    """Hooks, filters and fsmonitor the agent configured run, if at all,
    inside the job's sandbox: never on the host."""
    g = gitenv
    g.make_workspace()
    markers = tmp_path / "m"
    markers.mkdir()
    os.chmod(tmp_path, 0o755)
    g.sbx.chown(str(markers))
    hook = f"#!/bin/sh\ntouch {markers}/hook; touch /workspace/hook-ran-inside\n"
    r = g.agent(f"mkdir -p .git/hooks && printf '{hook}' > .git/hooks/pre-commit && "
                "chmod +x .git/hooks/pre-commit && "
                f"git config core.fsmonitor 'touch {markers}/fsmonitor' && "
                f"git config filter.x.clean 'touch {markers}/filter; cat' && "
                "echo '*.txt filter=x' > .gitattributes && echo data > d.txt")
    assert r.returncode == 0, r.stderr
    r = g.job("after-run", "--run", "1")
    assert r.returncode == 0
    assert "d.txt" in g.git("ls-tree", "-r", "--name-only", "refs/heads/trimo/demo")
    assert os.listdir(markers) == []
