#include "runtime/hostcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "runtime/network.h"
#include "sandbox/idmap.h"
#include "sandbox/mount.h"
#include "sandbox/seccomp.h"

static struct hostcheck_item *add(struct hostcheck *hc, const char *name, enum hostcheck_level l,
                                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static struct hostcheck_item *add(struct hostcheck *hc, const char *name, enum hostcheck_level l,
                                  const char *fmt, ...)
{
	if (hc->n >= HOSTCHECK_MAX)
		return NULL;
	struct hostcheck_item *it = &hc->items[hc->n++];
	it->name = name;
	it->level = l;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(it->detail, sizeof(it->detail), fmt, ap);
	va_end(ap);
	return it;
}

/* What the child found, written back through a pipe. */
struct ns_result {
	int mount_errno;      /* tmpfs mount in the new namespaces */
	int overlay_errno;    /* overlay, upper on the scratch file system */
	int overlay_rm_errno; /* removing a lower folder through it (userxattr) */
	int tmpfs_ovl_errno;  /* overlay with its upper on tmpfs (kernel >= 6.6) */
};

static int try_overlay(const char *dir, const char *upper_base, int *rm_errno)
{
	char lower[4096], upper[4096], work[4096], merged[4096], opts[16384];
	snprintf(lower, sizeof(lower), "%s/lower", dir);
	snprintf(upper, sizeof(upper), "%s/upper", upper_base);
	snprintf(work, sizeof(work), "%s/work", upper_base);
	snprintf(merged, sizeof(merged), "%s/merged", dir);
	mkdir(upper, 0755);
	mkdir(work, 0700);
	snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s,userxattr", lower, upper,
	         work);
	if (mount("overlay", merged, "overlay", 0, opts) < 0)
		return errno;
	char victim[4200];
	snprintf(victim, sizeof(victim), "%s/d", merged);
	*rm_errno = rmdir(victim) < 0 ? errno : 0;
	umount2(merged, MNT_DETACH);
	return 0;
}

static void ns_child(int go, int out, const char *dir)
{
	struct ns_result res = {0};
	char c;
	if (read(go, &c, 1) != 1)
		_exit(1);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		res.mount_errno = errno;
	} else {
		char t[4200];
		snprintf(t, sizeof(t), "%s/tmp", dir);
		if (mount("tmpfs", t, "tmpfs", 0, "mode=755") < 0)
			res.mount_errno = errno;
		res.overlay_errno = try_overlay(dir, dir, &res.overlay_rm_errno);
		if (!res.mount_errno) {
			int ignored;
			res.tmpfs_ovl_errno = try_overlay(dir, t, &ignored);
		}
	}
	if (write(out, &res, sizeof(res)) != (ssize_t)sizeof(res))
		_exit(1);
	_exit(0);
}

static int make_scratch(const char *scratch, char *dir, size_t size)
{
	struct sbx_err err;
	if (sbx_mkdir_p(scratch, 0700, &err) < 0)
		return -errno;
	snprintf(dir, size, "%s/check-XXXXXX", scratch);
	if (!mkdtemp(dir))
		return -errno;
	static const char *const sub[] = {"lower", "lower/d", "merged", "tmp", NULL};
	char p[4200];
	for (size_t i = 0; sub[i]; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, sub[i]);
		if (mkdir(p, 0755) < 0)
			return -errno;
	}
	return 0;
}

static void check_userns(struct hostcheck *hc, const char *scratch)
{
	char dir[4096];
	int r = make_scratch(scratch, dir, sizeof(dir));
	if (r < 0) {
		add(hc, "user namespaces", CHECK_FAIL, "cannot create a test folder in '%s': %s",
		    scratch, strerror(-r));
		return;
	}
	int go[2], out[2];
	if (pipe2(go, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		return;
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		ns_child(go[0], out[1], dir);
	close(go[0]);
	close(out[1]);
	struct ns_result res;
	memset(&res, 0xff, sizeof(res));
	struct sbx_err err = {0};
	char why[400];
	idmap_diagnose(why, sizeof(why));
	if (pid < 0) {
		add(hc, "user namespaces", CHECK_FAIL, "clone(CLONE_NEWUSER): %s%s%s",
		    strerror(errno), why[0] ? "; " : "", why);
	} else if (idmap_parent(pid, getuid(), getgid(), &err) < 0) {
		add(hc, "user namespaces", CHECK_FAIL, "%s%s%s", err.msg, why[0] ? "; " : "", why);
	} else if (write(go[1], "g", 1) == 1 && read(out[0], &res, sizeof(res)) == sizeof(res)) {
		if (res.mount_errno)
			add(hc, "user namespaces", CHECK_FAIL, "mount inside: %s%s%s",
			    strerror(res.mount_errno), why[0] ? "; " : "", why);
		else
			add(hc, "user namespaces", CHECK_OK,
			    "created, id maps written, mounts work");
	}
	close(go[1]);
	close(out[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	char fuse[256], fuse_why[200] = "";
	bool has_fuse = sbx_find_in_path("fuse-overlayfs", fuse, sizeof(fuse));
	int dev = has_fuse ? open("/dev/fuse", O_RDWR | O_CLOEXEC) : -1;
	if (has_fuse && dev < 0)
		snprintf(fuse_why, sizeof(fuse_why), "cannot open /dev/fuse: %s%s", strerror(errno),
		         errno == EACCES ? " (chmod 0666 /dev/fuse)" : "");
	if (dev >= 0)
		close(dev);
	bool fuse_ok = has_fuse && !fuse_why[0];
	/* with fuse-overlayfs at hand, the kernel's refusal costs speed only */
	enum hostcheck_level refused = fuse_ok ? CHECK_WARN : CHECK_FAIL;
	const char *instead = fuse_ok ? "; fuse-overlayfs is used instead (slower)" : "";
	if (res.mount_errno == 0 && res.overlay_errno == 0 && res.overlay_rm_errno == 0)
		add(hc, "overlay in a user namespace", CHECK_OK, "with userxattr, upper in %s",
		    scratch);
	else if (res.mount_errno == 0 && res.overlay_errno == 0)
		add(hc, "overlay in a user namespace", refused,
		    "mounts, but removing a lower folder fails (%s): the upper's file system "
		    "lacks user.* xattrs; put the state folder elsewhere%s",
		    strerror(res.overlay_rm_errno), instead);
	else if (res.mount_errno == 0)
		add(hc, "overlay in a user namespace", refused,
		    "upper in %s: %s (needs Linux 5.11 or later, and a file system that can "
		    "hold an overlay upper with user.* xattrs: not overlayfs, not NFS)%s",
		    scratch, strerror(res.overlay_errno), instead);
	if (res.mount_errno == 0)
		add(hc, "overlay upper on tmpfs",
		    res.tmpfs_ovl_errno && !fuse_ok ? CHECK_WARN : CHECK_OK, "%s",
		    !res.tmpfs_ovl_errno ? "works (used by `run` when an image lacks a mount point)"
		    : fuse_ok ? "refused by the kernel: fuse-overlayfs serves `run` of an image "
		                "without a mount point it needs"
		              : "does not mount: `run` of an image without /proc, /dev, /tmp or "
		                "/sys needs --rw");
	bool needed = res.overlay_errno || res.overlay_rm_errno || res.tmpfs_ovl_errno;
	if (fuse_ok) {
		/* the server serves the sandbox's requests outside it: say
		 * whether a bug in it would reach the whole host */
		int abi = mount_fuse_landlock_abi();
		char server[128];
		if (abi > 0)
			snprintf(server, sizeof(server), "server confined by Landlock (ABI %d)",
			         abi);
		else if (abi == -EXDEV)
			snprintf(server, sizeof(server),
			         "server unconfined: Landlock ABI 1 would break its renames "
			         "(needs 5.19+)");
		else
			snprintf(server, sizeof(server), "server unconfined: no Landlock (%s)",
			         strerror(-abi));
		add(hc, "fuse-overlayfs", needed && abi < 0 ? CHECK_WARN : CHECK_OK,
		    "%s, /dev/fuse usable%s; %s", fuse,
		    needed ? "" : " (used only where the kernel refuses an overlay)", server);
	} else
		add(hc, "fuse-overlayfs", needed ? CHECK_WARN : CHECK_OK, "%s%s",
		    has_fuse ? fuse_why : "not installed (apt-get install fuse-overlayfs)",
		    needed ? "" : "; needed only where the kernel refuses an overlay");
	sbx_rm_rf_at(AT_FDCWD, dir, &err);
}

static void check_apparmor(struct hostcheck *hc)
{
	long v = sbx_read_long("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", -1);
	if (v < 0) {
		add(hc, "AppArmor userns restriction", CHECK_OK, "not present");
		return;
	}
	if (v == 0) {
		add(hc, "AppArmor userns restriction", CHECK_OK, "off");
		return;
	}
	char exe[1024] = "/usr/local/bin/trimo-sbx";
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0)
		exe[n] = '\0';
	add(hc, "AppArmor userns restriction", geteuid() == 0 ? CHECK_WARN : CHECK_FAIL,
	    "on (Ubuntu 23.10+): unprivileged user namespaces get no capabilities. Fix: "
	    "create /etc/apparmor.d/trimo-sbx with `abi <abi/4.0>, include <tunables/global> "
	    "profile trimo-sbx %s flags=(unconfined) { userns, }` and run `sudo apparmor_parser "
	    "-r /etc/apparmor.d/trimo-sbx`",
	    exe);
}

static void check_mount_api(struct hostcheck *hc)
{
	int fd = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
	int e = fd < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	long r = syscall(SYS_mount_setattr, -1, "", 0, NULL, 0);
	int e2 = r < 0 ? errno : 0;
	if (e == ENOSYS || e2 == ENOSYS)
		add(hc, "mount API", CHECK_FAIL,
		    "fsopen/mount_setattr missing: trimo-sbx needs Linux 5.12 or later");
	else
		add(hc, "mount API", CHECK_OK, "fsopen, open_tree, move_mount, mount_setattr");
}

static void check_seccomp(struct hostcheck *hc)
{
	struct sbx_spec spec;
	memset(&spec, 0, sizeof(spec));
	struct sbx_seccomp s;
	struct sbx_err err = {0};
	if (seccomp_filter_prepare(&spec, &s, &err) < 0) {
		add(hc, "seccomp", CHECK_FAIL, "%s", err.msg);
		return;
	}
	pid_t p = fork();
	if (p == 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    seccomp_filter_child(&s, &err) < 0)
			_exit(1);
		_exit(syscall(SYS_bpf, 0, NULL, 0) < 0 && errno == EPERM ? 0 : 2);
	}
	int st = -1;
	if (p > 0)
		waitpid(p, &st, 0);
	seccomp_filter_free(&s);
	if (p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		add(hc, "seccomp", CHECK_OK, "filter loads with no_new_privs");
	else
		add(hc, "seccomp", CHECK_FAIL,
		    "the filter does not load (kernel without "
		    "CONFIG_SECCOMP_FILTER?)");
}

static void check_cgroups(struct hostcheck *hc)
{
	struct statfs sf;
	if (statfs("/sys/fs/cgroup", &sf) < 0) {
		add(hc, "cgroups", CHECK_WARN, "/sys/fs/cgroup: %s", strerror(errno));
		return;
	}
	if (sf.f_type == CGROUP2_SUPER_MAGIC) {
		add(hc, "cgroups", CHECK_OK, "cgroup v2 (unified)");
		return;
	}
	struct statfs u;
	bool hybrid = statfs("/sys/fs/cgroup/unified", &u) == 0 && u.f_type == CGROUP2_SUPER_MAGIC;
	add(hc, "cgroups", CHECK_OK, "cgroup v1%s: memory, cpu, pids limits through v1",
	    hybrid ? " (hybrid: the cgroup2 tree has no useful controllers)" : "");
}

static void check_network(struct hostcheck *hc)
{
	char detail[256] = "";
	struct sbx_err err = {0};
	if (net_check_host(detail, sizeof(detail), &err) < 0)
		add(hc, "network nat", CHECK_WARN, "%s (modes none and host work)", err.msg);
	else
		add(hc, "network nat", CHECK_OK, "%s", detail);
}

static void check_landlock(struct hostcheck *hc)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0)
		add(hc, "Landlock", CHECK_WARN, "not available (%s)", strerror(errno));
	else
		add(hc, "Landlock", CHECK_OK, "ABI %ld", abi);
}

void hostcheck_run(struct hostcheck *hc, const char *scratch)
{
	memset(hc, 0, sizeof(*hc));
	check_userns(hc, scratch);
	check_apparmor(hc);
	check_mount_api(hc);
	check_seccomp(hc);
	check_cgroups(hc);
	check_network(hc);
	check_landlock(hc);
}

bool hostcheck_ok(const struct hostcheck *hc)
{
	for (int i = 0; i < hc->n; i++)
		if (hc->items[i].level == CHECK_FAIL)
			return false;
	return true;
}
