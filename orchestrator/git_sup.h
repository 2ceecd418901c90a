/* A task's git inside its supervisor, for one run: the push socket, the
 * bind of git-remote-trimo, interval auto-commits, and the work after the
 * run (docs/git.md).  The supervisor adds git_sup_fd() to its epoll set
 * and calls git_sup_handle() when it is readable; everything else is one
 * call at a fixed place of the run.
 *
 * Also git_task_from_def(): the struct git_task of a task folder, for the
 * CLI verbs (diff, push) and `__git-job`. */
#ifndef SBX_ORCH_GIT_SUP_H
#define SBX_ORCH_GIT_SUP_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "orchestrator/git_task.h"
#include "orchestrator/task.h"
#include "runtime/cgroup.h"

/* The PATH of a task with [repo]: git-remote-trimo last. */
#define GIT_SANDBOX_PATH_SUFFIX ":" GIT_SANDBOX_BIN

/* A struct git_task for def (which must outlive it), in the task folder
 * task_dir, with limits and cgroup_parent for its git jobs (either may be
 * NULL).  Strings point into def, task_dir and limits. */
void git_task_from_def(const struct sbx_task_def *def, const char *task_dir,
                       const struct sbx_cgroup_limits *limits, const char *cgroup_parent,
                       struct git_task *ret);

struct git_sup {
	bool active; /* the task has a [repo] */
	struct git_task t;
	struct git_run run;
	bool run_open;
	unsigned run_no;
	char task_dir[PATH_MAX];
	int ep;           /* the fd the supervisor polls */
	int tfd_commit;   /* interval auto-commits, or -1 */
	pid_t commit_pid; /* a running interval auto-commit */
	int commit_out;   /* its output */
	size_t len;
	char buf[1024];
};

void git_sup_init(struct git_sup *g);

/* For run N of def (in task_dir; trimo_dir is runs/N/trimo): the push
 * socket, the helper's mount point, the interval timer.  Nothing to do
 * (and g stays inactive) without [repo].  log receives every line. */
int git_sup_prepare(struct git_sup *g, const struct sbx_task_def *def, const char *task_dir,
                    unsigned run, const char *trimo_dir, const struct sbx_cgroup_limits *limits,
                    const char *cgroup_parent, void (*log)(void *data, const char *line),
                    void *data, struct sbx_err *err);

/* The bind of git-remote-trimo to add to the spec (after /run/trimo), or
 * NULL when inactive. */
const struct sbx_bind *git_sup_bind(const struct git_sup *g);

/* An epoll fd (-1 when inactive) and its handler: pushes, the interval
 * timer, an interval commit's output. */
int git_sup_fd(const struct git_sup *g);
void git_sup_handle(struct git_sup *g);

/* The sandbox has ended: finish pushes and an interval commit in flight,
 * then auto-commit or sync, and push = on-exit.  fds 1 and 2 must not be
 * the log pipe of the run any more (git jobs write there). */
void git_sup_end_run(struct git_sup *g);

void git_sup_release(struct git_sup *g);

#endif
