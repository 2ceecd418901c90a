#include "rootfs/tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#define WH_PREFIX ".wh."
#define WH_META   ".wh..wh."
#define WH_OPAQUE ".wh..wh..opq"

int tree_clean_path(const char *in, char *out, size_t size, struct sbx_err *err)
{
	if (in[0] == '/')
		return sbx_failx(err, EBADMSG, "path escapes the image root");
	size_t o = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		size_t len = (size_t)(e - p);
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return sbx_failx(err, EBADMSG, "path escapes the image root");
		if (!(len == 1 && p[0] == '.')) {
			if (o + 1 + len + 1 > size)
				return sbx_failx(err, EBADMSG, "path is too long");
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p = e;
	}
	out[o] = '\0';
	return 0;
}

int tree_open_dir(int root_fd, const char *path)
{
	struct open_how how = {
	    .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	for (int tries = 0;; tries++) {
		long fd = syscall(SYS_openat2, root_fd, path[0] ? path : ".", &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		/* EAGAIN: a concurrent rename below the root; nobody else
		 * should be renaming in our tree, but retrying is cheap. */
		if ((errno != EAGAIN && errno != EINTR) || tries > 16)
			return -errno;
	}
}

static uint64_t size_below(int dfd, dev_t dev, int depth)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	uint64_t total = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode)) {
			total += (uint64_t)st.st_size / (st.st_nlink ? st.st_nlink : 1);
		} else if (S_ISDIR(st.st_mode) && st.st_dev == dev && depth < 512) {
			int sub = openat(dfd, de->d_name,
			                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0) {
				total += size_below(sub, dev, depth + 1);
				close(sub);
			}
		}
	}
	closedir(d);
	return total;
}

uint64_t tree_size(int dirfd)
{
	struct stat st;
	return fstat(dirfd, &st) < 0 ? 0 : size_below(dirfd, st.st_dev, 0);
}

/* --- pathset: open addressing, FNV-1a --------------------------------- */

static size_t hash_str(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return (size_t)h;
}

static char **slot_of(const struct pathset *s, const char *key, size_t len)
{
	size_t i = hash_str(key, len) & (s->cap - 1);
	while (s->slot[i] && (strncmp(s->slot[i], key, len) || s->slot[i][len]))
		i = (i + 1) & (s->cap - 1);
	return &s->slot[i];
}

static int pathset_grow(struct pathset *s)
{
	size_t cap = s->cap ? s->cap * 2 : 256;
	struct pathset n = {calloc(cap, sizeof(char *)), cap, 0};
	if (!n.slot)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++)
		if (s->slot[i]) {
			*slot_of(&n, s->slot[i], strlen(s->slot[i])) = s->slot[i];
			n.n++;
		}
	free(s->slot);
	*s = n;
	return 0;
}

static int pathset_add_one(struct pathset *s, const char *path, size_t len)
{
	if ((s->n + 1) * 2 > s->cap && pathset_grow(s) < 0)
		return -ENOMEM;
	char **slot = slot_of(s, path, len);
	if (*slot)
		return 0;
	if (!(*slot = strndup(path, len)))
		return -ENOMEM;
	s->n++;
	return 0;
}

int pathset_add(struct pathset *s, const char *path)
{
	size_t len = strlen(path);
	if (len == 0)
		return 0;
	int r = pathset_add_one(s, path, len);
	for (size_t i = len; r == 0 && i-- > 0;)
		if (path[i] == '/') {
			if (s->cap && *slot_of(s, path, i))
				break; /* its parents are in already */
			r = pathset_add_one(s, path, i);
		}
	return r;
}

bool pathset_has(const struct pathset *s, const char *path)
{
	return s && s->cap && *slot_of(s, path, strlen(path));
}

void pathset_clear(struct pathset *s)
{
	for (size_t i = 0; i < s->cap; i++) {
		free(s->slot[i]);
		s->slot[i] = NULL;
	}
	s->n = 0;
}

void pathset_free(struct pathset *s)
{
	pathset_clear(s);
	free(s->slot);
	s->slot = NULL;
	s->cap = 0;
}

/* --- whiteouts ----------------------------------------------------------- */

enum tree_whiteout tree_whiteout_kind(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (!sbx_str_has_prefix(base, WH_PREFIX))
		return TREE_WH_NONE;
	if (!strcmp(base, WH_OPAQUE))
		return TREE_WH_OPAQUE;
	if (sbx_str_has_prefix(base, WH_META))
		return TREE_WH_META;
	return TREE_WH_FILE;
}

static int join(char *buf, size_t size, const char *dir, const char *name)
{
	size_t n = (size_t)snprintf(buf, size, "%s%s%s", dir, dir[0] ? "/" : "", name);
	return n < size ? 0 : -ENAMETOOLONG;
}

/* Remove every child of dir (open as dfd) that keep does not hold. */
static int empty_below(int dfd, const char *dir, const struct pathset *keep, struct sbx_err *err)
{
	/* a fresh open of ".": a dup would share (and move) the read offset */
	int dup = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dup < 0)
		return sbx_fail(err, errno, "open '%s'", dir);
	_cleanup_closedir_ DIR *d = fdopendir(dup);
	if (!d) {
		close(dup);
		return sbx_fail(err, errno, "open '%s'", dir);
	}
	_cleanup_strv_free_ char **names = NULL;
	struct dirent *de;
	char path[PATH_MAX];
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (join(path, sizeof(path), dir, de->d_name) < 0)
			return sbx_failx(err, EBADMSG, "'%s/%s': path is too long", dir,
			                 de->d_name);
		if (pathset_has(keep, path))
			continue;
		if (sbx_strv_push(&names, de->d_name) < 0)
			return sbx_fail(err, ENOMEM, "opaque '%s'", dir);
	}
	for (char **n = names; n && *n; n++) {
		int r = sbx_rm_rf_at(dfd, *n, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int tree_whiteout(int root_fd, const char *path, enum tree_whiteout kind,
                  const struct pathset *keep, struct sbx_err *err)
{
	if (kind != TREE_WH_FILE && kind != TREE_WH_OPAQUE)
		return 0;
	char dir[PATH_MAX], target[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t dlen = slash ? (size_t)(slash - path) : 0;
	const char *base = slash ? slash + 1 : path;
	if (dlen >= sizeof(dir))
		return sbx_failx(err, EBADMSG, "path is too long");
	memcpy(dir, path, dlen);
	dir[dlen] = '\0';
	const char *name = base + strlen(WH_PREFIX);
	if (kind == TREE_WH_FILE) {
		if (!strcmp(name, "..") || strchr(name, '/'))
			return sbx_failx(err, EBADMSG, "path escapes the image root");
		if (!name[0] || !strcmp(name, "."))
			return sbx_failx(err, EBADMSG, "whiteout names nothing");
		if (join(target, sizeof(target), dir, name) < 0)
			return sbx_failx(err, EBADMSG, "path is too long");
		if (pathset_has(keep, target))
			return 0;
	}
	_cleanup_close_ int dfd = tree_open_dir(root_fd, dir);
	if (dfd == -ENOENT || dfd == -ENOTDIR)
		return 0; /* nothing of the lower layers is there */
	if (dfd == -ELOOP || dfd == -EXDEV)
		return sbx_failx(err, EBADMSG, "path goes through a symlink");
	if (dfd < 0)
		return sbx_fail(err, -dfd, "open '%s'", dir);
	if (kind == TREE_WH_OPAQUE)
		return empty_below(dfd, dir, keep, err);
	return sbx_rm_rf_at(dfd, name, err);
}

/* --- directory modes (rootless) ------------------------------------------ */

int dirmodes_note(struct dirmodes *d, const char *path, mode_t mode)
{
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->v[i].path, path)) {
			d->v[i].mode = mode & 07777;
			if ((mode & S_IRWXU) == S_IRWXU) {
				free(d->v[i].path);
				d->v[i] = d->v[--d->n];
			}
			return 0;
		}
	if ((mode & S_IRWXU) == S_IRWXU)
		return 0;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct dirmode *v = realloc(d->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	if (!(d->v[d->n].path = strdup(path)))
		return -ENOMEM;
	d->v[d->n++].mode = mode & 07777;
	return 0;
}

void dirmodes_forget(struct dirmodes *d, const char *path, bool self, const struct pathset *keep)
{
	size_t len = strlen(path);
	for (size_t i = 0; i < d->n;) {
		const char *p = d->v[i].path;
		bool below =
		    len == 0 ? p[0] != '\0' : !strncmp(p, path, len) && p[len] == '/' && p[len + 1];
		bool hit = (below || (self && !strcmp(p, path))) && !pathset_has(keep, p);
		if (hit) {
			free(d->v[i].path);
			d->v[i] = d->v[--d->n];
		} else {
			i++;
		}
	}
}

static size_t depth(const char *p)
{
	size_t n = 0;
	for (; *p; p++)
		n += *p == '/';
	return n;
}

static int deeper_first(const void *a, const void *b)
{
	size_t da = depth(((const struct dirmode *)a)->path);
	size_t db = depth(((const struct dirmode *)b)->path);
	return da < db ? 1 : da > db ? -1 : 0;
}

int dirmodes_apply(struct dirmodes *d, int root_fd, struct sbx_err *err)
{
	if (d->n)
		qsort(d->v, d->n, sizeof(*d->v), deeper_first);
	for (size_t i = 0; i < d->n; i++) {
		_cleanup_close_ int fd = tree_open_dir(root_fd, d->v[i].path);
		if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP)
			continue; /* removed or replaced by a later layer */
		if (fd < 0)
			return sbx_fail(err, -fd, "open '%s'", d->v[i].path);
		if (fchmod(fd, d->v[i].mode) < 0)
			return sbx_fail(err, errno, "chmod '%s'", d->v[i].path);
	}
	return 0;
}

void dirmodes_free(struct dirmodes *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].path);
	free(d->v);
	memset(d, 0, sizeof(*d));
}
