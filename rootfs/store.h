/* The store's folders and locks (layout in image.h).  Four kinds of flock:
 *   - the store folder itself: shared while a tmp/ entry is created and
 *     locked, exclusive while prune scans tmp/, so prune never takes a
 *     fresh folder for a leftover;
 *   - locks/<hex>.lock: exclusive for an import of that image, so ten
 *     concurrent imports unpack it once;
 *   - each tmp/ entry: exclusive by its owner for its life; whoever can
 *     take it knows the owner is gone and removes it;
 *   - rootfs/<hex>: shared by every holder (a running sandbox), exclusive
 *     (non-blocking) by remove and prune. */
#ifndef SBX_ROOTFS_STORE_H
#define SBX_ROOTFS_STORE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "common/err.h"
#include "rootfs/digest.h"

struct store {
	char path[PATH_MAX]; /* absolute */
	int fd, rootfs_fd, meta_fd, refs_fd, locks_fd, tmp_fd, sources_fd;
};

/* Create (mode 0700) and open the store. */
int store_open(const char *dir, struct store *ret, struct sbx_err *err);
void store_close(struct store *s);

/* flock the store folder (LOCK_SH / LOCK_EX); returns the fd to close. */
int store_lock(struct store *s, int op, struct sbx_err *err);

/* Lock the import of one image (exclusive, waits); returns the fd. */
int store_lock_image(struct store *s, const char *hex, struct sbx_err *err);

bool store_has(struct store *s, const char *hex);

/* Create tmp/<prefix>.<random> (mode 0700), open and lock it; returns its
 * fd and writes its name. */
int store_mktemp(struct store *s, const char *prefix, char name[128], struct sbx_err *err);

/* Remove tmp/ entries nobody holds; with prefix, only "<prefix>.*". */
int store_clean_tmp(struct store *s, const char *prefix, unsigned *ret_count, struct sbx_err *err);

/* Remove tmp/<name> that we hold (error path and staging). */
void store_drop_tmp(struct store *s, const char *name, int fd);

/* Publish tmp/<name> (fd) as rootfs/<hex>: one syncfs() for everything
 * written, the meta file, then one rename.  Consumes fd. */
int store_publish(struct store *s, const char *hex, const char *name, int fd, const char *meta_json,
                  struct sbx_err *err);

/* A shared flock on rootfs/<hex>, checked to still be the published one. */
int store_hold(struct store *s, const char *hex, int *ret_fd, struct sbx_err *err);

/* Pids holding rootfs/<hex> (from /proc/locks). */
int store_holders(struct store *s, const char *hex, int **ret, size_t *ret_n);

/* Take rootfs/<hex> away if nobody holds it (-EBUSY otherwise), with its
 * meta and every ref to it.  With only_unnamed, an image that has a ref
 * (checked under the image's lock) stays.  Returns 1 when removed. */
int store_remove_image(struct store *s, const char *hex, bool only_unnamed, struct sbx_err *err);

/* refs/<name> */
int store_ref_read(struct store *s, const char *name, char hex[DIGEST_HEX_LEN + 1]);
int store_ref_write(struct store *s, const char *name, const char *hex, struct sbx_err *err);
int store_ref_remove(struct store *s, const char *name, struct sbx_err *err);
/* All refs: parallel NULL-terminated vectors of names and hex digests. */
int store_refs(struct store *s, char ***ret_names, char ***ret_hex, struct sbx_err *err);

/* Published images (hex), NULL-terminated. */
int store_images(struct store *s, char ***ret, struct sbx_err *err);

/* sources/: remember which digest a file (by identity; tag may be NULL)
 * gave, so resolving it again costs a stat, not a hash of the file. */
int store_source_lookup(struct store *s, const struct stat *st, const char *tag,
                        char hex[DIGEST_HEX_LEN + 1]);
void store_source_record(struct store *s, const struct stat *st, const char *tag, const char *hex);

/* meta/<hex>.json, read back (malloc'ed), or -ENOENT. */
int store_meta_read(struct store *s, const char *hex, char **ret);

/* Prune the rest: meta, locks and sources of images that are gone. */
void store_prune_orphans(struct store *s);

#endif
