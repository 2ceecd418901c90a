/* trimo-sbx rm [-f] ID... */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "orchestrator/cli.h"
#include "orchestrator/task_cli.h"

static const char rm_usage[] =
    "usage: trimo-sbx rm [-f] ID...\n"
    "\n"
    "Remove tasks: their folder with workspace, layer, logs and runs.  A task\n"
    "that is queued or running is refused unless -f, which stops it at once\n"
    "(SIGKILL) first.  The task's git branch is kept.\n";

/* Under the task's lock (so no followup starts meanwhile): move the folder
 * out of sight in one rename, then delete it. */
static int remove_task(struct task_ctx *ctx, const char *id, bool force, struct sbx_err *err)
{
	_cleanup_close_ int tfd = state_dir_open_task(&ctx->sd, id, err);
	if (tfd < 0)
		return tfd;
	_cleanup_close_ int lock = state_lock(tfd, err);
	if (lock < 0)
		return lock;
	struct sbx_task_state st;
	bool readable = state_read(tfd, &st, err) == 0;
	if (readable && state_status_active(state_effective(&st))) {
		if (!force)
			return sbx_failx(err, EBUSY, "task %s is %s: stop it first, or use rm -f",
			                 id, state_status_name(state_effective(&st)));
		close(TAKE_FD(lock));
		int r = task_stop(ctx, id, 0, err);
		if (r < 0)
			return r;
		return remove_task(ctx, id, false, err);
	}
	char gone[STATE_ID_MAX + 32];
	snprintf(gone, sizeof(gone), ".rm-%s-%d", id, (int)getpid());
	if (renameat(ctx->sd.tasks_fd, id, ctx->sd.tasks_fd, gone) < 0)
		return sbx_fail(err, errno, "remove task %s", id);
	close(TAKE_FD(lock));
	int r = sbx_rm_rf_at(ctx->sd.tasks_fd, gone, err);
	if (r < 0)
		return sbx_wrap(err, "remove task %s", id);
	return 0;
}

int cmd_rm(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"force", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool force = false;
	opterr = 0;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "+fh", opts, NULL)) != -1) {
		if (c == 'f')
			force = true;
		else if (c == 'h')
			return (fputs(rm_usage, stdout), EXIT_OK);
		else
			return cli_error(EXIT_USAGE,
			                 "rm: unknown option '%s' (see trimo-sbx rm --help)",
			                 argv[optind - 1]);
	}
	if (optind >= argc)
		return cli_error(EXIT_USAGE, "rm: give at least one task ID");
	struct task_ctx ctx;
	int code = task_ctx_open(&ctx, false);
	int result = EXIT_OK;
	for (int i = optind; code == EXIT_OK && i < argc; i++) {
		char id[STATE_ID_MAX];
		struct sbx_err err = {0};
		if (task_ctx_find(&ctx, argv[i], id) != EXIT_OK) {
			result = EXIT_USAGE;
			continue;
		}
		if (remove_task(&ctx, id, force, &err) < 0)
			result = cli_report(err.errnum == EBUSY ? EXIT_USAGE : EXIT_RUNTIME, &err);
		else
			printf("%s\n", id);
	}
	task_ctx_close(&ctx);
	return code != EXIT_OK ? code : result;
}
