/* Reading the host: the cgroup mounts (mountinfo), the caller's own cgroups
 * (/proc/self/cgroup), swap, and the small file and directory operations
 * every cgroup step is made of. */
#include "runtime/cgroup_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

void cg_unescape_mountinfo(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

static bool copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n >= size)
		return false;
	memcpy(dst, src, n + 1);
	return true;
}

/* One mountinfo line; only cgroup and cgroup2 mounts are kept. */
static void parse_mountinfo_line(char *line, struct cg_hosttab *tab)
{
	char *fields[64];
	size_t n = 0;
	for (char *save = NULL, *t = strtok_r(line, " \n", &save); t && n < ELEMENTSOF(fields);
	     t = strtok_r(NULL, " \n", &save))
		fields[n++] = t;
	size_t sep = 6;
	while (sep < n && strcmp(fields[sep], "-"))
		sep++;
	if (n < 7 || sep + 1 >= n)
		return;
	const char *fstype = fields[sep + 1];
	const char *superopts = sep + 3 < n ? fields[sep + 3] : "";
	bool v2 = !strcmp(fstype, "cgroup2");
	if (!v2 && strcmp(fstype, "cgroup"))
		return;
	if (tab->n_mounts >= CG_MAX_MOUNTS)
		return;
	struct cg_mount *m = &tab->mounts[tab->n_mounts];
	cg_unescape_mountinfo(fields[3]);
	cg_unescape_mountinfo(fields[4]);
	if (!copy_str(m->root, sizeof(m->root), fields[3]) ||
	    !copy_str(m->point, sizeof(m->point), fields[4]))
		return;
	m->v2 = v2;
	m->ctrls = v2 ? 0 : cg_mask_parse(superopts);
	tab->n_mounts++;
}

static int load_mountinfo(const char *path, struct cg_hosttab *tab, struct sbx_err *err)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return sbx_fail(err, errno, "open '%s'", path);
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0)
		parse_mountinfo_line(line, tab);
	/* v2 controllers come from the root's cgroup.controllers */
	for (size_t i = 0; i < tab->n_mounts; i++) {
		struct cg_mount *m = &tab->mounts[i];
		if (!m->v2)
			continue;
		_cleanup_close_ int fd = open(m->point, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		char buf[512];
		if (fd >= 0 && cg_read(fd, "cgroup.controllers", buf, sizeof(buf)) >= 0)
			m->ctrls = cg_mask_parse(buf);
	}
	return 0;
}

int cg_host_load_proc_cgroup(const struct sbx_cgroup_host *host, struct cg_hosttab *tab,
                             struct sbx_err *err)
{
	_cleanup_fclose_ FILE *f = fopen(host->proc_cgroup, "re");
	if (!f)
		return sbx_fail(err, errno, "open '%s'", host->proc_cgroup);
	tab->have_v2_path = false;
	tab->v2_path[0] = '\0';
	for (size_t i = 0; i < ELEMENTSOF(tab->v1_path); i++)
		tab->v1_path[i][0] = '\0';
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c1 = *c2 = '\0';
		const char *ctrls = c1 + 1, *path = c2 + 1;
		if (!strcmp(line, "0") && !*ctrls) {
			tab->have_v2_path = copy_str(tab->v2_path, sizeof(tab->v2_path), path);
			continue;
		}
		unsigned mask = cg_mask_parse(ctrls);
		for (unsigned i = 0; i < ELEMENTSOF(tab->v1_path); i++)
			if (mask & (1u << i))
				copy_str(tab->v1_path[i], sizeof(tab->v1_path[i]), path);
	}
	return 0;
}

static void load_swap(const char *path, struct cg_hosttab *tab)
{
	tab->swap_on = false;
	_cleanup_fclose_ FILE *f = path ? fopen(path, "re") : NULL;
	if (!f)
		return;
	char line[256];
	unsigned long long kb;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SwapTotal: %llu", &kb) == 1)
			tab->swap_on = kb > 0;
}

int cg_host_load(const struct sbx_cgroup_host *host, struct cg_hosttab *tab, struct sbx_err *err)
{
	memset(tab, 0, sizeof(*tab));
	int r = load_mountinfo(host->mountinfo, tab, err);
	if (r < 0)
		return r;
	r = cg_host_load_proc_cgroup(host, tab, err);
	if (r < 0)
		return r;
	load_swap(host->meminfo, tab);
	return 0;
}

const struct cg_mount *cg_find_v2(const struct cg_hosttab *tab)
{
	for (size_t i = 0; i < tab->n_mounts; i++)
		if (tab->mounts[i].v2)
			return &tab->mounts[i];
	return NULL;
}

/* Is path equal to prefix or below it, component-wise? */
static const char *path_below(const char *path, const char *prefix)
{
	if (!strcmp(prefix, "/"))
		return path;
	size_t n = strlen(prefix);
	if (strncmp(path, prefix, n) || (path[n] && path[n] != '/'))
		return NULL;
	return path[n] ? path + n : "/";
}

static int ctrl_index(unsigned ctrl)
{
	return __builtin_ctz(ctrl);
}

const struct cg_mount *cg_find_v1(const struct cg_hosttab *tab, unsigned ctrl)
{
	const char *own = tab->v1_path[ctrl_index(ctrl)];
	const struct cg_mount *any = NULL;
	for (size_t i = 0; i < tab->n_mounts; i++) {
		const struct cg_mount *m = &tab->mounts[i];
		if (m->v2 || !(m->ctrls & ctrl))
			continue;
		if (!any)
			any = m;
		if (*own && path_below(own, m->root))
			return m;
	}
	return *own ? NULL : any;
}

int cg_host_path(const struct cg_mount *m, const char *cgpath, char *buf, size_t size)
{
	const char *rest = path_below(cgpath, m->root);
	if (!rest)
		return -EXDEV;
	int n = snprintf(buf, size, "%s%s", m->point, strcmp(rest, "/") ? rest : "");
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

int cg_config_path(const struct cg_mount *m, const char *own, const char *parent, char *buf,
                   size_t size, struct sbx_err *err)
{
	/* "./NAME": below the caller's own cgroup of this hierarchy (on v1
	 * each controller has its own); anything else: from the hierarchy's
	 * root. */
	bool relative = !strncmp(parent, "./", 2);
	const char *p = relative ? parent + 2 : parent;
	while (*p == '/')
		p++;
	if (!*p)
		return sbx_failx(err, EINVAL, "[cgroups] parent '%s': not a cgroup path", parent);
	for (const char *c = p; *c;) {
		size_t len = strcspn(c, "/");
		if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && !strncmp(c, "..", 2)))
			return sbx_failx(err, EINVAL,
			                 "[cgroups] parent '%s': empty, '.' or '..' component",
			                 parent);
		c += len;
		if (*c == '/')
			c++;
	}
	size_t plen = strlen(p);
	while (plen && p[plen - 1] == '/')
		plen--;
	char base[PATH_MAX];
	if (relative) {
		if (!own || !*own || cg_host_path(m, own, base, sizeof(base)) < 0)
			return sbx_failx(err, ENOENT,
			                 "[cgroups] parent '%s': this process's own cgroup is not "
			                 "below %s",
			                 parent, m->point);
	} else {
		snprintf(base, sizeof(base), "%s", m->point);
	}
	int n = snprintf(buf, size, "%s/%.*s", base, (int)plen, p);
	if (n < 0 || (size_t)n >= size)
		return sbx_failx(err, ENAMETOOLONG, "[cgroups] parent '%s': path too long", parent);
	return 0;
}

int cg_write(int dirfd, const char *where, const char *file, const char *value, struct sbx_err *err)
{
	_cleanup_close_ int fd = openat(dirfd, file, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return sbx_fail(err, errno, "open %s/%s", where, file);
	size_t len = strlen(value);
	/* a cgroup file takes one value per write(); a short write is an error */
	ssize_t w;
	do
		w = write(fd, value, len);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return sbx_fail(err, errno, "write '%s' to %s/%s", value, where, file);
	if ((size_t)w != len)
		return sbx_failx(err, EIO, "write '%s' to %s/%s: short write", value, where, file);
	return 0;
}

ssize_t cg_read(int dirfd, const char *file, char *buf, size_t size)
{
	_cleanup_close_ int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	size_t len = 0;
	while (len + 1 < size) {
		ssize_t r = read(fd, buf + len, size - 1 - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	return (ssize_t)len;
}

static int parse_u64_word(const char *s, uint64_t *ret)
{
	while (isspace((unsigned char)*s))
		s++;
	if (!strncmp(s, "max", 3) && (!s[3] || isspace((unsigned char)s[3]))) {
		*ret = SBX_LIMIT_MAX;
		return 0;
	}
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || (*end && !isspace((unsigned char)*end)))
		return -EINVAL;
	*ret = v;
	return 0;
}

int cg_read_u64(int dirfd, const char *file, uint64_t *ret)
{
	char buf[64];
	ssize_t r = cg_read(dirfd, file, buf, sizeof(buf));
	if (r < 0)
		return (int)r;
	return parse_u64_word(buf, ret);
}

int cg_read_keyed(int dirfd, const char *file, const char *key, uint64_t *ret)
{
	char buf[8192];
	ssize_t r = cg_read(dirfd, file, buf, sizeof(buf));
	if (r < 0)
		return (int)r;
	size_t klen = strlen(key);
	for (char *line = buf; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!strncmp(line, key, klen) && line[klen] == ' ')
			return parse_u64_word(line + klen + 1, ret);
		line = next;
	}
	return -ENOENT;
}

bool cg_has_file(int dirfd, const char *file)
{
	return faccessat(dirfd, file, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static bool owned_writable(const struct stat *st, uid_t uid)
{
	return st->st_uid == uid && (st->st_mode & S_IWUSR);
}

bool cg_delegated_to(int dirfd, const char *where, uid_t uid, char *why, size_t why_size)
{
	struct stat st;
	if (fstat(dirfd, &st) < 0 || !owned_writable(&st, uid)) {
		sbx_fmt(why, why_size, "%s is owned by uid %u, not %u", where, (unsigned)st.st_uid,
		        (unsigned)uid);
		return false;
	}
	static const char *const files[] = {"cgroup.procs", "cgroup.subtree_control"};
	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		if (fstatat(dirfd, files[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT && i > 0)
				continue; /* v1 has no subtree_control */
			sbx_fmt(why, why_size, "%s/%s: %s", where, files[i], sbx_strerror(errno));
			return false;
		}
		if (!owned_writable(&st, uid)) {
			sbx_fmt(why, why_size, "%s/%s is owned by uid %u, not %u", where, files[i],
			        (unsigned)st.st_uid, (unsigned)uid);
			return false;
		}
	}
	return true;
}

static void call_fake(void (*fn)(int, const char *, void *), int fd, const char *path, void *data)
{
	if (fn)
		fn(fd, path, data);
}

bool cg_is_our_leaf_name(const char *name)
{
	if (!sbx_str_has_prefix(name, SBX_CGROUP_PREFIX))
		return false;
	const char *rest = name + strlen(SBX_CGROUP_PREFIX);
	if (sbx_str_has_prefix(rest, "runner-")) {
		rest += strlen("runner-");
		return *rest && strspn(rest, "0123456789") == strlen(rest);
	}
	/* trimo-<name>-<8 hex>, as cg_leaf_name makes them */
	size_t n = strlen(rest);
	if (n < 10 || rest[n - 9] != '-')
		return false;
	return strspn(rest + n - 8, "0123456789abcdef") == 8;
}

void cg_sweep_stale(const struct sbx_cgroup_host *host, int parentfd, const char *parent_path)
{
	int dfd = openat(parentfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	_cleanup_closedir_ DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!cg_is_our_leaf_name(de->d_name))
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		_cleanup_close_ int fd =
		    openat(parentfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* the creator holds this lock for the leaf's whole life */
		if (flock(fd, LOCK_EX | LOCK_NB) < 0)
			continue;
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", parent_path, de->d_name);
		call_fake(host->fake_rmdir, fd, path, host->fake_data);
		/* fails (EBUSY, ENOTEMPTY) while it holds processes or children */
		(void)unlinkat(parentfd, de->d_name, AT_REMOVEDIR);
	}
}

void cg_leaf_name(const char *sandbox_name, char *buf, size_t size)
{
	char clean[41];
	size_t n = 0;
	for (const char *p = sandbox_name ? sandbox_name : ""; *p && n < sizeof(clean) - 1; p++) {
		char c = (char)tolower((unsigned char)*p);
		clean[n++] = (isalnum((unsigned char)c) && !(c & 0x80)) ? c : '-';
	}
	clean[n] = '\0';
	if (!n)
		snprintf(clean, sizeof(clean), "sandbox");
	uint32_t rnd;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		rnd = (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() << 16);
	}
	snprintf(buf, size, "%s%s-%08x", SBX_CGROUP_PREFIX, clean, rnd);
}

int cg_make_leaf(const struct sbx_cgroup_host *host, int parentfd, const char *parent_path,
                 const char *name, int *ret_fd, char *ret_path, size_t path_size,
                 struct sbx_err *err)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/%s", parent_path, name);
	if (n < 0 || (size_t)n >= sizeof(path) || (size_t)n >= path_size)
		return sbx_failx(err, ENAMETOOLONG, "cgroup path too long: %s/%s", parent_path,
		                 name);
	if (mkdirat(parentfd, name, 0755) < 0) {
		if (errno == EEXIST)
			return -EEXIST;
		return sbx_fail(err, errno, "create cgroup %s", path);
	}
	_cleanup_close_ int fd =
	    openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	/* A concurrent sweep may have taken the fresh, still unlocked leaf:
	 * then pick another name. */
	if (fd < 0)
		return errno == ENOENT ? -EEXIST : sbx_fail(err, errno, "open cgroup %s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return -EEXIST;
	struct stat a, b;
	if (fstat(fd, &a) < 0 || fstatat(parentfd, name, &b, AT_SYMLINK_NOFOLLOW) < 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return -EEXIST;
	call_fake(host->fake_mkdir, fd, path, host->fake_data);
	memcpy(ret_path, path, (size_t)n + 1);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int cg_remove_leaf(const struct sbx_cgroup_host *host, const char *path, struct sbx_err *err)
{
	if (host->fake_rmdir) {
		_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0)
			host->fake_rmdir(fd, path, host->fake_data);
	}
	/* The kernel answers EBUSY for a moment after the last task exited
	 * (css offlining); about one second of retries. */
	for (int i = 0;; i++) {
		if (rmdir(path) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY || i >= 100)
			return sbx_fail(err, errno, "remove cgroup %s", path);
		struct timespec ts = {0, (i < 10 ? 1 : 10) * 1000000L};
		nanosleep(&ts, NULL);
	}
}
