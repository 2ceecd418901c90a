/* The sandbox's file system: from the host's mount tree to its own root.
 *
 * Parent: mount_prepare() checks every host path the child needs (the
 *   image tree, an overlay upper, bind sources) and decides whether the
 *   root needs a private tmpfs overlay (a mount point missing from an image
 *   that must not be written).  Host paths are trusted (the caller named
 *   them); paths inside the image are not.
 * Child: mount_child() makes / private, attaches the new root, mounts
 *   /proc (before pivot_root: afterwards an unprivileged user namespace may
 *   not mount it), /dev, /tmp, /sys, the cgroup file system and the binds,
 *   creating every mount point first, makes the root read-only, then
 *   pivot_root(".", ".") and detaches the old root.  Never chroot.
 *   Every path inside the image is resolved with openat2(RESOLVE_IN_ROOT),
 *   so a symlink in an image can never aim a mount or a mkdir at the host.
 *   The child opens host paths itself: the kernel clones or stacks only
 *   mounts of the caller's own mount namespace. */
#ifndef SBX_SANDBOX_MOUNT_H
#define SBX_SANDBOX_MOUNT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "sandbox/spec.h"

struct sbx_mount_ctx {
	const struct sbx_spec *spec;
	char *lower;        /* realpath of spec->lower */
	char *upper, *work; /* realpaths, or NULL */
	bool tmpfs_overlay; /* a private tmpfs upper: the image lacks a mount point */
	char **bind_src;    /* realpaths, one per spec->binds[i] */
	bool *bind_dir;
	size_t *bind_order; /* indices of spec->binds sorted by destination */
	char console[64];   /* the pty slave's path with --tty, bound at /dev/console */
	/* fuse-overlayfs, when an overlay may use it: its absolute path, or
	 * "" when it is not installed (see mount_fuse_missing) */
	char fuse_prog[256];
	/* the upper was written by fuse-overlayfs (FUSE_MARK next to it):
	 * its opaque folders are marked in its own way, which the kernel's
	 * overlay ignores, so it stays on fuse-overlayfs */
	bool fuse_layer;
	char *fuse_mark; /* that mark's path, or NULL without an upper */
	/* the child's end of the sync socket: a fuse root's /dev/fuse fd
	 * goes to the runner over it (SBX_SYNC_FUSE) */
	int sync_fd;
};

int mount_prepare(const struct sbx_spec *spec, struct sbx_mount_ctx *ctx, struct sbx_err *err);
void mount_release(struct sbx_mount_ctx *ctx);

/* After mount_prepare: an overlay = fuse root without fuse-overlayfs
 * installed is an error (the host's, not the caller's input). */
int mount_fuse_missing(const struct sbx_mount_ctx *ctx, struct sbx_err *err);

/* Beside an upper folder: the layer fuse-overlayfs wrote. */
#define SBX_FUSE_MARK "upper.fuse-overlayfs"

/* Mark ctx->upper as written by fuse-overlayfs (after it served a root). */
void mount_mark_fuse_layer(const struct sbx_mount_ctx *ctx);

/* In the child (async-signal-safe).  On success the cwd and root are the
 * sandbox's new root.  A root on fuse-overlayfs is mounted here, from a
 * /dev/fuse fd the child opens; the runner gets that fd (SBX_SYNC_FUSE)
 * and starts the file system's server on it with mount_fuse_exec(). */
int mount_child(const struct sbx_mount_ctx *ctx, struct sbx_err *err);

/* In a helper forked by the runner for a fuse root, after it joined the
 * child's user namespace: lay the layers out in a private mount namespace
 * of its own and exec fuse-overlayfs serving fuse_fd.  The server never
 * enters the sandbox's mount or pid namespace: the sandbox can neither see
 * nor signal it, and its paths are the host's.  Before the exec it sets
 * NO_NEW_PRIVS and confines itself with Landlock to what the server needs:
 * the system's libraries, the image read-only, the upper and work folders.
 * Returns only on failure, with the reason on stderr. */
void mount_fuse_exec(const struct sbx_mount_ctx *ctx, int fuse_fd);

/* The Landlock ABI mount_fuse_exec confines the server with (>= 2), or
 * -errno when the server runs unconfined: -EXDEV for ABI 1 (Linux < 5.19:
 * it refuses every rename across folders, which fuse-overlayfs needs),
 * else why the kernel has none: -ENOSYS (Linux < 5.13), -EOPNOTSUPP (not
 * enabled at boot), or what a seccomp filter answered. */
int mount_fuse_landlock_abi(void);

/* Resolve path (absolute, inside the root) below root_fd without ever
 * leaving it: symlinks are resolved as if root_fd were "/", ".." stops at
 * it.  Returns an O_PATH fd or -errno.  Async-signal-safe. */
int mount_resolve(int root_fd, const char *path, int flags);

/* Whether a destination path inside the sandbox is acceptable: absolute,
 * not "/", no "." or ".." components, no empty components. */
bool mount_path_ok(const char *path);

#endif
