/* cgroup v2: choose the parent, make the leaf, write its limits.
 *
 * Parent, in this order (issue 4):
 *   1. the configured [cgroups] parent;
 *   2. root: <cgroup2 mount>/trimo.slice, memory cpu pids enabled on the way;
 *   3. rootless: the caller's own cgroup when it is delegated to the caller
 *      (the caller moves into a trimo-runner-PID leaf first: a cgroup that
 *      holds processes cannot enable controllers for its children); else a
 *      transient systemd user scope with Delegate=yes, same checks;
 *   4. an error naming what is missing and the fix. */
#include "runtime/cgroup_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#define RUNNER_PREFIX SBX_CGROUP_PREFIX "runner-"

/* Enable the controllers of `mask` in path's cgroup.subtree_control,
 * writing only the missing ones (a cgroup that is not ours is changed only
 * when it lacks something). */
static int enable_controllers(int dirfd, const char *path, unsigned mask, struct sbx_err *err)
{
	char buf[512], names[64];
	ssize_t r = cg_read(dirfd, "cgroup.subtree_control", buf, sizeof(buf));
	if (r < 0)
		return sbx_fail(err, (int)-r, "read %s/cgroup.subtree_control", path);
	unsigned missing = mask & ~cg_mask_parse(buf);
	if (!missing)
		return 0;
	r = cg_read(dirfd, "cgroup.controllers", buf, sizeof(buf));
	if (r < 0)
		return sbx_fail(err, (int)-r, "read %s/cgroup.controllers", path);
	unsigned avail = cg_mask_parse(buf);
	if (missing & ~avail) {
		buf[strcspn(buf, "\n")] = '\0';
		return sbx_failx(err, ENOTSUP, "cgroup %s offers only '%s' (needs %s)", path, buf,
		                 cg_mask_names(mask, names, sizeof(names)));
	}
	char value[64] = "";
	size_t n = 0;
	for (unsigned bit = 1; bit <= CG_PIDS; bit <<= 1)
		if (missing & bit)
			n += (size_t)snprintf(value + n, sizeof(value) - n, "%s+%s", n ? " " : "",
			                      cg_mask_names(bit, names, sizeof(names)));
	r = cg_write(dirfd, path, "cgroup.subtree_control", value, err);
	if (r == -EBUSY)
		return sbx_wrap(err, "cgroup %s holds processes (no internal processes rule)",
		                path);
	return (int)r;
}

/* Root: create every missing level of mount/rel and enable the controllers
 * in each, from the mount's root down to the parent itself. */
static int root_parent(const struct sbx_cgroup_host *host, const struct cg_mount *m,
                       const char *rel, int *ret_fd, char *ret_path, struct sbx_err *err)
{
	char path[PATH_MAX];
	int fd = open(m->point, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sbx_fail(err, errno, "open %s", m->point);
	snprintf(path, sizeof(path), "%s", m->point);
	const char *p = rel;
	for (;;) {
		int r = enable_controllers(fd, path, CG_NEEDED, err);
		if (r < 0) {
			close(fd);
			return r;
		}
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t len = strcspn(p, "/");
		char comp[NAME_MAX + 1];
		if (len > NAME_MAX) {
			close(fd);
			return sbx_failx(err, ENAMETOOLONG, "cgroup name too long in '%s'", rel);
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		p += len;
		size_t plen = strlen(path);
		snprintf(path + plen, sizeof(path) - plen, "/%s", comp);
		bool made = mkdirat(fd, comp, 0755) == 0;
		if (!made && errno != EEXIST) {
			int e = errno;
			close(fd);
			return sbx_fail(err, e, "create cgroup %s", path);
		}
		int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(fd);
		if (next < 0)
			return sbx_fail(err, e, "open cgroup %s", path);
		fd = next;
		if (made && host->fake_mkdir)
			host->fake_mkdir(fd, path, host->fake_data);
	}
	*ret_fd = fd;
	memcpy(ret_path, path, strlen(path) + 1);
	return 0;
}

/* 1: only `pid` is listed; 0: empty; -EBUSY: others are there. */
static int procs_only(int dirfd, pid_t pid)
{
	_cleanup_free_ char *buf = malloc(65536);
	if (!buf)
		return -ENOMEM;
	ssize_t r = cg_read(dirfd, "cgroup.procs", buf, 65536);
	if (r < 0)
		return (int)r;
	int found = 0;
	for (char *p = buf; *p;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (v != (long)pid)
			return -EBUSY;
		found = 1;
		p = end;
		while (*p == '\n' || *p == ' ')
			p++;
	}
	return found;
}

/* Move the caller into dir/trimo-runner-PID, emptying dir. */
static int move_self(const struct sbx_cgroup_host *host, int dirfd, const char *path,
                     struct sbx_err *err)
{
	char name[64], leaf[PATH_MAX], pidbuf[24];
	snprintf(name, sizeof(name), RUNNER_PREFIX "%ld", (long)host->pid);
	_cleanup_close_ int fd = -1;
	int r = cg_make_leaf(host, dirfd, path, name, &fd, leaf, sizeof(leaf), err);
	if (r == -EEXIST) {
		/* an empty one left by an earlier process with our pid */
		snprintf(leaf, sizeof(leaf), "%s/%s", path, name);
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return sbx_fail(err, errno, "open cgroup %s", leaf);
	} else if (r < 0) {
		return r;
	}
	snprintf(pidbuf, sizeof(pidbuf), "%ld", (long)host->pid);
	/* once we are inside, the leaf is not empty and no sweep removes it */
	return cg_write(fd, leaf, "cgroup.procs", pidbuf, err);
}

/* Make a delegated cgroup usable as our parent.  On failure `why` says
 * what is wrong (for the combined message) and err is not touched.  The
 * messages name the cgroup by its path inside the hierarchy: the combined
 * message must fit in struct sbx_err. */
static int prepare_delegated(const struct sbx_cgroup_host *host, const struct cg_mount *m,
                             const char *path, int *ret_fd, char *why, size_t why_size)
{
	const char *shown = path[strlen(m->point)] ? path + strlen(m->point) : "/";
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		sbx_fmt(why, why_size, "%s: %s", shown, sbx_strerror(errno));
		return -errno;
	}
	if (!cg_delegated_to(fd, shown, host->uid, why, why_size))
		return -EACCES;
	char buf[512], names[64];
	ssize_t r = cg_read(fd, "cgroup.controllers", buf, sizeof(buf));
	unsigned avail = r >= 0 ? cg_mask_parse(buf) : 0;
	if (CG_NEEDED & ~avail) {
		buf[r >= 0 ? strcspn(buf, "\n") : 0] = '\0';
		sbx_fmt(why, why_size, "%s offers only '%s', not %s", shown, buf,
		        cg_mask_names(CG_NEEDED & ~avail, names, sizeof(names)));
		return -ENOTSUP;
	}
	r = cg_read(fd, "cgroup.subtree_control", buf, sizeof(buf));
	if (r >= 0 && !(CG_NEEDED & ~cg_mask_parse(buf))) {
		*ret_fd = TAKE_FD(fd);
		return 0;
	}
	int only = procs_only(fd, host->pid);
	if (only == -EBUSY) {
		sbx_fmt(why, why_size, "%s holds other processes too", shown);
		return -EBUSY;
	}
	struct sbx_err e = {0};
	if ((only == 1 && move_self(host, fd, path, &e) < 0) ||
	    enable_controllers(fd, shown, CG_NEEDED, &e) < 0) {
		sbx_fmt(why, why_size, "%s", e.msg);
		return -e.errnum;
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* Our own v2 cgroup on the host; a trimo-runner leaf we moved into earlier
 * stands for its parent. */
static int own_path(const struct cg_hosttab *tab, const struct cg_mount *m, char *buf, size_t size,
                    char *why, size_t why_size)
{
	if (!tab->have_v2_path || cg_host_path(m, tab->v2_path, buf, size) < 0) {
		sbx_fmt(why, why_size, "own cgroup '%s' is not below %s", tab->v2_path, m->point);
		return -ENOENT;
	}
	char *slash = strrchr(buf, '/');
	if (slash && slash > buf + strlen(m->point) && sbx_str_has_prefix(slash + 1, RUNNER_PREFIX))
		*slash = '\0';
	return 0;
}

/* Rootless fallback: a transient systemd user scope with Delegate=yes that
 * holds only us, made usable as our parent.  On failure `why` says why. */
static int scope_parent(struct sbx_cgroup *cg, struct cg_hosttab *tab, const struct cg_mount *m,
                        const char *name, int *ret_fd, char *path, size_t path_size, char *why,
                        size_t why_size)
{
	const struct sbx_cgroup_host *host = &cg->host;
	if (!host->start_scope) {
		sbx_fmt(why, why_size, "not tried");
		return -ENOSYS;
	}
	char unit[96];
	cg_leaf_name(name, unit, sizeof(unit) - 6);
	strcat(unit, ".scope");
	struct sbx_err e = {0};
	if (host->start_scope(unit, host->pid, host->scope_data, &e) < 0 ||
	    cg_host_load_proc_cgroup(host, tab, &e) < 0) {
		sbx_fmt(why, why_size, "%s", e.msg);
		return -e.errnum;
	}
	int r = own_path(tab, m, path, path_size, why, why_size);
	return r < 0 ? r : prepare_delegated(host, m, path, ret_fd, why, why_size);
}

/* Controllers of `mask` the whole hierarchy offers (its root's list). */
static unsigned root_offers(const struct cg_mount *m, unsigned mask)
{
	char buf[512];
	_cleanup_close_ int fd = open(m->point, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || cg_read(fd, "cgroup.controllers", buf, sizeof(buf)) < 0)
		return 0;
	return mask & cg_mask_parse(buf);
}

static int rootless_parent(struct sbx_cgroup *cg, struct cg_hosttab *tab, const struct cg_mount *m,
                           const char *name, int *ret_fd, char *ret_path, struct sbx_err *err)
{
	const struct sbx_cgroup_host *host = &cg->host;
	char path[PATH_MAX], why_own[200], why_scope[200] = "";
	int r = own_path(tab, m, path, sizeof(path), why_own, sizeof(why_own));
	if (r >= 0)
		r = prepare_delegated(host, m, path, ret_fd, why_own, sizeof(why_own));
	if (r < 0)
		r = scope_parent(cg, tab, m, name, ret_fd, path, sizeof(path), why_scope,
		                 sizeof(why_scope));
	if (r >= 0) {
		memcpy(ret_path, path, strlen(path) + 1);
		return 0;
	}
	/* The scope exists but lacks controllers the kernel has: systemd
	 * delegates only what user@.service got through its Delegate= (no cpu
	 * before systemd 252, nor on RHEL 9).  Another scope would be no
	 * better: the fix is the admin's. */
	if (r == -ENOTSUP && root_offers(m, CG_NEEDED) == CG_NEEDED)
		return sbx_failx(
		    err, EACCES,
		    "cgroup v2: the user's systemd cannot delegate memory/cpu/pids "
		    "limits to uid %u: %s. Fix: an admin adds `Delegate=cpu memory "
		    "pids` to user@.service (a drop-in in "
		    "/etc/systemd/system/user@.service.d/, then `systemctl "
		    "daemon-reload` and a new login), or delegates a cgroup ([cgroups] "
		    "parent); or --no-limits",
		    (unsigned)host->uid, why_scope);
	return sbx_failx(err, EACCES,
	                 "cgroup v2: nothing delegated to uid %u for memory/cpu/pids limits. Fix: "
	                 "`systemd-run --user --scope -p Delegate=yes trimo-sbx ...` (needs a user "
	                 "session, or `loginctl enable-linger`), or an admin delegates a cgroup "
	                 "([cgroups] parent), or --no-limits. Own cgroup: %s; user scope: %s",
	                 (unsigned)host->uid, why_own, why_scope);
}

static int pick_parent(struct sbx_cgroup *cg, struct cg_hosttab *tab, const struct cg_mount *m,
                       const char *parent, const char *name, int *ret_fd, char *ret_path,
                       struct sbx_err *err)
{
	const struct sbx_cgroup_host *host = &cg->host;
	if (!parent && !host->rootless)
		return root_parent(host, m, "trimo.slice", ret_fd, ret_path, err);
	if (!parent)
		return rootless_parent(cg, tab, m, name, ret_fd, ret_path, err);
	char path[PATH_MAX], why[256];
	int r = cg_config_path(m, tab->have_v2_path ? tab->v2_path : NULL, parent, path,
	                       sizeof(path), err);
	if (r < 0)
		return r;
	if (!host->rootless)
		return root_parent(host, m, path + strlen(m->point), ret_fd, ret_path, err);
	/* v2 lets an unprivileged process move a task only when it may write
	 * cgroup.procs of the common ancestor of both cgroups: the sandbox can
	 * enter the leaf only if we already live inside the delegated parent. */
	char own[PATH_MAX];
	size_t plen = strlen(path);
	if (!tab->have_v2_path || cg_host_path(m, tab->v2_path, own, sizeof(own)) < 0 ||
	    strncmp(own, path, plen) || (own[plen] && own[plen] != '/'))
		return sbx_failx(err, EACCES,
		                 "cgroup v2: [cgroups] parent '%s' is delegated, but this process "
		                 "runs outside it (in %s): start trimo-sbx inside the delegated "
		                 "cgroup (cgroup v2 moves processes only within a delegation)",
		                 parent, tab->v2_path);
	r = prepare_delegated(host, m, path, ret_fd, why, sizeof(why));
	if (r < 0)
		return sbx_failx(err, -r,
		                 "cgroup v2: [cgroups] parent '%s' cannot hold limited cgroups: "
		                 "%s",
		                 parent, why);
	memcpy(ret_path, path, strlen(path) + 1);
	return 0;
}

int cg_v2_set_memory(struct sbx_cgroup *cg, const struct sbx_cgroup_limits *l, struct sbx_err *err)
{
	struct cg_leaf *leaf = &cg->leaves[0];
	char v[32];
	int r = cg_write(leaf->fd, leaf->path, "memory.max",
	                 cgroup_format_v2_value(l->memory, v, sizeof(v)), err);
	if (r < 0)
		return r;
	/* a cap that swaps is no cap: no swap unless asked for */
	uint64_t swap = l->memory == SBX_LIMIT_MAX ? SBX_LIMIT_MAX
	                : l->memory_swap_set       ? l->memory_swap
	                                           : 0;
	if (cg_has_file(leaf->fd, "memory.swap.max")) {
		r = cg_write(leaf->fd, leaf->path, "memory.swap.max",
		             cgroup_format_v2_value(swap, v, sizeof(v)), err);
		if (r < 0)
			return r;
	} else if (cg->swap_on && swap != SBX_LIMIT_MAX) {
		snprintf(cg->warning, sizeof(cg->warning),
		         "swap is on but this kernel has no memory.swap.max (swap accounting "
		         "off): the memory cap can be exceeded by swapping");
	}
	cg->limits.memory = l->memory;
	cg->limits.memory_swap_set = l->memory_swap_set;
	cg->limits.memory_swap = l->memory_swap;
	return 0;
}

static int write_limits(struct sbx_cgroup *cg, struct sbx_err *err)
{
	struct cg_leaf *leaf = &cg->leaves[0];
	const struct sbx_cgroup_limits *l = &cg->limits;
	char v[32];
	int r = cg_v2_set_memory(cg, l, err);
	if (r >= 0 && l->cpu_quota_us)
		r = cg_write(leaf->fd, leaf->path, "cpu.max",
		             cgroup_format_cpu_max(l->cpu_quota_us, v, sizeof(v)), err);
	if (r >= 0)
		r = cg_write(leaf->fd, leaf->path, "pids.max",
		             cgroup_format_v2_value(l->pids, v, sizeof(v)), err);
	if (r >= 0 && l->oom_group) {
		if (!cg_has_file(leaf->fd, "memory.oom.group"))
			return sbx_failx(err, ENOTSUP,
			                 "--oom-kill group needs memory.oom.group (Linux 4.19)");
		r = cg_write(leaf->fd, leaf->path, "memory.oom.group", "1", err);
	}
	return r;
}

int cg_v2_open_oom_fd(struct sbx_cgroup *cg, struct sbx_err *err)
{
	struct cg_leaf *leaf = &cg->leaves[0];
	char path[PATH_MAX + 16];
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return sbx_fail(err, errno, "inotify_init1");
	snprintf(path, sizeof(path), "%s/memory.events", leaf->path);
	/* the kernel signals IN_MODIFY on every change of memory.events */
	if (inotify_add_watch(fd, path, IN_MODIFY) < 0) {
		int e = errno;
		close(fd);
		return sbx_fail(err, e, "watch %s", path);
	}
	cg->oom_fd = fd;
	return 0;
}

int cg_v2_create(struct sbx_cgroup *cg, struct cg_hosttab *tab, const char *parent,
                 const char *name, struct sbx_err *err)
{
	const struct cg_mount *m = cg_find_v2(tab);
	char ppath[PATH_MAX];
	_cleanup_close_ int pfd = -1;
	int r = pick_parent(cg, tab, m, parent, name, &pfd, ppath, err);
	if (r < 0)
		return r;
	cg_sweep_stale(&cg->host, pfd, ppath);
	struct cg_leaf *leaf = &cg->leaves[0];
	for (int tries = 0;; tries++) {
		char lname[64];
		cg_leaf_name(name, lname, sizeof(lname));
		r = cg_make_leaf(&cg->host, pfd, ppath, lname, &leaf->fd, leaf->path,
		                 sizeof(leaf->path), err);
		if (r != -EEXIST)
			break;
		if (tries == 16)
			return sbx_failx(err, EEXIST, "cgroup: no free leaf name under %s", ppath);
	}
	if (r < 0)
		return r;
	leaf->ctrls = CG_NEEDED;
	cg->n_leaves = 1;
	r = write_limits(cg, err);
	if (r < 0)
		return r;
	return cg_v2_open_oom_fd(cg, err);
}
