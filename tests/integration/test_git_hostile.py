"""Git (issue 6): everything from the sandbox is hostile.  Packs and
requests crafted by hand on the push socket, a workspace whose .git says
anything it likes, and secrets of the host that must stay outside."""
import os
import random
import subprocess

import pytest

from gitfix import (ZERO, encode_request, gitenv, git_rootfs, git_tools,  # noqa: F401
                    raw_push)

PUSH, LIST = 2, 1
BRANCH_REF = "refs/heads/trimo/demo"


def quarantines(g):
    objects = os.path.join(g.host, ".git", "objects")
    return [n for n in os.listdir(objects) if n.startswith("incoming-")]


def new_commit(g, name="x.txt", text="new\n"):
    """A commit in the workspace (made by the test, on the host, with the
    host's git: only the test may do that), not pushed."""
    with open(os.path.join(g.ws, name), "w") as f:
        f.write(text)
    g.sbx.chown(os.path.join(g.ws, name))
    g.git("add", "-A", cwd=g.ws)
    g.git("commit", "-qm", "crafted", cwd=g.ws)
    return g.git("rev-parse", "HEAD", cwd=g.ws)


def pack_of(g, lines, revs=True, thin=False):
    argv = ["pack-objects", "--stdout", "-q"] + (["--revs"] if revs else []) + \
        (["--thin"] if thin else [])
    r = subprocess.run(g.sbx.argv(["git"] + argv), input=("\n".join(lines) + "\n").encode(),
                       capture_output=True, cwd=g.ws, env=g.sbx.env())
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture
def served(gitenv):
    gitenv.make_workspace()
    gitenv.serve(push_mode="auto")
    return gitenv


def push_raw(g, new, body, pack_len=None, old=None, ref=BRANCH_REF, close_early=False):
    old = old or g.tip(BRANCH_REF)
    hdr = encode_request(PUSH, [(False, old, new, ref)],
                         len(body) if pack_len is None else pack_len)
    return raw_push(g.sock, hdr, body, close_early=close_early)


def assert_unchanged(g, tip):
    assert g.tip(BRANCH_REF) == tip
    assert g.remote_tip("trimo/demo") is None
    assert not quarantines(g)


def test_list(served):
    g = served
    status, msg, entries = raw_push(g.sock, encode_request(LIST))
    assert status == 0
    tips = {ref: oid for ok, oid, ref, _ in entries}
    assert tips == {BRANCH_REF: g.tip(BRANCH_REF), "refs/heads/main": g.tip("refs/heads/main")}


def test_garbage_request(served):
    g = served
    status, msg, _ = raw_push(g.sock, b"GET / HTTP/1.1\r\n\r\n")
    assert status == 1
    assert msg == "bad request: not a trimo-sbx push message"
    status, msg, _ = raw_push(g.sock, b"TRIMOPQ1" + bytes([2, 0, 1, 0]) + b"z" * 80)
    assert status == 1
    assert msg == "bad request: an object id is not 40 lowercase hex digits"
    assert "push from the sandbox: refused: bad request" in g.log()


def test_garbage_pack(served):
    g = served
    tip = g.tip(BRANCH_REF)
    new = new_commit(g)
    body = b"PACK\x00\x00\x00\x02\x00\x00\x00\x03" + random.Random(1).randbytes(4096)
    status, _, entries = push_raw(g, new, body)
    assert status == 0
    ok, _, _, why = entries[0]
    assert not ok and why.startswith("bad pack")
    status, _, entries = push_raw(g, new, random.Random(2).randbytes(1000))
    assert not entries[0][0] and entries[0][3].startswith("bad pack")
    assert_unchanged(g, tip)


def test_missing_objects(served):
    g = served
    tip = g.tip(BRANCH_REF)
    new = new_commit(g)
    # the commit alone: its new tree and blob are nowhere
    body = pack_of(g, [new], revs=False)
    status, _, entries = push_raw(g, new, body)
    ok, _, _, why = entries[0]
    assert not ok
    assert "is missing: neither in the pack nor on the host" in why
    # no pack at all for a commit the host does not have
    status, _, entries = push_raw(g, new, b"")
    assert not entries[0][0] and "is missing" in entries[0][3]
    assert_unchanged(g, tip)


def test_wrong_object_type(served):
    g = served
    tip = g.tip(BRANCH_REF)
    blob = g.git("rev-parse", "HEAD:README", cwd=g.ws)
    # a tree that claims the host's blob is a folder
    raw = b"40000 dir\0" + bytes.fromhex(blob)
    r = subprocess.run(g.sbx.argv(["git", "hash-object", "-t", "tree", "-w", "--stdin",
                                   "--literally"]), input=raw, capture_output=True,
                       cwd=g.ws, env=g.sbx.env())
    tree = r.stdout.decode().strip()
    commit = g.git("commit-tree", tree, "-p", tip, "-m", "bad tree", cwd=g.ws)
    body = pack_of(g, [commit, tree], revs=False)
    status, _, entries = push_raw(g, commit, body)
    ok, _, _, why = entries[0]
    assert not ok and f"object {blob} is a blob, not a tree" in why
    assert_unchanged(g, tip)


def test_enormous_size_claim(served):
    g = served
    tip = g.tip(BRANCH_REF)
    new = new_commit(g)
    status, _, entries = push_raw(g, new, b"", pack_len=1 << 62)
    ok, _, _, why = entries[0]
    assert not ok
    assert why == f"the pack is {1 << 62} bytes, more than the limit of {1 << 30}"
    assert_unchanged(g, tip)


def test_truncated_pack(served):
    g = served
    tip = g.tip(BRANCH_REF)
    new = new_commit(g)
    body = pack_of(g, [new, "^" + tip])
    status, _, entries = push_raw(g, new, body[:20], pack_len=len(body), close_early=True)
    assert not entries[0][0]
    assert f"the pack ended after 20 of {len(body)} bytes" in entries[0][3]
    assert_unchanged(g, tip)


def test_thin_pack_refused(served):
    g = served
    tip = g.tip(BRANCH_REF)
    # a large file changed by one line: git deltas it against the host's blob
    text = "".join(f"line {i} of a file that is long enough to delta\n" for i in range(400))
    with open(os.path.join(g.ws, "big.txt"), "w") as f:
        f.write(text)
    g.sbx.chown(os.path.join(g.ws, "big.txt"))
    g.git("add", "-A", cwd=g.ws)
    g.git("commit", "-qm", "big", cwd=g.ws)
    g.git("push", "-q", "trimo::origin", "HEAD:refs/heads/trimo/demo", cwd=g.ws, check=False)
    base = g.git("rev-parse", "HEAD", cwd=g.ws)
    # the host has `base` only if it went through the socket: send it properly
    full = pack_of(g, [base, "^" + tip])
    status, _, entries = push_raw(g, base, full)
    assert entries[0][0], entries
    new = new_commit(g, "big.txt", text.replace("line 200 ", "LINE 200 "))
    thin = pack_of(g, [new, "^" + base], thin=True)
    full = pack_of(g, [new, "^" + base])
    assert len(thin) < len(full)  # it really is thin
    status, _, entries = push_raw(g, new, thin)
    assert not entries[0][0] and "bad pack" in entries[0][3]
    assert g.tip(BRANCH_REF) == base
    assert not quarantines(g)


def test_object_count_limit(gitenv):
    g = gitenv
    g.make_workspace()
    g.serve(extra=("--max-objects", "2"))
    tip = g.tip(BRANCH_REF)
    new = new_commit(g)  # commit, tree, blob
    status, _, entries = push_raw(g, new, pack_of(g, [new, "^" + tip]))
    assert not entries[0][0]
    assert entries[0][3] == "the pack holds 3 objects, more than the limit of 2"
    assert_unchanged(g, tip)


def test_stale_old_id(served):
    g = served
    tip = g.tip(BRANCH_REF)
    new = new_commit(g)
    status, _, entries = push_raw(g, new, pack_of(g, [new, "^" + tip]), old=ZERO)
    assert not entries[0][0]
    assert "moved to" in entries[0][3] and "push again" in entries[0][3]
    assert_unchanged(g, tip)


def test_crafted_ref_names(served):
    g = served
    tip = g.tip(BRANCH_REF)
    new = new_commit(g)
    body = pack_of(g, [new, "^" + tip])
    for ref in ("refs/heads/../../config", "refs/heads/trimo/demo.lock", "HEAD",
                "refs/heads/trimo/demo/../x", "/etc/passwd"):
        status, _, entries = push_raw(g, new, body, ref=ref, old=ZERO)
        assert not entries[0][0]
        assert "is not a valid ref name" in entries[0][3], (ref, entries)
    assert_unchanged(g, tip)
    assert not os.path.exists(os.path.join(g.host, ".git", "x"))


def test_checked_out_branch_never_moves(gitenv):
    g = gitenv
    g.make_workspace()
    g.git("checkout", "-q", "trimo/demo")
    g.serve()
    r = g.agent("echo x > x && git add x && git commit -qm x && git push")
    assert r.returncode != 0
    assert "trimo/demo is checked out in the host repository" in r.stderr
    assert g.git("status", "--porcelain") == ""


# ---- a hostile workspace -----------------------------------------------------

def hostile_config(g, marker_dir):
    """Everything a workspace's .git could say to a host that read it."""
    other = os.path.join(g.base, "other.git")
    g.git("init", "-q", "--bare", other, cwd=g.base)
    hooks = os.path.join(marker_dir, "hooks")
    os.makedirs(hooks)
    for hook in ("pre-push", "pre-commit", "post-checkout", "reference-transaction"):
        p = os.path.join(hooks, hook)
        with open(p, "w") as f:
            f.write(f"#!/bin/sh\ntouch {marker_dir}/hook-{hook}\n")
        os.chmod(p, 0o755)
    worktree = os.path.join(marker_dir, "worktree")
    os.makedirs(worktree)
    for root, dirs, files in os.walk(marker_dir):
        for n in dirs + files:
            g.sbx.chown(os.path.join(root, n))
    g.sbx.chown(marker_dir)
    return other, hooks, worktree, f"""
git config url.{other}.insteadOf {g.remote}
git config url.{other}.pushInsteadOf {g.remote}
git config remote.origin.pushurl {other}
git config credential.helper '!touch {marker_dir}/credential-helper; echo password=stolen'
git config core.hooksPath {hooks}
git config core.fsmonitor 'touch {marker_dir}/fsmonitor'
git config core.sshCommand 'touch {marker_dir}/ssh'
git config include.path {marker_dir}/included
git config filter.evil.clean 'touch {marker_dir}/filter'
echo '* filter=evil' > .gitattributes
echo {os.path.join(g.host, '.git', 'objects')} > .git/objects/info/alternates
"""


def test_hostile_workspace_config(gitenv, tmp_path):
    g = gitenv
    g.make_workspace()
    g.serve(push_mode="auto")
    marker_dir = str(tmp_path / "markers")
    os.makedirs(marker_dir)
    other, hooks, worktree, script = hostile_config(g, marker_dir)
    # core.worktree last: after it, git inside works on a folder that does
    # not exist there
    r = g.agent(script + commit_cmd() + "git push trimo::origin HEAD:refs/heads/trimo/demo "
                f"&& git config core.worktree {worktree}")
    assert r.returncode == 0, r.stderr + g.log()
    pushed = g.tip(BRANCH_REF)
    assert g.remote_tip("trimo/demo") == pushed
    # every host-side operation, once more after the config is in place
    assert g.helper("diff", "--repo", g.host, "--branch", "trimo/demo").returncode == 0
    assert g.helper("push-remote", "--repo", g.host, "--branch", "trimo/demo").returncode == 0
    assert os.listdir(marker_dir) == sorted(os.listdir(marker_dir))  # readable
    assert sorted(os.listdir(marker_dir)) == ["hooks", "worktree"]
    assert os.listdir(worktree) == []
    assert g.git("for-each-ref", cwd=other) == ""
    with open(os.path.join(g.host, ".git", "config")) as f:
        assert other not in f.read()


def commit_cmd():
    return "echo work > work.txt && git add work.txt && git commit -qm work\n"


def test_git_dir_symlink(gitenv):
    """.git replaced by a symlink to the host repository: the host never
    follows it, and inside it points nowhere."""
    g = gitenv
    g.make_workspace()
    g.serve()
    before = g.git("for-each-ref")
    r = g.agent(f"mv .git /tmp/real-git && ln -s {g.host}/.git .git && git status; "
                "echo status=$?")
    assert "status=128" in r.stdout or "not a git repository" in r.stderr
    assert os.path.islink(os.path.join(g.ws, ".git"))
    assert g.helper("diff", "--repo", g.host, "--branch", "trimo/demo").returncode == 0
    assert g.git("for-each-ref") == before
    assert g.git("status", "--porcelain") == ""


def test_secrets_stay_outside(gitenv, tmp_path):
    g = gitenv
    g.make_workspace()
    canary = "trimo-canary-7f3a9c"
    home = g.sbx.home
    files = {".git-credentials": f"https://user:{canary}@example.com\n",
             ".gitconfig": f"[user]\n\tname = {canary}\n",
             ".ssh/id_ed25519": f"-----BEGIN {canary}-----\n"}
    for name, text in files.items():
        p = os.path.join(home, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, 0o600)
        g.sbx.chown(os.path.dirname(p))
        g.sbx.chown(p)
    env = {"TRIMO_CANARY": canary, "SSH_AUTH_SOCK": f"/tmp/{canary}.sock",
           "GIT_ASKPASS": f"/tmp/{canary}-askpass", "GITHUB_TOKEN": canary}
    g.serve(env=env)
    # every file but the image's own programs (usr, lib), and every
    # process's environment
    r = g.agent(commit_cmd() + "git push -q; "
                "env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; "
                "for d in $(ls / | grep -v -e '^proc$' -e '^sys$' -e '^dev$' -e '^usr$' -e '^lib$'); do "
                f"grep -rl {canary} /$d 2>/dev/null; done; "
                "ls -a /root /home 2>/dev/null; echo END", env=env)
    assert r.returncode == 0, r.stderr
    assert "END" in r.stdout
    assert canary not in r.stdout + r.stderr
    for var in ("SSH_AUTH_SOCK", "GIT_ASKPASS", "GITHUB_TOKEN"):
        assert var not in r.stdout
    assert ".git-credentials" not in r.stdout and ".ssh" not in r.stdout
    # the push itself still worked
    assert g.tip(BRANCH_REF) == g.git("rev-parse", "HEAD", cwd=g.ws)
