/* The unpacked tree: entry path checks, OCI whiteouts and the directory
 * modes a rootless unpack restores at the end.  Everything that touches
 * the tree takes the tree's root fd and resolves below it with
 * openat2(RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS), so a
 * symlink an earlier layer planted can never lead outside. */
#ifndef SBX_ROOTFS_TREE_H
#define SBX_ROOTFS_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

/* Normalize an archive entry path into out: leading "./", repeated and
 * trailing slashes and "." components go; the root is "".  Absolute paths
 * and ".." components fail with EBADMSG "path escapes the image root". */
int tree_clean_path(const char *in, char *out, size_t size, struct sbx_err *err);

/* openat2(root_fd, path, O_DIRECTORY, RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS|
 * RESOLVE_NO_MAGICLINKS); "" opens the root itself.  Returns the fd or
 * -errno without touching err (callers decide what ENOENT/ELOOP mean). */
int tree_open_dir(int root_fd, const char *path);

/* Apparent size of the regular files below dirfd (a file with n links
 * counts size/n each time, so once in all), without following symlinks or
 * crossing file systems; folders it cannot read count as empty. */
uint64_t tree_size(int dirfd);

/* A set of paths (those a layer itself created, with all their parents). */
struct pathset {
	char **slot;
	size_t cap, n;
};
int pathset_add(struct pathset *s, const char *path); /* path and its parents; -ENOMEM */
bool pathset_has(const struct pathset *s, const char *path);
void pathset_clear(struct pathset *s);
void pathset_free(struct pathset *s);

enum tree_whiteout {
	TREE_WH_NONE,   /* a normal entry */
	TREE_WH_FILE,   /* dir/.wh.NAME: remove NAME from the layers below */
	TREE_WH_OPAQUE, /* dir/.wh..wh..opq: empty dir of the layers below */
	TREE_WH_META,   /* dir/.wh..wh.*: aufs bookkeeping, ignored */
};

/* Classify a cleaned entry path. */
enum tree_whiteout tree_whiteout_kind(const char *path);

/* Apply the whiteout at the cleaned path `path` (kind from
 * tree_whiteout_kind) to the tree: remove what the layers below put there,
 * but nothing in `keep` (what this layer itself made: the spec says a
 * whiteout hides only lower layers).  Missing targets are fine.  A
 * whiteout below a symlink fails with EBADMSG "path goes through a
 * symlink"; a name like ".wh.." fails "path escapes the image root". */
int tree_whiteout(int root_fd, const char *path, enum tree_whiteout kind,
                  const struct pathset *keep, struct sbx_err *err);

/* Rootless: directories whose mode locks the owner out are unpacked with
 * u+rwx; their real modes are noted here and applied at the end. */
struct dirmodes {
	struct dirmode {
		char *path;
		mode_t mode;
	} * v;
	size_t n, cap;
};
/* Note a directory entry's mode: kept when it lacks any of u+rwx,
 * forgotten otherwise.  -ENOMEM. */
int dirmodes_note(struct dirmodes *d, const char *path, mode_t mode);
/* Forget what a whiteout removed: everything below path (and path itself
 * when self), except what is in keep (may be NULL). */
void dirmodes_forget(struct dirmodes *d, const char *path, bool self, const struct pathset *keep);
/* Apply the noted modes, deepest first, to what is still a directory. */
int dirmodes_apply(struct dirmodes *d, int root_fd, struct sbx_err *err);
void dirmodes_free(struct dirmodes *d);

#endif
