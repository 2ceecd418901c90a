"""Git (issue 6): the workspace, pushes from inside a sandbox through
git-remote-trimo and the host's receiver, the policy as the agent sees
it, and the host's push to its remote.  Real git inside the sandbox; a
local bare repository as the remote.  As root and as the test user."""
import json
import os

import pytest

from gitfix import gitenv, git_rootfs, git_tools, inodes  # noqa: F401 (fixtures)


def commit(path="work.txt", text="work\n", msg="agent work"):
    return f"echo '{text}' >> {path} && git add -A && git commit -qm '{msg}'\n"


# ---- the workspace ---------------------------------------------------------

def test_workspace_clone(gitenv):
    g = gitenv
    r = g.make_workspace()
    base = g.tip("refs/heads/main")
    assert f"base main {base}" in r.stdout
    assert f"branch trimo/demo {base}" in r.stdout
    # a real .git folder, the task branch checked out, origin is trimo::origin
    assert os.path.isdir(os.path.join(g.ws, ".git"))
    assert not os.path.islink(os.path.join(g.ws, ".git"))
    assert g.git("symbolic-ref", "HEAD", cwd=g.ws) == "refs/heads/trimo/demo"
    assert g.git("config", "remote.origin.url", cwd=g.ws) == "trimo::origin"
    assert g.git("config", "branch.trimo/demo.merge", cwd=g.ws) == "refs/heads/trimo/demo"
    with open(os.path.join(g.ws, "README")) as f:
        assert f.read() == "hello\n"
    # the branch exists on the host at the base; nothing of the host's
    # config (its remote URL) reached the workspace
    assert g.tip("refs/heads/trimo/demo") == base
    with open(os.path.join(g.ws, ".git", "config")) as f:
        assert g.remote not in f.read()
    assert not os.path.exists(os.path.join(g.ws, ".git", "objects", "info", "alternates"))
    # the workspace belongs to whoever runs the task
    assert os.stat(os.path.join(g.ws, ".git", "HEAD")).st_uid == g.sbx.uid


def test_workspace_shares_no_inode(gitenv):
    g = gitenv
    g.git("gc", "-q")  # packs and loose objects both are candidates for hardlinks
    g.make_workspace()
    shared = inodes(os.path.join(g.host, ".git")) & inodes(g.ws)
    assert not shared
    for root, _, files in os.walk(os.path.join(g.ws, ".git", "objects")):
        for n in files:
            assert os.lstat(os.path.join(root, n)).st_nlink == 1


def test_workspace_existing_branch(gitenv):
    g = gitenv
    g.git("branch", "trimo/demo")
    g.git("commit", "-q", "--allow-empty", "-m", "later on main")
    r = g.helper("workspace", "--repo", g.host, "--dest", g.ws, "--branch", "trimo/demo")
    assert r.returncode != 0
    assert "branch trimo/demo already exists in the host repository" in r.stderr
    assert "--reuse-branch" in r.stderr
    assert not os.path.exists(g.ws)
    # --reuse-branch continues it where it is, not at the base
    old = g.tip("refs/heads/trimo/demo")
    r = g.make_workspace("--reuse-branch")
    assert g.git("rev-parse", "HEAD", cwd=g.ws) == old
    assert old != g.tip("refs/heads/main")


def test_workspace_bad_base(gitenv):
    g = gitenv
    r = g.helper("workspace", "--repo", g.host, "--dest", g.ws, "--branch", "trimo/demo",
                 "--base", "nope")
    assert r.returncode != 0
    assert "[repo] base: branch 'nope' does not exist in the host repository" in r.stderr
    assert not os.path.exists(g.ws)
    assert g.tip("refs/heads/trimo/demo") is None


# ---- pushing from inside -----------------------------------------------------

def test_push_lands_on_remote(gitenv):
    g = gitenv
    g.make_workspace()
    g.serve(push_mode="auto")
    r = g.agent(commit() + "git push")
    assert r.returncode == 0, r.stderr + g.log()
    assert "saved on the host and pushed to origin" in r.stderr
    assert "trimo/demo -> trimo/demo" in r.stderr
    head = g.git("rev-parse", "HEAD", cwd=g.ws)
    assert g.tip("refs/heads/trimo/demo") == head
    assert g.remote_tip("trimo/demo") == head
    assert g.remote_tip("main") == g.tip("refs/heads/main")  # untouched
    # the agent's git knows: its tracking ref moved, status is clean
    st = g.agent("git status -sb")
    assert "## trimo/demo...origin/trimo/demo" in st.stdout and "ahead" not in st.stdout
    log = g.log()
    assert "push from the sandbox: trimo/demo" in log and "accepted" in log
    assert "push to origin: ok" in log
    rec = json.load(open(g.record))
    assert rec["sandbox"]["ok"] and rec["remote"]["ok"]
    # nothing left in a quarantine
    objects = os.path.join(g.host, ".git", "objects")
    assert not [n for n in os.listdir(objects) if n.startswith("incoming-")]


def test_push_on_exit_and_manual(gitenv):
    """push = on-exit / manual: the host's branch moves, the remote only
    when the host pushes it (after the run, or `trimo-sbx push`)."""
    g = gitenv
    g.make_workspace()
    for mode, said in (("on-exit", "after the run (push = on-exit)"),
                       ("manual", "`trimo-sbx push` sends it")):
        g.serve(push_mode=mode)
        r = g.agent(commit(msg=mode) + "git push")
        assert r.returncode == 0, r.stderr
        assert said in r.stderr
        head = g.git("rev-parse", "HEAD", cwd=g.ws)
        assert g.tip("refs/heads/trimo/demo") == head
        assert g.remote_tip("trimo/demo") != head
    r = g.helper("push-remote", "--repo", g.host, "--branch", "trimo/demo", "--record", g.record)
    assert r.returncode == 0, r.stderr
    assert "pushed trimo/demo" in r.stdout and "to origin" in r.stdout
    assert g.remote_tip("trimo/demo") == g.tip("refs/heads/trimo/demo")


def test_push_remote_failure_is_reported(gitenv):
    g = gitenv
    g.make_workspace()
    # someone else moved the remote's branch: the host never forces
    g.git("push", "-q", "origin", "main:trimo/demo")
    g.git("commit", "-q", "--allow-empty", "-m", "elsewhere")
    g.git("push", "-q", "origin", "HEAD:refs/heads/trimo/demo")
    g.git("reset", "-q", "--hard", "HEAD~1")
    g.serve(push_mode="auto")
    r = g.agent(commit() + "git push")
    assert r.returncode != 0
    assert "saved on the host, but the push to origin failed" in r.stderr
    assert "rejected" in r.stderr
    assert g.tip("refs/heads/trimo/demo") == g.git("rev-parse", "HEAD", cwd=g.ws)
    rec = json.load(open(g.record))
    assert rec["remote"]["ok"] is False


def test_force_push_refused(gitenv):
    g = gitenv
    g.make_workspace()
    g.serve()
    r = g.agent(commit() + "git push -q && git commit -q --amend -m rewritten && "
                "git push --force")
    assert r.returncode != 0
    assert "force-push refused by trimo-sbx policy" in r.stderr
    first = g.tip("refs/heads/trimo/demo")
    assert first == g.remote_tip("trimo/demo")
    assert first != g.git("rev-parse", "HEAD", cwd=g.ws)
    # a push the host's tip is behind of, without --force: git stops it itself
    r = g.agent("git push")
    assert r.returncode != 0 and "rejected" in r.stderr
    assert g.tip("refs/heads/trimo/demo") == first


@pytest.mark.parametrize("what,script,reason", [
    ("delete", "git push origin :trimo/demo",
     "deleting branches is refused by trimo-sbx policy"),
    ("main", "git push origin HEAD:main",
     "main is protected by trimo-sbx policy (pattern 'main')"),
    ("other", "git push origin HEAD:refs/heads/feature",
     "only trimo/demo may be pushed"),
    ("protected", "git push origin HEAD:refs/heads/release/1.0",
     "release/1.0 is protected by trimo-sbx policy (pattern 'release/*')"),
    ("tag", "git tag v1 && git push origin v1",
     "pushing tags is refused by trimo-sbx policy (push_tags = no)"),
])
def test_refused_pushes(gitenv, what, script, reason):
    g = gitenv
    g.make_workspace()
    g.serve()
    before = {b: g.remote_tip(b) for b in ("main", "trimo/demo", "feature", "release/1.0")}
    r = g.agent(commit() + script)
    assert r.returncode != 0
    assert "[remote rejected]" in r.stderr
    assert reason in r.stderr, r.stderr
    assert {b: g.remote_tip(b) for b in before} == before
    assert g.tip("refs/heads/trimo/demo") == g.tip("refs/heads/main")
    assert g.tip("refs/tags/v1") is None
    assert "refused: " + reason.split(" (")[0] in g.log()


def test_tags_allowed_with_push_tags(gitenv):
    g = gitenv
    g.make_workspace()
    g.serve(push_tags=True)
    r = g.agent(commit() + "git push -q && git tag -a -m release v1 && git push origin v1")
    assert r.returncode == 0, r.stderr
    tag = g.git("rev-parse", "v1", cwd=g.ws)
    assert g.tip("refs/tags/v1") == tag
    assert g.tip("refs/tags/v1", repo=g.remote) == tag
    # a tag never moves
    r = g.agent("git tag -f -a -m again v1 HEAD~1 && git push -f origin v1")
    assert r.returncode != 0
    assert "moving tags is refused" in r.stderr
    assert g.tip("refs/tags/v1") == tag


def test_dry_run(gitenv):
    g = gitenv
    g.make_workspace()
    g.serve()
    r = g.agent(commit() + "git push --dry-run")
    assert r.returncode == 0, r.stderr
    assert "dry run: the host would accept this update" in r.stderr
    assert g.tip("refs/heads/trimo/demo") == g.tip("refs/heads/main")
    assert g.remote_tip("trimo/demo") is None
    r = g.agent("git push --dry-run origin HEAD:main")
    assert r.returncode != 0
    assert "main is protected by trimo-sbx policy" in r.stderr
    assert "(dry run)" in g.log()
    # a dry run is not recorded as an attempt
    assert not os.path.exists(g.record)


def test_fetch_is_refused_clearly(gitenv):
    g = gitenv
    g.make_workspace()
    g.serve()
    # nothing new on the host: fetch has nothing to do and succeeds
    r = g.agent("git fetch")
    assert r.returncode == 0, r.stderr
    g.git("commit", "-q", "--allow-empty", "-m", "main moves on")
    r = g.agent("git pull")
    assert r.returncode != 0
    assert "git-remote-trimo: fetching is not supported" in r.stderr


def test_no_push_socket(gitenv):
    g = gitenv
    g.make_workspace()
    r = g.agent(commit() + "git push")
    assert r.returncode != 0
    assert "cannot reach the host at /run/trimo/push.sock" in r.stderr


def test_diff(gitenv):
    g = gitenv
    g.make_workspace()
    g.serve()
    r = g.agent("echo new > added.txt && echo changed >> README && git add -A && "
                "git commit -qm change && git push -q")
    assert r.returncode == 0, r.stderr
    g.git("commit", "-q", "--allow-empty", "-m", "main moves on")
    r = g.helper("diff", "--repo", g.host, "--branch", "trimo/demo", "--base", "main")
    assert r.returncode == 0, r.stderr
    assert "+++ b/added.txt" in r.stdout and "+changed" in r.stdout
    r = g.helper("diff", "--repo", g.host, "--branch", "trimo/demo", "--stat")
    assert "2 files changed, 2 insertions(+)" in r.stdout
