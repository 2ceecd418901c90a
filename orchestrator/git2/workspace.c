/* The task's workspace: a fresh repository in o->dest that shares no file
 * with the host repository, holding the base branch (and, with
 * --reuse-branch, the task branch) fetched through libgit2's local
 * transport, which writes a new pack: no hardlink, no alternates, nothing
 * of the host repository's config.  The task branch is created there and
 * checked out, `origin` is `trimo::origin`, and the branch tracks it, so
 * `git push` inside needs no arguments.  Then the task branch is created
 * in the host repository at the same commit (refused when it exists,
 * unless reuse_branch).
 *
 * This is the only time the helper opens the workspace as a repository:
 * nothing but this code has written to it yet.  Output on stdout:
 *   base NAME OID
 *   branch NAME OID */
#include "orchestrator/git2/git2.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

struct ws {
	const struct gh_opts *o;
	git_repository *host;
	git_repository *repo; /* the new workspace */
	char *base;
	git_oid base_id, start_id;
	bool host_has_branch;
	bool made; /* dest was created here: removed again on failure */
};

static int fetch(struct ws *w, struct sbx_err *err)
{
	git_remote *remote = NULL;
	if (git_remote_create_with_fetchspec(&remote, w->repo, "origin", w->o->repo,
	                                     "+refs/heads/*:refs/remotes/origin/*") < 0)
		return gh_fail(err, EIO, "workspace: remote");
	char spec_base[600], spec_branch[600];
	snprintf(spec_base, sizeof(spec_base), "+refs/heads/%s:refs/remotes/origin/%s", w->base,
	         w->base);
	snprintf(spec_branch, sizeof(spec_branch), "+refs/heads/%s:refs/remotes/origin/%s",
	         w->o->branch, w->o->branch);
	char *specs[] = {spec_base, spec_branch};
	git_strarray refspecs = {.strings = specs, .count = w->host_has_branch ? 2 : 1};
	git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	fo.update_fetchhead = 0;
	int r = git_remote_fetch(remote, &refspecs, &fo, "trimo-sbx: workspace");
	git_remote_free(remote);
	return r < 0 ? gh_fail(err, EIO, "workspace: fetch from the host repository") : 0;
}

static int set_config(struct ws *w, struct sbx_err *err)
{
	git_config *cfg = NULL;
	char key[600], merge[600];
	snprintf(merge, sizeof(merge), "refs/heads/%s", w->o->branch);
	int r = git_repository_config(&cfg, w->repo);
	/* the sandbox pushes through git-remote-trimo, to the host's socket */
	if (r >= 0)
		r = git_remote_set_url(w->repo, "origin", "trimo::origin");
	if (r >= 0) {
		snprintf(key, sizeof(key), "branch.%s.remote", w->o->branch);
		r = git_config_set_string(cfg, key, "origin");
	}
	if (r >= 0) {
		snprintf(key, sizeof(key), "branch.%s.merge", w->o->branch);
		r = git_config_set_string(cfg, key, merge);
	}
	git_config_free(cfg);
	return r < 0 ? gh_fail(err, EIO, "workspace: config") : 0;
}

/* The task branch at start_id, checked out, tracking origin's. */
static int make_branch(struct ws *w, struct sbx_err *err)
{
	_cleanup_git_object_ git_object *commit = NULL;
	git_reference *ref = NULL;
	char name[600];
	if (git_object_lookup(&commit, w->repo, &w->start_id, GIT_OBJECT_COMMIT) < 0 ||
	    git_branch_create(&ref, w->repo, w->o->branch, (git_commit *)commit, 1) < 0)
		return gh_fail(err, EIO, "workspace: branch %s", w->o->branch);
	git_reference_free(ref);
	ref = NULL;
	/* what git compares with in `git status`; moves with each push */
	snprintf(name, sizeof(name), "refs/remotes/origin/%s", w->o->branch);
	if (git_reference_create(&ref, w->repo, name, &w->start_id, 1, NULL) < 0)
		return gh_fail(err, EIO, "workspace: %s", name);
	git_reference_free(ref);
	snprintf(name, sizeof(name), "refs/heads/%s", w->o->branch);
	git_checkout_options co = GIT_CHECKOUT_OPTIONS_INIT;
	co.checkout_strategy = GIT_CHECKOUT_FORCE;
	if (git_repository_set_head(w->repo, name) < 0 || git_checkout_head(w->repo, &co) < 0)
		return gh_fail(err, EIO, "workspace: check out %s", w->o->branch);
	return set_config(w, err);
}

static int make_repo(struct ws *w, struct sbx_err *err)
{
	if (mkdir(w->o->dest, 0755) < 0)
		return sbx_fail(err, errno, "workspace '%s'", w->o->dest);
	w->made = true;
	git_repository_init_options io = GIT_REPOSITORY_INIT_OPTIONS_INIT;
	/* no template: nothing of the host's init.templateDir (hooks) inside */
	io.flags = GIT_REPOSITORY_INIT_NO_REINIT;
	char head[600];
	snprintf(head, sizeof(head), "refs/heads/%s", w->o->branch);
	io.initial_head = head;
	if (git_repository_init_ext(&w->repo, w->o->dest, &io) < 0)
		return gh_fail(err, EIO, "workspace: init '%s'", w->o->dest);
	int r = fetch(w, err);
	return r < 0 ? r : make_branch(w, err);
}

/* Which commit the workspace starts from, and whether the branch exists. */
static int resolve(struct ws *w, struct sbx_err *err)
{
	int r = gh_open_host(w->o->repo, &w->host, err);
	r = r < 0 ? r : gh_base_branch(w->host, w->o->base, &w->base, err);
	r = r < 0 ? r : gh_branch_tip(w->host, w->base, &w->base_id, err);
	if (r < 0)
		return r == -ENOENT ? sbx_wrap(err, "[repo] base") : r;
	struct sbx_err e2;
	r = gh_branch_tip(w->host, w->o->branch, &w->start_id, &e2);
	w->host_has_branch = r >= 0;
	if (r < 0 && r != -ENOENT) {
		*err = e2;
		return r;
	}
	if (w->host_has_branch && !w->o->reuse_branch)
		return sbx_failx(
		    err, EEXIST,
		    "branch %s already exists in the host repository '%s' (launch with "
		    "--reuse-branch to continue it)",
		    w->o->branch, w->o->repo);
	if (!w->host_has_branch)
		w->start_id = w->base_id;
	return 0;
}

static int host_branch(struct ws *w, struct sbx_err *err)
{
	if (w->host_has_branch)
		return 0;
	_cleanup_git_object_ git_object *commit = NULL;
	git_reference *ref = NULL;
	if (git_object_lookup(&commit, w->host, &w->base_id, GIT_OBJECT_COMMIT) < 0)
		return gh_fail(err, EIO, "host branch %s", w->o->branch);
	int r = git_branch_create(&ref, w->host, w->o->branch, (git_commit *)commit, 0);
	git_reference_free(ref);
	if (r == GIT_EEXISTS)
		return sbx_failx(err, EEXIST, "branch %s appeared in the host repository meanwhile",
		                 w->o->branch);
	return r < 0 ? gh_fail(err, EIO, "host branch %s", w->o->branch) : 0;
}

int gh_workspace(const struct gh_opts *o, struct sbx_err *err)
{
	struct ws w = {.o = o};
	int r = resolve(&w, err);
	if (r >= 0)
		r = make_repo(&w, err);
	git_repository_free(w.repo);
	w.repo = NULL;
	if (r >= 0)
		r = host_branch(&w, err);
	if (r >= 0) {
		char a[GIT_OID_HEXSZ + 1], b[GIT_OID_HEXSZ + 1];
		printf("base %s %s\nbranch %s %s\n", w.base,
		       git_oid_tostr(a, sizeof(a), &w.base_id), o->branch,
		       git_oid_tostr(b, sizeof(b), &w.start_id));
	} else if (w.made) {
		struct sbx_err ignored;
		sbx_rm_rf_at(AT_FDCWD, o->dest, &ignored);
	}
	git_repository_free(w.host);
	free(w.base);
	return r;
}
