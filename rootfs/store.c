#include "rootfs/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "rootfs/tree.h"

static const struct {
	const char *name;
	size_t off;
} subdirs[] = {
    {"rootfs", offsetof(struct store, rootfs_fd)}, {"meta", offsetof(struct store, meta_fd)},
    {"refs", offsetof(struct store, refs_fd)},     {"locks", offsetof(struct store, locks_fd)},
    {"tmp", offsetof(struct store, tmp_fd)},       {"sources", offsetof(struct store, sources_fd)},
};

static int *subdir_fd(struct store *s, size_t i)
{
	return (int *)((char *)s + subdirs[i].off);
}

int store_open(const char *dir, struct store *ret, struct sbx_err *err)
{
	struct store s = {.fd = -1};
	for (size_t i = 0; i < ELEMENTSOF(subdirs); i++)
		*subdir_fd(&s, i) = -1;
	*ret = s;
	int r = sbx_mkdir_p(dir, 0700, err);
	if (r < 0)
		return sbx_wrap(err, "image store");
	if (!realpath(dir, s.path))
		return sbx_fail(err, errno, "image store '%s'", dir);
	s.fd = open(s.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s.fd < 0)
		return sbx_fail(err, errno, "image store '%s'", s.path);
	for (size_t i = 0; i < ELEMENTSOF(subdirs); i++) {
		if (mkdirat(s.fd, subdirs[i].name, 0700) < 0 && errno != EEXIST)
			r = sbx_fail(err, errno, "image store: mkdir '%s/%s'", s.path,
			             subdirs[i].name);
		else if ((*subdir_fd(&s, i) =
		              openat(s.fd, subdirs[i].name,
		                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			r = sbx_fail(err, errno, "image store: open '%s/%s'", s.path,
			             subdirs[i].name);
		if (r < 0) {
			store_close(&s);
			return r;
		}
	}
	*ret = s;
	return 0;
}

void store_close(struct store *s)
{
	sbx_closep(&s->fd);
	s->fd = -1;
	for (size_t i = 0; i < ELEMENTSOF(subdirs); i++) {
		sbx_closep(subdir_fd(s, i));
		*subdir_fd(s, i) = -1;
	}
}

static int flock_retry(int fd, int op)
{
	int r;
	while ((r = flock(fd, op)) < 0 && errno == EINTR)
		;
	return r;
}

int store_lock(struct store *s, int op, struct sbx_err *err)
{
	int fd = openat(s->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sbx_fail(err, errno, "image store '%s'", s->path);
	if (flock_retry(fd, op) < 0) {
		int e = errno;
		close(fd);
		return sbx_fail(err, e, "lock the image store '%s'", s->path);
	}
	return fd;
}

static bool same_file(int fd, int dirfd, const char *name)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int store_lock_image(struct store *s, const char *hex, struct sbx_err *err)
{
	char name[DIGEST_HEX_LEN + 8];
	snprintf(name, sizeof(name), "%s.lock", hex);
	for (;;) {
		int fd = openat(s->locks_fd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return sbx_fail(err, errno, "lock image sha256:%s", hex);
		if (flock_retry(fd, LOCK_EX) < 0) {
			int e = errno;
			close(fd);
			return sbx_fail(err, e, "lock image sha256:%s", hex);
		}
		/* prune may have removed the file we locked: lock the new one */
		if (same_file(fd, s->locks_fd, name))
			return fd;
		close(fd);
	}
}

bool store_has(struct store *s, const char *hex)
{
	struct stat st;
	return fstatat(s->rootfs_fd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static void random_hex(char *buf, size_t n)
{
	unsigned char raw[16];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		snprintf((char *)raw, sizeof(raw), "%lx%d", (long)t.tv_nsec, (int)getpid());
	}
	for (size_t i = 0; i + 1 < n && i < 2 * sizeof(raw); i++)
		buf[i] = "0123456789abcdef"[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 15];
	buf[n - 1 < 2 * sizeof(raw) ? n - 1 : 2 * sizeof(raw)] = '\0';
}

int store_mktemp(struct store *s, const char *prefix, char name[128], struct sbx_err *err)
{
	_cleanup_close_ int lock = store_lock(s, LOCK_SH, err);
	if (lock < 0)
		return lock;
	for (int tries = 0;; tries++) {
		char rnd[13];
		random_hex(rnd, sizeof(rnd));
		snprintf(name, 128, "%.80s.%s", prefix, rnd);
		if (mkdirat(s->tmp_fd, name, 0700) == 0)
			break;
		if (errno != EEXIST || tries > 8)
			return sbx_fail(err, errno, "mkdir '%s/tmp/%s'", s->path, name);
	}
	int fd = openat(s->tmp_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || flock_retry(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		unlinkat(s->tmp_fd, name, AT_REMOVEDIR);
		return sbx_fail(err, e, "open '%s/tmp/%s'", s->path, name);
	}
	return fd;
}

void store_drop_tmp(struct store *s, const char *name, int fd)
{
	struct sbx_err ignored;
	sbx_rm_rf_at(s->tmp_fd, name, &ignored);
	if (fd >= 0)
		close(fd);
}

/* Under the store lock, take the flock of every leftover (its owner is
 * gone when we can); remove them after the store lock is released. */
static int claim_leftovers(struct store *s, const char *prefix, char ***names, int **fds, size_t *n,
                           struct sbx_err *err)
{
	_cleanup_close_ int lock = store_lock(s, LOCK_EX, err);
	if (lock < 0)
		return lock;
	/* a fresh open of ".": a dup would share (and move) the read offset */
	int dup = openat(s->tmp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
	if (!d) {
		if (dup >= 0)
			close(dup);
		return sbx_fail(err, errno, "read '%s/tmp'", s->path);
	}
	size_t plen = prefix ? strlen(prefix) : 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (prefix && (strncmp(de->d_name, prefix, plen) || de->d_name[plen] != '.'))
			continue;
		int fd =
		    openat(s->tmp_fd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
			close(fd);
			continue; /* alive */
		}
		int *nf = realloc(*fds, (*n + 1) * sizeof(int));
		if (!nf || sbx_strv_push(names, de->d_name) < 0) {
			if (nf)
				*fds = nf;
			if (fd >= 0)
				close(fd);
			return sbx_fail(err, ENOMEM, "clean '%s/tmp'", s->path);
		}
		*fds = nf;
		(*fds)[(*n)++] = fd;
	}
	return 0;
}

int store_clean_tmp(struct store *s, const char *prefix, unsigned *ret_count, struct sbx_err *err)
{
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_free_ int *fds = NULL;
	size_t n = 0;
	int r = claim_leftovers(s, prefix, &names, &fds, &n, err);
	for (size_t i = 0; i < n; i++) {
		if (r >= 0)
			r = sbx_rm_rf_at(s->tmp_fd, names[i], err);
		if (fds[i] >= 0)
			close(fds[i]);
	}
	if (r >= 0 && ret_count)
		*ret_count = (unsigned)n;
	return r < 0 ? sbx_wrap(err, "clean leftovers in '%s/tmp'", s->path) : 0;
}

int store_publish(struct store *s, const char *hex, const char *name, int fd, const char *meta_json,
                  struct sbx_err *err)
{
	_cleanup_close_ int tmp = fd;
	char meta[DIGEST_HEX_LEN + 8];
	snprintf(meta, sizeof(meta), "%s.json", hex);
	int r = sbx_write_file_atomic(s->meta_fd, meta, meta_json, strlen(meta_json), 0600, err);
	if (r < 0)
		return r;
	/* one syncfs for the whole tree (and the meta file): an fsync per
	 * file would cost more than the unpack */
	if (syncfs(tmp) < 0)
		return sbx_fail(err, errno, "sync '%s'", s->path);
	if (renameat(s->tmp_fd, name, s->rootfs_fd, hex) < 0)
		return sbx_fail(err, errno, "publish '%s/rootfs/%s'", s->path, hex);
	if (fsync(s->rootfs_fd) < 0)
		return sbx_fail(err, errno, "sync '%s/rootfs'", s->path);
	return 0;
}

int store_hold(struct store *s, const char *hex, int *ret_fd, struct sbx_err *err)
{
	int fd = openat(s->rootfs_fd, hex, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return sbx_failx(err, ENOENT, "image sha256:%s is not in the store", hex);
	if (fd < 0)
		return sbx_fail(err, errno, "open '%s/rootfs/%s'", s->path, hex);
	if (flock_retry(fd, LOCK_SH) < 0) {
		int e = errno;
		close(fd);
		return sbx_fail(err, e, "hold image sha256:%s", hex);
	}
	if (!same_file(fd, s->rootfs_fd, hex)) {
		close(fd);
		return sbx_failx(err, ENOENT, "image sha256:%s was removed", hex);
	}
	*ret_fd = fd;
	return 0;
}

int store_holders(struct store *s, const char *hex, int **ret, size_t *ret_n)
{
	*ret = NULL;
	*ret_n = 0;
	struct stat st;
	if (fstatat(s->rootfs_fd, hex, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	_cleanup_fclose_ FILE *f = fopen("/proc/locks", "re");
	if (!f)
		return -errno;
	char line[256];
	while (fgets(line, sizeof(line), f)) {
		/* "1: FLOCK  ADVISORY  READ  1234 fd:00:5678 0 EOF"; waiters
		 * carry "->" and hold nothing yet */
		char kind[16], mode[16], rw[16];
		unsigned maj, min;
		unsigned long long ino;
		int pid;
		if (strstr(line, "->"))
			continue;
		if (sscanf(line, "%*d: %15s %15s %15s %d %x:%x:%llu", kind, mode, rw, &pid, &maj,
		           &min, &ino) != 7)
			continue;
		if (strcmp(kind, "FLOCK") || ino != (unsigned long long)st.st_ino ||
		    makedev(maj, min) != st.st_dev)
			continue;
		int *v = realloc(*ret, (*ret_n + 1) * sizeof(int));
		if (!v)
			return -ENOMEM;
		*ret = v;
		v[(*ret_n)++] = pid;
	}
	return 0;
}

static void holders_text(struct store *s, const char *hex, char *buf, size_t size)
{
	_cleanup_free_ int *pids = NULL;
	size_t n = 0;
	buf[0] = '\0';
	if (store_holders(s, hex, &pids, &n) < 0 || n == 0) {
		snprintf(buf, size, "a running sandbox");
		return;
	}
	size_t len = (size_t)snprintf(buf, size, "pid");
	for (size_t i = 0; i < n && len + 16 < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s %d", i ? "," : "", pids[i]);
}

static void remove_refs_to(struct store *s, const char *hex)
{
	struct sbx_err ignored;
	_cleanup_strv_free_ char **names = NULL, **hexes = NULL;
	if (store_refs(s, &names, &hexes, &ignored) < 0)
		return;
	for (size_t i = 0; names[i]; i++)
		if (!strcmp(hexes[i], hex))
			unlinkat(s->refs_fd, names[i], 0);
}

static bool has_refs(struct store *s, const char *hex)
{
	struct sbx_err ignored;
	_cleanup_strv_free_ char **names = NULL, **hexes = NULL;
	if (store_refs(s, &names, &hexes, &ignored) < 0)
		return true; /* when in doubt, keep it */
	for (size_t i = 0; names[i]; i++)
		if (!strcmp(hexes[i], hex))
			return true;
	return false;
}

int store_remove_image(struct store *s, const char *hex, bool only_unnamed, struct sbx_err *err)
{
	/* an import of this image (which writes meta, then maybe a name)
	 * would otherwise race us */
	_cleanup_close_ int ilock = store_lock_image(s, hex, err);
	if (ilock < 0)
		return ilock;
	if (only_unnamed && has_refs(s, hex))
		return 0;
	_cleanup_close_ int fd =
	    openat(s->rootfs_fd, hex, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT
		           ? sbx_failx(err, ENOENT, "image sha256:%s is not in the store", hex)
		           : sbx_fail(err, errno, "open '%s/rootfs/%s'", s->path, hex);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			return sbx_fail(err, errno, "lock image sha256:%s", hex);
		char who[128];
		holders_text(s, hex, who, sizeof(who));
		char shrt[20];
		digest_short(hex, shrt);
		return sbx_failx(err, EBUSY, "image %s is in use by %s", shrt, who);
	}
	/* move it out of sight in one step, then delete at leisure: the flock
	 * (kept) tells prune the folder in tmp/ is not a leftover */
	char trash[128];
	_cleanup_close_ int lock = store_lock(s, LOCK_SH, err);
	if (lock < 0)
		return lock;
	for (int tries = 0;; tries++) {
		char rnd[13];
		random_hex(rnd, sizeof(rnd));
		snprintf(trash, sizeof(trash), "rm-%.12s.%s", hex, rnd);
		if (renameat(s->rootfs_fd, hex, s->tmp_fd, trash) == 0)
			break;
		if (errno != EEXIST && errno != ENOTEMPTY)
			return sbx_fail(err, errno, "remove '%s/rootfs/%s'", s->path, hex);
		if (tries > 8)
			return sbx_fail(err, errno, "remove '%s/rootfs/%s'", s->path, hex);
	}
	sbx_closep(&lock);
	lock = -1;
	char meta[DIGEST_HEX_LEN + 8];
	snprintf(meta, sizeof(meta), "%s.json", hex);
	unlinkat(s->meta_fd, meta, 0);
	remove_refs_to(s, hex);
	int r = sbx_rm_rf_at(s->tmp_fd, trash, err);
	return r < 0 ? r : 1;
}

int store_ref_read(struct store *s, const char *name, char hex[DIGEST_HEX_LEN + 1])
{
	_cleanup_free_ char *buf = NULL;
	struct sbx_err ignored;
	int r = sbx_read_file(s->refs_fd, name, 256, &buf, NULL, &ignored);
	if (r < 0)
		return r;
	buf[strcspn(buf, "\n")] = '\0';
	if (digest_parse(buf, "ref", hex, &ignored) < 0)
		return -EBADMSG;
	return 0;
}

int store_ref_write(struct store *s, const char *name, const char *hex, struct sbx_err *err)
{
	char buf[DIGEST_HEX_LEN + 16];
	int n = snprintf(buf, sizeof(buf), "sha256:%s\n", hex);
	int r = sbx_write_file_atomic(s->refs_fd, name, buf, (size_t)n, 0600, err);
	return r < 0 ? sbx_wrap(err, "name '%s'", name) : 0;
}

int store_ref_remove(struct store *s, const char *name, struct sbx_err *err)
{
	if (unlinkat(s->refs_fd, name, 0) < 0 && errno != ENOENT)
		return sbx_fail(err, errno, "remove name '%s'", name);
	return 0;
}

static int list_dir(int dirfd, const char *what, char ***ret, struct sbx_err *err)
{
	/* a fresh open of ".": a dup would share (and move) the read offset */
	int dup = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
	if (!d) {
		if (dup >= 0)
			close(dup);
		return sbx_fail(err, errno, "read %s", what);
	}
	_cleanup_strv_free_ char **v = calloc(1, sizeof(char *));
	if (!v)
		return sbx_fail(err, ENOMEM, "read %s", what);
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && sbx_strv_push(&v, de->d_name) < 0)
			return sbx_fail(err, ENOMEM, "read %s", what);
	*ret = TAKE_PTR(v);
	return 0;
}

int store_refs(struct store *s, char ***ret_names, char ***ret_hex, struct sbx_err *err)
{
	_cleanup_strv_free_ char **all = NULL;
	int r = list_dir(s->refs_fd, "names", &all, err);
	if (r < 0)
		return r;
	_cleanup_strv_free_ char **names = calloc(1, sizeof(char *));
	_cleanup_strv_free_ char **hexes = calloc(1, sizeof(char *));
	if (!names || !hexes)
		return sbx_fail(err, ENOMEM, "read names");
	for (char **n = all; *n; n++) {
		char hex[DIGEST_HEX_LEN + 1];
		if (strstr(*n, ".tmp.") || store_ref_read(s, *n, hex) < 0)
			continue; /* a write in progress, or garbage */
		if (sbx_strv_push(&names, *n) < 0 || sbx_strv_push(&hexes, hex) < 0)
			return sbx_fail(err, ENOMEM, "read names");
	}
	*ret_names = TAKE_PTR(names);
	*ret_hex = TAKE_PTR(hexes);
	return 0;
}

int store_images(struct store *s, char ***ret, struct sbx_err *err)
{
	_cleanup_strv_free_ char **all = NULL;
	int r = list_dir(s->rootfs_fd, "images", &all, err);
	if (r < 0)
		return r;
	size_t j = 0;
	for (size_t i = 0; all[i]; i++) {
		if (digest_hex_valid(all[i]))
			all[j++] = all[i];
		else
			free(all[i]);
	}
	all[j] = NULL;
	*ret = TAKE_PTR(all);
	return 0;
}

static void source_key(const struct stat *st, const char *tag, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%llx-%llu", (unsigned long long)st->st_dev,
	                 (unsigned long long)st->st_ino);
	if (tag && tag[0]) {
		struct digest_ctx c;
		char hex[DIGEST_HEX_LEN + 1];
		digest_init(&c);
		digest_update(&c, tag, strlen(tag));
		digest_final_hex(&c, hex);
		snprintf(buf + n, size - (size_t)n, "-%.16s", hex);
	}
}

static void source_value(const struct stat *st, const char *hex, char *buf, size_t size)
{
	snprintf(buf, size, "%lld %lld.%09ld %lld.%09ld %s\n", (long long)st->st_size,
	         (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec,
	         st->st_ctim.tv_nsec, hex);
}

int store_source_lookup(struct store *s, const struct stat *st, const char *tag,
                        char hex[DIGEST_HEX_LEN + 1])
{
	char key[96], want[256];
	source_key(st, tag, key, sizeof(key));
	_cleanup_free_ char *buf = NULL;
	struct sbx_err ignored;
	if (sbx_read_file(s->sources_fd, key, 512, &buf, NULL, &ignored) < 0)
		return -ENOENT;
	/* the same file only while size, mtime and ctime are unchanged (ctime
	 * moves with every write and cannot be set back) */
	const char *sp = strrchr(buf, ' ');
	if (!sp || strlen(sp + 1) < DIGEST_HEX_LEN)
		return -ENOENT;
	char h[DIGEST_HEX_LEN + 1];
	memcpy(h, sp + 1, DIGEST_HEX_LEN);
	h[DIGEST_HEX_LEN] = '\0';
	if (!digest_hex_valid(h))
		return -ENOENT;
	source_value(st, h, want, sizeof(want));
	if (strcmp(buf, want))
		return -ENOENT;
	memcpy(hex, h, DIGEST_HEX_LEN + 1);
	return 0;
}

void store_source_record(struct store *s, const struct stat *st, const char *tag, const char *hex)
{
	char key[96], val[256];
	source_key(st, tag, key, sizeof(key));
	source_value(st, hex, val, sizeof(val));
	struct sbx_err ignored;
	(void)sbx_write_file_atomic(s->sources_fd, key, val, strlen(val), 0600, &ignored);
}

int store_meta_read(struct store *s, const char *hex, char **ret)
{
	char name[DIGEST_HEX_LEN + 8];
	snprintf(name, sizeof(name), "%s.json", hex);
	struct sbx_err ignored;
	return sbx_read_file(s->meta_fd, name, 1U << 20, ret, NULL, &ignored);
}

/* Remove dir/name when the image it belongs to is gone and nobody is
 * importing it (its import lock is free). */
static void prune_entry(struct store *s, int dirfd, const char *name, const char *hex)
{
	if (store_has(s, hex))
		return;
	char lock[DIGEST_HEX_LEN + 8];
	snprintf(lock, sizeof(lock), "%s.lock", hex);
	/* O_CREAT: an import that starts now waits for us */
	_cleanup_close_ int fd =
	    openat(s->locks_fd, lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
		return; /* an import of it is running */
	if (store_has(s, hex) || !same_file(fd, s->locks_fd, lock))
		return;
	unlinkat(dirfd, name, 0);
	unlinkat(s->locks_fd, lock, 0);
}

void store_prune_orphans(struct store *s)
{
	struct sbx_err ignored;
	_cleanup_strv_free_ char **meta = NULL, **locks = NULL, **sources = NULL;
	if (list_dir(s->meta_fd, "meta", &meta, &ignored) == 0)
		for (char **n = meta; *n; n++) {
			char hex[DIGEST_HEX_LEN + 1];
			if (strlen(*n) == DIGEST_HEX_LEN + 5 &&
			    !strcmp(*n + DIGEST_HEX_LEN, ".json")) {
				snprintf(hex, sizeof(hex), "%.64s", *n);
				if (digest_hex_valid(hex))
					prune_entry(s, s->meta_fd, *n, hex);
			}
		}
	if (list_dir(s->locks_fd, "locks", &locks, &ignored) == 0)
		for (char **n = locks; *n; n++) {
			char hex[DIGEST_HEX_LEN + 1];
			snprintf(hex, sizeof(hex), "%.64s", *n);
			if (digest_hex_valid(hex) && !strcmp(*n + DIGEST_HEX_LEN, ".lock"))
				prune_entry(s, s->locks_fd, *n, hex);
		}
	if (list_dir(s->sources_fd, "sources", &sources, &ignored) == 0)
		for (char **n = sources; *n; n++) {
			_cleanup_free_ char *buf = NULL;
			if (sbx_read_file(s->sources_fd, *n, 512, &buf, NULL, &ignored) < 0)
				continue;
			const char *sp = strrchr(buf, ' ');
			char hex[DIGEST_HEX_LEN + 1];
			snprintf(hex, sizeof(hex), "%.64s", sp ? sp + 1 : "");
			if (!digest_hex_valid(hex) || !store_has(s, hex))
				unlinkat(s->sources_fd, *n, 0);
		}
}
