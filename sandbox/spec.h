/* What one sandbox is: everything the runner and the child need, built by
 * the CLI (run) or the orchestrator (tasks) and not changed afterwards.
 * Strings are owned by whoever built the spec; the sandbox only reads. */
#ifndef SBX_SANDBOX_SPEC_H
#define SBX_SANDBOX_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#define SBX_MAX_RLIMITS       16
#define SBX_MAX_CGROUP_MOUNTS 8

struct sbx_bind {
	const char *src; /* host path */
	const char *dst; /* absolute path inside the sandbox */
	bool ro;
};

struct sbx_rlimit {
	int resource;
	struct rlimit lim;
};

enum sbx_seccomp_mode {
	SBX_SECCOMP_DEFAULT = 0,
	SBX_SECCOMP_UNCONFINED,
	SBX_SECCOMP_FILE, /* a Docker/OCI JSON profile */
};

/* A read-only bind of a host cgroup folder to /sys/fs/cgroup/<name>
 * (cgroup v1), or one cgroup2 mount of the sandbox's own cgroup namespace
 * (name NULL, src NULL). */
struct sbx_cgroup_mount {
	const char *name; /* "memory", "pids", ... (v1) */
	const char *src;  /* host folder of the leaf (v1) */
};

/* How an overlay root is mounted.  The kernel's overlayfs in a user
 * namespace needs Linux 5.11 and an upper folder on a file system that
 * holds user.* xattrs and may be an overlay upper (not overlayfs itself,
 * not NFS, tmpfs only from 6.6); fuse-overlayfs works where it does not. */
enum sbx_overlay_mode {
	SBX_OVERLAY_AUTO = 0, /* the kernel's; fuse-overlayfs where it is refused */
	SBX_OVERLAY_KERNEL,   /* the kernel's only */
	SBX_OVERLAY_FUSE,     /* fuse-overlayfs only */
};

struct sbx_spec {
	const char *name; /* the sandbox's name: default hostname, messages */

	/* Root file system.  lower is the image tree (never written unless
	 * rootfs_rw).  With upper/work set, the root is an overlay of them
	 * (userxattr) on lower; with them NULL and !rootfs_rw, the root is a
	 * read-only bind of lower, or an overlay with a private tmpfs upper
	 * when a mount point is missing from lower. */
	const char *lower;
	const char *upper;
	const char *work;
	bool rootfs_rw;
	bool keep_root_rw; /* leave the root writable (overlay with a task upper) */
	enum sbx_overlay_mode overlay;

	char *const *argv;   /* the command; argv[0] searched in PATH inside */
	char *const *envp;   /* the complete environment, already built */
	const char *workdir; /* inside; NULL: "/" */
	const char *hostname;

	const struct sbx_bind *binds;
	size_t n_binds;

	uint64_t caps; /* bit n set = capability n kept */

	enum sbx_seccomp_mode seccomp;
	const char *seccomp_file;
	bool nested; /* allow nested user namespaces and mounts, unmasked /proc */
	bool tty;    /* a pseudo-terminal relayed by the runner */
	/* the host's network namespace: no CLONE_NEWNET, lo left alone */
	bool host_network;

	struct sbx_rlimit rlimits[SBX_MAX_RLIMITS];
	size_t n_rlimits;

	/* cgroup file system inside; n_cgroup_mounts 0 = none */
	bool cgroup2;
	struct sbx_cgroup_mount cgroup_mounts[SBX_MAX_CGROUP_MOUNTS];
	size_t n_cgroup_mounts;

	int ready_timeout_ms; /* how long the runner waits for READY; 0 = 60 s */
};

#endif
