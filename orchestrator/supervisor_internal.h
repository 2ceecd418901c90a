/* Inside the supervisor (supervisor.c: claim, queue, control socket;
 * supervisor_run.c: one run of the sandbox). */
#ifndef SBX_ORCH_SUPERVISOR_INTERNAL_H
#define SBX_ORCH_SUPERVISOR_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "orchestrator/git_sup.h"
#include "orchestrator/state_dir.h"
#include "orchestrator/supervisor.h"
#include "orchestrator/task.h"
#include "orchestrator/task_log.h"
#include "runtime/run.h"

/* Grace between SIGTERM and SIGKILL when the timeout hits. */
#define SUP_TIMEOUT_GRACE_S 10
/* How often a running task's memory and CPU figures reach the state. */
#define SUP_STATS_INTERVAL_S 2

struct sup {
	struct sbx_state_dir sd;
	char id[STATE_ID_MAX];
	char task_path[PATH_MAX]; /* absolute */
	int task_fd;
	struct sbx_task_def *def;
	unsigned run;
	int hold_fd;

	int log_fd;     /* log (every run) */
	int run_log_fd; /* runs/N/log */
	struct sbx_log_stamper log;

	int ctl_fd; /* control.sock, listening */

	/* while the sandbox runs */
	int ep;     /* epoll: output pipe, ctl_fd, timers; the runner's watch_fd */
	int out_fd; /* the read end of the sandbox's stdout/stderr */
	int tfd_timeout, tfd_kill, tfd_stats;
	bool stop_requested;
	bool timed_out;
	struct sbx_net *net; /* its network while it runs (runtime/network.h) */
	struct git_sup git;  /* [repo]: push socket, auto-commits (orchestrator/git_sup.h) */
};

/* A line of our own in the log. */
void sup_msg(struct sup *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Accept one control connection and answer it.  pid is the sandbox's init
 * (0 before it exists).  Returns true when the request was `stop`. */
bool sup_control(struct sup *s, pid_t pid, int *ret_grace);

/* Remove control.sock before the final state is written: a followup's
 * new supervisor may bind its own right after, and must keep it. */
void sup_control_close(struct sup *s);

/* SIGTERM to the sandbox now, SIGKILL after grace seconds (0: at once). */
void sup_begin_stop(struct sup *s, pid_t pid, int grace);

/* Run the admitted task's sandbox to its end and record the outcome.  < 0
 * (err set) only when it failed before the sandbox existed. */
int sup_run(struct sup *s, struct sbx_err *err);

#endif
