/* The runs of a task: runs/N/{prompt, log, record, trimo/{prompt, history}}.
 *
 * record is the task's state as it was when run N ended (the same JSON as
 * `state`).  trimo/ is bound read-only at /run/trimo inside run N: the
 * prompt again, and history, the earlier runs' prompts with their outcome,
 * so an agent can pick up where the last run left off. */
#ifndef SBX_ORCH_TASK_RUN_H
#define SBX_ORCH_TASK_RUN_H

#include <stddef.h>

#include "common/err.h"
#include "orchestrator/state.h"

/* "runs/N" into buf */
void task_run_dir(unsigned run, char *buf, size_t size);

/* Create runs/N with its prompt (len bytes, may be 0), under task_fd. */
int task_run_create(int task_fd, unsigned run, const char *prompt, size_t len, struct sbx_err *err);

/* runs/N/prompt, malloc'ed and NUL-terminated. */
int task_run_prompt(int task_fd, unsigned run, char **ret, size_t *ret_len, struct sbx_err *err);

/* runs/N/record */
int task_run_write_record(int task_fd, const struct sbx_task_state *st, struct sbx_err *err);
int task_run_read_record(int task_fd, unsigned run, struct sbx_task_state *ret,
                         struct sbx_err *err);

/* The history text of the runs before `run` (empty for run 1). */
int task_run_history(int task_fd, unsigned run, char **ret, struct sbx_err *err);

/* "2026-11-28T10:15:02Z" for ms since the epoch. */
void task_run_format_time(int64_t ms, char *buf, size_t size);

/* One line of outcome: "exited 0", "failed: exit code 3", "oom (killed by
 * the OOM killer)", "stopped", "failed: <error>". */
void task_run_outcome(const struct sbx_task_state *st, char *buf, size_t size);

#endif
