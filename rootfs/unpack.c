#include "rootfs/unpack.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "rootfs/decomp.h"

#define BUF_SIZE (1U << 20)

static inline void archive_freep(struct archive **a)
{
	if (*a)
		archive_free(*a);
}
#define _cleanup_archive_ _cleanup_(archive_freep)

int unpacker_init(struct unpacker *u, int root_fd, bool rootless, bool whiteouts,
                  uint64_t max_bytes, struct sbx_err *err)
{
	memset(u, 0, sizeof(*u));
	u->root_fd = root_fd;
	u->saved_cwd = -1;
	u->rootless = rootless;
	u->whiteouts = whiteouts;
	u->max_bytes = max_bytes;
	clock_gettime(CLOCK_MONOTONIC, &u->start);
	u->last = u->start;
	if (!(u->buf = malloc(BUF_SIZE)))
		return sbx_fail(err, ENOMEM, "unpack");
	u->saved_cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (u->saved_cwd < 0)
		return sbx_fail(err, errno, "open the working directory");
	if (fchdir(root_fd) < 0)
		return sbx_fail(err, errno, "enter the unpack folder");
	return 0;
}

void unpacker_done(struct unpacker *u)
{
	if (u->saved_cwd >= 0) {
		if (fchdir(u->saved_cwd) < 0) {
			/* nothing better to do: the folder we came from is gone */
		}
		close(u->saved_cwd);
		u->saved_cwd = -1;
	}
	pathset_free(&u->layer_paths);
	dirmodes_free(&u->dirmodes);
	free(u->buf);
	u->buf = NULL;
}

static double seconds_since(const struct timespec *t0, const struct timespec *t1)
{
	return (double)(t1->tv_sec - t0->tv_sec) + (double)(t1->tv_nsec - t0->tv_nsec) / 1e9;
}

static void progress_tick(struct unpacker *u)
{
	if (!u->progress)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (seconds_since(&u->last, &now) < 0.1)
		return;
	u->last = now;
	u->progress(u->progress_data, u->layer, u->layers, u->bytes_in,
	            seconds_since(&u->start, &now));
}

struct pipe_src {
	struct unpacker *u;
	int fd;
};

static ssize_t pipe_read(struct archive *a, void *userdata, const void **out)
{
	struct pipe_src *s = userdata;
	for (;;) {
		ssize_t n = read(s->fd, s->u->buf, BUF_SIZE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			archive_set_error(a, errno, "read: %s", sbx_strerror(errno));
			return -1;
		}
		s->u->bytes_in += (uint64_t)n;
		progress_tick(s->u);
		*out = s->u->buf;
		return n;
	}
}

static void note_warning(struct unpacker *u, struct archive *disk, const char *path)
{
	if (u->warnings++ == 0)
		snprintf(u->first_warning, sizeof(u->first_warning), "entry '%s': %s", path,
		         archive_error_string(disk) ? archive_error_string(disk) : "warning");
}

static int fail_entry(struct archive *a, const char *path, struct sbx_err *err)
{
	const char *msg = archive_error_string(a);
	/* libarchive's SECURE_SYMLINKS refusal, in the words of our own checks */
	if (msg && sbx_str_has_prefix(msg, "Cannot extract through symlink"))
		return sbx_failx(err, EBADMSG, "entry '%s': path goes through a symlink", path);
	int e = decomp_errnum(archive_errno(a));
	if (e != EBADMSG) /* the system's trouble (ENOSPC, EIO): say which */
		return sbx_fail(err, e, "entry '%s': %s", path, msg ? msg : "cannot unpack");
	return sbx_failx(err, e, "entry '%s': %s", path, msg ? msg : "cannot unpack");
}

/* A disk writer's result: failures fail; warnings about metadata that
 * could not be restored are counted, but one caused by the disk (full,
 * broken) is a failure too: libarchive calls even those warnings. */
static int check_disk(struct unpacker *u, struct archive *disk, int r, const char *path,
                      struct sbx_err *err)
{
	if (r >= ARCHIVE_OK)
		return 0;
	switch (r == ARCHIVE_WARN ? archive_errno(disk) : -1) {
	case ENOSPC:
	case EDQUOT:
	case EIO:
	case ENOMEM:
	case EROFS:
	case EFBIG:
	case -1:
		return fail_entry(disk, path, err);
	default:
		note_warning(u, disk, path);
		return 0;
	}
}

static bool xattr_allowed(const struct unpacker *u, const char *name)
{
	/* overlayfs acts on these in a lower layer (opaque, redirect,
	 * metacopy): an image must never set them for us */
	if (sbx_str_has_prefix(name, "trusted.overlay.") ||
	    sbx_str_has_prefix(name, "user.overlay."))
		return false;
	if (u->rootless &&
	    (sbx_str_has_prefix(name, "security.") || sbx_str_has_prefix(name, "trusted.")))
		return false;
	return true;
}

struct xattr_copy {
	char *name;
	void *value;
	size_t size;
	bool keep;
};

static bool seen_before(const struct xattr_copy *v, int i)
{
	for (int j = 0; j < i; j++)
		if (!strcmp(v[j].name, v[i].name))
			return true;
	return false;
}

/* Drop the xattrs we must not restore (see xattr_allowed).  A pax header
 * may carry one twice (SCHILY.xattr and LIBARCHIVE.xattr): count and keep
 * each name once. */
static int filter_xattrs(struct unpacker *u, struct archive_entry *e, struct sbx_err *err)
{
	int n = archive_entry_xattr_reset(e);
	if (n <= 0)
		return 0;
	_cleanup_free_ struct xattr_copy *v = calloc((size_t)n, sizeof(*v));
	if (!v)
		return sbx_fail(err, ENOMEM, "xattrs");
	int got = 0, r = 0;
	const char *name;
	const void *value;
	size_t size;
	bool changed = false;
	while (got < n && archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		v[got].name = strdup(name ? name : "");
		v[got].value = malloc(size ? size : 1);
		v[got].size = size;
		if (!v[got].name || !v[got].value) {
			r = sbx_fail(err, ENOMEM, "xattrs");
			got++;
			break;
		}
		memcpy(v[got].value, value, size);
		bool dup = seen_before(v, got);
		v[got].keep = name && xattr_allowed(u, name) && !dup;
		if (!v[got].keep && !dup)
			u->skipped_xattrs++;
		changed |= !v[got].keep;
		got++;
	}
	if (r == 0 && changed) {
		archive_entry_xattr_clear(e);
		for (int i = 0; i < got; i++)
			if (v[i].keep)
				archive_entry_xattr_add_entry(e, v[i].name, v[i].value, v[i].size);
	}
	for (int i = 0; i < got; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	return r;
}

/* A hardlink must name something already inside the tree, reached
 * without a symlink (libarchive checks the link's own path, we check the
 * target's). */
static int check_hardlink(struct unpacker *u, struct archive_entry *e, const char *path,
                          struct sbx_err *err)
{
	const char *raw = archive_entry_hardlink(e);
	if (!raw)
		return 0;
	char target[PATH_MAX];
	int r = tree_clean_path(raw, target, sizeof(target), err);
	if (r < 0)
		return sbx_wrap(err, "entry '%s': hardlink to '%s'", path, raw);
	if (!target[0])
		return sbx_failx(err, EBADMSG, "entry '%s': hardlink to the image root", path);
	char dir[PATH_MAX];
	const char *slash = strrchr(target, '/');
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - target) : 0, target);
	_cleanup_close_ int dfd = tree_open_dir(u->root_fd, dir);
	if (dfd == -ELOOP || dfd == -EXDEV)
		return sbx_failx(err, EBADMSG,
		                 "entry '%s': hardlink to '%s': path goes through a symlink", path,
		                 raw);
	if (strcmp(raw, target))
		archive_entry_copy_hardlink(e, target);
	return 0;
}

/* A whiteout removed dir/NAME (or dir's content): their held-back modes
 * must not come back on what a later entry puts there. */
static void forget_whited_out(struct unpacker *u, const char *path, enum tree_whiteout kind)
{
	char target[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int dlen = slash ? (int)(slash - path) : 0;
	if (kind == TREE_WH_OPAQUE)
		snprintf(target, sizeof(target), "%.*s", dlen, path);
	else
		snprintf(target, sizeof(target), "%.*s%s%s", dlen, path, slash ? "/" : "",
		         (slash ? slash + 1 : path) + strlen(".wh."));
	dirmodes_forget(&u->dirmodes, target, kind == TREE_WH_FILE, &u->layer_paths);
}

/* Our checks and adjustments before libarchive sees the entry.  Returns 1
 * when the entry is handled (whiteout, skipped device), 0 to write it. */
static int prepare_entry(struct unpacker *u, struct archive_entry *e, const char *raw, char *path,
                         struct sbx_err *err)
{
	int r = tree_clean_path(raw, path, PATH_MAX, err);
	if (r < 0)
		return sbx_wrap(err, "entry '%s'", raw);
	if (u->whiteouts) {
		enum tree_whiteout kind = tree_whiteout_kind(path);
		if (kind != TREE_WH_NONE) {
			if ((r = tree_whiteout(u->root_fd, path, kind, &u->layer_paths, err)) < 0)
				return sbx_wrap(err, "entry '%s'", raw);
			forget_whited_out(u, path, kind);
			return 1;
		}
	}
	mode_t type = archive_entry_filetype(e);
	if (u->rootless && (type == AE_IFCHR || type == AE_IFBLK)) {
		u->skipped_devices++;
		return 1;
	}
	la_int64_t size = archive_entry_size(e);
	if (size < 0 || (uint64_t)size > u->max_bytes - u->claimed)
		return sbx_failx(err, EFBIG,
		                 "entry '%s': size %lld exceeds the image size limit (%llu bytes)",
		                 raw, (long long)size, (unsigned long long)u->max_bytes);
	u->claimed += (uint64_t)size;
	if ((r = check_hardlink(u, e, raw, err)) < 0 || (r = filter_xattrs(u, e, err)) < 0)
		return r;
	if (u->rootless && type == AE_IFDIR) {
		mode_t perm = archive_entry_perm(e);
		if (dirmodes_note(&u->dirmodes, path, perm) < 0)
			return sbx_fail(err, ENOMEM, "unpack");
		archive_entry_set_perm(e, perm | S_IRWXU);
	}
	if (strcmp(raw, path))
		archive_entry_copy_pathname(e, path[0] ? path : ".");
	if (u->whiteouts && pathset_add(&u->layer_paths, path) < 0)
		return sbx_fail(err, ENOMEM, "unpack");
	return 0;
}

static int copy_data(struct archive *in, struct archive *disk, const char *path,
                     struct sbx_err *err)
{
	for (;;) {
		const void *buf;
		size_t size;
		la_int64_t off;
		int r = archive_read_data_block(in, &buf, &size, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return fail_entry(in, path, err);
		/* libarchive reports a failed write(2) (ENOSPC) as a mere
		 * ARCHIVE_WARN: any warning here means lost data */
		if (archive_write_data_block(disk, buf, size, off) != ARCHIVE_OK)
			return fail_entry(disk, path, err);
	}
}

static int unpack_entry(struct unpacker *u, struct archive *in, struct archive *disk,
                        struct archive_entry *e, struct sbx_err *err)
{
	const char *raw = archive_entry_pathname(e);
	if (!raw || !raw[0])
		return sbx_failx(err, EBADMSG, "entry %llu has no name",
		                 (unsigned long long)u->entries);
	char path[PATH_MAX];
	int r = prepare_entry(u, e, raw, path, err);
	if (r != 0)
		return r < 0 ? r : 0;
	if ((r = check_disk(u, disk, archive_write_header(disk, e), raw, err)) < 0)
		return r;
	if (archive_entry_size(e) > 0) {
		if ((r = copy_data(in, disk, raw, err)) < 0)
			return r;
		if (archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e))
			u->size += (uint64_t)archive_entry_size(e);
	}
	return check_disk(u, disk, archive_write_finish_entry(disk), raw, err);
}

int unpack_disk_flags(bool rootless)
{
	/* no ACLs and no file flags (an immutable file would make the image
	 * impossible to remove); the SECURE_* refusals stay on even though
	 * our own checks run first */
	int flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR |
	            ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
	            ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;
	if (!rootless)
		flags |= ARCHIVE_EXTRACT_OWNER;
	return flags;
}

static struct archive *disk_writer(const struct unpacker *u)
{
	struct archive *disk = archive_write_disk_new();
	if (!disk)
		return NULL;
	/* No archive_write_disk_set_standard_lookup(): ids are numeric, an
	 * image's user names mean nothing on this host. */
	archive_write_disk_set_options(disk, unpack_disk_flags(u->rootless));
	return disk;
}

int unpacker_layer(struct unpacker *u, int data_fd, struct sbx_err *err)
{
	_cleanup_archive_ struct archive *in = archive_read_new();
	_cleanup_archive_ struct archive *disk = disk_writer(u);
	if (!in || !disk)
		return sbx_fail(err, ENOMEM, "unpack");
	archive_read_support_format_tar(in);
	if (u->whiteouts)
		archive_read_support_format_empty(in);
	struct pipe_src src = {u, data_fd};
	if (archive_read_open(in, &src, NULL, pipe_read, NULL) != ARCHIVE_OK) {
		const char *msg = archive_error_string(in);
		return sbx_failx(err, decomp_errnum(archive_errno(in)), "not a tar archive: %s",
		                 msg ? msg : "?");
	}
	pathset_clear(&u->layer_paths);
	u->entries = 0;
	int r = 0;
	for (;;) {
		struct archive_entry *e;
		int h = archive_read_next_header(in, &e);
		if (h == ARCHIVE_EOF)
			break;
		if (h < ARCHIVE_WARN) {
			const char *msg = archive_error_string(in);
			if (u->entries == 0)
				return sbx_failx(err, decomp_errnum(archive_errno(in)),
				                 "not a tar archive: %s", msg ? msg : "?");
			return sbx_failx(err, decomp_errnum(archive_errno(in)),
			                 "after %llu entries: %s", (unsigned long long)u->entries,
			                 msg ? msg : "corrupt archive");
		}
		u->entries++;
		if ((r = unpack_entry(u, in, disk, e, err)) < 0)
			return r;
	}
	if (!u->whiteouts && u->entries == 0)
		return sbx_failx(err, EBADMSG, "the archive has no entries");
	return check_disk(u, disk, archive_write_close(disk), "(directory fixups)", err);
}

int unpacker_finish(struct unpacker *u, struct sbx_err *err)
{
	progress_tick(u);
	/* layers overwrite and white out each other: the sum of their
	 * entries is not the tree's size (walked while every folder is
	 * still open to us) */
	if (u->whiteouts)
		u->size = tree_size(u->root_fd);
	return dirmodes_apply(&u->dirmodes, u->root_fd, err);
}
