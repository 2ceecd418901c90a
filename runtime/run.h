/* One sandbox's life on the host side: prepare, clone, id maps, the sync
 * protocol, signals, the terminal relay, waiting.
 *
 *   parent                                  child (sandbox/child.c)
 *   seccomp BPF, mount plan, pty, sync pair
 *   clone(NEWUSER|NEWNS|NEWPID|NEWNET|NEWIPC|NEWUTS)
 *   setgroups=deny, gid_map, uid_map
 *   hooks->before_go (cgroup attach, ...)
 *   GO  ---------------------------------->  cgroupns, mounts, pivot_root,
 *                                            hostname, lo, caps, NNP
 *       <----------------------------------  READY (or ERROR)
 *   hooks->before_start (network, ...)
 *   START -------------------------------->  init: seccomp, fork, exec
 *       <----------------------------------  EOF (exec'ed) or ERROR
 *   relay signals and the terminal until init exits
 */
#ifndef SBX_RUNTIME_RUN_H
#define SBX_RUNTIME_RUN_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"
#include "sandbox/spec.h"

struct sbx_run_hooks {
	void *data;
	int cgroup_fd; /* a cgroup2 folder for clone3(CLONE_INTO_CGROUP), or -1 */
	/* After the id maps, before GO: the child exists but runs nothing. */
	int (*before_go)(void *data, pid_t pid, struct sbx_err *err);
	/* After READY, before START: the sandbox is set up. */
	int (*before_start)(void *data, pid_t pid, struct sbx_err *err);
	/* The command runs (EOF on the sync socket). */
	void (*started)(void *data, pid_t pid);
	/* An fd to poll while the sandbox runs, and what to do when it is
	 * readable (an OOM event, a control socket, ...); -1 for none. */
	int watch_fd;
	void (*watch)(void *data, pid_t pid);
};

struct sbx_run_result {
	pid_t pid;	     /* init's pid on the host */
	int status;	     /* init's wait status */
	int exit_code;	     /* the command's code, or 128 + signal */
	bool bad_input;	     /* the failure is the caller's request (exit 2) */
	bool exec_failed;    /* the command could not be executed ... */
	struct sbx_err exec_err; /* ... and why */
};

/* Run the sandbox to its end.  0: it ran (see ret->exit_code, which is
 * 126/127 with exec_failed); < 0: it could not be set up (err says why,
 * ret->bad_input tells a bad request from a runtime failure). */
int run_sandbox(const struct sbx_spec *spec, const struct sbx_run_hooks *hooks,
		struct sbx_run_result *ret, struct sbx_err *err);

#endif
