/* trimo-sbx followup ID --prompt TEXT | --prompt-file FILE [-f] */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "orchestrator/cli.h"
#include "orchestrator/supervisor.h"
#include "orchestrator/task.h"
#include "orchestrator/task_cli.h"
#include "orchestrator/task_run.h"

static const char followup_usage[] =
    "usage: trimo-sbx followup ID (--prompt TEXT | --prompt-file FILE) [-f]\n"
    "\n"
    "Start a new run of an ended task: the same workspace, branch and file system\n"
    "layer (every change of the earlier runs stays), a fresh sandbox.  The prompt\n"
    "reaches the agent as $TRIMO_PROMPT and /run/trimo/prompt; /run/trimo/history\n"
    "holds the earlier runs' prompts and outcomes.  The run waits in the queue\n"
    "like a launch.  Prints the task id.\n"
    "\n"
    "Options:\n"
    "  --prompt TEXT         the new prompt\n"
    "  --prompt-file FILE    read it from FILE\n"
    "  -f, --follow          show this run's output until it ends, and exit with\n"
    "                        the task's status\n";

struct followup {
	const char *arg;
	const char *prompt;
	const char *prompt_file;
	bool follow;
};

static int parse_args(struct followup *o, int argc, char **argv, bool *help, struct sbx_err *err)
{
	static const struct option opts[] = {
	    {"prompt", required_argument, NULL, 'p'},
	    {"prompt-file", required_argument, NULL, 'F'},
	    {"follow", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	opterr = 0;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		if (c == 'p')
			o->prompt = optarg;
		else if (c == 'F')
			o->prompt_file = optarg;
		else if (c == 'f')
			o->follow = true;
		else if (c == 'h')
			return (*help = true, 0);
		else
			return sbx_failx(err, EINVAL, "unknown option or missing value '%s'",
			                 argv[optind - 1]);
	}
	if (optind != argc - 1)
		return sbx_failx(err, EINVAL, "give one task ID");
	o->arg = argv[optind];
	if (!o->prompt == !o->prompt_file)
		return sbx_failx(err, EINVAL, "give --prompt or --prompt-file (one of them)");
	return 0;
}

static int read_prompt(const struct followup *o, char **ret, size_t *ret_len, struct sbx_err *err)
{
	if (o->prompt) {
		*ret_len = strlen(o->prompt);
		*ret = strdup(o->prompt);
		if (!*ret)
			return sbx_fail(err, ENOMEM, "prompt");
	} else if (sbx_read_file(AT_FDCWD, o->prompt_file, SBX_PROMPT_MAX, ret, ret_len, err) < 0) {
		return sbx_wrap(err, "--prompt-file");
	}
	if (*ret_len > SBX_PROMPT_MAX || strlen(*ret) != *ret_len)
		return sbx_failx(err, EINVAL, "the prompt must be text of at most %d KiB",
		                 SBX_PROMPT_MAX / 1024);
	return 0;
}

/* The folder we hold is still tasks/<id> (no rm moved it away). */
static bool still_there(struct task_ctx *ctx, int tfd, const char *id)
{
	struct stat a, b;
	return fstat(tfd, &a) == 0 && fstatat(ctx->sd.tasks_fd, id, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	       a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/* Under the task's lock: check it has ended, add runs/N+1, queue it. */
static int queue_followup(struct task_ctx *ctx, int tfd, const char *id,
                          const struct sbx_task_def *def, const char *prompt, size_t plen,
                          struct sbx_err *err)
{
	_cleanup_close_ int lock = state_lock(tfd, err);
	if (lock < 0)
		return lock;
	struct sbx_task_state st;
	int r = state_read(tfd, &st, err);
	if (r < 0)
		return r;
	enum sbx_task_status s = state_effective(&st);
	if (state_status_active(s) || !still_there(ctx, tfd, id))
		return sbx_failx(err, EBUSY, "task %s is %s: wait for it or stop it first", id,
		                 still_there(ctx, tfd, id) ? state_status_name(s)
		                                           : "being removed");
	st.run++;
	r = task_run_create(tfd, st.run, prompt, plen, err);
	if (r < 0)
		return r;
	task_queue_run(&st, ctx->ucfg, def);
	return state_write(tfd, &st, err);
}

static int fail_start(struct sbx_task_state *st, void *data)
{
	const struct sbx_err *e = data;
	if (st->status != TASK_QUEUED || st->supervisor_pid != getpid())
		return 1;
	st->status = TASK_FAILED;
	st->ended_ms = state_now_ms();
	snprintf(st->error, sizeof(st->error), "%s", e->msg);
	return 0;
}

static int followup(struct task_ctx *ctx, const struct followup *o, char id[STATE_ID_MAX],
                    unsigned *ret_run, struct sbx_err *err)
{
	_cleanup_free_ char *prompt = NULL;
	size_t plen = 0;
	int r = read_prompt(o, &prompt, &plen, err);
	if (r < 0)
		return r;
	_cleanup_close_ int tfd = state_dir_open_task(&ctx->sd, id, err);
	if (tfd < 0)
		return tfd;
	_cleanup_task_def_ struct sbx_task_def *def = NULL;
	struct sbx_task_image img = {.hold_fd = -1};
	r = task_def_read(tfd, &def, err);
	r = r ?: task_hold_image(&def->image, ctx->ucfg->storage.image_dir, &img, err);
	r = r ?: queue_followup(ctx, tfd, id, def, prompt, plen, err);
	if (r < 0) {
		if (img.hold_fd >= 0)
			close(img.hold_fd);
		return r;
	}
	struct sbx_task_state st;
	if (state_read(tfd, &st, err) == 0)
		*ret_run = st.run;
	r = supervisor_spawn(&ctx->sd, id, img.hold_fd, err);
	if (img.hold_fd >= 0)
		close(img.hold_fd);
	if (r < 0) {
		struct sbx_err ignored;
		state_update(tfd, fail_start, err, &ignored);
	}
	return r;
}

int cmd_followup(int argc, char **argv)
{
	struct followup o = {0};
	bool help = false;
	struct sbx_err err = {0};
	if (parse_args(&o, argc, argv, &help, &err) < 0)
		return cli_error(EXIT_USAGE, "followup: %s (see trimo-sbx followup --help)",
		                 err.msg);
	if (help)
		return (fputs(followup_usage, stdout), EXIT_OK);
	struct task_ctx ctx;
	char id[STATE_ID_MAX];
	unsigned run = 0;
	int code = task_ctx_open(&ctx, false);
	if (code == EXIT_OK)
		code = task_ctx_find(&ctx, o.arg, id);
	if (code == EXIT_OK && followup(&ctx, &o, id, &run, &err) < 0)
		code = cli_report(
		    err.errnum == EBUSY || err.errnum == EINVAL ? EXIT_USAGE : EXIT_RUNTIME, &err);
	if (code == EXIT_OK) {
		printf("%s\n", id);
		fflush(stdout);
		if (o.follow) {
			struct sbx_task_state st;
			if (task_print_log(&ctx, id, run, true, false, &err) < 0 ||
			    task_wait_final(&ctx, id, -1, &st, &err) < 0)
				code = cli_report(EXIT_RUNTIME, &err);
			else
				code = task_status_exit_code(&st);
		}
	}
	task_ctx_close(&ctx);
	return code;
}
