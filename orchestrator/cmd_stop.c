/* trimo-sbx stop [-t SECONDS] ID... */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "orchestrator/cli.h"
#include "orchestrator/supervisor.h"
#include "orchestrator/task_cli.h"

static const char stop_usage[] =
    "usage: trimo-sbx stop [-t SECONDS] ID...\n"
    "\n"
    "Stop tasks: a queued task leaves the queue; a running one gets SIGTERM,\n"
    "then SIGKILL after SECONDS (default 10).  Waits until each has ended and\n"
    "prints its id.  Stopping a task that has ended does nothing.\n";

#define STOP_DEFAULT_GRACE 10

static int mark_stopped(struct sbx_task_state *st, void *data)
{
	(void)data;
	if (!state_status_active(st->status))
		return 1;
	st->status = TASK_STOPPED;
	st->stop_requested = true;
	st->ended_ms = state_now_ms();
	st->sandbox_pid = 0;
	snprintf(st->error, sizeof(st->error), "the supervisor did not answer: killed");
	return 0;
}

/* The supervisor does not answer: kill it (its sandbox dies with it, by
 * PDEATHSIG), but only if the pid still is that supervisor. */
static int force_stop(int tfd, const struct sbx_task_state *st, struct sbx_err *err)
{
	if (state_owner_alive(st) && kill(st->supervisor_pid, SIGKILL) < 0 && errno != ESRCH)
		return sbx_fail(err, errno, "kill the supervisor (pid %d)",
		                (int)st->supervisor_pid);
	return state_update(tfd, mark_stopped, NULL, err);
}

/* 1: asked; 0: nothing to stop any more; < 0: error. */
static int ask_stop(int tfd, int grace, struct sbx_err *err)
{
	char req[32], reply[128];
	snprintf(req, sizeof(req), "stop %d", grace);
	struct sbx_task_state st;
	for (int attempt = 0;; attempt++) {
		int r = state_read(tfd, &st, err);
		if (r < 0)
			return r;
		if (!state_status_active(state_effective(&st)))
			return 0;
		if (supervisor_request(tfd, req, reply, sizeof(reply), err) == 0)
			return 1;
		if (attempt == 20)
			break;
		/* a supervisor between launch's handover and its socket */
		struct timespec ts = {.tv_nsec = 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return force_stop(tfd, &st, err) < 0 ? -err->errnum : 1;
}

int task_stop(struct task_ctx *ctx, const char *id, int grace, struct sbx_err *err)
{
	_cleanup_close_ int tfd = state_dir_open_task(&ctx->sd, id, err);
	if (tfd < 0)
		return tfd;
	int r = ask_stop(tfd, grace, err);
	if (r <= 0)
		return r;
	struct sbx_task_state st;
	r = task_wait_final(ctx, id, (grace + 15) * 1000, &st, err);
	if (r == -ETIMEDOUT) {
		r = state_read(tfd, &st, err);
		if (r >= 0)
			r = force_stop(tfd, &st, err);
	}
	return r;
}

int cmd_stop(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"time", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t grace = STOP_DEFAULT_GRACE;
	struct sbx_err err = {0};
	opterr = 0;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "+t:h", opts, NULL)) != -1) {
		if (c == 't') {
			if (sbx_parse_u64(optarg, "-t", 0, 86400, &grace, &err) < 0)
				return cli_error(EXIT_USAGE, "stop: %s", err.msg);
		} else if (c == 'h') {
			return (fputs(stop_usage, stdout), EXIT_OK);
		} else {
			return cli_error(EXIT_USAGE,
			                 "stop: unknown option '%s' (see trimo-sbx stop --help)",
			                 argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_error(EXIT_USAGE, "stop: give at least one task ID");
	struct task_ctx ctx;
	int code = task_ctx_open(&ctx, false);
	for (int i = optind; code == EXIT_OK && i < argc; i++) {
		char id[STATE_ID_MAX];
		code = task_ctx_find(&ctx, argv[i], id);
		if (code == EXIT_OK && task_stop(&ctx, id, (int)grace, &err) < 0)
			code = cli_report(EXIT_RUNTIME, &err);
		if (code == EXIT_OK)
			printf("%s\n", id);
	}
	task_ctx_close(&ctx);
	return code;
}
