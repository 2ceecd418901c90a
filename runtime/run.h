/* One sandbox's life on the host side: prepare, cgroup, clone, id maps,
 * the sync protocol, signals, the terminal relay, OOM and exit accounting.
 *
 *   parent                                  child (sandbox/child.c)
 *   seccomp BPF, mount plan, pty, sync pair
 *   cgroup leaf with its limits (runtime/cgroup.h)
 *   clone3(NEWUSER|NEWNS|NEWPID|NEWNET|NEWIPC|NEWUTS [, INTO_CGROUP])
 *   setgroups=deny, gid_map, uid_map; v1: attach to the cgroup
 *   GO  ---------------------------------->  cgroupns, mounts, pivot_root,
 *                                            hostname, lo, caps, NNP
 *       <----------------------------------  READY (or ERROR)
 *   opts->before_start (network, ...)
 *   START -------------------------------->  init: seccomp, fork, exec
 *       <----------------------------------  EOF (exec'ed) or ERROR
 *   relay signals and the terminal, watch OOM events, until init exits;
 *   read the cgroup's accounting, remove the cgroup
 */
#ifndef SBX_RUNTIME_RUN_H
#define SBX_RUNTIME_RUN_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"
#include "runtime/cgroup.h"
#include "sandbox/spec.h"

/* What a hook learns about the running sandbox. */
struct sbx_run_info {
	pid_t pid;                 /* the sandbox's init, on the host */
	struct sbx_cgroup *cgroup; /* its cgroup (cgroup_stats, cgroup_kill) */
};

struct sbx_run_opts {
	/* Resource caps; NULL or limits->unlimited: no cgroup at all. */
	const struct sbx_cgroup_limits *limits;
	const char *cgroup_parent; /* the user config's [cgroups] parent, or NULL */

	void *data; /* passed to every hook */
	/* After READY, before START: the sandbox is set up, nothing runs. */
	int (*before_start)(void *data, const struct sbx_run_info *info, struct sbx_err *err);
	/* The command runs (exec'ed). */
	void (*started)(void *data, const struct sbx_run_info *info);
	/* An fd to poll while the sandbox runs, and what to do when it is
	 * readable (a control socket, ...); -1 for none. */
	int watch_fd;
	void (*watch)(void *data, const struct sbx_run_info *info);
};

struct sbx_run_result {
	pid_t pid;               /* init's pid on the host */
	int status;              /* init's wait status */
	int exit_code;           /* the command's code, or 128 + signal */
	bool bad_input;          /* the failure is the caller's request (exit 2) */
	bool exec_failed;        /* the command could not be executed ... */
	struct sbx_err exec_err; /* ... and why */
	bool oom_killed;         /* the command died of the OOM killer */
	bool has_stats;          /* stats below are from the sandbox's cgroup */
	struct sbx_cgroup_stats stats;
	uint64_t memory_max; /* the cap, SBX_LIMIT_MAX for none */
	uint64_t wall_ms;    /* from clone to the end */
	char warning[256];   /* a cgroup warning for the user (cap can swap), or "" */
};

/* Run the sandbox to its end.  0: it ran (see ret->exit_code, which is
 * 126/127 with exec_failed, 137 with oom_killed); < 0: it could not be set
 * up (err says why, ret->bad_input tells a bad request from a runtime
 * failure).  opts may be NULL. */
int run_sandbox(const struct sbx_spec *spec, const struct sbx_run_opts *opts,
                struct sbx_run_result *ret, struct sbx_err *err);

#endif
