/* The per-task supervisor: one small detached process per task run.
 *
 * launch (or followup) writes the task folder with the run queued and
 * owned by itself, then supervisor_spawn() forks twice (the supervisor is
 * nobody's child: setsid, no controlling terminal, stdin /dev/null, stdout
 * and stderr to the task log) and execs `trimo-sbx __supervise`.  The
 * supervisor
 *   1. claims the task (state: its pid and start time) and answers the
 *      launcher through a pipe, so `launch` returns only once someone owns
 *      the task;
 *   2. opens control.sock (stop, status);
 *   3. waits for admission (orchestrator/admission.h), woken by inotify on
 *      the state folder and a one-second timer;
 *   4. runs the sandbox with run_sandbox(): its stdout and stderr go
 *      through a pipe it reads and stamps into log and runs/N/log; it
 *      stops the run on request or timeout (SIGTERM to the sandbox's init,
 *      SIGKILL after the grace period) and refreshes the memory and CPU
 *      figures in the state every two seconds;
 *   5. writes runs/N/record and the final state, wakes the queue, exits.
 * A supervisor that dies takes its sandbox along (PDEATHSIG on the
 * sandbox's init): the task shows as lost.
 *
 * The control protocol: SOCK_SEQPACKET, one request, one answer:
 *   "stop GRACE"  -> "ok"     SIGTERM now, SIGKILL after GRACE seconds
 *   "status"      -> "<state> <sandbox pid>"
 * Only the task's owner (the same uid, or root) may connect. */
#ifndef SBX_ORCH_SUPERVISOR_H
#define SBX_ORCH_SUPERVISOR_H

#include "common/err.h"
#include "orchestrator/state_dir.h"

#define SUPERVISOR_VERB "__supervise"
#define CONTROL_SOCK    "control.sock"

/* Start the supervisor of task id (whose state is queued and owned by the
 * caller).  hold_fd (or -1) is an image hold the supervisor keeps while it
 * lives.  Returns once the supervisor has claimed the task: 0, or -errno
 * when it did not start (err says why). */
int supervisor_spawn(const struct sbx_state_dir *sd, const char *id, int hold_fd,
                     struct sbx_err *err);

/* `trimo-sbx __supervise STATE_DIR ID NOTIFY_FD HOLD_FD` */
int supervisor_main(int argc, char **argv);

/* Send one control request to the task's supervisor; the answer goes to
 * reply.  -errno when there is nobody to ask. */
int supervisor_request(int task_fd, const char *request, char *reply, size_t size,
                       struct sbx_err *err);

#endif
