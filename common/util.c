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

/* The names first, then the removals: no readdir() over a folder that is
 * changing.  Takes dfd. */
static int rm_rf_children(int dfd, struct sbx_err *err)
{
	_cleanup_closedir_ DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return sbx_fail(err, errno, "opendir");
	}
	_cleanup_strv_free_ char **names = NULL;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (sbx_strv_push(&names, de->d_name) < 0)
			return sbx_fail(err, ENOMEM, "remove");
	}
	for (char **n = names; n && *n; n++) {
		int r = sbx_rm_rf_at(dirfd(d), *n, err);
		if (r < 0)
			return r;
	}
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
	int dfd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 && errno == EACCES)
		dfd = open_locked_dir(dirfd, name);
	if (dfd < 0)
		return sbx_fail(err, errno, "open '%s'", name);
	struct stat dst;
	if (fstat(dfd, &dst) < 0 || dst.st_dev != st.st_dev) {
		/* a mount point: never descend into another file system */
		close(dfd);
		return sbx_failx(err, EXDEV, "remove '%s': is a mount point", name);
	}
	/* a directory we cannot list (mode 0500 from an image) */
	if (!(dst.st_mode & S_IWUSR) || !(dst.st_mode & S_IXUSR))
		fchmod(dfd, dst.st_mode | S_IRWXU);
	int r = rm_rf_children(dfd, err);
	if (r < 0)
		return sbx_wrap(err, "remove '%s'", name);
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
