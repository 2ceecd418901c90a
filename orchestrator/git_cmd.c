/* `trimo-sbx __git-job JOB [OPTIONS]`: one git job of a task, in a process
 * of its own.  The supervisor spawns it for interval auto-commits (a
 * sandbox cannot be run from inside another run's event loop); tests use
 * it to drive orchestrator/git_task.h directly.  Lines go to stdout.
 *
 *   JOB: check-image | workspace | commit | sync | diff | stat | after-run | push
 *   --task-dir D: everything else from the task folder's config.json and state
 *   (the supervisor), or, for tests, every setting given:
 *   --task-dir D --id ID --name N --repo R --branch B [--base B] [--remote R]
 *   [--protected P]... [--push-tags] [--push-mode manual|on-exit|auto]
 *   [--auto-commit off|exit|interval] [--author-name N --author-email E]
 *   [--rootfs PATH] [--run N] [--why exit|interval] [--reuse-branch] [--no-sync] */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "orchestrator/cli.h"
#include "orchestrator/git_cmd.h"
#include "orchestrator/git_sup.h"
#include "orchestrator/git_task.h"
#include "orchestrator/limits.h"
#include "orchestrator/state.h"
#include "orchestrator/task.h"
#include "orchestrator/task_cli.h"

struct job_args {
	struct git_task t;
	char **protected_branches;
	unsigned run;
	const char *why;
	bool reuse_branch, no_sync;
};

static const struct option job_options[] = {
    {"task-dir", required_argument, NULL, 'd'},
    {"id", required_argument, NULL, 'i'},
    {"name", required_argument, NULL, 'n'},
    {"repo", required_argument, NULL, 'r'},
    {"branch", required_argument, NULL, 'b'},
    {"base", required_argument, NULL, 'B'},
    {"remote", required_argument, NULL, 'R'},
    {"protected", required_argument, NULL, 'p'},
    {"push-tags", no_argument, NULL, 'T'},
    {"push-mode", required_argument, NULL, 'm'},
    {"auto-commit", required_argument, NULL, 'a'},
    {"author-name", required_argument, NULL, 'N'},
    {"author-email", required_argument, NULL, 'E'},
    {"rootfs", required_argument, NULL, 'f'},
    {"run", required_argument, NULL, 'u'},
    {"why", required_argument, NULL, 'w'},
    {"reuse-branch", no_argument, NULL, 'X'},
    {"no-sync", no_argument, NULL, 'S'},
    {NULL, 0, NULL, 0},
};

static int enum_arg(const char *s, const char *const *names, int n, int *ret)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s, names[i])) {
			*ret = i;
			return 0;
		}
	return -EINVAL;
}

static int job_opt(struct job_args *a, int c, const char *v)
{
	static const char *const modes[] = {"manual", "on-exit", "auto"};
	static const char *const commits[] = {"off", "exit", "interval"};
	int e = 0, r = 0;
	switch (c) {
	case 'd':
		a->t.task_dir = v;
		break;
	case 'i':
		a->t.id = v;
		break;
	case 'n':
		a->t.name = v;
		break;
	case 'r':
		a->t.repo = v;
		break;
	case 'b':
		a->t.branch = v;
		break;
	case 'B':
		a->t.base = v;
		break;
	case 'R':
		a->t.remote = v;
		break;
	case 'p':
		r = sbx_strv_push(&a->protected_branches, v);
		break;
	case 'T':
		a->t.push_tags = true;
		break;
	case 'N':
		a->t.author_name = v;
		break;
	case 'E':
		a->t.author_email = v;
		break;
	case 'f':
		a->t.rootfs = v;
		break;
	case 'u':
		a->run = (unsigned)strtoul(v, NULL, 10);
		break;
	case 'w':
		a->why = v;
		break;
	case 'X':
		a->reuse_branch = true;
		break;
	case 'S':
		a->no_sync = true;
		break;
	case 'm':
		r = enum_arg(v, modes, 3, &e);
		a->t.push_mode = (enum sbx_push_mode)e;
		break;
	case 'a':
		r = enum_arg(v, commits, 3, &e);
		a->t.auto_commit = (enum sbx_auto_commit)e;
		break;
	default:
		return -EINVAL;
	}
	return r;
}

/* Our stdout, kept aside: a git job's sandbox writes to fds 1 and 2,
 * which are its pipe while it runs (git_task.h). */
static int out_fd = -1;

static void print_line(void *data, const char *line)
{
	(void)data;
	sbx_write_all(out_fd, line, strlen(line));
	sbx_write_all(out_fd, "\n", 1);
}

static void print_bytes(void *data, const char *buf, size_t len)
{
	(void)data;
	sbx_write_all(out_fd, buf, len);
}

static int run_job(struct job_args *a, const char *job, struct sbx_err *err)
{
	struct git_task *t = &a->t;
	int code = 0, r;
	if (!strcmp(job, "check-image")) {
		r = git_task_check_image(t->rootfs, t->auto_commit, err);
		if (r >= 0)
			print_line(NULL, r ? "git: found in the image" : "git: not in the image");
		return r < 0 ? r : 0;
	}
	if (!strcmp(job, "workspace"))
		return git_task_workspace_create(t, a->reuse_branch, err);
	if (!strcmp(job, "after-run")) {
		git_task_after_run(t, a->run);
		return 0;
	}
	if (!strcmp(job, "push"))
		return git_task_push(t, !a->no_sync, err);
	if (!strcmp(job, "diff") || !strcmp(job, "stat"))
		return git_task_diff(t, !strcmp(job, "stat"), out_fd, isatty(out_fd), err);
	enum git_job j = !strcmp(job, "commit") ? GIT_JOB_COMMIT : GIT_JOB_SYNC;
	if (strcmp(job, "commit") && strcmp(job, "sync"))
		return sbx_failx(err, EINVAL, "unknown job '%s'", job);
	r = git_task_job(t, j, a->run, a->why, print_bytes, NULL, &code, err);
	if (r >= 0 && code != 0)
		r = sbx_failx(err, EIO, "%s: git in the sandbox exited with %d", job, code);
	return r;
}

/* ---- a task folder's git --------------------------------------------------- */

struct loaded {
	struct sbx_task_def *def;
	struct sbx_cgroup_limits cgl;
	struct sbx_task_state st;
	char dir[PATH_MAX];
};

static void loaded_free(struct loaded *l)
{
	task_def_free(l->def);
	l->def = NULL;
}

/* config.json and state of the task folder dir: the git_task of its
 * [repo], with its caps for the git jobs. */
static int load_task(const char *dir, struct loaded *l, struct git_task *t, struct sbx_err *err)
{
	snprintf(l->dir, sizeof(l->dir), "%s", dir);
	_cleanup_close_ int tfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tfd < 0)
		return sbx_fail(err, errno, "task folder '%s'", dir);
	int r = task_def_read(tfd, &l->def, err);
	if (r < 0)
		return r;
	if (!l->def->repo)
		return sbx_failx(err, EINVAL, "task %s has no [repo]: no git", l->def->id);
	if (state_read(tfd, &l->st, err) < 0)
		l->st.cgroup_parent[0] = '\0';
	limits_to_cgroup(&l->def->limits, &l->cgl);
	void (*log)(void *, const char *) = t->log;
	git_task_from_def(l->def, l->dir, &l->cgl,
	                  l->st.cgroup_parent[0] ? l->st.cgroup_parent : NULL, t);
	t->overlay = overlay_mode(l->st.overlay);
	t->log = log;
	return 0;
}

int cmd_git_job(int argc, char **argv)
{
	struct job_args a = {.t = {.log = print_line}};
	if (out_fd < 0)
		out_fd = fcntl(1, F_DUPFD_CLOEXEC, 10);
	opterr = 0;
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "", job_options, NULL)) != -1) {
		if (c == '?' || job_opt(&a, c, optarg) < 0) {
			sbx_strv_free(a.protected_branches);
			return cli_error(EXIT_USAGE, "%s: bad option '%s'", GIT_JOB_VERB,
			                 argv[optind - 1]);
		}
	}
	/* --task-dir alone: everything from the task folder (the supervisor) */
	bool from_dir = a.t.task_dir && !a.t.repo;
	if (argc < 2 || optind != argc || !a.t.task_dir || (!from_dir && !a.t.branch)) {
		sbx_strv_free(a.protected_branches);
		return cli_error(EXIT_USAGE,
		                 "usage: trimo-sbx %s JOB --task-dir D [--repo R --branch B ...] "
		                 "(run by the supervisor)",
		                 GIT_JOB_VERB);
	}
	struct sbx_err err = {0};
	struct loaded l = {0};
	int r = 0;
	if (from_dir) {
		r = load_task(a.t.task_dir, &l, &a.t, &err);
	} else {
		a.t.id = a.t.id ? a.t.id : "git";
		a.t.name = a.t.name ? a.t.name : a.t.id;
		a.t.protected_branches = (const char *const *)a.protected_branches;
	}
	if (r >= 0)
		r = run_job(&a, argv[1], &err);
	loaded_free(&l);
	sbx_strv_free(a.protected_branches);
	if (r < 0)
		return cli_report(
		    r == -EINVAL || r == -EEXIST || r == -ENOENT ? EXIT_USAGE : EXIT_RUNTIME, &err);
	return EXIT_OK;
}

/* ---- trimo-sbx diff / push ----------------------------------------------------- */

static const char diff_usage[] =
    "usage: trimo-sbx diff [--stat] ID\n"
    "\n"
    "The task's branch as the host has it, against where it left its base; then\n"
    "the changes not committed yet in its workspace, computed by the image's git\n"
    "in a sandbox.  On a terminal, control characters are shown as '?'.\n";

static const char push_usage[] =
    "usage: trimo-sbx push ID\n"
    "\n"
    "Push the task's branch to the host repository's remote ([repo] remote), with\n"
    "your own credentials.  When the task is not running, its workspace's branch is\n"
    "first brought to the host through the same checks as a push from inside.\n";

/* A task verb's common part: find ID, load its git. */
static int open_task(const char *arg, struct loaded *l, struct git_task *t, bool *ret_running)
{
	struct task_ctx ctx;
	char id[STATE_ID_MAX];
	int code = task_ctx_open(&ctx, false);
	if (code == EXIT_OK)
		code = task_ctx_find(&ctx, arg, id);
	if (code == EXIT_OK) {
		char dir[PATH_MAX];
		struct sbx_err err = {0};
		snprintf(dir, sizeof(dir), "%s/tasks/%s", ctx.sd.root, id);
		if (load_task(dir, l, t, &err) < 0)
			code = cli_report(err.errnum == EINVAL ? EXIT_USAGE : EXIT_RUNTIME, &err);
		else
			*ret_running = state_status_active(state_effective(&l->st));
	}
	task_ctx_close(&ctx);
	return code;
}

int cmd_diff(int argc, char **argv)
{
	bool stat = false;
	const char *arg = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return (fputs(diff_usage, stdout), EXIT_OK);
		if (!strcmp(argv[i], "--stat"))
			stat = true;
		else if (argv[i][0] != '-' && !arg)
			arg = argv[i];
		else
			return cli_error(EXIT_USAGE,
			                 "diff: bad argument '%s' (see trimo-sbx diff "
			                 "--help)",
			                 argv[i]);
	}
	if (!arg)
		return cli_error(EXIT_USAGE, "diff: give one task ID (see trimo-sbx diff --help)");
	if (out_fd < 0)
		out_fd = fcntl(1, F_DUPFD_CLOEXEC, 10);
	struct loaded l = {0};
	struct git_task t = {.log = print_line};
	bool running;
	int code = open_task(arg, &l, &t, &running);
	if (code == EXIT_OK) {
		struct sbx_err err = {0};
		fflush(stdout);
		if (git_task_diff(&t, stat, out_fd, isatty(out_fd), &err) < 0)
			code = cli_report(EXIT_RUNTIME, &err);
	}
	loaded_free(&l);
	return code;
}

int cmd_push(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return (fputs(push_usage, stdout), EXIT_OK);
	if (argc != 2 || argv[1][0] == '-')
		return cli_error(EXIT_USAGE, "push: give one task ID (see trimo-sbx push --help)");
	if (out_fd < 0)
		out_fd = fcntl(1, F_DUPFD_CLOEXEC, 10);
	struct loaded l = {0};
	struct git_task t = {.log = print_line};
	bool running;
	int code = open_task(argv[1], &l, &t, &running);
	if (code == EXIT_OK) {
		struct sbx_err err = {0};
		if (running)
			print_line(NULL,
			           "the task is running: pushing the branch as the host has it");
		if (git_task_push(&t, !running, &err) < 0)
			code = cli_report(EXIT_RUNTIME, &err);
	}
	loaded_free(&l);
	return code;
}
