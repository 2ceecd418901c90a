/* cgroup v1 (and hybrid hosts whose cgroup2 lacks the memory controller):
 * one leaf per hierarchy (memory; cpu; cpuacct, often co-mounted with cpu;
 * pids), each below the caller's own cgroup of that controller or below
 * the configured parent.  Rootless, a parent must be owned by the caller
 * (an admin chowned it): v1 has no other delegation. */
#include "runtime/cgroup_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

static const unsigned wanted[] = {CG_MEMORY, CG_CPU, CG_CPUACCT, CG_PIDS};
/* cpuacct only feeds the CPU time statistic; the others carry limits. */
#define REQUIRED (CG_MEMORY | CG_CPU | CG_PIDS)

struct cg_leaf *cg_leaf_for(struct sbx_cgroup *cg, unsigned ctrl)
{
	for (size_t i = 0; i < cg->n_leaves; i++)
		if (cg->leaves[i].ctrls & ctrl)
			return &cg->leaves[i];
	return NULL;
}

static int parent_of(const struct sbx_cgroup *cg, const struct cg_hosttab *tab,
                     const struct cg_mount *m, unsigned ctrl, const char *parent, char *buf,
                     size_t size, struct sbx_err *err)
{
	const char *own = tab->v1_path[__builtin_ctz(ctrl)];
	if (parent)
		return cg_config_path(m, own, parent, buf, size, err);
	if (!*own || cg_host_path(m, own, buf, size) < 0)
		return sbx_failx(err, ENOENT, "cgroup v1: own %s cgroup '%s' is not below %s",
		                 cg_mask_names(ctrl, (char[16]){0}, 16), own, m->point);
	return 0;
}

/* lname is tried first (the same name in every hierarchy); a clash gets a
 * fresh name from the sandbox name. */
static int make_v1_leaf(struct sbx_cgroup *cg, const struct cg_mount *m, const char *ppath,
                        const char *lname, const char *sandbox_name, unsigned ctrl,
                        struct sbx_err *err)
{
	_cleanup_close_ int pfd = open(ppath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return sbx_fail(err, errno, "cgroup v1: open %s", ppath);
	cg_sweep_stale(&cg->host, pfd, ppath);
	struct cg_leaf *leaf = &cg->leaves[cg->n_leaves];
	char name[64];
	snprintf(name, sizeof(name), "%s", lname);
	for (int tries = 0;; tries++) {
		int r = cg_make_leaf(&cg->host, pfd, ppath, name, &leaf->fd, leaf->path,
		                     sizeof(leaf->path), err);
		if (r >= 0)
			break;
		if (r != -EEXIST)
			return r;
		if (tries == 16)
			return sbx_failx(err, EEXIST, "cgroup: no free leaf name under %s", ppath);
		cg_leaf_name(sandbox_name, name, sizeof(name));
	}
	char point[PATH_MAX];
	snprintf(point, sizeof(point), "%s", m->point);
	snprintf(leaf->name, sizeof(leaf->name), "%s", basename(point));
	leaf->ctrls = ctrl;
	cg->n_leaves++;
	return 0;
}

static int rootless_error(const struct sbx_cgroup *cg, const struct cg_hosttab *tab,
                          unsigned missing, const char *why, struct sbx_err *err)
{
	char names[64], base[PATH_MAX] = "/sys/fs/cgroup";
	const struct cg_mount *m = cg_find_v1(tab, CG_MEMORY);
	if (m) {
		char tmp[PATH_MAX];
		snprintf(tmp, sizeof(tmp), "%s", m->point);
		snprintf(base, sizeof(base), "%s", dirname(tmp));
	}
	unsigned uid = (unsigned)cg->host.uid;
	return sbx_failx(
	    err, EACCES,
	    "cgroup v1: no cgroup writable by uid %u for %s. Fix: an admin "
	    "delegates one per controller: `for c in memory cpu cpuacct pids; do "
	    "d=%s/$c/trimo.user-%u; mkdir $d && chown %u $d $d/cgroup.procs; done` and "
	    "you set [cgroups] parent = trimo.user-%u; or --no-limits. (%s)",
	    uid, cg_mask_names(missing, names, sizeof(names)), base, uid, uid, uid, why);
}

static int make_leaves(struct sbx_cgroup *cg, const struct cg_hosttab *tab, const char *parent,
                       const char *sandbox_name, struct sbx_err *err)
{
	char lname[64];
	cg_leaf_name(sandbox_name, lname, sizeof(lname));
	unsigned missing = 0;
	char why[256] = "", names[64];
	for (size_t i = 0; i < ELEMENTSOF(wanted); i++) {
		unsigned ctrl = wanted[i];
		const struct cg_mount *m = cg_find_v1(tab, ctrl);
		if (!m) {
			if (ctrl & REQUIRED)
				return sbx_failx(err, ENOENT,
				                 "cgroup v1: the %s controller is not mounted",
				                 cg_mask_names(ctrl, names, sizeof(names)));
			continue;
		}
		/* co-mounted controllers (cpu,cpuacct) share one leaf */
		struct cg_leaf *shared = NULL;
		for (size_t j = 0; j < cg->n_leaves; j++)
			if (cg->leaves[j].ctrls & m->ctrls)
				shared = &cg->leaves[j];
		if (shared) {
			shared->ctrls |= ctrl;
			continue;
		}
		char ppath[PATH_MAX];
		int r = parent_of(cg, tab, m, ctrl, parent, ppath, sizeof(ppath), err);
		if (r < 0)
			return r;
		if (!cg->host.rootless && parent) {
			r = sbx_mkdir_p(ppath, 0755, err);
			if (r < 0)
				return r;
		}
		if (cg->host.rootless) {
			_cleanup_close_ int pfd = open(ppath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			char w[256];
			if (pfd < 0)
				sbx_fmt(w, sizeof(w), "%s: %s", ppath, sbx_strerror(errno));
			if (pfd < 0 || !cg_delegated_to(pfd, ppath, cg->host.uid, w, sizeof(w))) {
				if (!(ctrl & REQUIRED))
					continue;
				missing |= ctrl;
				if (!*why)
					sbx_fmt(why, sizeof(why), "%s", w);
				continue;
			}
		}
		r = make_v1_leaf(cg, m, ppath, lname, sandbox_name, ctrl, err);
		if (r < 0)
			return r;
	}
	if (missing)
		return rootless_error(cg, tab, missing, why, err);
	return 0;
}

int cg_v1_set_memory(struct sbx_cgroup *cg, const struct sbx_cgroup_limits *l, struct sbx_err *err)
{
	struct cg_leaf *leaf = cg_leaf_for(cg, CG_MEMORY);
	char v[32];
	int r;
	if (cg_has_file(leaf->fd, "memory.memsw.limit_in_bytes")) {
		uint64_t memsw = cg_v1_memsw_for(l->memory, l->memory_swap_set, l->memory_swap);
		uint64_t cur = SBX_LIMIT_MAX;
		(void)cg_read_u64(leaf->fd, "memory.memsw.limit_in_bytes", &cur);
		/* the kernel keeps limit <= memsw after each write: EINVAL otherwise */
		bool limit_first = cg_v1_limit_first(cur, l->memory);
		const char *first =
		    limit_first ? "memory.limit_in_bytes" : "memory.memsw.limit_in_bytes";
		const char *second =
		    limit_first ? "memory.memsw.limit_in_bytes" : "memory.limit_in_bytes";
		uint64_t fv = limit_first ? l->memory : memsw, sv = limit_first ? memsw : l->memory;
		r = cg_write(leaf->fd, leaf->path, first, cgroup_format_v1_value(fv, v, sizeof(v)),
		             err);
		if (r >= 0)
			r = cg_write(leaf->fd, leaf->path, second,
			             cgroup_format_v1_value(sv, v, sizeof(v)), err);
	} else {
		r = cg_write(leaf->fd, leaf->path, "memory.limit_in_bytes",
		             cgroup_format_v1_value(l->memory, v, sizeof(v)), err);
		bool no_swap = !l->memory_swap_set || l->memory_swap == 0;
		if (r >= 0 && l->memory != SBX_LIMIT_MAX && cg->swap_on &&
		    !(l->memory_swap_set && l->memory_swap == SBX_LIMIT_MAX)) {
			/* v1 memcg swappiness 0 keeps anon pages in RAM: the best
			 * there is without memsw accounting */
			if (no_swap)
				(void)cg_write(leaf->fd, leaf->path, "memory.swappiness", "0",
				               NULL);
			snprintf(cg->warning, sizeof(cg->warning),
			         "swap is on but this kernel has no memory.memsw.limit_in_bytes "
			         "(boot with swapaccount=1): the memory cap can be exceeded by "
			         "swapping");
		}
	}
	if (r < 0)
		return r;
	cg->limits.memory = l->memory;
	cg->limits.memory_swap_set = l->memory_swap_set;
	cg->limits.memory_swap = l->memory_swap;
	return 0;
}

static int write_limits(struct sbx_cgroup *cg, struct sbx_err *err)
{
	const struct sbx_cgroup_limits *l = &cg->limits;
	char v[32];
	int r = cg_v1_set_memory(cg, l, err);
	if (r < 0)
		return r;
	/* v1 has no memory.oom.group.  For --oom-kill group the kernel's OOM
	 * killer is switched off in the leaf: at an OOM every task in it waits
	 * in the fault, the oom eventfd fires, and cgroup_oom_event kills the
	 * whole leaf, so nothing in the sandbox runs on after the OOM (killing
	 * after the kernel's own victim would let the rest run for a moment). */
	if (l->oom_group) {
		struct cg_leaf *mem = cg_leaf_for(cg, CG_MEMORY);
		r = cg_write(mem->fd, mem->path, "memory.oom_control", "1", err);
		if (r < 0)
			return r;
	}
	struct cg_leaf *cpu = cg_leaf_for(cg, CG_CPU);
	if (l->cpu_quota_us) {
		snprintf(v, sizeof(v), "%llu", SBX_CPU_PERIOD_US);
		r = cg_write(cpu->fd, cpu->path, "cpu.cfs_period_us", v, err);
		if (r >= 0)
			r = cg_write(cpu->fd, cpu->path, "cpu.cfs_quota_us",
			             cgroup_format_v1_value(l->cpu_quota_us, v, sizeof(v)), err);
		if (r < 0)
			return r;
	}
	struct cg_leaf *pids = cg_leaf_for(cg, CG_PIDS);
	/* pids.max is "max" in v1 too */
	return cg_write(pids->fd, pids->path, "pids.max",
	                cgroup_format_v2_value(l->pids, v, sizeof(v)), err);
}

int cg_v1_open_oom_fd(struct sbx_cgroup *cg, struct sbx_err *err)
{
	struct cg_leaf *leaf = cg_leaf_for(cg, CG_MEMORY);
	_cleanup_close_ int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		return sbx_fail(err, errno, "eventfd");
	_cleanup_close_ int ofd =
	    openat(leaf->fd, "memory.oom_control", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (ofd < 0)
		return sbx_fail(err, errno, "open %s/memory.oom_control", leaf->path);
	char v[32];
	snprintf(v, sizeof(v), "%d %d", efd, ofd);
	int r = cg_write(leaf->fd, leaf->path, "cgroup.event_control", v, err);
	if (r < 0)
		return r;
	cg->oom_fd = TAKE_FD(efd);
	cg->oom_ctl_fd = TAKE_FD(ofd);
	return 0;
}

int cg_v1_create(struct sbx_cgroup *cg, struct cg_hosttab *tab, const char *parent,
                 const char *name, struct sbx_err *err)
{
	int r = make_leaves(cg, tab, parent, name, err);
	if (r >= 0)
		r = write_limits(cg, err);
	if (r >= 0)
		r = cg_v1_open_oom_fd(cg, err);
	return r;
}
