/* Admission: whether a queued task may start now.
 *
 * A task starts only when, with the other tasks as they are:
 *   1. no task launched (or followed up) before it still waits: the queue
 *      is first in, first out, so a big task is not starved by small ones;
 *   2. fewer than max_parallel tasks are preparing or running;
 *   3. the running tasks' memory (each its cap, or default_memory without
 *      one) plus its own fits in MemTotal - memory_reserve (MemAvailable
 *      already excludes what running tasks use: it must not be the base);
 *   4. its own memory fits in MemAvailable now (other programs use memory);
 *   5. with max_cpu_pressure set, PSI cpu "some avg10" is below it.
 * Only tasks whose supervisor lives count (a lost task holds nothing).
 *
 * The decision is a pure function (unit-tested); admission_try() takes
 * the lock ($state_dir/admission.lock), reads every task's state and the
 * host's numbers, decides, and on success marks the task preparing before
 * it lets go of the lock. */
#ifndef SBX_ORCH_ADMISSION_H
#define SBX_ORCH_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "orchestrator/state.h"
#include "orchestrator/state_dir.h"

struct sbx_adm_host {
	uint64_t mem_total;     /* bytes */
	uint64_t mem_available; /* bytes */
	bool has_psi;
	uint32_t cpu_some_avg10; /* 1/100 % (12.34% = 1234) */
};

/* Environment variables that point the readers at other files (tests). */
#define ADMISSION_MEMINFO_ENV "TRIMO_SBX_MEMINFO"
#define ADMISSION_PSI_ENV     "TRIMO_SBX_PSI_CPU"

/* /proc/meminfo (or $TRIMO_SBX_MEMINFO) and /proc/pressure/cpu (or
 * $TRIMO_SBX_PSI_CPU).  A missing PSI file leaves has_psi false. */
int admission_read_host(struct sbx_adm_host *ret, struct sbx_err *err);
int admission_parse_meminfo(const char *text, struct sbx_adm_host *ret);
int admission_parse_psi(const char *text, uint32_t *ret_avg10);

/* Decide for self (whose queued state holds its admission numbers) given
 * every task's state (self included or not), with alive[i] telling whether
 * tasks[i]'s supervisor lives.  Returns true to admit; otherwise reason
 * says why in one line for `ps`. */
bool admission_decide(const struct sbx_task_state *self, const struct sbx_task_state *tasks,
                      const bool *alive, size_t n, const struct sbx_adm_host *host, char *reason,
                      size_t reason_size);

/* Under admission.lock: decide for the task in folder task_fd (whose state
 * the caller owns: its supervisor), and when admitted write it as
 * preparing.  1: admitted; 0: still queued (its queued_reason updated in
 * the state when it changed); < 0: error. */
int admission_try(const struct sbx_state_dir *sd, int task_fd, struct sbx_err *err);

#endif
