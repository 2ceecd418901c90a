#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <signal.h>
#include <spawn.h>

#include "common/cleanup.h"

int sbx_parse_u64(const char *s, const char *what, uint64_t min, uint64_t max, uint64_t *ret,
                  struct sbx_err *err)
{
	if (!s || !isdigit((unsigned char)*s))
		return sbx_failx(err, EINVAL, "%s: '%s' is not a number", what, s ? s : "");
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return sbx_failx(err, EINVAL, "%s: '%s' is not a number", what, s);
	if (v < min || v > max)
		return sbx_failx(err, ERANGE, "%s: %llu is out of range (%llu to %llu)", what, v,
		                 (unsigned long long)min, (unsigned long long)max);
	*ret = v;
	return 0;
}

int sbx_parse_size(const char *s, const char *what, uint64_t *ret, struct sbx_err *err)
{
	if (!s || !(isdigit((unsigned char)*s) || *s == '.'))
		goto bad;
	errno = 0;
	char *end;
	double v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		goto bad;
	uint64_t mult = 1;
	switch (toupper((unsigned char)*end)) {
	case 'K':
		mult = 1ULL << 10;
		end++;
		break;
	case 'M':
		mult = 1ULL << 20;
		end++;
		break;
	case 'G':
		mult = 1ULL << 30;
		end++;
		break;
	case 'T':
		mult = 1ULL << 40;
		end++;
		break;
	default:
		break;
	}
	if (mult > 1 && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end)
		goto bad;
	double bytes = v * (double)mult;
	if (bytes > (double)(UINT64_MAX / 2))
		return sbx_failx(err, ERANGE, "%s: '%s' is too large", what, s);
	*ret = (uint64_t)bytes;
	return 0;
bad:
	return sbx_failx(err, EINVAL, "%s: '%s' is not a size (use a number with K, M or G)", what,
	                 s ? s : "");
}

int sbx_parse_duration(const char *s, const char *what, uint64_t *ret, struct sbx_err *err)
{
	if (!s || !isdigit((unsigned char)*s))
		goto bad;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		goto bad;
	uint64_t mult = 1;
	if (*end) {
		switch (*end) {
		case 's':
			mult = 1;
			break;
		case 'm':
			mult = 60;
			break;
		case 'h':
			mult = 3600;
			break;
		case 'd':
			mult = 86400;
			break;
		default:
			goto bad;
		}
		if (end[1])
			goto bad;
	}
	if (v > UINT64_MAX / mult)
		goto bad;
	*ret = v * mult;
	return 0;
bad:
	return sbx_failx(err, EINVAL, "%s: '%s' is not a duration (use e.g. 90s, 5m, 2h)", what,
	                 s ? s : "");
}

int sbx_read_file(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len,
                  struct sbx_err *err)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return sbx_fail(err, errno, "open '%s'", path);
	size_t cap = 4096, len = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return sbx_fail(err, ENOMEM, "read '%s'", path);
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > max)
				return sbx_failx(err, EFBIG, "read '%s': larger than %zu bytes",
				                 path, max);
			char *n = realloc(buf, cap * 2);
			if (!n)
				return sbx_fail(err, ENOMEM, "read '%s'", path);
			buf = n;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return sbx_fail(err, errno, "read '%s'", path);
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max)
			return sbx_failx(err, EFBIG, "read '%s': larger than %zu bytes", path, max);
	}
	buf[len] = '\0';
	if (ret_len)
		*ret_len = len;
	*ret = TAKE_PTR(buf);
	return 0;
}

int sbx_helper_path(const char *name, const char *env, char *buf, size_t size)
{
	const char *e = env ? getenv(env) : NULL;
	if (e && e[0])
		return (size_t)snprintf(buf, size, "%s", e) < size ? 0 : -ENAMETOOLONG;
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -errno;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	return (size_t)snprintf(buf, size, "%s/%s", self, name) < size ? 0 : -ENAMETOOLONG;
}

bool sbx_find_in_path(const char *name, char *out, size_t size)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		if (n > 0 && (size_t)snprintf(out, size, "%.*s/%s", (int)n, path, name) < size &&
		    out[0] == '/' && access(out, X_OK) == 0)
			return true;
		path += n;
		if (*path == ':')
			path++;
	}
	return false;
}

int sbx_spawn(const char *path, char *const *argv, int in, int out, int err, int fd3,
              pid_t *ret_pid)
{
	extern char **environ;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	if (in < 0)
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	else
		posix_spawn_file_actions_adddup2(&fa, in, 0);
	if (out >= 0)
		posix_spawn_file_actions_adddup2(&fa, out, 1);
	if (err >= 0)
		posix_spawn_file_actions_adddup2(&fa, err, 2);
	if (fd3 >= 0)
		posix_spawn_file_actions_adddup2(&fa, fd3, 3);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	int r = posix_spawn(ret_pid, path, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return -r;
}

void sbx_take_lines(char *buf, size_t *len, size_t size, bool flush,
                    void (*fn)(void *data, const char *line), void *data)
{
	size_t start = 0;
	for (size_t i = 0; i < *len; i++) {
		if (buf[i] != '\n')
			continue;
		buf[i] = '\0';
		fn(data, buf + start);
		start = i + 1;
	}
	memmove(buf, buf + start, *len - start);
	*len -= start;
	if (*len && (flush || *len == size - 1)) {
		buf[*len] = '\0';
		fn(data, buf);
		*len = 0;
	}
}

long sbx_read_long(const char *path, long def)
{
	FILE *f = fopen(path, "re");
	long v = def;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = def;
		fclose(f);
	}
	return v;
}

int sbx_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int sbx_write_file_atomic(int dirfd, const char *path, const void *data, size_t len, mode_t mode,
                          struct sbx_err *err)
{
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp))
		return sbx_failx(err, ENAMETOOLONG, "write '%s': name too long", path);
	_cleanup_close_ int fd =
	    openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return sbx_fail(err, errno, "create '%s'", tmp);
	int r = sbx_write_all(fd, data, len);
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
		return sbx_fail(err, -r, "write '%s'", tmp);
	}
	if (renameat(dirfd, tmp, dirfd, path) < 0) {
		int e = errno;
		unlinkat(dirfd, tmp, 0);
		return sbx_fail(err, e, "rename '%s' to '%s'", tmp, path);
	}
	return 0;
}

int sbx_mkdir_p(const char *path, mode_t mode, struct sbx_err *err)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(buf))
		return sbx_failx(err, ENAMETOOLONG, "mkdir '%s': bad path", path);
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return sbx_fail(err, errno, "mkdir '%s'", buf);
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return sbx_fail(err, errno, "mkdir '%s'", buf);
	return 0;
}

/* A directory of ours we may not even list (overlayfs leaves its work/work
 * at mode 0; an agent may chmod 000 a folder): give it 0700 and open it.
 * The chmod goes through an O_PATH fd of that very directory, never
 * through a name a symlink could have replaced meanwhile. */
static int open_locked_dir(int dirfd, const char *name)
{
	int p = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (p < 0)
		return -1;
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", p);
	int fd = -1;
	if (chmod(path, 0700) == 0)
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int e = errno;
	close(p);
	errno = e;
	return fd;
}

/* Open a directory to empty it: never a symlink, never another file
 * system, and writable by us (a 0500 folder from an image). */
static int open_for_removal(int dirfd, const char *name, dev_t dev, struct stat *ret,
                            struct sbx_err *err)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EACCES)
		fd = open_locked_dir(dirfd, name);
	if (fd < 0)
		return sbx_fail(err, errno, "open '%s'", name);
	if (fstat(fd, ret) < 0 || ret->st_dev != dev) {
		close(fd);
		return sbx_failx(err, EXDEV, "remove '%s': is a mount point", name);
	}
	if (!(ret->st_mode & S_IWUSR) || !(ret->st_mode & S_IXUSR))
		fchmod(fd, ret->st_mode | S_IRWXU);
	return fd;
}

/* One folder being emptied: the names it held (read before any removal,
 * so no readdir() runs over a changing folder) and where we are in them. */
struct rm_frame {
	char **names;
	size_t next;
	char *name; /* its own name in its parent */
	dev_t dev;
	ino_t ino;
};

static int read_names(int fd, char ***ret, struct sbx_err *err)
{
	int dup = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
	if (!d) {
		if (dup >= 0)
			close(dup);
		return sbx_fail(err, errno, "opendir");
	}
	struct dirent *de;
	int r = 0;
	*ret = NULL;
	while (r == 0 && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    sbx_strv_push(ret, de->d_name) < 0)
			r = sbx_fail(err, ENOMEM, "remove");
	closedir(d);
	return r;
}

static void frames_free(struct rm_frame *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		sbx_strv_free(f[i].names);
		free(f[i].name);
	}
	free(f);
}

struct rm_stack {
	struct rm_frame *f;
	size_t depth, cap;
};

/* Push the folder fd is (named name in its parent). */
static int rm_push(struct rm_stack *s, int fd, const char *name, const struct stat *st,
                   struct sbx_err *err)
{
	if (s->depth == s->cap) {
		size_t cap = s->cap * 2 + 8;
		struct rm_frame *f = realloc(s->f, cap * sizeof(*f));
		if (!f)
			return sbx_fail(err, ENOMEM, "remove '%s'", name);
		s->f = f;
		s->cap = cap;
	}
	struct rm_frame *f = &s->f[s->depth];
	*f = (struct rm_frame){NULL, 0, strdup(name), st->st_dev, st->st_ino};
	s->depth++;
	if (!f->name)
		return sbx_fail(err, ENOMEM, "remove '%s'", name);
	return read_names(fd, &f->names, err);
}

/* The emptied folder on top goes: up to its parent through "..", checked
 * against the device and inode we came down from, and removed there. */
static int rm_pop(struct rm_stack *s, int *cur, const char *root, struct sbx_err *err)
{
	struct rm_frame *f = &s->f[s->depth - 1], *parent = &s->f[s->depth - 2];
	int up = openat(*cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat pst;
	if (up < 0 || fstat(up, &pst) < 0 || pst.st_dev != parent->dev ||
	    pst.st_ino != parent->ino) {
		if (up >= 0)
			close(up);
		return sbx_failx(err, EXDEV, "remove '%s': the tree moved meanwhile", root);
	}
	close(*cur);
	*cur = up;
	if (unlinkat(up, f->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return sbx_fail(err, errno, "remove '%s'", f->name);
	sbx_strv_free(f->names);
	free(f->name);
	s->depth--;
	return 0;
}

/* Empty dirfd/name depth first with one open directory at a time, so a
 * tree deeper than the open-file limit goes too. */
static int rm_tree(int dirfd, const char *name, dev_t dev, struct sbx_err *err)
{
	struct stat st;
	int cur = open_for_removal(dirfd, name, dev, &st, err);
	if (cur < 0)
		return cur;
	struct rm_stack s = {NULL, 0, 0};
	int r = rm_push(&s, cur, name, &st, err);
	while (r >= 0) {
		struct rm_frame *f = &s.f[s.depth - 1];
		const char *n = f->names ? f->names[f->next] : NULL;
		if (!n) {
			if (s.depth == 1)
				break;
			r = rm_pop(&s, &cur, name, err);
			continue;
		}
		f->next++;
		struct stat cst;
		if (fstatat(cur, n, &cst, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISDIR(cst.st_mode)) {
			if (unlinkat(cur, n, 0) < 0 && errno != ENOENT)
				r = sbx_fail(err, errno, "remove '%s'", n);
			continue;
		}
		int child = open_for_removal(cur, n, dev, &st, err);
		if (child < 0) {
			r = child;
			break;
		}
		close(cur);
		cur = child;
		r = rm_push(&s, cur, n, &st, err);
	}
	close(cur);
	frames_free(s.f, s.depth);
	return r;
}

int sbx_rm_rf_at(int dirfd, const char *name, struct sbx_err *err)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : sbx_fail(err, errno, "stat '%s'", name);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			return sbx_fail(err, errno, "remove '%s'", name);
		return 0;
	}
	int r = rm_tree(dirfd, name, st.st_dev, err);
	if (r < 0)
		return r;
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return sbx_fail(err, errno, "remove '%s'", name);
	return 0;
}

size_t sbx_strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

int sbx_strv_push(char ***v, const char *s)
{
	size_t n = sbx_strv_len(*v);
	char *copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	char **nv = realloc(*v, (n + 2) * sizeof(char *));
	if (!nv) {
		free(copy);
		return -ENOMEM;
	}
	nv[n] = copy;
	nv[n + 1] = NULL;
	*v = nv;
	return 0;
}

void sbx_strv_free(char **v)
{
	sbx_strv_freep(&v);
}

bool sbx_str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}
