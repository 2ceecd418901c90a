/* bin/trimo-sbx-git: the libgit2 helper (see orchestrator/git2/git2.h).
 *
 *   trimo-sbx-git workspace   --repo P --dest DIR --branch B [--base B] [--reuse-branch]
 *   trimo-sbx-git receive     --repo P --branch B [--base B] [--fd N] [policy] [push]
 *   trimo-sbx-git diff        --repo P --branch B [--base B] [--stat]
 *   trimo-sbx-git push-remote --repo P --branch B [--remote R] [--record F]
 *   trimo-sbx-git serve-push  --socket PATH  (receive's options)
 *
 *   policy: --protected PATTERN (repeatable) --push-tags
 *           --max-bytes N --max-objects N
 *   push:   --push-mode manual|on-exit|auto --remote R --timeout S --record F
 *
 * Exit: 0 done; 1 a push was (partly) refused; 2 usage; 125 failure, with
 * one line on stderr. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "orchestrator/git2/git2.h"
#include "orchestrator/git_pushd.h"

enum {
	O_REPO = 256,
	O_DEST,
	O_BRANCH,
	O_BASE,
	O_REMOTE,
	O_REUSE,
	O_FD,
	O_PROTECTED,
	O_PUSH_TAGS,
	O_MAX_BYTES,
	O_MAX_OBJECTS,
	O_PUSH_MODE,
	O_TIMEOUT,
	O_RECORD,
	O_SOCKET,
	O_STAT,
};

static const struct option options[] = {
    {"repo", required_argument, NULL, O_REPO},
    {"dest", required_argument, NULL, O_DEST},
    {"branch", required_argument, NULL, O_BRANCH},
    {"base", required_argument, NULL, O_BASE},
    {"remote", required_argument, NULL, O_REMOTE},
    {"reuse-branch", no_argument, NULL, O_REUSE},
    {"fd", required_argument, NULL, O_FD},
    {"protected", required_argument, NULL, O_PROTECTED},
    {"push-tags", no_argument, NULL, O_PUSH_TAGS},
    {"max-bytes", required_argument, NULL, O_MAX_BYTES},
    {"max-objects", required_argument, NULL, O_MAX_OBJECTS},
    {"push-mode", required_argument, NULL, O_PUSH_MODE},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"record", required_argument, NULL, O_RECORD},
    {"socket", required_argument, NULL, O_SOCKET},
    {"stat", no_argument, NULL, O_STAT},
    {NULL, 0, NULL, 0},
};

/* Under AddressSanitizer (make asan): libgit2 1.5.1 leaks pcre2's match
 * data whenever a config regex does not match (libgit2 PR #6382, fixed in
 * 1.6).  Not ours, and bounded per process: keep LeakSanitizer quiet about
 * it.  Never called outside a sanitizer build. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libpcre2-8.so\n";
}

static int parse_mode(const char *s, enum sbx_push_mode *ret, struct sbx_err *err)
{
	if (!strcmp(s, "manual"))
		*ret = SBX_PUSH_MANUAL;
	else if (!strcmp(s, "on-exit"))
		*ret = SBX_PUSH_ON_EXIT;
	else if (!strcmp(s, "auto"))
		*ret = SBX_PUSH_AUTO;
	else
		return sbx_failx(err, EINVAL, "--push-mode '%s': manual, on-exit or auto", s);
	return 0;
}

static int parse_one(struct gh_opts *o, int c, const char *arg, struct sbx_err *err)
{
	uint64_t v;
	switch (c) {
	case O_REPO:
		o->repo = arg;
		return 0;
	case O_DEST:
		o->dest = arg;
		return 0;
	case O_BRANCH:
		o->branch = arg;
		return 0;
	case O_BASE:
		o->base = *arg ? arg : NULL;
		return 0;
	case O_REMOTE:
		o->remote = arg;
		return 0;
	case O_REUSE:
		o->reuse_branch = true;
		return 0;
	case O_PUSH_TAGS:
		o->push_tags = true;
		return 0;
	case O_RECORD:
		o->record = arg;
		return 0;
	case O_SOCKET:
		o->socket = arg;
		return 0;
	case O_STAT:
		o->stat = true;
		return 0;
	case O_PUSH_MODE:
		return parse_mode(arg, &o->push_mode, err);
	case O_PROTECTED:
		return sbx_strv_push(&o->protected_branches, arg) < 0
		           ? sbx_fail(err, ENOMEM, "options")
		           : 0;
	case O_FD:
		if (sbx_parse_u64(arg, "--fd", 0, 1024, &v, err) < 0)
			return -EINVAL;
		o->fd = (int)v;
		return 0;
	case O_MAX_BYTES:
		return sbx_parse_size(arg, "--max-bytes", &o->max_bytes, err);
	case O_MAX_OBJECTS:
		return sbx_parse_u64(arg, "--max-objects", 1, UINT32_MAX, &o->max_objects, err);
	case O_TIMEOUT:
		if (sbx_parse_duration(arg, "--timeout", &v, err) < 0)
			return -EINVAL;
		o->timeout_s = (unsigned)(v > 86400 ? 86400 : v);
		return 0;
	default:
		return sbx_failx(err, EINVAL, "unknown option (see the top of git_main.c)");
	}
}

static int parse_args(struct gh_opts *o, int argc, char **argv, struct sbx_err *err)
{
	*o = (struct gh_opts){.fd = 3,
	                      .max_bytes = GH_DEFAULT_MAX_BYTES,
	                      .max_objects = GH_DEFAULT_MAX_OBJECTS,
	                      .timeout_s = GH_DEFAULT_TIMEOUT_S,
	                      .push_mode = SBX_PUSH_MANUAL};
	opterr = 0;
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c == '?' || c == ':')
			return sbx_failx(err, EINVAL, "bad option '%s'", argv[optind - 1]);
		int r = parse_one(o, c, optarg, err);
		if (r < 0)
			return r;
	}
	if (optind != argc)
		return sbx_failx(err, EINVAL, "unexpected argument '%s'", argv[optind]);
	if (!o->repo || !o->branch)
		return sbx_failx(err, EINVAL, "--repo and --branch are required");
	return 0;
}

/* serve-push: the supervisor's push socket, on its own (tests). */
static void print_line(void *data, const char *line)
{
	(void)data;
	printf("%s\n", line);
	fflush(stdout);
}

static volatile sig_atomic_t stop;
static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int serve(const struct gh_opts *o, const char *self, struct sbx_err *err)
{
	if (!o->socket)
		return sbx_failx(err, EINVAL, "serve-push needs --socket");
	struct git_push_conf conf = {
	    .helper = self,
	    .repo = o->repo,
	    .branch = o->branch,
	    .base = o->base,
	    .remote = o->remote,
	    .protected_branches = (const char *const *)o->protected_branches,
	    .push_tags = o->push_tags,
	    .push_mode = o->push_mode,
	    .max_bytes = o->max_bytes,
	    .max_objects = o->max_objects,
	    .record = o->record,
	    .log = print_line,
	};
	struct git_pushd *p = NULL;
	int r = git_pushd_open(o->socket, &conf, &p, err);
	if (r < 0)
		return r;
	struct sigaction sa = {.sa_handler = on_term};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	printf("serving %s\n", o->socket);
	fflush(stdout);
	while (!stop) {
		struct pollfd pf = {.fd = git_pushd_fd(p), .events = POLLIN};
		if (poll(&pf, 1, -1) > 0)
			git_pushd_handle(p);
	}
	git_pushd_close(p, 120);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: trimo-sbx-git COMMAND [OPTIONS] (run by trimo-sbx)\n");
		return 2;
	}
	struct gh_opts o;
	struct sbx_err err = {0};
	if (parse_args(&o, argc, argv, &err) < 0) {
		fprintf(stderr, "trimo-sbx-git %s: %s\n", argv[1], err.msg);
		sbx_strv_free(o.protected_branches);
		return 2;
	}
	git_libgit2_init();
	const char *cmd = argv[1];
	int r;
	if (!strcmp(cmd, "workspace"))
		r = o.dest ? gh_workspace(&o, &err) : sbx_failx(&err, EINVAL, "--dest is required");
	else if (!strcmp(cmd, "receive"))
		r = gh_receive(&o, &err);
	else if (!strcmp(cmd, "diff"))
		r = gh_diff(&o, &err);
	else if (!strcmp(cmd, "push-remote"))
		r = gh_push_remote_cmd(&o, &err);
	else if (!strcmp(cmd, "serve-push"))
		r = serve(&o, "/proc/self/exe", &err);
	else
		r = sbx_failx(&err, EINVAL, "unknown command '%s'", cmd);
	git_libgit2_shutdown();
	sbx_strv_free(o.protected_branches);
	if (r < 0)
		fprintf(stderr, "trimo-sbx-git %s: %s\n", cmd, err.msg);
	/* 2: the user's input (config, names, an existing branch) */
	bool input = r == -EINVAL || r == -EEXIST || r == -ENOENT;
	return r == 0 ? 0 : r > 0 ? 1 : input ? 2 : 125;
}
