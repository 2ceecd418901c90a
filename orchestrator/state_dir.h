/* The state folder: $state_dir/{tasks/<id>/, admission.lock, queue.event}.
 *
 * queue.event is written (never read) whenever room may have appeared in
 * the admission queue (a run ended, a task was removed, a queued task
 * started or left): queued supervisors watch the state folder with
 * inotify and re-check on IN_CLOSE_WRITE of it. */
#ifndef SBX_ORCH_STATE_DIR_H
#define SBX_ORCH_STATE_DIR_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "orchestrator/state.h"

#define STATE_DIR_EVENT "queue.event"

struct sbx_state_dir {
	char *root;   /* absolute */
	int root_fd;  /* O_PATH|O_DIRECTORY */
	int tasks_fd; /* root/tasks, O_RDONLY|O_DIRECTORY */
};

/* Open (with create: make, mode 0700) the state folder root. */
int state_dir_open(const char *root, bool create, struct sbx_state_dir *ret, struct sbx_err *err);
void state_dir_close(struct sbx_state_dir *sd);

/* The folder of a task, O_RDONLY|O_DIRECTORY|O_CLOEXEC, or -errno. */
int state_dir_open_task(const struct sbx_state_dir *sd, const char *id, struct sbx_err *err);

/* What the user typed (an id, a unique id prefix, or a unique task name)
 * to an id.  -ENOENT (no task) or -EINVAL (ambiguous) with err set. */
int state_dir_find(const struct sbx_state_dir *sd, const char *arg, char ret[STATE_ID_MAX],
                   struct sbx_err *err);

/* Every task's state (folders without a readable state are skipped: a
 * launch in progress), sorted by creation time, then id.  *ret is
 * malloc'ed. */
int state_dir_list(const struct sbx_state_dir *sd, struct sbx_task_state **ret, size_t *ret_n,
                   struct sbx_err *err);

/* Write queue.event: wake the queued supervisors. */
void state_dir_notify(const struct sbx_state_dir *sd);

#endif
