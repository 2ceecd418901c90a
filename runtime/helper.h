/* The runner's helper processes (pasta, slirp4netns, the egress proxy,
 * fuse-overlayfs): each is our child, dies with the runner
 * (PR_SET_PDEATHSIG), holds none of the runner's fds, and is ended by the
 * pid we got from fork(), never looked up by name. */
#ifndef SBX_RUNTIME_HELPER_H
#define SBX_RUNTIME_HELPER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

/* Fork a helper with PR_SET_PDEATHSIG(SIGKILL) (checked against the
 * runner's pid afterwards), in a session of its own (the terminal's ^C,
 * ^\ and hangup are the runner's to relay), signals unblocked,
 * stdin/stdout on /dev/null, stderr on log_fd, pass[i] as fd 3 + i, every
 * other fd closed, and exec path.  *ret_pid is the child. */
int helper_spawn(const char *path, char *const *argv, const int *pass, size_t n_pass, int log_fd,
                 pid_t *ret_pid, struct sbx_err *err);

/* The same without exec: 0 in the child (set up as above), 1 in the
 * parent with *ret_pid set, < 0 on failure. */
int helper_fork(const int *pass, size_t n_pass, int log_fd, pid_t *ret_pid, struct sbx_err *err);

/* In a forked helper: die with the runner again after a change of
 * credentials (setns into a user namespace clears PR_SET_PDEATHSIG). */
void helper_rearm(void);

/* What a helper wrote to its log memfd (the last line or two), for errors. */
void helper_log_tail(int log_fd, char *buf, size_t size);

/* SIGKILL and reap a child we started; *pid set to 0. */
void helper_kill(pid_t *pid);

#endif
