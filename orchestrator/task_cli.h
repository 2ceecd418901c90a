/* What the task verbs (launch, ps, logs, stop, rm, wait, inspect, followup)
 * share: the user config and state folder, waiting for a task to end,
 * printing its log. */
#ifndef SBX_ORCH_TASK_CLI_H
#define SBX_ORCH_TASK_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "config/config.h"
#include "orchestrator/state.h"
#include "orchestrator/state_dir.h"

struct task_ctx {
	struct sbx_config_env cenv;
	const struct sbx_user_config *ucfg;
	struct sbx_state_dir sd;
};

/* Load the user config and open its state folder (create: make it).
 * Returns an exit code (EXIT_OK, or the code of the error it printed). */
int task_ctx_open(struct task_ctx *ctx, bool create);
void task_ctx_close(struct task_ctx *ctx);

/* Find a task by what the user typed; prints the error and returns its
 * exit code, or 0 with ret set. */
int task_ctx_find(struct task_ctx *ctx, const char *arg, char ret[STATE_ID_MAX]);

/* Wait until the task's status is final (exited, failed, oom, stopped or
 * lost); timeout_ms < 0: forever.  -ETIMEDOUT, -ENOENT (removed), ... */
int task_wait_final(struct task_ctx *ctx, const char *id, int timeout_ms,
                    struct sbx_task_state *ret, struct sbx_err *err);

/* Print a task's log (run 0: every run) to stdout without the stamps (or
 * with them); follow: until the task ends.  Returns 0 or -errno. */
int task_print_log(struct task_ctx *ctx, const char *id, unsigned run, bool follow, bool timestamps,
                   struct sbx_err *err);

/* The exit code `wait` and `launch -f` end with: the command's own code
 * when it has one, 1 for a failure without one (or a lost task), 0 for a
 * task that is not finished. */
int task_status_exit_code(const struct sbx_task_state *st);

/* Stop a task (cmd_stop.c): ask its supervisor (SIGTERM, SIGKILL after
 * grace seconds), or kill an unresponsive supervisor; wait for the end.
 * 0 also when there was nothing to stop. */
int task_stop(struct task_ctx *ctx, const char *id, int grace, struct sbx_err *err);

/* Set up st for a new run entering the queue: status queued, run
 * number unchanged, the admission numbers from the user config and the
 * task's limits, owner = the caller, outcome fields cleared. */
struct sbx_task_def;
void task_queue_run(struct sbx_task_state *st, const struct sbx_user_config *ucfg,
                    const struct sbx_task_def *def);

/* Sizes and durations for people: "1.5G", "-"; "3s", "2m", "5h", "3d". */
void task_fmt_size(uint64_t v, char *buf, size_t size);
void task_fmt_age(int64_t ms, char *buf, size_t size);

#endif
