/* The host side of one sandbox's cgroup: where it lives, its limits, its
 * accounting, and its removal.  cgroup v2 is the primary target; cgroup v1
 * (and hybrid hosts whose cgroup2 mount lacks the memory controller) get one
 * leaf per controller.  Nothing here prints; warnings come back as text.
 *
 * Call order for the runner (see docs/cgroups.md for the why of each step):
 *
 *   struct sbx_cgroup_host host;  cgroup_host_default(&host);
 *   struct sbx_cgroup *cg;
 *   1. cgroup_create(&host, cfg_parent, name, &limits, &cg, &err)
 *        before clone: the leaf exists and holds its limits (exit 125 on
 *        failure; err names what is missing and the fix).
 *        cgroup_warning(cg): NULL or one line the CLI prints once.
 *   2. v2: clone3(... CLONE_INTO_CGROUP | CLONE_NEWCGROUP, .cgroup =
 *        cgroup_fd(cg)); on ENOSYS/E2BIG/EINVAL from clone3, plain clone and
 *        step 3.  v1 (cgroup_fd(cg) == -1): plain clone, then step 3.
 *   3. cgroup_attach(cg, child_pid) before GO; the child unshares
 *        CLONE_NEWCGROUP only after GO, so its namespace is rooted at its
 *        leaf.  Calling it after CLONE_INTO_CGROUP is harmless.
 *   4. In the child: cgroup_version(cg) == SBX_CGROUP_V2: mount a fresh
 *        cgroup2 read-only at /sys/fs/cgroup.  SBX_CGROUP_V1: tmpfs at
 *        /sys/fs/cgroup and each cgroup_v1_mounts() entry bind-mounted
 *        read-only at /sys/fs/cgroup/<name>.  (Paths are read in the parent,
 *        before clone; the child only uses the copies.)
 *   5. poll(cgroup_oom_fd(cg)) with the sync socket and the pidfd; when it is
 *        readable call cgroup_oom_event().  With oom_group on v1 that call
 *        also kills the whole leaf (v1 has no memory.oom.group).
 *   6. After the main process is reaped: cgroup_stats() (peak, cpu, ooms).
 *   7. cgroup_destroy(&cg): kills what is left in our leaves (only there),
 *        removes them, frees cg.  A crash leaves an empty leaf behind; the
 *        next cgroup_create() under the same parent removes it.
 */
#ifndef SBX_RUNTIME_CGROUP_H
#define SBX_RUNTIME_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

/* No cap: "max" in v2 files, -1 in v1 files. */
#define SBX_LIMIT_MAX UINT64_MAX
/* cpu.max / cpu.cfs_period_us: the period every quota is expressed in. */
#define SBX_CPU_PERIOD_US 100000ULL
/* Default pids.max of a capped sandbox. */
#define SBX_PIDS_DEFAULT 4096ULL
/* Every cgroup trimo-sbx creates starts with this; stale ones are found by it. */
#define SBX_CGROUP_PREFIX "trimo-"

struct sbx_cgroup_limits {
	bool unlimited;        /* --no-limits / limits = off: no cgroup at all */
	uint64_t memory;       /* bytes, or SBX_LIMIT_MAX */
	bool memory_swap_set;  /* false: no swap at all for a capped sandbox */
	uint64_t memory_swap;  /* swap bytes on top of memory, or SBX_LIMIT_MAX */
	uint64_t cpu_quota_us; /* per SBX_CPU_PERIOD_US; 0 = no CPU cap */
	uint64_t pids;         /* or SBX_LIMIT_MAX */
	bool oom_group;        /* --oom-kill group: one OOM kill takes everything */
};

/* memory max, swap unset, no CPU cap, pids SBX_PIDS_DEFAULT, oom_group off. */
void cgroup_limits_init(struct sbx_cgroup_limits *l);

/* Consistency of a filled struct: memory_swap needs memory. */
int cgroup_limits_validate(const struct sbx_cgroup_limits *l, struct sbx_err *err);

/* User text is parsed by config/ (config_parse_limit), the one parser of
 * every limit, and converted by orchestrator/limits.c. */

/* Formatting.  Each returns buf; size 32 is always enough. */
/* cpu.max: "150000 100000", or "max 100000" for quota 0. */
char *cgroup_format_cpu_max(uint64_t quota_us, char *buf, size_t size);
/* "1.5" (trailing zeros dropped), "none" for 0. */
char *cgroup_format_cpus(uint64_t quota_us, char *buf, size_t size);
/* A v2 limit file value: decimal or "max". */
char *cgroup_format_v2_value(uint64_t v, char *buf, size_t size);
/* A v1 limit file value: decimal or "-1". */
char *cgroup_format_v1_value(uint64_t v, char *buf, size_t size);
/* For people: "64M", "1.5G", "900K", "12B", "max" (binary units, one
 * decimal, truncated so a value just under the cap never shows as the cap). */
char *cgroup_format_size(uint64_t v, char *buf, size_t size);

enum sbx_cgroup_version {
	SBX_CGROUP_NONE = 0, /* limits.unlimited: no cgroup */
	SBX_CGROUP_V1 = 1,
	SBX_CGROUP_V2 = 2,
};

struct sbx_cgroup;

/* Where to look.  Every path is a parameter so tests can run against a fake
 * tree in a temporary folder; cgroup_host_default() fills the real ones. */
struct sbx_cgroup_host {
	const char *mountinfo;   /* "/proc/self/mountinfo": finds the cgroup mounts */
	const char *proc_cgroup; /* "/proc/self/cgroup": the caller's own cgroups */
	const char *meminfo;     /* "/proc/meminfo": is swap on (SwapTotal) */
	pid_t pid;               /* the caller, moved into a leaf when needed */
	uid_t uid;               /* delegation means: owned by this uid */
	bool rootless;           /* not root: only delegated cgroups are used */
	/* Rootless v2 fallback: put `pid` alone into a new transient systemd
	 * user scope with Delegate=yes.  Default: cgroup_systemd_start_scope.
	 * On failure fill err with the reason (it ends up in the message). */
	int (*start_scope)(const char *unit, pid_t pid, void *data, struct sbx_err *err);
	void *scope_data;
	/* Tests only (NULL otherwise): a fake tree has no kernel to create the
	 * control files of a new cgroup or drop them before rmdir. */
	void (*fake_mkdir)(int dirfd, const char *path, void *data);
	void (*fake_rmdir)(int dirfd, const char *path, void *data);
	void *fake_data;
};

void cgroup_host_default(struct sbx_cgroup_host *host);

/* Create the sandbox's leaf (v2) or leaves (v1) and write `limits` into them.
 *   parent: the user config's [cgroups] parent, a path inside the cgroup
 *           hierarchy ("trimo-ci", "/ci/agents"), or NULL: then v2 uses
 *           <cgroup2 mount>/trimo.slice as root, and the caller's own cgroup
 *           (or a transient systemd user scope) rootless; v1 uses the
 *           caller's own cgroup of each controller.
 *   name:   the sandbox name; the leaf is trimo-<name>-<8 hex>.
 * With limits->unlimited nothing is created: *ret is a SBX_CGROUP_NONE
 * handle on which every call below is a harmless no-op.  Empty stale trimo-*
 * leaves under the chosen parent are removed first. */
int cgroup_create(const struct sbx_cgroup_host *host, const char *parent, const char *name,
                  const struct sbx_cgroup_limits *limits, struct sbx_cgroup **ret,
                  struct sbx_err *err);

enum sbx_cgroup_version cgroup_version(const struct sbx_cgroup *cg);

/* NULL, or a warning for the user (e.g. the cap can swap). */
const char *cgroup_warning(const struct sbx_cgroup *cg);

/* The limits written (as given to cgroup_create or cgroup_set_memory). */
const struct sbx_cgroup_limits *cgroup_limits(const struct sbx_cgroup *cg);

/* v2: the leaf's O_DIRECTORY fd for clone3's CLONE_INTO_CGROUP; -1 on v1
 * and NONE.  Owned by cg; it carries O_CLOEXEC. */
int cgroup_fd(const struct sbx_cgroup *cg);

/* The host path of the leaf (v2) or of the memory leaf (v1); "" for NONE. */
const char *cgroup_path(const struct sbx_cgroup *cg);

/* Write pid into every leaf's cgroup.procs (v1: each controller; v2: the
 * leaf).  Call before the child runs anything of its own. */
int cgroup_attach(struct sbx_cgroup *cg, pid_t pid, struct sbx_err *err);

/* v1: the per-controller leaves, for read-only binds inside the sandbox. */
struct sbx_cgroup_v1_mount {
	const char *name;      /* basename of the host mount: "memory", "cpu,cpuacct" */
	const char *host_path; /* the leaf on the host */
};
size_t cgroup_v1_mounts(const struct sbx_cgroup *cg, struct sbx_cgroup_v1_mount *ret, size_t max);

/* Change the memory cap of a live leaf.  v1 writes limit_in_bytes and
 * memsw.limit_in_bytes in the order the kernel accepts (limit <= memsw must
 * hold after every write). */
int cgroup_set_memory(struct sbx_cgroup *cg, uint64_t memory, bool swap_set, uint64_t swap,
                      struct sbx_err *err);

#define SBX_STAT_UNKNOWN UINT64_MAX

struct sbx_cgroup_stats {
	uint64_t memory_current;  /* bytes */
	uint64_t memory_peak;     /* bytes; see memory_peak_sampled */
	bool memory_peak_sampled; /* true: the kernel has no peak file; this is
	                           * the highest value seen by cgroup_stats() */
	uint64_t cpu_usec;        /* user + system */
	uint64_t nr_throttled;    /* periods the CPU cap held the sandbox back */
	uint64_t throttled_usec;
	uint64_t oom_kills; /* processes the OOM killer took in the leaf */
	uint64_t pids_current;
	uint64_t pids_peak;
	uint64_t pids_refused; /* forks refused at pids.max (pids.events max) */
};

/* Read the counters; a field the kernel does not offer is SBX_STAT_UNKNOWN.
 * Calling it now and then (the runner's poll timeout) keeps a sampled peak
 * where the kernel has no memory.peak (v2 before 5.19). */
int cgroup_stats(struct sbx_cgroup *cg, struct sbx_cgroup_stats *ret, struct sbx_err *err);

/* An fd that becomes readable when the leaf's OOM state changes (v2:
 * inotify on memory.events; v1: eventfd registered on memory.oom_control
 * through cgroup.event_control); -1 for NONE.  Owned by cg. */
int cgroup_oom_fd(const struct sbx_cgroup *cg);

/* After cgroup_oom_fd() polled readable: drain it and return in
 * *ret_new_kills the OOM kills since the last call.  v1 with oom_group:
 * kills every process in the leaf when there was one.  Spurious wakeups
 * (memory.high events, ...) report 0. */
int cgroup_oom_event(struct sbx_cgroup *cg, uint64_t *ret_new_kills, struct sbx_err *err);

/* SIGKILL every process in our leaves and wait (up to ~5 s) until they are
 * gone: v2 cgroup.kill when present; otherwise cgroup.freeze (v2) and a loop
 * over cgroup.procs, each pid pinned with a pidfd and signalled only if it
 * is still listed in our leaf.  Zombies count as gone. */
int cgroup_kill(struct sbx_cgroup *cg, struct sbx_err *err);

/* Kill what is left in our leaves, rmdir them (retrying briefly while the
 * kernel finishes), free *cg and set it to NULL.  Returns the first error;
 * cg is freed either way. */
int cgroup_destroy(struct sbx_cgroup **cg, struct sbx_err *err);

static inline void cgroup_destroyp(struct sbx_cgroup **cg)
{
	if (*cg)
		cgroup_destroy(cg, NULL);
}
#define _cleanup_cgroup_ __attribute__((cleanup(cgroup_destroyp)))

/* Default start_scope: runs bin/trimo-sbx-scope (next to this program),
 * which calls cgroup_systemd_start_scope(); libsystemd stays out of the
 * main program. */
int cgroup_start_scope_helper(const char *unit, pid_t pid, void *data, struct sbx_err *err);

/* A transient unit over the user bus (sd-bus),
 * Delegate=yes, PIDs=[pid]; waits until systemd reports the job done. */
int cgroup_systemd_start_scope(const char *unit, pid_t pid, void *data, struct sbx_err *err);

#endif
