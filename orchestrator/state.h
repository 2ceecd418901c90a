/* A task's state: the JSON file `state` in its folder, the truth that every
 * trimo-sbx command reads (there is no daemon to ask).
 *
 * Writers (launch, the supervisor, followup, stop's fallback, rm) change
 * it under the task's lock (state_lock) by reading it, changing the struct
 * and writing it back through a temporary name and rename(); readers (ps,
 * wait, logs) need no lock: they see the old or the new file, never a mix.
 *
 * A task whose state says queued, preparing or running but whose
 * supervisor is gone (its pid no longer exists, or belongs to another
 * process: the start time recorded with the pid differs, or the machine
 * rebooted) is `lost`: state_effective() tells, the file keeps what was
 * last known. */
#ifndef SBX_ORCH_STATE_H
#define SBX_ORCH_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

#define STATE_ID_MAX      64
#define STATE_NAME_MAX    48
#define STATE_REASON_MAX  256
#define STATE_ERROR_MAX   480
#define STATE_PATH_MAX    512
#define STATE_BOOT_ID_MAX 40

/* "unknown" for the counters below */
#define STATE_UNKNOWN UINT64_MAX

enum sbx_task_status {
	TASK_QUEUED = 0, /* waiting for admission */
	TASK_PREPARING,  /* admitted, the sandbox is being set up */
	TASK_RUNNING,    /* the command runs */
	TASK_EXITED,     /* the last run's command exited 0 */
	TASK_FAILED,     /* it exited non-zero, could not start, or timed out */
	TASK_OOM,        /* the OOM killer ended it */
	TASK_STOPPED,    /* `trimo-sbx stop` ended it */
	TASK_LOST,       /* derived, never written: the supervisor vanished */
	TASK_STATUS_COUNT,
};

const char *state_status_name(enum sbx_task_status s);
/* 0, or -EINVAL for an unknown name ("lost" is accepted). */
int state_status_parse(const char *name, enum sbx_task_status *ret);
/* queued, preparing, running: a supervisor is (or should be) at work */
bool state_status_active(enum sbx_task_status s);

struct sbx_task_state {
	char id[STATE_ID_MAX];
	char name[STATE_NAME_MAX];
	enum sbx_task_status status;
	unsigned run; /* 1 for the launch, +1 per followup */

	/* wall clock, ms since the epoch; 0 = not yet */
	int64_t created_ms; /* launch */
	int64_t queued_ms;  /* this run entered the queue */
	int64_t started_ms; /* this run's command started */
	int64_t ended_ms;   /* this run ended */
	/* the admission queue's order: this run's enqueue time in ns (ties:
	 * the id) */
	int64_t queue_seq;

	/* who owns the task now: the supervisor, or the launching CLI until it
	 * hands over; start time in clock ticks after boot (/proc/PID/stat) */
	pid_t supervisor_pid;
	uint64_t supervisor_start;
	char boot_id[STATE_BOOT_ID_MAX];
	pid_t sandbox_pid; /* the sandbox's init on the host, while running */

	/* outcome of the last run */
	bool has_exit_code;
	int exit_code; /* the command's code, 128 + signal when killed */
	bool stop_requested;
	bool timed_out;
	char error[STATE_ERROR_MAX]; /* why it failed without a code, or "" */

	/* admission: what this run counts as, and the rules it was queued
	 * under (the user config of the launch or followup) */
	uint64_t memory_admit; /* its cap, or default_memory without one */
	uint64_t memory_max;   /* its cap; STATE_UNKNOWN = none */
	uint64_t max_parallel;
	uint64_t memory_reserve;
	uint32_t max_cpu_pressure; /* 1/100 %, 0 = off */
	char queued_reason[STATE_REASON_MAX];
	char cgroup_parent[STATE_PATH_MAX]; /* the user config's [cgroups] parent, or "" */
	char overlay[8];                    /* its [storage] overlay: auto, kernel, fuse */

	/* accounting of the current or last run (STATE_UNKNOWN = not known) */
	uint64_t memory_current;
	uint64_t memory_peak;
	uint64_t cpu_usec;
	uint64_t oom_kills;
	uint64_t egress_allowed;     /* connections the allowlist proxy let through */
	uint64_t egress_refused;     /* ... and refused */
	char cgroup[STATE_PATH_MAX]; /* the sandbox's cgroup while it runs, or "" */

	char branch[STATE_REASON_MAX]; /* the task's git branch, or "" */
};

/* A fresh state: every counter unknown, memory_max none. */
void state_init(struct sbx_task_state *st);

/* JSON codec (jansson).  state_to_json returns a malloc'ed, NUL-terminated
 * text; state_from_json fills *ret from text (unknown keys are ignored,
 * missing ones keep state_init's values). */
int state_to_json(const struct sbx_task_state *st, char **ret, struct sbx_err *err);
int state_from_json(const char *text, size_t len, struct sbx_task_state *ret, struct sbx_err *err);

/* The file `state` in the task folder dirfd. */
int state_read(int dirfd, struct sbx_task_state *ret, struct sbx_err *err);
int state_write(int dirfd, const struct sbx_task_state *st, struct sbx_err *err);

/* The task's lock: an exclusive flock on its folder (open a fresh fd of
 * the folder: flock belongs to the open file).  Returns the locked fd, or
 * -errno.  Close it to unlock. */
int state_lock(int dirfd, struct sbx_err *err);

/* Read, change with fn, write, all under the task's lock.  fn returns < 0
 * to abort (its error is returned, nothing written), 0 to write, 1 to
 * leave the file as it is. */
int state_update(int dirfd, int (*fn)(struct sbx_task_state *st, void *data), void *data,
                 struct sbx_err *err);

/* ---- liveness -------------------------------------------------------- */

/* This boot's id (/proc/sys/kernel/random/boot_id), cached; "" if
 * unreadable. */
const char *state_boot_id(void);

/* The start time of pid (field 22 of /proc/PID/stat).  -ESRCH when it does
 * not exist or is a zombie.  proc_root is "/proc" outside of tests. */
int state_proc_start(const char *proc_root, pid_t pid, uint64_t *ret);

/* Record the calling process as the task's owner. */
void state_set_owner(struct sbx_task_state *st);

/* Whether the recorded owner still runs: same boot, pid alive with the
 * recorded start time. */
bool state_owner_alive(const struct sbx_task_state *st);

/* The status to show: TASK_LOST for an active status whose owner is gone. */
enum sbx_task_status state_effective(const struct sbx_task_state *st);

/* Milliseconds since the epoch, now. */
int64_t state_now_ms(void);

#endif
