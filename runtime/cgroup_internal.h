/* Private to runtime/cgroup*.c (and the unit tests). */
#ifndef SBX_RUNTIME_CGROUP_INTERNAL_H
#define SBX_RUNTIME_CGROUP_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/cgroup.h"

/* The controllers trimo-sbx uses, as bits. */
enum {
	CG_MEMORY = 1u << 0,
	CG_CPU = 1u << 1,
	CG_CPUACCT = 1u << 2,
	CG_PIDS = 1u << 3,
};
#define CG_NEEDED (CG_MEMORY | CG_CPU | CG_PIDS)

/* "memory cpu pids" for the bits set in mask (in that order). */
char *cg_mask_names(unsigned mask, char *buf, size_t size);
/* The bits for the words of a controller list ("cpu memory io", or v1 mount
 * options "rw,cpu,cpuacct"); unknown words are ignored. */
unsigned cg_mask_parse(const char *list);

/* One cgroup file system mount, from mountinfo. */
struct cg_mount {
	char point[PATH_MAX]; /* where it is mounted */
	char root[PATH_MAX];  /* the part of the hierarchy mounted there */
	bool v2;
	unsigned ctrls; /* v1: controllers of the hierarchy (from the mount options) */
};

#define CG_MAX_MOUNTS 24

struct cg_hosttab {
	struct cg_mount mounts[CG_MAX_MOUNTS];
	size_t n_mounts;
	/* /proc/self/cgroup: v2 path ("0::") and the v1 path of each controller */
	bool have_v2_path;
	char v2_path[PATH_MAX];
	char v1_path[4][PATH_MAX]; /* by controller bit index; "" if absent */
	bool swap_on;              /* SwapTotal > 0 */
};

/* Parse the host's mountinfo, cgroup and meminfo files (paths from host). */
int cg_host_load(const struct sbx_cgroup_host *host, struct cg_hosttab *tab, struct sbx_err *err);
/* Only the /proc/self/cgroup part (after a move into a systemd scope). */
int cg_host_load_proc_cgroup(const struct sbx_cgroup_host *host, struct cg_hosttab *tab,
                             struct sbx_err *err);
/* Octal escapes of mountinfo ("\040" for a space) undone in place. */
void cg_unescape_mountinfo(char *s);

/* The cgroup2 mount, or NULL. */
const struct cg_mount *cg_find_v2(const struct cg_hosttab *tab);
/* The v1 mount holding controller bit `ctrl` whose root contains our own
 * cgroup of it (any mount of it when we have no path), or NULL. */
const struct cg_mount *cg_find_v1(const struct cg_hosttab *tab, unsigned ctrl);
/* mount->point + (cgpath relative to mount->root); -EXDEV when cgpath is
 * outside what is mounted there. */
int cg_host_path(const struct cg_mount *m, const char *cgpath, char *buf, size_t size);
/* mount->point + "/" + a configured parent; refuses "..", empty parts. */
int cg_config_path(const struct cg_mount *m, const char *own, const char *parent, char *buf,
                   size_t size, struct sbx_err *err);

/* Small control-file helpers on a cgroup directory fd.  `where` is the
 * directory's path, used only in messages. */
int cg_write(int dirfd, const char *where, const char *file, const char *value,
             struct sbx_err *err);
/* Reads up to size-1 bytes, NUL-terminated; -errno (no message). */
ssize_t cg_read(int dirfd, const char *file, char *buf, size_t size);
/* A single number, "max" -> SBX_LIMIT_MAX; -errno (no message). */
int cg_read_u64(int dirfd, const char *file, uint64_t *ret);
/* The value of `key` in a "key value" per line file (memory.events, cpu.stat,
 * memory.oom_control); -ENOENT when the file or the key is missing. */
int cg_read_keyed(int dirfd, const char *file, const char *key, uint64_t *ret);
bool cg_has_file(int dirfd, const char *file);

/* Is the directory (and, when present, its cgroup.procs and
 * cgroup.subtree_control) owned by uid and writable by its owner?  Fills
 * why (for the error message) when not. */
bool cg_delegated_to(int dirfd, const char *where, uid_t uid, char *why, size_t why_size);

/* trimo-<name>-<8 hex> or trimo-runner-<pid>: the names we create.  An
 * admin's "trimo-ci" or "trimo-1000" never matches. */
bool cg_is_our_leaf_name(const char *name);
/* Remove empty trimo-* cgroups under parentfd whose creator is gone (their
 * directory flock is free).  Never recursive, never anything else. */
void cg_sweep_stale(const struct sbx_cgroup_host *host, int parentfd, const char *parent_path);

/* mkdir parent_path/name, open it O_DIRECTORY and take its flock (a live
 * leaf is never swept).  -EEXIST when the name is taken. */
int cg_make_leaf(const struct sbx_cgroup_host *host, int parentfd, const char *parent_path,
                 const char *name, int *ret_fd, char *ret_path, size_t path_size,
                 struct sbx_err *err);
/* "trimo-<sanitized name>-<8 random hex>" */
void cg_leaf_name(const char *sandbox_name, char *buf, size_t size);

/* rmdir with a short retry while the kernel is still tearing down. */
int cg_remove_leaf(const struct sbx_cgroup_host *host, const char *path, struct sbx_err *err);

/* Pure v1 memory ordering: true when memory.limit_in_bytes must be written
 * before memory.memsw.limit_in_bytes.  The kernel keeps limit <= memsw after
 * every write, so the limit goes first exactly when it fits under the
 * current memsw (a fresh leaf, or lowering); raising goes memsw first. */
bool cg_v1_limit_first(uint64_t cur_memsw, uint64_t new_limit);
/* The memsw value for a limit and a swap allowance. */
uint64_t cg_v1_memsw_for(uint64_t memory, bool swap_set, uint64_t swap);

#define CG_MAX_LEAVES 4

struct cg_leaf {
	char name[64];  /* v1: basename of the mount ("memory", "cpu,cpuacct") */
	unsigned ctrls; /* controllers this leaf serves */
	char path[PATH_MAX];
	int fd; /* O_DIRECTORY, flock'ed while we live */
};

struct sbx_cgroup {
	enum sbx_cgroup_version version;
	struct sbx_cgroup_limits limits;
	struct sbx_cgroup_host host;
	struct cg_leaf leaves[CG_MAX_LEAVES];
	size_t n_leaves;
	bool swap_on;
	int oom_fd;
	int oom_ctl_fd; /* v1: memory.oom_control, registered with the eventfd */
	uint64_t oom_kills_seen;
	uint64_t peak_sampled;
	char warning[256];
};

/* The leaf serving controller bit ctrl, or NULL. */
struct cg_leaf *cg_leaf_for(struct sbx_cgroup *cg, unsigned ctrl);

/* Per-version parts of cgroup_create: fill cg->leaves and write limits. */
int cg_v2_create(struct sbx_cgroup *cg, struct cg_hosttab *tab, const char *parent,
                 const char *name, struct sbx_err *err);
int cg_v1_create(struct sbx_cgroup *cg, struct cg_hosttab *tab, const char *parent,
                 const char *name, struct sbx_err *err);
int cg_v2_set_memory(struct sbx_cgroup *cg, const struct sbx_cgroup_limits *l, struct sbx_err *err);
int cg_v1_set_memory(struct sbx_cgroup *cg, const struct sbx_cgroup_limits *l, struct sbx_err *err);
int cg_v2_open_oom_fd(struct sbx_cgroup *cg, struct sbx_err *err);
int cg_v1_open_oom_fd(struct sbx_cgroup *cg, struct sbx_err *err);

#endif
