/* The task branch as the host has it, against where it left its base (the
 * merge base): a patch, or a --stat summary, on stdout.  Only the host
 * repository is read.  The text is the sandbox's work and may hold
 * anything: the CLI cleans it before a terminal sees it. */
#include "orchestrator/git2/git2.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static int print_line(const git_diff_delta *d, const git_diff_hunk *h, const git_diff_line *l,
                      void *data)
{
	(void)d;
	(void)h;
	FILE *out = data;
	if (l->origin == GIT_DIFF_LINE_CONTEXT || l->origin == GIT_DIFF_LINE_ADDITION ||
	    l->origin == GIT_DIFF_LINE_DELETION)
		fputc(l->origin, out);
	fwrite(l->content, 1, l->content_len, out);
	return 0;
}

static int tree_of(git_repository *repo, const git_oid *id, git_tree **ret, struct sbx_err *err)
{
	_cleanup_git_object_ git_object *c = NULL;
	if (git_object_lookup(&c, repo, id, GIT_OBJECT_COMMIT) < 0 ||
	    git_commit_tree(ret, (git_commit *)c) < 0)
		return gh_fail(err, EIO, "diff");
	return 0;
}

static int print_diff(git_diff *diff, bool stat, struct sbx_err *err)
{
	if (!stat) {
		if (git_diff_print(diff, GIT_DIFF_FORMAT_PATCH, print_line, stdout) < 0)
			return gh_fail(err, EIO, "diff");
		return 0;
	}
	git_diff_stats *stats = NULL;
	git_buf buf = GIT_BUF_INIT;
	int r = git_diff_get_stats(&stats, diff);
	if (r >= 0)
		r = git_diff_stats_to_buf(&buf, stats, GIT_DIFF_STATS_FULL, 80);
	if (r >= 0)
		fwrite(buf.ptr, 1, buf.size, stdout);
	git_buf_dispose(&buf);
	git_diff_stats_free(stats);
	return r < 0 ? gh_fail(err, EIO, "diff --stat") : 0;
}

int gh_diff(const struct gh_opts *o, struct sbx_err *err)
{
	_cleanup_git_repo_ git_repository *repo = NULL;
	_cleanup_free_ char *base = NULL;
	git_oid tip, base_tip, mb;
	int r = gh_open_host(o->repo, &repo, err);
	r = r < 0 ? r : gh_base_branch(repo, o->base, &base, err);
	r = r < 0 ? r : gh_branch_tip(repo, o->branch, &tip, err);
	r = r < 0 ? r : gh_branch_tip(repo, base, &base_tip, err);
	if (r < 0)
		return r;
	if (git_merge_base(&mb, repo, &tip, &base_tip) < 0)
		mb = base_tip; /* unrelated histories: against the base itself */
	git_tree *a = NULL, *b = NULL;
	git_diff *diff = NULL;
	git_diff_options dopts = GIT_DIFF_OPTIONS_INIT;
	r = tree_of(repo, &mb, &a, err);
	r = r < 0 ? r : tree_of(repo, &tip, &b, err);
	if (r >= 0 && git_diff_tree_to_tree(&diff, repo, a, b, &dopts) < 0)
		r = gh_fail(err, EIO, "diff");
	if (r >= 0) {
		git_diff_find_options fo = GIT_DIFF_FIND_OPTIONS_INIT;
		git_diff_find_similar(diff, &fo);
		r = print_diff(diff, o->stat, err);
	}
	git_diff_free(diff);
	git_tree_free(a);
	git_tree_free(b);
	fflush(stdout);
	return r;
}
