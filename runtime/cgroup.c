/* One sandbox's cgroup: create, attach, account, kill, destroy.  The
 * version-specific parts live in cgroup_v1.c and cgroup_v2.c. */
#include "runtime/cgroup.h"
#include "runtime/cgroup_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

void cgroup_host_default(struct sbx_cgroup_host *host)
{
	*host = (struct sbx_cgroup_host){
	    .mountinfo = "/proc/self/mountinfo",
	    .proc_cgroup = "/proc/self/cgroup",
	    .meminfo = "/proc/meminfo",
	    .pid = getpid(),
	    .uid = geteuid(),
	    .rootless = geteuid() != 0,
	    .start_scope = cgroup_start_scope_helper,
	};
}

static struct sbx_cgroup *cg_new(const struct sbx_cgroup_host *host,
                                 const struct sbx_cgroup_limits *limits)
{
	struct sbx_cgroup *cg = calloc(1, sizeof(*cg));
	if (!cg)
		return NULL;
	cg->host = *host;
	cg->limits = *limits;
	cg->oom_fd = cg->oom_ctl_fd = -1;
	for (size_t i = 0; i < CG_MAX_LEAVES; i++)
		cg->leaves[i].fd = -1;
	return cg;
}

static enum sbx_cgroup_version pick_version(const struct cg_hosttab *tab)
{
	const struct cg_mount *v2 = cg_find_v2(tab);
	/* A hybrid host's cgroup2 (hugetlb only, say) cannot hold limits:
	 * such a host is v1 for our purposes. */
	if (v2 && (v2->ctrls & CG_MEMORY))
		return SBX_CGROUP_V2;
	for (size_t i = 0; i < tab->n_mounts; i++)
		if (!tab->mounts[i].v2 && (tab->mounts[i].ctrls & CG_MEMORY))
			return SBX_CGROUP_V1;
	return v2 ? SBX_CGROUP_V2 : SBX_CGROUP_NONE;
}

int cgroup_create(const struct sbx_cgroup_host *host, const char *parent, const char *name,
                  const struct sbx_cgroup_limits *limits, struct sbx_cgroup **ret,
                  struct sbx_err *err)
{
	int r = cgroup_limits_validate(limits, err);
	if (r < 0)
		return r;
	_cleanup_cgroup_ struct sbx_cgroup *cg = cg_new(host, limits);
	if (!cg)
		return sbx_fail(err, ENOMEM, "cgroup");
	if (limits->unlimited) {
		*ret = TAKE_PTR(cg);
		return 0;
	}
	_cleanup_free_ struct cg_hosttab *tab = malloc(sizeof(*tab));
	if (!tab)
		return sbx_fail(err, ENOMEM, "cgroup");
	r = cg_host_load(host, tab, err);
	if (r < 0)
		return sbx_wrap(err, "cgroup");
	cg->swap_on = tab->swap_on;
	cg->version = pick_version(tab);
	switch (cg->version) {
	case SBX_CGROUP_V2:
		r = cg_v2_create(cg, tab, parent, name, err);
		break;
	case SBX_CGROUP_V1:
		r = cg_v1_create(cg, tab, parent, name, err);
		break;
	default:
		return sbx_failx(err, ENOENT,
		                 "cgroup: no cgroup file system with the memory controller is "
		                 "mounted (see %s); use --no-limits to run without caps",
		                 host->mountinfo);
	}
	if (r < 0)
		return r; /* the cleanup removes what was made */
	*ret = TAKE_PTR(cg);
	return 0;
}

enum sbx_cgroup_version cgroup_version(const struct sbx_cgroup *cg)
{
	return cg->version;
}

const char *cgroup_warning(const struct sbx_cgroup *cg)
{
	return cg->warning[0] ? cg->warning : NULL;
}

const struct sbx_cgroup_limits *cgroup_limits(const struct sbx_cgroup *cg)
{
	return &cg->limits;
}

int cgroup_fd(const struct sbx_cgroup *cg)
{
	return cg->version == SBX_CGROUP_V2 && cg->n_leaves ? cg->leaves[0].fd : -1;
}

const char *cgroup_path(const struct sbx_cgroup *cg)
{
	for (size_t i = 0; i < cg->n_leaves; i++)
		if (cg->leaves[i].ctrls & CG_MEMORY)
			return cg->leaves[i].path;
	return "";
}

int cgroup_oom_fd(const struct sbx_cgroup *cg)
{
	return cg->oom_fd;
}

size_t cgroup_v1_mounts(const struct sbx_cgroup *cg, struct sbx_cgroup_v1_mount *ret, size_t max)
{
	if (cg->version != SBX_CGROUP_V1)
		return 0;
	size_t n = 0;
	for (size_t i = 0; i < cg->n_leaves && n < max; i++, n++)
		ret[n] = (struct sbx_cgroup_v1_mount){cg->leaves[i].name, cg->leaves[i].path};
	return n;
}

int cgroup_attach(struct sbx_cgroup *cg, pid_t pid, struct sbx_err *err)
{
	char v[24];
	snprintf(v, sizeof(v), "%ld", (long)pid);
	for (size_t i = 0; i < cg->n_leaves; i++) {
		int r = cg_write(cg->leaves[i].fd, cg->leaves[i].path, "cgroup.procs", v, err);
		if (r < 0)
			return sbx_wrap(err, "cgroup: attach pid %ld", (long)pid);
	}
	return 0;
}

int cgroup_set_memory(struct sbx_cgroup *cg, uint64_t memory, bool swap_set, uint64_t swap,
                      struct sbx_err *err)
{
	struct sbx_cgroup_limits l = cg->limits;
	l.memory = memory;
	l.memory_swap_set = swap_set;
	l.memory_swap = swap;
	int r = cgroup_limits_validate(&l, err);
	if (r < 0)
		return r;
	if (cg->version == SBX_CGROUP_V2)
		return cg_v2_set_memory(cg, &l, err);
	if (cg->version == SBX_CGROUP_V1)
		return cg_v1_set_memory(cg, &l, err);
	return 0;
}

static void read_stat(int fd, const char *file, uint64_t *ret)
{
	if (fd >= 0 && cg_read_u64(fd, file, ret) < 0)
		*ret = SBX_STAT_UNKNOWN;
}

static void read_keyed(int fd, const char *file, const char *key, uint64_t *ret)
{
	if (fd >= 0 && cg_read_keyed(fd, file, key, ret) < 0)
		*ret = SBX_STAT_UNKNOWN;
}

static uint64_t div_known(uint64_t v, uint64_t d)
{
	return v == SBX_STAT_UNKNOWN ? v : v / d;
}

static void stats_v2(struct sbx_cgroup *cg, struct sbx_cgroup_stats *s)
{
	int fd = cg->leaves[0].fd;
	read_stat(fd, "memory.current", &s->memory_current);
	read_stat(fd, "memory.peak", &s->memory_peak);
	read_keyed(fd, "cpu.stat", "usage_usec", &s->cpu_usec);
	read_keyed(fd, "cpu.stat", "nr_throttled", &s->nr_throttled);
	read_keyed(fd, "cpu.stat", "throttled_usec", &s->throttled_usec);
	read_keyed(fd, "memory.events", "oom_kill", &s->oom_kills);
	read_stat(fd, "pids.current", &s->pids_current);
	read_stat(fd, "pids.peak", &s->pids_peak);
	read_keyed(fd, "pids.events", "max", &s->pids_refused);
}

static void stats_v1(struct sbx_cgroup *cg, struct sbx_cgroup_stats *s)
{
	struct cg_leaf *mem = cg_leaf_for(cg, CG_MEMORY), *cpu = cg_leaf_for(cg, CG_CPU),
	               *acct = cg_leaf_for(cg, CG_CPUACCT), *pids = cg_leaf_for(cg, CG_PIDS);
	int mfd = mem ? mem->fd : -1, cfd = cpu ? cpu->fd : -1, afd = acct ? acct->fd : -1,
	    pfd = pids ? pids->fd : -1;
	read_stat(mfd, "memory.usage_in_bytes", &s->memory_current);
	read_stat(mfd, "memory.max_usage_in_bytes", &s->memory_peak);
	read_keyed(mfd, "memory.oom_control", "oom_kill", &s->oom_kills);
	read_stat(afd, "cpuacct.usage", &s->cpu_usec);
	s->cpu_usec = div_known(s->cpu_usec, 1000);
	read_keyed(cfd, "cpu.stat", "nr_throttled", &s->nr_throttled);
	read_keyed(cfd, "cpu.stat", "throttled_time", &s->throttled_usec);
	s->throttled_usec = div_known(s->throttled_usec, 1000);
	read_stat(pfd, "pids.current", &s->pids_current);
	read_stat(pfd, "pids.peak", &s->pids_peak);
	read_keyed(pfd, "pids.events", "max", &s->pids_refused);
}

int cgroup_stats(struct sbx_cgroup *cg, struct sbx_cgroup_stats *ret, struct sbx_err *err)
{
	struct sbx_cgroup_stats s;
	memset(&s, 0xff, sizeof(s)); /* every number SBX_STAT_UNKNOWN */
	s.memory_peak_sampled = false;
	if (cg->version == SBX_CGROUP_V2)
		stats_v2(cg, &s);
	else if (cg->version == SBX_CGROUP_V1)
		stats_v1(cg, &s);
	if (s.memory_current != SBX_STAT_UNKNOWN && s.memory_current > cg->peak_sampled)
		cg->peak_sampled = s.memory_current;
	if (s.memory_peak == SBX_STAT_UNKNOWN && cg->version != SBX_CGROUP_NONE) {
		s.memory_peak = cg->peak_sampled;
		s.memory_peak_sampled = true;
	}
	*ret = s;
	return 0;
}

static uint64_t oom_kill_count(struct sbx_cgroup *cg, uint64_t events)
{
	uint64_t v;
	if (cg->version == SBX_CGROUP_V2) {
		if (cg_read_keyed(cg->leaves[0].fd, "memory.events", "oom_kill", &v) >= 0)
			return v;
	} else {
		struct cg_leaf *mem = cg_leaf_for(cg, CG_MEMORY);
		if (cg_read_keyed(mem->fd, "memory.oom_control", "oom_kill", &v) >= 0)
			return v;
		/* before 4.13 there is no counter: each eventfd tick is an OOM */
		return cg->oom_kills_seen + events;
	}
	return cg->oom_kills_seen;
}

int cgroup_oom_event(struct sbx_cgroup *cg, uint64_t *ret_new_kills, struct sbx_err *err)
{
	uint64_t events = 0;
	if (cg->oom_fd < 0) {
		*ret_new_kills = 0;
		return 0;
	}
	for (;;) {
		char buf[4096] __attribute__((aligned(8)));
		ssize_t r = read(cg->oom_fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (cg->version == SBX_CGROUP_V1 && r == sizeof(uint64_t))
			events += *(uint64_t *)buf;
	}
	if (events && cg->version == SBX_CGROUP_V1 && cg->limits.oom_group) {
		/* the kernel's killer is off here (see cgroup_v1.c): this OOM
		 * is ours to end, all at once, and counts as one kill */
		cg->oom_kills_seen += 1;
		*ret_new_kills = 1;
		return cgroup_kill(cg, err);
	}
	uint64_t count = oom_kill_count(cg, events);
	/* The v1 eventfd ticks when the OOM killer is invoked, a moment before
	 * its victim is counted (measured: the counter still showed 0 on
	 * wakeup).  Give it up to 100 ms. */
	for (int i = 0; events && count <= cg->oom_kills_seen && i < 20; i++) {
		struct timespec ts = {0, 5 * 1000000L};
		nanosleep(&ts, NULL);
		count = oom_kill_count(cg, 0);
	}
	uint64_t fresh = count > cg->oom_kills_seen ? count - cg->oom_kills_seen : 0;
	cg->oom_kills_seen = count > cg->oom_kills_seen ? count : cg->oom_kills_seen;
	*ret_new_kills = fresh;
	return 0;
}

/* --- killing: only what is listed in our own leaves ------------------- */

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_kill(int pidfd)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
}

/* Dead but not yet reaped by its parent: nothing left to kill. */
static bool is_zombie(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	char *paren = strrchr(buf, ')');
	return !paren || paren[1] != ' ' || paren[2] == 'Z' || paren[2] == 'X';
}

struct pidlist {
	pid_t *v;
	size_t n;
};

static int read_procs(const struct cg_leaf *leaf, struct pidlist *ret)
{
	_cleanup_free_ char *buf = NULL;
	int r = sbx_read_file(leaf->fd, "cgroup.procs", 16 << 20, &buf, NULL, NULL);
	if (r < 0)
		return r;
	size_t cap = 0;
	ret->v = NULL;
	ret->n = 0;
	for (char *p = buf; *p;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (ret->n == cap) {
			cap = cap ? cap * 2 : 64;
			pid_t *nv = realloc(ret->v, cap * sizeof(pid_t));
			if (!nv) {
				free(ret->v);
				return -ENOMEM;
			}
			ret->v = nv;
		}
		ret->v[ret->n++] = (pid_t)v;
		p = end + strspn(end, " \n");
	}
	return 0;
}

static bool listed(const struct pidlist *l, pid_t pid)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == pid)
			return true;
	return false;
}

/* One pass over a leaf.  A pid is pinned with a pidfd first and signalled
 * only if the leaf still lists it afterwards, so a pid that was reused by
 * some other process in between is never hit.  *ret_alive: live ones seen. */
static int kill_round(const struct cg_leaf *leaf, size_t *ret_alive)
{
	struct pidlist first = {0}, second = {0};
	int r = read_procs(leaf, &first);
	if (r < 0)
		return r;
	size_t alive = 0;
	int *fds = first.n ? malloc(first.n * sizeof(int)) : NULL;
	if (first.n && !fds) {
		free(first.v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < first.n; i++)
		fds[i] = is_zombie(first.v[i]) ? -1 : pidfd_open_(first.v[i]);
	r = read_procs(leaf, &second);
	for (size_t i = 0; i < first.n; i++) {
		if (fds[i] < 0)
			continue;
		if (r >= 0 && listed(&second, first.v[i])) {
			alive++;
			(void)pidfd_kill(fds[i]);
		}
		close(fds[i]);
	}
	free(fds);
	free(first.v);
	free(second.v);
	*ret_alive = alive;
	return r;
}

int cgroup_kill(struct sbx_cgroup *cg, struct sbx_err *err)
{
	if (cg->version == SBX_CGROUP_NONE)
		return 0;
	bool thaw = false;
	if (cg->version == SBX_CGROUP_V2) {
		struct cg_leaf *leaf = &cg->leaves[0];
		if (cg_has_file(leaf->fd, "cgroup.kill"))
			(void)cg_write(leaf->fd, leaf->path, "cgroup.kill", "1", NULL);
		else if (cg_has_file(leaf->fd, "cgroup.freeze"))
			/* frozen tasks cannot fork away from us; SIGKILL still
			 * reaches them */
			thaw = cg_write(leaf->fd, leaf->path, "cgroup.freeze", "1", NULL) >= 0;
	}
	int r = 0;
	for (int round = 0;; round++) {
		size_t alive = 0;
		for (size_t i = 0; i < cg->n_leaves; i++) {
			size_t a = 0;
			r = kill_round(&cg->leaves[i], &a);
			if (r < 0)
				break;
			alive += a;
		}
		if (r < 0 || alive == 0)
			break;
		if (round >= 500) {
			r = -EBUSY;
			break;
		}
		struct timespec ts = {0, (round < 10 ? 1 : 10) * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (thaw)
		(void)cg_write(cg->leaves[0].fd, cg->leaves[0].path, "cgroup.freeze", "0", NULL);
	if (r == -EBUSY)
		return sbx_failx(err, EBUSY, "cgroup %s: processes survive SIGKILL",
		                 cg->leaves[0].path);
	if (r < 0)
		return sbx_fail(err, -r, "cgroup %s: kill", cg->leaves[0].path);
	return 0;
}

static bool leaf_has_procs(const struct cg_leaf *leaf)
{
	char buf[32];
	return cg_read(leaf->fd, "cgroup.procs", buf, sizeof(buf)) > 0;
}

int cgroup_destroy(struct sbx_cgroup **cgp, struct sbx_err *err)
{
	struct sbx_cgroup *cg = *cgp;
	int ret = 0;
	if (!cg)
		return 0;
	*cgp = NULL;
	if (cg->oom_fd >= 0)
		close(cg->oom_fd);
	if (cg->oom_ctl_fd >= 0)
		close(cg->oom_ctl_fd);
	bool busy = false;
	for (size_t i = 0; i < cg->n_leaves; i++)
		busy |= leaf_has_procs(&cg->leaves[i]);
	if (busy)
		ret = cgroup_kill(cg, err);
	for (size_t i = 0; i < cg->n_leaves; i++) {
		/* the fd (and its flock) stays open until the leaf is gone, so
		 * no sweep takes it from under us */
		int r = cg_remove_leaf(&cg->host, cg->leaves[i].path, ret < 0 ? NULL : err);
		if (r < 0 && ret == 0)
			ret = r;
		close(cg->leaves[i].fd);
	}
	free(cg);
	return ret;
}
