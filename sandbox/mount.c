#include "sandbox/mount.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/landlock.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "sandbox/sync.h"

/* ---- helpers usable in the child (no malloc, no stdio) ---------------- */

int mount_resolve(int root_fd, const char *path, int flags)
{
	while (*path == '/')
		path++;
	if (!*path)
		path = ".";
	struct open_how how = {
	    .flags = (uint64_t)(O_PATH | O_CLOEXEC | flags),
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	for (int tries = 0; tries < 16; tries++) {
		long fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
	return -EAGAIN;
}

bool mount_path_ok(const char *path)
{
	if (!path || path[0] != '/' || path[1] == '\0' || strlen(path) >= PATH_MAX)
		return false;
	const char *p = path + 1;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0 && e) /* "//" */
			return false;
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!e)
			break;
		p = e + 1;
	}
	return true;
}

/* Split "/a/b/c" into parent "/a/b" (in buf) and last "c". */
static int split_path(const char *path, char *buf, size_t size, const char **ret_last)
{
	size_t n = strlen(path);
	if (n >= size)
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	char *slash = strrchr(buf, '/');
	if (!slash || !slash[1])
		return -EINVAL;
	*ret_last = path + (slash - buf) + 1;
	if (slash == buf)
		buf[1] = '\0';
	else
		*slash = '\0';
	return 0;
}

/* mkdir -p inside the root; returns an O_PATH fd of the directory. */
static int ensure_dir(int root_fd, const char *path, struct sbx_err *err)
{
	int fd = mount_resolve(root_fd, path, O_DIRECTORY);
	if (fd >= 0 || fd != -ENOENT)
		return fd >= 0 ? fd : sbx_fail(err, -fd, "mount point '%s'", path);
	char prefix[PATH_MAX];
	size_t len = strlen(path);
	if (len >= sizeof(prefix))
		return sbx_failx(err, ENAMETOOLONG, "mount point '%s': name too long", path);
	int parent = mount_resolve(root_fd, "/", O_DIRECTORY);
	if (parent < 0)
		return sbx_fail(err, -parent, "open the new root");
	/* Walk down, creating what is missing; each prefix is resolved from
	 * the root again, so a symlink met on the way stays inside. */
	for (size_t i = 1; i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		memcpy(prefix, path, i);
		prefix[i] = '\0';
		const char *last = strrchr(prefix, '/') + 1;
		if (!*last)
			continue;
		int next = mount_resolve(root_fd, prefix, O_DIRECTORY);
		if (next == -ENOENT) {
			if (mkdirat(parent, last, 0755) < 0 && errno != EEXIST) {
				int e = errno;
				close(parent);
				return sbx_fail(err, e, "create mount point '%s'", prefix);
			}
			next = mount_resolve(root_fd, prefix, O_DIRECTORY);
			if (next == -ENOENT) {
				/* it exists, yet does not resolve: a dangling symlink,
				 * never followed out of the root */
				close(parent);
				return sbx_failx(err, ENOENT,
				                 "mount point '%s': a symlink in the image points "
				                 "to a missing path",
				                 prefix);
			}
		}
		close(parent);
		if (next < 0)
			return sbx_fail(err, -next, "mount point '%s'", prefix);
		parent = next;
	}
	return parent;
}

/* An empty regular file to bind a file onto; returns an O_PATH fd. */
static int ensure_file(int root_fd, const char *path, struct sbx_err *err)
{
	int fd = mount_resolve(root_fd, path, 0);
	if (fd >= 0) {
		struct stat st;
		if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
			close(fd);
			return sbx_failx(err, EISDIR,
			                 "mount point '%s' is a directory, the source "
			                 "is not",
			                 path);
		}
		return fd;
	}
	if (fd != -ENOENT)
		return sbx_fail(err, -fd, "mount point '%s'", path);
	char parent_path[PATH_MAX];
	const char *last;
	if (split_path(path, parent_path, sizeof(parent_path), &last) < 0)
		return sbx_failx(err, EINVAL, "mount point '%s': bad path", path);
	_cleanup_close_ int parent = ensure_dir(root_fd, parent_path, err);
	if (parent < 0)
		return parent;
	_cleanup_close_ int dfd = openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return sbx_fail(err, errno, "mount point '%s'", parent_path);
	int f = openat(dfd, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (f < 0 && errno != EEXIST)
		return sbx_fail(err, errno, "create mount point '%s'", path);
	if (f >= 0)
		close(f);
	fd = mount_resolve(root_fd, path, 0);
	return fd >= 0 ? fd : sbx_fail(err, -fd, "mount point '%s'", path);
}

static int attach(int mnt_fd, int target_fd, const char *what, struct sbx_err *err)
{
	if (move_mount(mnt_fd, "", target_fd, "",
	               MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return sbx_fail(err, errno, "mount %s", what);
	return 0;
}

/* The kernel's own words about a failed fsconfig (read from the context). */
static void fs_messages(int fsfd, char *buf, size_t size)
{
	buf[0] = '\0';
	char line[256];
	ssize_t n = read(fsfd, line, sizeof(line) - 1);
	if (n > 2) {
		while (n > 2 && line[n - 1] == '\n')
			n--;
		line[n] = '\0';
		sbx_fmt(buf, size, " (%s)", line + 2);
	}
}

struct fs_opt {
	const char *key, *val; /* val NULL: a flag */
};

/* A new, detached file system mount. */
static int new_fs(const char *type, const struct fs_opt *opts, unsigned attrs, const char *what,
                  struct sbx_err *err)
{
	_cleanup_close_ int fsfd = fsopen(type, FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return sbx_fail(err, errno, "mount %s: fsopen %s", what, type);
	for (size_t i = 0; opts && opts[i].key; i++) {
		int r = opts[i].val
		            ? fsconfig(fsfd, FSCONFIG_SET_STRING, opts[i].key, opts[i].val, 0)
		            : fsconfig(fsfd, FSCONFIG_SET_FLAG, opts[i].key, NULL, 0);
		if (r < 0) {
			int e = errno;
			char kmsg[200];
			fs_messages(fsfd, kmsg, sizeof(kmsg));
			return sbx_fail(err, e, "mount %s: option %s%s", what, opts[i].key, kmsg);
		}
	}
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		int e = errno;
		char kmsg[200];
		fs_messages(fsfd, kmsg, sizeof(kmsg));
		return sbx_fail(err, e, "mount %s (%s)%s", what, type, kmsg);
	}
	int mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, attrs);
	if (mfd < 0)
		return sbx_fail(err, errno, "mount %s: fsmount", what);
	return mfd;
}

/* A detached copy of a host path (or of an fd with path ""). */
static int clone_tree(int dirfd, const char *path, bool recursive, uint64_t attr_set,
                      const char *what, struct sbx_err *err)
{
	unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
	if (!*path)
		flags |= AT_EMPTY_PATH;
	int fd = open_tree(dirfd, path, flags);
	if (fd < 0)
		return sbx_fail(err, errno, "bind %s", what);
	if (attr_set) {
		struct mount_attr attr = {.attr_set = attr_set};
		if (mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr,
		                  sizeof(attr)) < 0) {
			int e = errno;
			close(fd);
			return sbx_fail(err, e, "bind %s: set mount attributes", what);
		}
	}
	return fd;
}

/* Mount mnt_fd at path inside the root (a directory mount point). */
static int mount_at_dir(int root_fd, int mnt_fd, const char *path, struct sbx_err *err)
{
	_cleanup_close_ int t = ensure_dir(root_fd, path, err);
	if (t < 0)
		return t;
	return attach(mnt_fd, t, path, err);
}

/* ---- the pieces of the new root -------------------------------------- */

static const char *const proc_masked_files[] = {
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/interrupts",
    "/proc/kpagecount",
    "/proc/kpageflags",
    "/proc/kpagecgroup",
    "/proc/vmallocinfo",
    "/proc/pagetypeinfo",
    NULL,
};
static const char *const proc_masked_dirs[] = {"/proc/acpi", "/proc/scsi", NULL};
static const char *const proc_readonly[] = {
    "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};
static const char *const sys_masked_dirs[] = {
    "/sys/firmware",     "/sys/devices/virtual/powercap",
    "/sys/fs/selinux",   "/sys/kernel/security",
    "/sys/kernel/debug", NULL,
};

#define MNT_SAFE (MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)

/* Hide what a sandbox has no business reading (podman's masked paths):
 * files under /dev/null, folders under an empty read-only tmpfs.  The
 * paths are looked up inside the file system just mounted (base, mounted
 * at `at`), never again from the root, where the image's own symlinks
 * could aim them elsewhere. */
static int mask_paths(int base, const char *at, const char *const *files, const char *const *dirs,
                      struct sbx_err *err)
{
	size_t skip = strlen(at);
	for (size_t i = 0; files && files[i]; i++) {
		_cleanup_close_ int t = mount_resolve(base, files[i] + skip, 0);
		if (t == -ENOENT)
			continue;
		if (t < 0)
			return sbx_fail(err, -t, "mask %s", files[i]);
		_cleanup_close_ int m = clone_tree(AT_FDCWD, "/dev/null", false, 0, files[i], err);
		if (m < 0)
			return m;
		int r = attach(m, t, files[i], err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; dirs && dirs[i]; i++) {
		_cleanup_close_ int t = mount_resolve(base, dirs[i] + skip, O_DIRECTORY);
		if (t == -ENOENT || t == -ENOTDIR)
			continue;
		if (t < 0)
			return sbx_fail(err, -t, "mask %s", dirs[i]);
		static const struct fs_opt o[] = {{"size", "0"}, {"mode", "555"}, {NULL, NULL}};
		_cleanup_close_ int m =
		    new_fs("tmpfs", o, MNT_SAFE | MOUNT_ATTR_RDONLY, dirs[i], err);
		if (m < 0)
			return m;
		int r = attach(m, t, dirs[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int readonly_paths(int base, const char *at, const char *const *paths, struct sbx_err *err)
{
	for (size_t i = 0; paths[i]; i++) {
		_cleanup_close_ int t = mount_resolve(base, paths[i] + strlen(at), 0);
		/* every kernel has /proc/sys: its absence would mean a mistake */
		if (t == -ENOENT && strcmp(paths[i], "/proc/sys") != 0)
			continue;
		if (t < 0)
			return sbx_fail(err, -t, "read-only %s", paths[i]);
		_cleanup_close_ int m =
		    clone_tree(t, "", true, MOUNT_ATTR_RDONLY | MNT_SAFE, paths[i], err);
		if (m < 0)
			return m;
		int r = attach(m, t, paths[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int setup_proc(int root_fd, bool nested, struct sbx_err *err)
{
	_cleanup_close_ int m = new_fs("proc", NULL, MNT_SAFE, "/proc", err);
	if (m < 0)
		return m;
	int r = mount_at_dir(root_fd, m, "/proc", err);
	if (r < 0 || nested) /* masks would lock a nested sandbox's own /proc */
		return r;
	r = mask_paths(m, "/proc", proc_masked_files, proc_masked_dirs, err);
	if (r < 0)
		return r;
	return readonly_paths(m, "/proc", proc_readonly, err);
}

static const struct {
	const char *name;
	const char *target;
} dev_links[] = {
    {"/dev/fd", "/proc/self/fd"},       {"/dev/stdin", "/proc/self/fd/0"},
    {"/dev/stdout", "/proc/self/fd/1"}, {"/dev/stderr", "/proc/self/fd/2"},
    {"/dev/ptmx", "pts/ptmx"},
};
static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty", NULL};

static int bind_file(int root_fd, const char *host, const char *path, struct sbx_err *err)
{
	_cleanup_close_ int t = ensure_file(root_fd, path, err);
	if (t < 0)
		return t;
	/* read-only: I/O on a device node still works, but chmod, chown and
	 * utimes of the host's own inode do not */
	_cleanup_close_ int m =
	    clone_tree(AT_FDCWD, host, false,
	               MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_RDONLY, path, err);
	if (m < 0)
		return m;
	return attach(m, t, path, err);
}

/* A minimal /dev: the harmless host nodes bound in (a user namespace may
 * not mknod), a private devpts, /dev/shm. */
static int setup_dev(int root_fd, const struct sbx_mount_ctx *ctx, struct sbx_err *err)
{
	static const struct fs_opt dev_o[] = {{"mode", "755"}, {"size", "65536k"}, {NULL, NULL}};
	/* nodev on the tmpfs itself: the nodes are separate bind mounts */
	_cleanup_close_ int m = new_fs("tmpfs", dev_o, MNT_SAFE, "/dev", err);
	if (m < 0)
		return m;
	int r = mount_at_dir(root_fd, m, "/dev", err);
	if (r < 0)
		return r;
	char host[32], path[32];
	for (size_t i = 0; dev_nodes[i]; i++) {
		sbx_fmt(host, sizeof(host), "/dev/%s", dev_nodes[i]);
		sbx_fmt(path, sizeof(path), "/dev/%s", dev_nodes[i]);
		r = bind_file(root_fd, host, path, err);
		if (r < 0)
			return r;
	}
	_cleanup_close_ int dev = mount_resolve(root_fd, "/dev", O_DIRECTORY);
	if (dev < 0)
		return sbx_fail(err, -dev, "open /dev");
	_cleanup_close_ int devd = openat(dev, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (devd < 0)
		return sbx_fail(err, errno, "open /dev");
	for (size_t i = 0; i < sizeof(dev_links) / sizeof(dev_links[0]); i++) {
		if (symlinkat(dev_links[i].target, devd, dev_links[i].name + 5) < 0)
			return sbx_fail(err, errno, "symlink %s", dev_links[i].name);
	}
	/* No gid= option: with a single-id map the tty group is not mapped. */
	static const struct fs_opt pts_o[] = {
	    {"newinstance", NULL}, {"ptmxmode", "0666"}, {"mode", "0620"}, {NULL, NULL}};
	_cleanup_close_ int pts =
	    new_fs("devpts", pts_o, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, "/dev/pts", err);
	if (pts < 0)
		return pts;
	r = mount_at_dir(root_fd, pts, "/dev/pts", err);
	if (r < 0)
		return r;
	static const struct fs_opt shm_o[] = {{"mode", "1777"}, {NULL, NULL}};
	_cleanup_close_ int shm = new_fs("tmpfs", shm_o, MNT_SAFE, "/dev/shm", err);
	if (shm < 0)
		return shm;
	r = mount_at_dir(root_fd, shm, "/dev/shm", err);
	if (r < 0)
		return r;
	if (ctx->console[0])
		return bind_file(root_fd, ctx->console, "/dev/console", err);
	return 0;
}

static int setup_tmp(int root_fd, struct sbx_err *err)
{
	static const struct fs_opt o[] = {{"mode", "1777"}, {NULL, NULL}};
	_cleanup_close_ int m =
	    new_fs("tmpfs", o, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, "/tmp", err);
	if (m < 0)
		return m;
	return mount_at_dir(root_fd, m, "/tmp", err);
}

/* The cgroup file system, read-only: cgroup2 of the sandbox's own cgroup
 * namespace, or (v1) the sandbox's leaf folders, one per controller. */
static int setup_cgroup(int root_fd, const struct sbx_spec *spec, struct sbx_err *err)
{
	if (spec->cgroup2) {
		_cleanup_close_ int m =
		    new_fs("cgroup2", NULL, MNT_SAFE | MOUNT_ATTR_RDONLY, "/sys/fs/cgroup", err);
		if (m < 0)
			return m;
		return mount_at_dir(root_fd, m, "/sys/fs/cgroup", err);
	}
	if (spec->n_cgroup_mounts == 0)
		return 0;
	static const struct fs_opt o[] = {{"mode", "755"}, {"size", "64k"}, {NULL, NULL}};
	_cleanup_close_ int base = new_fs("tmpfs", o, MNT_SAFE, "/sys/fs/cgroup", err);
	if (base < 0)
		return base;
	int r = mount_at_dir(root_fd, base, "/sys/fs/cgroup", err);
	if (r < 0)
		return r;
	char path[128];
	for (size_t i = 0; i < spec->n_cgroup_mounts; i++) {
		const struct sbx_cgroup_mount *cm = &spec->cgroup_mounts[i];
		sbx_fmt(path, sizeof(path), "/sys/fs/cgroup/%s", cm->name);
		_cleanup_close_ int m =
		    clone_tree(AT_FDCWD, cm->src, false, MNT_SAFE | MOUNT_ATTR_RDONLY, path, err);
		if (m < 0)
			return m;
		r = mount_at_dir(root_fd, m, path, err);
		if (r < 0)
			return r;
	}
	_cleanup_close_ int cg = mount_resolve(root_fd, "/sys/fs/cgroup", O_DIRECTORY);
	if (cg < 0)
		return sbx_fail(err, -cg, "open /sys/fs/cgroup");
	struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
	if (mount_setattr(cg, "", AT_EMPTY_PATH, &ro, sizeof(ro)) < 0)
		return sbx_fail(err, errno, "read-only /sys/fs/cgroup");
	return 0;
}

/* A fresh sysfs of the sandbox's network namespace, read-only. */
static int setup_sys(int root_fd, const struct sbx_spec *spec, struct sbx_err *err)
{
	/* A fresh sysfs needs a network namespace of our own; with the host's
	 * network, the host's /sys, read-only, masked the same way. */
	_cleanup_close_ int m =
	    spec->host_network
	        ? clone_tree(AT_FDCWD, "/sys", true, MNT_SAFE | MOUNT_ATTR_RDONLY, "/sys", err)
	        : new_fs("sysfs", NULL, MNT_SAFE | MOUNT_ATTR_RDONLY, "/sys", err);
	if (m < 0)
		return m;
	int r = mount_at_dir(root_fd, m, "/sys", err);
	if (r < 0)
		return r;
	if (!spec->nested) {
		r = mask_paths(m, "/sys", NULL, sys_masked_dirs, err);
		if (r < 0)
			return r;
	}
	return setup_cgroup(root_fd, spec, err);
}

static int setup_binds(int root_fd, const struct sbx_mount_ctx *ctx, struct sbx_err *err)
{
	const struct sbx_spec *spec = ctx->spec;
	for (size_t k = 0; k < spec->n_binds; k++) {
		size_t i = ctx->bind_order[k];
		const struct sbx_bind *b = &spec->binds[i];
		/* nosuid, nodev: a bound host folder brings no privilege in */
		uint64_t attrs =
		    MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (b->ro ? MOUNT_ATTR_RDONLY : 0);
		_cleanup_close_ int t = ctx->bind_dir[i] ? ensure_dir(root_fd, b->dst, err)
		                                         : ensure_file(root_fd, b->dst, err);
		if (t < 0)
			return t;
		_cleanup_close_ int m =
		    clone_tree(AT_FDCWD, ctx->bind_src[i], true, attrs, b->dst, err);
		if (m < 0)
			return m;
		int r = attach(m, t, b->dst, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Linux 5.11 brought overlayfs mounts in user namespaces. */
static bool overlay_userns_kernel(const char *release)
{
	unsigned major = 0, minor = 0;
	for (; *release >= '0' && *release <= '9'; release++)
		major = major * 10 + (unsigned)(*release - '0');
	if (*release == '.')
		for (release++; *release >= '0' && *release <= '9'; release++)
			minor = minor * 10 + (unsigned)(*release - '0');
	return major > 5 || (major == 5 && minor >= 11);
}

/* Add "<text> (this is <release>)" to the message recorded in err. */
static int err_append(struct sbx_err *err, const char *text, const char *release)
{
	char m[SBX_ERR_MSG_MAX];
	memcpy(m, err->msg, sizeof(m));
	if (release)
		sbx_fmt(err->msg, sizeof(err->msg), "%s%s (this is %s)", m, text, release);
	else
		sbx_fmt(err->msg, sizeof(err->msg), "%s%s", m, text);
	return -err->errnum;
}

/* The kernel's overlay of the image (lower) and upper/work, attached at
 * the image's path; 0, or the mount's error in err. */
static int root_overlay_kernel(const struct sbx_mount_ctx *ctx, int lower, struct sbx_err *err)
{
	char upper[PATH_MAX], work[PATH_MAX], lowerdir[64];
	if (ctx->tmpfs_overlay) {
		/* Hide the image's path under a private tmpfs for upper
		 * and work (overlay takes layers only from mounts of our
		 * own namespace); the image stays reachable through fd. */
		static const struct fs_opt o[] = {{"mode", "755"}, {NULL, NULL}};
		_cleanup_close_ int t = new_fs("tmpfs", o, 0, "the overlay upper", err);
		if (t < 0)
			return t;
		if (mkdirat(t, "upper", 0755) < 0 || mkdirat(t, "work", 0700) < 0)
			return sbx_fail(err, errno, "overlay upper on tmpfs");
		if (move_mount(t, "", AT_FDCWD, ctx->lower, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return sbx_fail(err, errno, "mount the overlay upper");
		sbx_fmt(upper, sizeof(upper), "%s/upper", ctx->lower);
		sbx_fmt(work, sizeof(work), "%s/work", ctx->lower);
	} else {
		sbx_fmt(upper, sizeof(upper), "%s", ctx->upper);
		sbx_fmt(work, sizeof(work), "%s", ctx->work);
	}
	/* Every layer by /proc/self/fd: a ',' or ':' in a path would split
	 * overlay's options on kernels that parse them as one string. */
	_cleanup_close_ int ufd = open(upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int wfd = open(work, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (ufd < 0 || wfd < 0)
		return sbx_fail(err, errno, "overlay upper '%s'", ufd < 0 ? upper : work);
	sbx_fmt(upper, sizeof(upper), "/proc/self/fd/%d", ufd);
	sbx_fmt(work, sizeof(work), "/proc/self/fd/%d", wfd);
	sbx_fmt(lowerdir, sizeof(lowerdir), "/proc/self/fd/%d", lower);
	/* userxattr: in a user namespace overlay keeps its metadata in
	 * user.* xattrs; without it removing a lower folder fails (EIO). */
	const struct fs_opt o[] = {{"lowerdir", lowerdir},
	                           {"upperdir", upper},
	                           {"workdir", work},
	                           {"userxattr", NULL},
	                           {NULL, NULL}};
	_cleanup_close_ int m = new_fs("overlay", o, 0, "the rootfs overlay", err);
	if (m < 0) {
		struct utsname u;
		if (uname(&u) == 0 && !overlay_userns_kernel(u.release))
			err_append(err, "; overlayfs in a user namespace needs Linux 5.11 or later",
			           u.release);
		return m;
	}
	if (move_mount(m, "", AT_FDCWD, ctx->lower, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return sbx_fail(err, errno, "mount the rootfs overlay");
	return 0;
}

/* The root on fuse-overlayfs: mounted here from a /dev/fuse fd of our own
 * user namespace (the kernel wants the mounter's), served by the runner's
 * helper once it has the fd.  Until the server answers, a request on the
 * mount waits; when it ends, requests fail with ENOTCONN. */
static int root_overlay_fuse(const struct sbx_mount_ctx *ctx, struct sbx_err *err)
{
	_cleanup_close_ int dev = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		int e = errno;
		return sbx_failx(err, e, "fuse-overlayfs: open /dev/fuse: %s%s", sbx_strerror(e),
		                 e == ENOENT ? " (load the fuse module: modprobe fuse)"
		                 : e == EACCES || e == EPERM
		                     ? " (the device is not open to this user; most distributions "
		                       "ship it 0666: chmod 0666 /dev/fuse)"
		                     : "");
	}
	char fd[16];
	sbx_fmt(fd, sizeof(fd), "%d", dev);
	/* default_permissions: the kernel checks modes against the caller,
	 * as it does on any file system */
	const struct fs_opt o[] = {{"source", "fuse-overlayfs"},
	                           {"subtype", "fuse-overlayfs"},
	                           {"fd", fd},
	                           {"rootmode", "40000"},
	                           {"user_id", "0"},
	                           {"group_id", "0"},
	                           {"default_permissions", NULL},
	                           {NULL, NULL}};
	_cleanup_close_ int m = new_fs("fuse", o, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID,
	                               "the rootfs (fuse-overlayfs)", err);
	if (m < 0)
		return m;
	if (move_mount(m, "", AT_FDCWD, ctx->lower, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return sbx_fail(err, errno, "mount the rootfs (fuse-overlayfs)");
	int r = sync_send_fd(ctx->sync_fd, SBX_SYNC_FUSE, dev);
	if (r < 0)
		return sbx_fail(err, -r, "fuse-overlayfs: pass /dev/fuse to the runner");
	return 0;
}

/* The root: a bind of the image tree, or an overlay on it.  It is attached
 * over the image's own path (in our private namespace) so pivot_root has a
 * mount point to enter; returns an O_PATH fd of the new root. */
static int setup_root(const struct sbx_mount_ctx *ctx, struct sbx_err *err)
{
	const struct sbx_spec *spec = ctx->spec;
	_cleanup_close_ int lower = open(ctx->lower, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (lower < 0)
		return sbx_fail(err, errno, "rootfs '%s'", ctx->lower);
	if (!ctx->upper && !ctx->tmpfs_overlay) {
		/* nodev, nosuid: a device node or setuid file in an image folder
		 * (an untrusted tarball unpacked by root) is inert */
		_cleanup_close_ int m = clone_tree(
		    lower, "", false, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID, "the rootfs", err);
		if (m < 0)
			return m;
		if (move_mount(m, "", AT_FDCWD, ctx->lower, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return sbx_fail(err, errno, "mount the rootfs at '%s'", ctx->lower);
	} else {
		int r = -1;
		if (spec->overlay != SBX_OVERLAY_FUSE && !ctx->fuse_layer) {
			r = root_overlay_kernel(ctx, lower, err);
			if (r < 0 && spec->overlay == SBX_OVERLAY_AUTO && !ctx->fuse_prog[0])
				return err_append(
				    err,
				    "; fuse-overlayfs, which works where the kernel's "
				    "overlay does not, is not installed",
				    NULL);
			if (r < 0 && spec->overlay == SBX_OVERLAY_KERNEL)
				return r;
		}
		/* auto: where the kernel refuses (an old kernel, an upper on
		 * overlayfs or NFS, tmpfs before 6.6), fuse-overlayfs */
		if (r < 0) {
			char kernel[SBX_ERR_MSG_MAX];
			memcpy(kernel, err->msg, sizeof(kernel));
			r = root_overlay_fuse(ctx, err);
			if (r < 0 && spec->overlay == SBX_OVERLAY_AUTO) {
				char m[SBX_ERR_MSG_MAX];
				memcpy(m, err->msg, sizeof(m));
				sbx_fmt(err->msg, sizeof(err->msg),
				        "%s; used because the kernel refused: %s", m, kernel);
			}
			if (r < 0)
				return r;
		}
	}
	int root = open(ctx->lower, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return sbx_fail(err, errno, "open the new root");
	return root;
}

int mount_child(const struct sbx_mount_ctx *ctx, struct sbx_err *err)
{
	const struct sbx_spec *spec = ctx->spec;
	/* Nothing we mount may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return sbx_fail(err, errno, "make / private");
	_cleanup_close_ int root = setup_root(ctx, err);
	if (root < 0)
		return root;
	int r = setup_proc(root, spec->nested, err);
	if (r >= 0)
		r = setup_dev(root, ctx, err);
	if (r >= 0)
		r = setup_tmp(root, err);
	if (r >= 0)
		r = setup_sys(root, spec, err);
	if (r >= 0)
		r = setup_binds(root, ctx, err);
	if (r >= 0 && spec->workdir) {
		int w = ensure_dir(root, spec->workdir, err);
		if (w < 0)
			return sbx_wrap(err, "workdir");
		close(w);
	}
	if (r < 0)
		return r;
	/* Read-only last: every mount point exists by now.  mount_setattr
	 * changes only the bit asked for, so the flags the kernel locked in
	 * our user namespace stay as they are. */
	if (!spec->rootfs_rw && !spec->keep_root_rw) {
		struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
		if (mount_setattr(root, "", AT_EMPTY_PATH, &ro, sizeof(ro)) < 0)
			return sbx_fail(err, errno, "make the rootfs read-only");
	}
	if (fchdir(root) < 0)
		return sbx_fail(err, errno, "enter the new root");
	/* pivot_root(".", "."): the old root ends up on top of the new one and
	 * is detached at once; chroot() could be escaped, this cannot. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return sbx_fail(err, errno, "pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		return sbx_fail(err, errno, "detach the old root");
	if (chdir("/") < 0)
		return sbx_fail(err, errno, "chdir /");
	return 0;
}

/* ---- the fuse-overlayfs server (a helper of the runner) --------------- */

/* A name fuse-overlayfs's option parser takes as it is. */
static bool plain_name(const char *s)
{
	if (!*s || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return false;
	return true;
}

/* Our own mount namespace (owned by the sandbox's user namespace we
 * joined), with a private tmpfs over the image's path holding the layers
 * under names of ours, so no ',' or ':' of a host path reaches
 * fuse-overlayfs's option parser.  upper and work must stay one mount
 * (fuse-overlayfs renames from one to the other): their common folder is
 * bound whole.  The tmpfs's own upper/work serve a root without one.
 * ret_upper and ret_work (PATH_MAX) get their paths from the cwd. */
static int fuse_layout(const struct sbx_mount_ctx *ctx, char *ret_upper, char *ret_work,
                       struct sbx_err *err)
{
	_cleanup_close_ int low = -1;
	_cleanup_close_ int up = -1;
	_cleanup_close_ int t = -1;
	const char *ubase = "upper", *wbase = "work", *us = NULL;
	if (ctx->upper) {
		const char *ws = strrchr(ctx->work, '/');
		us = strrchr(ctx->upper, '/');
		if (!us || !ws || us - ctx->upper != ws - ctx->work ||
		    strncmp(ctx->upper, ctx->work, (size_t)(us - ctx->upper)) != 0 ||
		    !plain_name(us + 1) || !plain_name(ws + 1))
			return sbx_failx(err, EINVAL,
			                 "fuse-overlayfs: upper '%s' and work '%s' must be plain "
			                 "names in one folder",
			                 ctx->upper, ctx->work);
		ubase = us + 1;
		wbase = ws + 1;
	}
	static const struct fs_opt o[] = {{"mode", "700"}, {NULL, NULL}};
	if (unshare(CLONE_NEWNS) < 0)
		return sbx_fail(err, errno, "fuse-overlayfs: a mount namespace of its own");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return sbx_fail(err, errno, "fuse-overlayfs: make / private");
	if ((low = clone_tree(AT_FDCWD, ctx->lower, false, 0, "the image", err)) < 0)
		return low;
	if (ctx->upper) {
		char dir[PATH_MAX];
		size_t n = (size_t)(us - ctx->upper);
		memcpy(dir, ctx->upper, n); /* a realpath: shorter than PATH_MAX */
		dir[n] = '\0';
		if ((up = clone_tree(AT_FDCWD, dir[0] ? dir : "/", false, 0, "the upper", err)) < 0)
			return up;
	}
	if ((t = new_fs("tmpfs", o, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID, "the layers", err)) < 0)
		return t;
	if (mkdirat(t, "lower", 0700) < 0 || mkdirat(t, "layer", 0755) < 0 ||
	    (!ctx->upper &&
	     (mkdirat(t, "layer/upper", 0755) < 0 || mkdirat(t, "layer/work", 0700) < 0)))
		return sbx_fail(err, errno, "fuse-overlayfs: the layers' folders");
	if (move_mount(t, "", AT_FDCWD, ctx->lower, MOVE_MOUNT_F_EMPTY_PATH) < 0 ||
	    chdir(ctx->lower) < 0 ||
	    move_mount(low, "", AT_FDCWD, "lower", MOVE_MOUNT_F_EMPTY_PATH) < 0 ||
	    (up >= 0 && move_mount(up, "", AT_FDCWD, "layer", MOVE_MOUNT_F_EMPTY_PATH) < 0))
		return sbx_fail(err, errno, "fuse-overlayfs: mount the layers");
	sbx_fmt(ret_upper, PATH_MAX, "layer/%s", ubase);
	sbx_fmt(ret_work, PATH_MAX, "layer/%s", wbase);
	return 0;
}

/* Landlock rights newer than the oldest uapi header we build with. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP    (1ULL << 0)
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LANDLOCK_SCOPE_SIGNAL               (1ULL << 1)
#endif

/* struct landlock_ruleset_attr as of ABI 6 (older headers end after the
 * first field; the kernel takes a longer struct whose tail it does not
 * know as long as that tail is zero) */
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

#define LL_FS_ABI1 ((LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1) /* bits 0..12 */
#define LL_FS_FILE                                                                                 \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |                              \
	 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |                              \
	 LANDLOCK_ACCESS_FS_IOCTL_DEV)
#define LL_EXEC (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE)
#define LL_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)

int mount_fuse_landlock_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0)
		return -errno;
	return abi < 2 ? -EXDEV : (int)abi;
}

/* Allow access beneath path (a folder, itself included) or to it (a file:
 * the folder-only rights dropped).  With optional, a path this host lacks
 * is no rule: /lib64 on arm64, /lib where /usr is merged. */
static int ll_allow(int ruleset, const char *path, uint64_t access, bool optional,
                    struct sbx_err *err)
{
	_cleanup_close_ int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0 && optional && errno == ENOENT)
		return 0;
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return sbx_fail(err, errno, "fuse-overlayfs: Landlock: '%s'", path);
	struct landlock_path_beneath_attr pb = {
	    .allowed_access = S_ISDIR(st.st_mode) ? access : access & LL_FS_FILE,
	    .parent_fd = fd,
	};
	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
		return sbx_fail(err, errno, "fuse-overlayfs: Landlock: a rule for '%s'", path);
	return 0;
}

/* The server parses requests the sandbox makes; a bug in it must not
 * hand the sandbox the host.  After the layout (a Landlock rule holds the
 * inode its path names then: the binds, not the tmpfs folders under
 * them), and inherited by the exec'd fuse-overlayfs and its loader:
 *   /usr, /lib, /lib64   execute and read files: the loader, libfuse, libc
 *   /etc/ld.so.cache     read: the loader's index of libraries
 *   overflowuid, -gid    read (/proc/sys/kernel): fuse-overlayfs exits
 *                        without them
 *   pipe-max-size        read (/proc/sys/fs): libfuse grows its splice
 *                        pipe to it; without, big reads take twice as long
 *   fuse_prog            execute and read, the file alone: one installed
 *                        outside /usr (~/bin, /opt) and nothing beside it
 *   lower                read files and folders: the image
 *   layer/upper, work    everything: copy-up renames from work to upper
 *                        (REFER); not the rest of a task's folder (its
 *                        state, config and workspace)
 * Nothing else: not the rest of /proc, not /dev/null (libfuse opens it
 * only to fill fds 0..2, which are open), no TCP, no signal or abstract
 * socket outside.  Landlock does not cover stat, readlink, chmod, chown,
 * utimes or xattrs: those still reach every path the server can name.
 * Without Landlock (Linux < 5.13, not in lsm=, refused by a container's
 * seccomp filter) or with ABI 1, which refuses every rename across
 * folders, the server runs unconfined: `trimo-sbx check` says so. */
static int fuse_confine(const struct sbx_mount_ctx *ctx, const char *upper, const char *work,
                        struct sbx_err *err)
{
	static const struct {
		const char *path;
		uint64_t access;
	} sys[] = {
	    {"/usr", LL_EXEC},
	    {"/lib", LL_EXEC},
	    {"/lib64", LL_EXEC},
	    {"/etc/ld.so.cache", LANDLOCK_ACCESS_FS_READ_FILE},
	    {"/proc/sys/kernel/overflowuid", LANDLOCK_ACCESS_FS_READ_FILE},
	    {"/proc/sys/kernel/overflowgid", LANDLOCK_ACCESS_FS_READ_FILE},
	    {"/proc/sys/fs/pipe-max-size", LANDLOCK_ACCESS_FS_READ_FILE},
	};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return sbx_fail(err, errno, "fuse-overlayfs: PR_SET_NO_NEW_PRIVS");
	/* a host without it (or a container's seccomp filter that refuses
	 * it) runs the server unconfined; once there, any failure is fatal */
	int abi = mount_fuse_landlock_abi();
	if (abi < 0)
		return 0;
	/* every right this kernel knows is handled: what no rule allows is denied */
	struct ll_ruleset_attr attr = {
	    .handled_access_fs = LL_FS_ABI1 | LANDLOCK_ACCESS_FS_REFER,
	};
	if (abi >= 3)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 4)
		attr.handled_access_net =
		    LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
	if (abi >= 5)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	if (abi >= 6)
		attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
	_cleanup_close_ int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (rs < 0)
		return sbx_fail(err, errno, "fuse-overlayfs: Landlock: a ruleset");
	uint64_t all = attr.handled_access_fs;
	int r = 0;
	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(sys); i++)
		r = ll_allow(rs, sys[i].path, sys[i].access, i > 0 /* all but /usr */, err);
	if (r < 0 || (r = ll_allow(rs, ctx->fuse_prog, LL_EXEC, false, err)) < 0 ||
	    (r = ll_allow(rs, "lower", LL_READ, false, err)) < 0 ||
	    (r = ll_allow(rs, upper, all, false, err)) < 0 ||
	    (r = ll_allow(rs, work, all, false, err)) < 0)
		return r;
	if (syscall(SYS_landlock_restrict_self, rs, 0) < 0)
		return sbx_fail(err, errno, "fuse-overlayfs: Landlock: restrict");
	return 0;
}

void mount_fuse_exec(const struct sbx_mount_ctx *ctx, int fuse_fd)
{
	struct sbx_err e = {0};
	char upper[PATH_MAX], work[PATH_MAX], opts[3 * PATH_MAX], dev[32];
	if (fuse_layout(ctx, upper, work, &e) >= 0 && fuse_confine(ctx, upper, work, &e) >= 0) {
		sbx_fmt(opts, sizeof(opts), "lowerdir=lower,upperdir=%s,workdir=%s", upper, work);
		sbx_fmt(dev, sizeof(dev), "/dev/fd/%d", fuse_fd);
		char *argv[] = {"fuse-overlayfs", "-f", "-o", opts, dev, NULL};
		execv(ctx->fuse_prog, argv);
		sbx_fail(&e, errno, "exec %s", ctx->fuse_prog);
	}
	char line[SBX_ERR_MSG_MAX + 2];
	size_t n = sbx_fmt(line, sizeof(line), "%s\n", e.msg);
	(void)!write(2, line, n);
}

/* ---- parent ----------------------------------------------------------- */

static int exists_in_root(int root_fd, const char *path)
{
	int fd = mount_resolve(root_fd, path, 0);
	if (fd >= 0) {
		close(fd);
		return 1;
	}
	return 0;
}

static bool below(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/* Whether the image must provide path itself (it is not inside a file
 * system we mount: /dev, /tmp, /proc, /sys or another bind). */
static bool needs_image_mountpoint(const struct sbx_spec *spec, const char *path)
{
	static const char *const ours[] = {"/dev", "/tmp", "/proc", "/sys", NULL};
	for (size_t i = 0; ours[i]; i++)
		if (below(path, ours[i]))
			return false;
	for (size_t i = 0; i < spec->n_binds; i++)
		if (below(path, spec->binds[i].dst))
			return false;
	return true;
}

static int cmp_bind(const void *a, const void *b, void *arg)
{
	const struct sbx_spec *spec = arg;
	return strcmp(spec->binds[*(const size_t *)a].dst, spec->binds[*(const size_t *)b].dst);
}

static int prepare_binds(const struct sbx_spec *spec, struct sbx_mount_ctx *ctx,
                         struct sbx_err *err)
{
	size_t n = spec->n_binds;
	ctx->bind_src = calloc(n + 1, sizeof(char *));
	ctx->bind_dir = calloc(n + 1, sizeof(bool));
	ctx->bind_order = calloc(n + 1, sizeof(size_t));
	if (!ctx->bind_src || !ctx->bind_dir || !ctx->bind_order)
		return sbx_fail(err, ENOMEM, "binds");
	for (size_t i = 0; i < n; i++) {
		const struct sbx_bind *b = &spec->binds[i];
		if (!mount_path_ok(b->dst))
			return sbx_failx(err, EINVAL,
			                 "bind '%s': the destination must be an absolute path "
			                 "without '.' or '..', not /",
			                 b->dst);
		ctx->bind_src[i] = realpath(b->src, NULL);
		if (!ctx->bind_src[i])
			return sbx_fail(err, errno, "bind '%s'", b->src);
		struct stat st;
		if (stat(ctx->bind_src[i], &st) < 0)
			return sbx_fail(err, errno, "bind '%s'", b->src);
		ctx->bind_dir[i] = S_ISDIR(st.st_mode);
		ctx->bind_order[i] = i;
	}
	qsort_r(ctx->bind_order, n, sizeof(size_t), cmp_bind, (void *)spec);
	return 0;
}

static bool missing_mountpoint(const struct sbx_spec *spec, int lower);

int mount_prepare(const struct sbx_spec *spec, struct sbx_mount_ctx *ctx, struct sbx_err *err)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->spec = spec;
	ctx->lower = realpath(spec->lower, NULL);
	if (!ctx->lower)
		return sbx_fail(err, errno, "rootfs '%s'", spec->lower);
	if (!strcmp(ctx->lower, "/"))
		return sbx_failx(err, EINVAL, "rootfs '%s': the host's / cannot be a sandbox root",
		                 spec->lower);
	_cleanup_close_ int lower = open(ctx->lower, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (lower < 0)
		return sbx_fail(err, errno, "rootfs '%s'", spec->lower);
	int bin = mount_resolve(lower, "/bin", O_DIRECTORY);
	if (bin < 0)
		return sbx_failx(err, ENOENT, "rootfs '%s' has no /bin: not a root file system",
		                 spec->lower);
	close(bin);
	if (spec->upper) {
		ctx->upper = realpath(spec->upper, NULL);
		ctx->work = spec->work ? realpath(spec->work, NULL) : NULL;
		if (!ctx->upper || !ctx->work)
			return sbx_fail(err, errno, "overlay upper '%s'", spec->upper);
	}
	int r = prepare_binds(spec, ctx, err);
	if (r < 0)
		return r;
	if (spec->workdir && !mount_path_ok(spec->workdir) && strcmp(spec->workdir, "/") != 0)
		return sbx_failx(err, EINVAL,
		                 "workdir '%s': must be an absolute path without '.' or '..'",
		                 spec->workdir);
	if (!spec->rootfs_rw && !ctx->upper)
		ctx->tmpfs_overlay = missing_mountpoint(spec, lower);
	if (ctx->upper) {
		/* the upper is a realpath: it has a '/' */
		int n = (int)(strrchr(ctx->upper, '/') - ctx->upper);
		if (asprintf(&ctx->fuse_mark, "%.*s/" SBX_FUSE_MARK, n, ctx->upper) < 0) {
			ctx->fuse_mark = NULL;
			return sbx_fail(err, ENOMEM, "overlay upper '%s'", spec->upper);
		}
		ctx->fuse_layer = access(ctx->fuse_mark, F_OK) == 0;
	}
	if ((ctx->upper || ctx->tmpfs_overlay) &&
	    (spec->overlay != SBX_OVERLAY_KERNEL || ctx->fuse_layer) &&
	    !sbx_find_in_path("fuse-overlayfs", ctx->fuse_prog, sizeof(ctx->fuse_prog)))
		ctx->fuse_prog[0] = '\0';
	return 0;
}

/* Whether a mount point the sandbox needs is missing from the image. */
static bool missing_mountpoint(const struct sbx_spec *spec, int lower)
{
	static const char *const std[] = {"/proc", "/dev", "/tmp", "/sys", NULL};
	bool missing = false;
	for (size_t i = 0; std[i]; i++)
		missing |= !exists_in_root(lower, std[i]);
	for (size_t i = 0; i < spec->n_binds; i++)
		missing |= needs_image_mountpoint(spec, spec->binds[i].dst) &&
		           !exists_in_root(lower, spec->binds[i].dst);
	if (spec->workdir && needs_image_mountpoint(spec, spec->workdir))
		missing |= !exists_in_root(lower, spec->workdir);
	return missing;
}

int mount_fuse_missing(const struct sbx_mount_ctx *ctx, struct sbx_err *err)
{
	if (ctx->fuse_layer && !ctx->fuse_prog[0])
		return sbx_failx(err, ENOENT,
		                 "the layer '%s' was written by fuse-overlayfs, which is not "
		                 "installed now (apt-get install fuse-overlayfs)",
		                 ctx->upper);
	if (ctx->spec->overlay == SBX_OVERLAY_FUSE && (ctx->upper || ctx->tmpfs_overlay) &&
	    !ctx->fuse_prog[0])
		return sbx_failx(err, ENOENT,
		                 "[storage] overlay = fuse: fuse-overlayfs is not installed "
		                 "(apt-get install fuse-overlayfs)");
	return 0;
}

void mount_mark_fuse_layer(const struct sbx_mount_ctx *ctx)
{
	if (!ctx->fuse_mark || ctx->fuse_layer)
		return;
	int fd = open(ctx->fuse_mark, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
}

void mount_release(struct sbx_mount_ctx *ctx)
{
	free(ctx->lower);
	free(ctx->upper);
	free(ctx->work);
	free(ctx->fuse_mark);
	if (ctx->bind_src)
		for (size_t i = 0; i < ctx->spec->n_binds; i++)
			free(ctx->bind_src[i]);
	free(ctx->bind_src);
	free(ctx->bind_dir);
	free(ctx->bind_order);
	memset(ctx, 0, sizeof(*ctx));
}
