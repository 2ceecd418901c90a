/* runtime/cgroup: limits parsing and formatting, and parent selection,
 * leaves, limits, stats and cleanup against a fake cgroup tree in a
 * temporary folder.  A fake "kernel" (fake_mkdir/fake_rmdir) fills a new
 * cgroup with the control files a real one would show, and refuses rmdir
 * while cgroup.procs lists something. */
/* test buffers are sized for the short temp paths used here */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "runtime/cgroup.h"
#include "runtime/cgroup_internal.h"

#define FAKE_PID 4242
#define PAGE_MAX "9223372036854771712"

/* ---- helpers ------------------------------------------------------------ */

struct fake {
	char root[64];
	char mountinfo[PATH_MAX + 32];
	char proc_cgroup[PATH_MAX + 32];
	char meminfo[PATH_MAX + 32];
	bool v1;
	bool memsw;       /* v1: memory.memsw.* present */
	bool no_swap_max; /* v2: no memory.swap.max */
	bool no_peak;     /* v2: no memory.peak (before 5.19) */
	int scope_calls;
	char scope_unit[128];
	const char *scope_controllers; /* what the fake systemd scope offers */
	const char *scope_error;       /* fake start_scope fails with this */
	struct sbx_cgroup_host host;
};

static void put(const char *dir, const char *name, const char *content)
{
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void putf(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

/* The content of dir/name, or "<missing>". */
static const char *get(const char *dir, const char *name)
{
	static char buf[4][4096];
	static int slot;
	char *b = buf[slot++ % 4];
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "r");
	if (!f)
		return "<missing>";
	size_t n = fread(b, 1, 4095, f);
	b[n] = '\0';
	fclose(f);
	return b;
}

static bool exists(const char *dir, const char *name)
{
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

static void mkdirs(const char *root, const char *rel)
{
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	assert_int_equal(sbx_mkdir_p(p, 0755, NULL), 0);
}

static char *path2(const char *a, const char *b)
{
	static char buf[4][PATH_MAX * 2];
	static int slot;
	char *p = buf[slot++ % 4];
	snprintf(p, PATH_MAX * 2, "%s/%s", a, b);
	return p;
}

/* Files a kernel would create in a new cgroup. */
static void fake_mkdir(int dirfd, const char *path, void *data)
{
	struct fake *fk = data;
	char ctrls[512] = "";
	put(path, "cgroup.procs", "");
	if (!fk->v1) {
		/* a v2 child offers what its parent enabled */
		char parent[PATH_MAX];
		snprintf(parent, sizeof(parent), "%s", path);
		*strrchr(parent, '/') = '\0';
		snprintf(ctrls, sizeof(ctrls), "%s", get(parent, "cgroup.subtree_control"));
		for (char *c = ctrls; *c; c++)
			if (*c == '+')
				*c = ' ';
		put(path, "cgroup.controllers", ctrls);
		put(path, "cgroup.subtree_control", "");
		put(path, "cgroup.kill", "");
		put(path, "cgroup.freeze", "0");
		unsigned m = cg_mask_parse(ctrls);
		if (m & CG_MEMORY) {
			put(path, "memory.max", "max\n");
			if (!fk->no_swap_max)
				put(path, "memory.swap.max", "max\n");
			put(path, "memory.oom.group", "0\n");
			put(path, "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
			put(path, "memory.current", "0\n");
			if (!fk->no_peak)
				put(path, "memory.peak", "0\n");
		}
		if (m & CG_CPU) {
			put(path, "cpu.max", "max 100000\n");
			put(path, "cpu.stat",
			    "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"
			    "nr_periods 0\nnr_throttled 0\nthrottled_usec 0\n");
		}
		if (m & CG_PIDS) {
			put(path, "pids.max", "max\n");
			put(path, "pids.current", "0\n");
			put(path, "pids.peak", "0\n");
			put(path, "pids.events", "max 0\n");
		}
		return;
	}
	put(path, "tasks", "");
	if (strstr(path, "/memory/")) {
		put(path, "memory.limit_in_bytes", PAGE_MAX "\n");
		if (fk->memsw)
			put(path, "memory.memsw.limit_in_bytes", PAGE_MAX "\n");
		put(path, "memory.usage_in_bytes", "0\n");
		put(path, "memory.max_usage_in_bytes", "0\n");
		put(path, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
		put(path, "memory.swappiness", "60\n");
		put(path, "cgroup.event_control", "");
	} else if (strstr(path, "/cpu,cpuacct/")) {
		put(path, "cpu.cfs_period_us", "100000\n");
		put(path, "cpu.cfs_quota_us", "-1\n");
		put(path, "cpu.stat", "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n");
		put(path, "cpuacct.usage", "0\n");
	} else if (strstr(path, "/cpuacct/")) {
		put(path, "cpuacct.usage", "0\n");
	} else if (strstr(path, "/cpu/")) {
		put(path, "cpu.cfs_period_us", "100000\n");
		put(path, "cpu.cfs_quota_us", "-1\n");
		put(path, "cpu.stat", "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n");
	} else if (strstr(path, "/pids/")) {
		put(path, "pids.max", "max\n");
		put(path, "pids.current", "0\n");
		put(path, "pids.peak", "0\n");
		put(path, "pids.events", "max 0\n");
	}
}

/* A kernel refuses rmdir while the cgroup holds processes; otherwise its
 * control files vanish with it. */
static void fake_rmdir(int dirfd, const char *path, void *data)
{
	const char *procs = get(path, "cgroup.procs");
	if (strcmp(procs, "<missing>") && *procs)
		return;
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_type == DT_REG)
			unlinkat(dirfd, de->d_name, 0);
	closedir(d);
}

static int fake_scope(const char *unit, pid_t pid, void *data, struct sbx_err *err)
{
	struct fake *fk = data;
	fk->scope_calls++;
	snprintf(fk->scope_unit, sizeof(fk->scope_unit), "%s", unit);
	if (fk->scope_error)
		return sbx_failx(err, ENOENT, "%s", fk->scope_error);
	char rel[256], dir[PATH_MAX * 2], pidbuf[32];
	snprintf(rel, sizeof(rel), "user.slice/user-1000.slice/user@1000.service/app.slice/%s",
	         unit);
	mkdirs(fk->root, path2("cg2", rel));
	snprintf(dir, sizeof(dir), "%s/cg2/%s", fk->root, rel);
	snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int)pid);
	put(dir, "cgroup.procs", pidbuf);
	put(dir, "cgroup.subtree_control", "");
	put(dir, "cgroup.controllers", fk->scope_controllers);
	char line[512];
	snprintf(line, sizeof(line), "0::/%s\n", rel);
	putf(fk->proc_cgroup, line);
	return 0;
}

/* The fake tree of the running test, removed by the teardown even when an
 * assertion failed half-way. */
static char current_root[64];

static void fake_init(struct fake *fk, bool v1)
{
	memset(fk, 0, sizeof(*fk));
	snprintf(fk->root, sizeof(fk->root), "/tmp/trimo-cgtest-XXXXXX");
	assert_non_null(mkdtemp(fk->root));
	memcpy(current_root, fk->root, sizeof(current_root));
	snprintf(fk->mountinfo, sizeof(fk->mountinfo), "%s/mountinfo", fk->root);
	snprintf(fk->proc_cgroup, sizeof(fk->proc_cgroup), "%s/proc-cgroup", fk->root);
	snprintf(fk->meminfo, sizeof(fk->meminfo), "%s/meminfo", fk->root);
	putf(fk->meminfo, "MemTotal: 24000000 kB\nSwapTotal: 0 kB\n");
	fk->v1 = v1;
	fk->scope_controllers = "cpu memory pids\n";
	fk->host = (struct sbx_cgroup_host){
	    .mountinfo = fk->mountinfo,
	    .proc_cgroup = fk->proc_cgroup,
	    .meminfo = fk->meminfo,
	    .pid = FAKE_PID,
	    .uid = 0,
	    .rootless = false,
	    .start_scope = fake_scope,
	    .scope_data = fk,
	    .fake_mkdir = fake_mkdir,
	    .fake_rmdir = fake_rmdir,
	    .fake_data = fk,
	};
	char mi[PATH_MAX * 8];
	if (!v1) {
		mkdirs(fk->root, "cg2");
		put(path2(fk->root, "cg2"), "cgroup.controllers",
		    "cpuset cpu io memory hugetlb pids\n");
		put(path2(fk->root, "cg2"), "cgroup.subtree_control", "");
		put(path2(fk->root, "cg2"), "cgroup.procs", "1\n");
		snprintf(mi, sizeof(mi),
		         "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
		         "31 23 0:28 / %s/cg2 rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 "
		         "cgroup2 rw,nsdelegate,memory_recursiveprot\n",
		         fk->root);
		putf(fk->mountinfo, mi);
		putf(fk->proc_cgroup, "0::/user.slice/user-1000.slice/session-1.scope\n");
		return;
	}
	/* the hybrid layout of the CI machine */
	static const char *const hier[] = {"cpu", "cpuacct", "memory", "pids", "systemd"};
	for (size_t i = 0; i < 5; i++) {
		mkdirs(fk->root, hier[i]);
		put(path2(fk->root, hier[i]), "cgroup.procs", "1\n");
	}
	mkdirs(fk->root, "memory/process_api/6c9d");
	mkdirs(fk->root, "unified");
	put(path2(fk->root, "unified"), "cgroup.controllers", "hugetlb\n");
	snprintf(mi, sizeof(mi),
	         "31 23 0:28 / %s rw,relatime - tmpfs tmpfs rw,mode=755\n"
	         "32 31 0:29 / %s/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	         "33 31 0:30 / %s/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
	         "35 31 0:32 / %s/memory rw,relatime - cgroup cgroup rw,memory\n"
	         "39 31 0:36 / %s/pids rw,relatime - cgroup cgroup rw,pids\n"
	         "40 31 0:37 / %s/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
	         "41 31 0:38 / %s/unified rw,relatime - cgroup2 cgroup2 rw\n",
	         fk->root, fk->root, fk->root, fk->root, fk->root, fk->root, fk->root);
	putf(fk->mountinfo, mi);
	putf(fk->proc_cgroup, "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/6c9d\n"
	                      "2:cpuacct:/\n1:cpu:/\n0::/\n");
}

static void fake_fini(struct fake *fk)
{
	struct sbx_err err = {0};
	sbx_rm_rf_at(AT_FDCWD, fk->root, &err);
	current_root[0] = '\0';
}

static int remove_fake(void **state)
{
	if (current_root[0]) {
		struct sbx_err err = {0};
		sbx_rm_rf_at(AT_FDCWD, current_root, &err);
		current_root[0] = '\0';
	}
	return 0;
}

/* The single trimo-* entry below dir (asserts there is exactly one). */
static const char *only_leaf(const char *dir, const char *prefix)
{
	static char name[256];
	int n = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d)))
		if (sbx_str_has_prefix(de->d_name, prefix)) {
			snprintf(name, sizeof(name), "%s", de->d_name);
			n++;
		}
	closedir(d);
	assert_int_equal(n, 1);
	return name;
}

static void limits_64m(struct sbx_cgroup_limits *l)
{
	cgroup_limits_init(l);
	l->memory = 64 << 20;
	l->cpu_quota_us = 150000;
	l->pids = 1024;
}

/* ---- pure helpers ------------------------------------------------------- */

static void test_format(void **state)
{
	char buf[32];
	assert_string_equal(cgroup_format_cpu_max(150000, buf, sizeof(buf)), "150000 100000");
	assert_string_equal(cgroup_format_cpus(150000, buf, sizeof(buf)), "1.5");
	assert_string_equal(cgroup_format_cpu_max(20000, buf, sizeof(buf)), "20000 100000");
	assert_string_equal(cgroup_format_cpus(200000, buf, sizeof(buf)), "2");
	assert_string_equal(cgroup_format_cpu_max(1000, buf, sizeof(buf)), "1000 100000");
	assert_string_equal(cgroup_format_cpus(1000, buf, sizeof(buf)), "0.01");
	assert_string_equal(cgroup_format_cpu_max(0, buf, sizeof(buf)), "max 100000");
	assert_string_equal(cgroup_format_cpus(0, buf, sizeof(buf)), "none");
	assert_string_equal(cgroup_format_size(64 << 20, buf, sizeof(buf)), "64M");
	assert_string_equal(cgroup_format_size((64 << 20) - 4096, buf, sizeof(buf)), "63.9M");
	assert_string_equal(cgroup_format_size(3ULL << 29, buf, sizeof(buf)), "1.5G");
	assert_string_equal(cgroup_format_size(900 << 10, buf, sizeof(buf)), "900K");
	assert_string_equal(cgroup_format_size(12, buf, sizeof(buf)), "12B");
	assert_string_equal(cgroup_format_size(SBX_LIMIT_MAX, buf, sizeof(buf)), "max");
	assert_string_equal(cgroup_format_v2_value(SBX_LIMIT_MAX, buf, sizeof(buf)), "max");
	assert_string_equal(cgroup_format_v2_value(1024, buf, sizeof(buf)), "1024");
	assert_string_equal(cgroup_format_v1_value(SBX_LIMIT_MAX, buf, sizeof(buf)), "-1");
	assert_string_equal(cgroup_format_v1_value(67108864, buf, sizeof(buf)), "67108864");
}

static void test_limits_validate(void **state)
{
	struct sbx_err err = {0};
	struct sbx_cgroup_limits l;
	cgroup_limits_init(&l);
	assert_true(l.memory == SBX_LIMIT_MAX);
	assert_int_equal(l.pids, 4096);
	assert_int_equal(l.cpu_quota_us, 0);
	assert_false(l.memory_swap_set);
	assert_false(l.oom_group);
	assert_int_equal(cgroup_limits_validate(&l, &err), 0);
	l.memory_swap_set = true;
	assert_int_equal(cgroup_limits_validate(&l, &err), -EINVAL);
	assert_string_equal(err.msg, "memory_swap needs a memory limit");
	l.memory = 64 << 20;
	assert_int_equal(cgroup_limits_validate(&l, &err), 0);
	l.pids = 1;
	assert_int_equal(cgroup_limits_validate(&l, &err), -EINVAL);
}

/* The kernel keeps memory.limit_in_bytes <= memory.memsw.limit_in_bytes
 * after every write (measured on this machine: the wrong order is EINVAL). */
static void test_v1_memory_order(void **state)
{
	const uint64_t M = 1 << 20, fresh = 9223372036854771712ULL;
	/* fresh leaf: both unlimited; the limit fits under memsw */
	assert_true(cg_v1_limit_first(fresh, 64 * M));
	/* raising 64M -> 128M: memsw first */
	assert_false(cg_v1_limit_first(64 * M, 128 * M));
	/* lowering 128M -> 32M: limit first */
	assert_true(cg_v1_limit_first(128 * M, 32 * M));
	/* to unlimited: memsw first */
	assert_false(cg_v1_limit_first(64 * M, SBX_LIMIT_MAX));
	assert_int_equal(cg_v1_memsw_for(64 * M, false, 0), 64 * M);
	assert_int_equal(cg_v1_memsw_for(64 * M, true, 0), 64 * M);
	assert_int_equal(cg_v1_memsw_for(64 * M, true, 1024 * M), 1088 * M);
	assert_true(cg_v1_memsw_for(64 * M, true, SBX_LIMIT_MAX) == SBX_LIMIT_MAX);
	assert_true(cg_v1_memsw_for(SBX_LIMIT_MAX, false, 0) == SBX_LIMIT_MAX);
}

static void test_mountinfo_parsing(void **state)
{
	char s[] = "/sys/fs/cgroup/a\\040b\\134c";
	cg_unescape_mountinfo(s);
	assert_string_equal(s, "/sys/fs/cgroup/a b\\c");
	assert_int_equal(cg_mask_parse("rw,cpu,cpuacct"), CG_CPU | CG_CPUACCT);
	assert_int_equal(cg_mask_parse("cpuset cpu io memory hugetlb pids\n"),
	                 CG_CPU | CG_MEMORY | CG_PIDS);
	assert_int_equal(cg_mask_parse("+memory +cpu"), CG_CPU | CG_MEMORY);
	assert_int_equal(cg_mask_parse("hugetlb"), 0);

	struct cg_mount m = {.root = "/ctr", .point = "/sys/fs/cgroup"};
	char buf[PATH_MAX];
	assert_int_equal(cg_host_path(&m, "/ctr/a/b", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/sys/fs/cgroup/a/b");
	assert_int_equal(cg_host_path(&m, "/ctr", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/sys/fs/cgroup");
	assert_int_equal(cg_host_path(&m, "/ctrl", buf, sizeof(buf)), -EXDEV);
	assert_int_equal(cg_host_path(&m, "/../x", buf, sizeof(buf)), -EXDEV);

	struct sbx_err err = {0};
	assert_int_equal(cg_config_path(&m, "/ctr/own", "/ci/agents/", buf, sizeof(buf), &err), 0);
	assert_string_equal(buf, "/sys/fs/cgroup/ci/agents");
	assert_int_equal(cg_config_path(&m, "/ctr/own", "./trimo/x", buf, sizeof(buf), &err), 0);
	assert_string_equal(buf, "/sys/fs/cgroup/own/trimo/x");
	assert_int_equal(cg_config_path(&m, NULL, "./trimo", buf, sizeof(buf), &err), -ENOENT);
	assert_int_equal(cg_config_path(&m, "/ctr", "ci/../../etc", buf, sizeof(buf), &err),
	                 -EINVAL);
	assert_string_equal(err.msg,
	                    "[cgroups] parent 'ci/../../etc': empty, '.' or '..' component");

	/* the real hybrid machine, parsed through a file */
	struct fake fk;
	fake_init(&fk, true);
	struct cg_hosttab tab;
	assert_int_equal(cg_host_load(&fk.host, &tab, &err), 0);
	assert_int_equal(tab.n_mounts, 6);
	assert_non_null(cg_find_v2(&tab));
	assert_int_equal(cg_find_v2(&tab)->ctrls, 0);
	const struct cg_mount *mem = cg_find_v1(&tab, CG_MEMORY);
	assert_non_null(mem);
	assert_string_equal(mem->point, path2(fk.root, "memory"));
	assert_string_equal(tab.v1_path[0], "/process_api/6c9d");
	assert_false(tab.swap_on);
	fake_fini(&fk);
}

/* ---- v2 ------------------------------------------------------------------- */

static void test_v2_root(void **state)
{
	struct fake fk;
	fake_init(&fk, false);
	struct sbx_err err = {0};
	struct sbx_cgroup_limits l;
	limits_64m(&l);
	l.oom_group = true;
	struct sbx_cgroup *cg = NULL;
	assert_int_equal(cgroup_create(&fk.host, NULL, "jwt-auth", &l, &cg, &err), 0);
	assert_int_equal(cgroup_version(cg), SBX_CGROUP_V2);
	assert_null(cgroup_warning(cg));
	char *root = path2(fk.root, "cg2");
	char slice[PATH_MAX];
	snprintf(slice, sizeof(slice), "%s/trimo.slice", root);
	assert_string_equal(get(root, "cgroup.subtree_control"), "+memory +cpu +pids");
	assert_string_equal(get(slice, "cgroup.subtree_control"), "+memory +cpu +pids");
	const char *name = only_leaf(slice, "trimo-jwt-auth-");
	assert_int_equal(strlen(name), strlen("trimo-jwt-auth-") + 8);
	char leaf[PATH_MAX];
	snprintf(leaf, sizeof(leaf), "%s/%s", slice, name);
	assert_string_equal(cgroup_path(cg), leaf);
	assert_string_equal(get(leaf, "memory.max"), "67108864");
	assert_string_equal(get(leaf, "memory.swap.max"), "0");
	assert_string_equal(get(leaf, "cpu.max"), "150000 100000");
	assert_string_equal(get(leaf, "pids.max"), "1024");
	assert_string_equal(get(leaf, "memory.oom.group"), "1");
	assert_true(cgroup_fd(cg) >= 0);
	struct stat a, b;
	assert_int_equal(fstat(cgroup_fd(cg), &a), 0);
	assert_int_equal(stat(leaf, &b), 0);
	assert_true(a.st_ino == b.st_ino);
	struct sbx_cgroup_v1_mount mounts[4];
	assert_int_equal(cgroup_v1_mounts(cg, mounts, 4), 0);

	/* attach writes the pid; the OOM fd wakes on memory.events */
	assert_int_equal(cgroup_attach(cg, 777, &err), 0);
	assert_string_equal(get(leaf, "cgroup.procs"), "777");
	put(leaf, "cgroup.procs", "");
	struct pollfd pfd = {.fd = cgroup_oom_fd(cg), .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 0), 0);
	put(leaf, "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
	assert_int_equal(poll(&pfd, 1, 1000), 1);
	uint64_t kills = 9;
	assert_int_equal(cgroup_oom_event(cg, &kills, &err), 0);
	assert_int_equal(kills, 1);
	assert_int_equal(poll(&pfd, 1, 0), 0);
	assert_int_equal(cgroup_oom_event(cg, &kills, &err), 0);
	assert_int_equal(kills, 0);

	put(leaf, "memory.current", "1000\n");
	put(leaf, "memory.peak", "67108864\n");
	put(leaf, "cpu.stat", "usage_usec 2500\nnr_throttled 7\nthrottled_usec 90\n");
	put(leaf, "pids.peak", "12\n");
	put(leaf, "pids.events", "max 3\n");
	struct sbx_cgroup_stats s;
	assert_int_equal(cgroup_stats(cg, &s, &err), 0);
	assert_int_equal(s.memory_current, 1000);
	assert_int_equal(s.memory_peak, 67108864);
	assert_false(s.memory_peak_sampled);
	assert_int_equal(s.cpu_usec, 2500);
	assert_int_equal(s.nr_throttled, 7);
	assert_int_equal(s.throttled_usec, 90);
	assert_int_equal(s.oom_kills, 1);
	assert_int_equal(s.pids_current, 0);
	assert_int_equal(s.pids_peak, 12);
	assert_int_equal(s.pids_refused, 3);

	assert_int_equal(cgroup_destroy(&cg, &err), 0);
	assert_null(cg);
	assert_false(exists(slice, name));
	assert_true(exists(root, "trimo.slice"));
	fake_fini(&fk);
}

/* Controllers already enabled are left alone; a root missing one is an
 * error that names it. */
static void test_v2_root_enabled_and_missing(void **state)
{
	struct fake fk;
	fake_init(&fk, false);
	struct sbx_err err = {0};
	struct sbx_cgroup_limits l;
	limits_64m(&l);
	char *root = path2(fk.root, "cg2");
	put(root, "cgroup.subtree_control", "cpu io memory pids\n");
	struct sbx_cgroup *cg = NULL;
	assert_int_equal(cgroup_create(&fk.host, NULL, "a", &l, &cg, &err), 0);
	assert_string_equal(get(root, "cgroup.subtree_control"), "cpu io memory pids\n");
	assert_int_equal(cgroup_destroy(&cg, &err), 0);
	fake_fini(&fk);

	fake_init(&fk, false);
	root = path2(fk.root, "cg2");
	put(root, "cgroup.controllers", "cpu memory\n");
	assert_int_equal(cgroup_create(&fk.host, NULL, "a", &l, &cg, &err), -ENOTSUP);
	char want[1024];
	snprintf(want, sizeof(want), "cgroup %s offers only 'cpu memory' (needs memory cpu pids)",
	         root);
	assert_string_equal(err.msg, want);
	assert_null(cg);
	fake_fini(&fk);
}

static void delegate(struct fake *fk, const char *rel, const char *procs)
{
	mkdirs(fk->root, path2("cg2", rel));
	char dir[PATH_MAX * 2];
	snprintf(dir, sizeof(dir), "%s/cg2/%s", fk->root, rel);
	put(dir, "cgroup.procs", procs);
	put(dir, "cgroup.controllers", "cpu memory pids\n");
	put(dir, "cgroup.subtree_control", "");
}

static void rootless(struct fake *fk)
{
	fk->host.rootless = true;
	fk->host.uid = getuid(); /* the test's files are ours */
}

/* A rootless caller in user.slice/u.scope, delegated to it, holding procs. */
static void rootless_in_scope(struct fake *fk, const char *procs)
{
	fake_init(fk, false);
	rootless(fk);
	delegate(fk, "user.slice/u.scope", procs);
	putf(fk->proc_cgroup, "0::/user.slice/u.scope\n");
}

/* Rootless, own cgroup delegated and holding only us: move into a runner
 * leaf, enable the controllers, put the sandbox beside it. */
static void test_v2_delegated(void **state)
{
	struct fake fk;
	rootless_in_scope(&fk, "4242\n");
	struct sbx_err err = {0};
	struct sbx_cgroup_limits l;
	limits_64m(&l);
	struct sbx_cgroup *cg = NULL;
	assert_int_equal(cgroup_create(&fk.host, NULL, "task", &l, &cg, &err), 0);
	assert_int_equal(fk.scope_calls, 0);
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/cg2/user.slice/u.scope", fk.root);
	assert_string_equal(get(dir, "trimo-runner-4242/cgroup.procs"), "4242");
	assert_string_equal(get(dir, "cgroup.subtree_control"), "+memory +cpu +pids");
	const char *name = only_leaf(dir, "trimo-task-");
	assert_string_equal(get(dir, path2(name, "memory.max")), "67108864");

	/* the next sandbox of the same runner goes beside it, not deeper */
	put(dir, "cgroup.procs", "");
	putf(fk.proc_cgroup, "0::/user.slice/u.scope/trimo-runner-4242\n");
	struct sbx_cgroup *cg2 = NULL;
	assert_int_equal(cgroup_create(&fk.host, NULL, "second", &l, &cg2, &err), 0);
	only_leaf(dir, "trimo-second-");
	only_leaf(dir, "trimo-runner-");
	assert_int_equal(cgroup_destroy(&cg2, &err), 0);
	assert_int_equal(cgroup_destroy(&cg, &err), 0);
	fake_fini(&fk);
}

/* Own cgroup shared with the shell: a transient scope holding only us. */
static void test_v2_scope(void **state)
{
	struct fake fk;
	rootless_in_scope(&fk, "100\n4242\n");
	struct sbx_err err = {0};
	struct sbx_cgroup_limits l;
	limits_64m(&l);
	struct sbx_cgroup *cg = NULL;
	assert_int_equal(cgroup_create(&fk.host, NULL, "jwt", &l, &cg, &err), 0);
	assert_int_equal(fk.scope_calls, 1);
	assert_true(sbx_str_has_prefix(fk.scope_unit, "trimo-jwt-"));
	assert_non_null(strstr(fk.scope_unit, ".scope"));
	char scope[PATH_MAX * 2];
	snprintf(scope, sizeof(scope),
	         "%s/cg2/user.slice/user-1000.slice/user@1000.service/app.slice/%s", fk.root,
	         fk.scope_unit);
	assert_string_equal(get(scope, "trimo-runner-4242/cgroup.procs"), "4242");
	only_leaf(scope, "trimo-jwt-");
	/* the shell's cgroup was not touched */
	char own[PATH_MAX];
	snprintf(own, sizeof(own), "%s/cg2/user.slice/u.scope", fk.root);
	assert_string_equal(get(own, "cgroup.subtree_control"), "");
	assert_int_equal(cgroup_destroy(&cg, &err), 0);
	fake_fini(&fk);

	/* a scope that offers only hugetlb (a hybrid host's unified tree) */
	fake_init(&fk, false);
	rootless(&fk);
	put(path2(fk.root, "cg2"), "cgroup.controllers", "hugetlb\n");
	delegate(&fk, "user.slice/u.scope", "100\n4242\n");
	putf(fk.proc_cgroup, "0::/user.slice/u.scope\n");
	fk.scope_controllers = "hugetlb\n";
	assert_int_equal(cgroup_create(&fk.host, NULL, "jwt", &l, &cg, &err), -EACCES);
	assert_true(sbx_str_has_prefix(err.msg, "cgroup v2: nothing delegated to uid "));
	assert_non_null(strstr(err.msg, ".scope offers only 'hugetlb', not memory cpu pids"));
	fake_fini(&fk);
}

/* The kernel has cpu but the user's systemd does not delegate it (before
 * systemd 252, RHEL 9): the scope lacks it and the fix is user@.service's
 * Delegate=, not another scope. */
static void test_v2_scope_without_cpu(void **state)
{
	struct fake fk;
	rootless_in_scope(&fk, "100\n4242\n");
	fk.scope_controllers = "memory pids\n";
	struct sbx_err err = {0};
	struct sbx_cgroup_limits l;
	limits_64m(&l);
	struct sbx_cgroup *cg = NULL;
	assert_int_equal(cgroup_create(&fk.host, NULL, "jwt", &l, &cg, &err), -EACCES);
	assert_null(cg);
	assert_int_equal(fk.scope_calls, 1);
	char want[SBX_ERR_MSG_MAX * 2];
	snprintf(want, sizeof(want),
	         "cgroup v2: the user's systemd cannot delegate memory/cpu/pids limits to uid %u: "
	         "/user.slice/user-1000.slice/user@1000.service/app.slice/%s offers only "
	         "'memory pids', not cpu. Fix: an admin adds `Delegate=cpu memory pids` to "
	         "user@.service (a drop-in in /etc/systemd/system/user@.service.d/, then "
	         "`systemctl daemon-reload` and a new login), or delegates a cgroup ([cgroups] "
	         "parent); or --no-limits",
	         getuid(), fk.scope_unit);
	assert_true(strlen(want) < SBX_ERR_MSG_MAX);
	assert_string_equal(err.msg, want);
	fake_fini(&fk);
}

/* Nothing delegated and no user bus: the exact message, with the fix. */
static void test_v2_nothing_writable(void **state)
{
	struct fake fk;
	fake_init(&fk, false);
	fk.host.rootless = true;
	fk.host.uid = getuid() + 1000; /* the tree belongs to someone else */
	delegate(&fk, "user.slice/user-1000.slice/session-1.scope", "4242\n");
	fk.scope_error = "no user bus (XDG_RUNTIME_DIR is not set: no login session)";
	struct sbx_err err = {0};
	struct sbx_cgroup_limits l;
	limits_64m(&l);
	struct sbx_cgroup *cg = NULL;
	assert_int_equal(cgroup_create(&fk.host, NULL, "jwt", &l, &cg, &err), -EACCES);
	assert_null(cg);
	char want[2048];
	snprintf(want, sizeof(want),
	         "cgroup v2: nothing delegated to uid %u for memory/cpu/pids limits. Fix: "
	         "`systemd-run --user --scope -p Delegate=yes trimo-sbx ...` (needs a user "
	         "session, or `loginctl enable-linger`), or an admin delegates a cgroup "
	         "([cgroups] parent), or --no-limits. Own cgroup: "
	         "/user.slice/user-1000.slice/session-1.scope is owned by uid %u, not %u; "
	         "user scope: no user bus (XDG_RUNTIME_DIR is not set: no login session)",
	         getuid() + 1000, getuid(), getuid() + 1000);
	want[SBX_ERR_MSG_MAX - 1] = '\0';
	assert_string_equal(err.msg, want);
	/* the fix survives a caller's context prefix */
	sbx_wrap(&err, "task jwt");
	assert_non_null(strstr(err.msg, "loginctl enable-linger"));
	assert_non_null(strstr(err.msg, "--no-limits"));
	fake_fini(&fk);
}

static void test_v2_config_parent(void **state)
{
	struct fake fk;
	fake_init(&fk, false);
	rootless(&fk);
	delegate(&fk, "ci/agents", "");
	struct sbx_err err = {0};
	struct sbx_cgroup_limits l;
	limits_64m(&l);
	struct sbx_cgroup *cg = NULL;
	/* outside the delegated parent we could never move the sandbox in */
	assert_int_equal(cgroup_create(&fk.host, "/ci/agents", "x", &l, &cg, &err), -EACCES);
	assert_string_equal(
	    err.msg, "cgroup v2: [cgroups] parent '/ci/agents' is delegated, but this "
	             "process runs outside it (in /user.slice/user-1000.slice/session-1.scope): "
	             "start trimo-sbx inside the delegated cgroup (cgroup v2 moves processes "
	             "only within a delegation)");
	/* the admin started our shell in a child of it */
	delegate(&fk, "ci/agents/shell", "100\n4242\n");
	putf(fk.proc_cgroup, "0::/ci/agents/shell\n");
	assert_int_equal(cgroup_create(&fk.host, "/ci/agents", "x", &l, &cg, &err), 0);
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/cg2/ci/agents", fk.root);
	assert_string_equal(get(dir, "cgroup.subtree_control"), "+memory +cpu +pids");
	assert_false(exists(dir, "trimo-runner-4242")); /* we were not in it */
	only_leaf(dir, "trimo-x-");
	assert_int_equal(fk.scope_calls, 0);
	assert_int_equal(cgroup_destroy(&cg, &err), 0);

	/* a configured parent that is not ours: no fallback, a clear error */
	fk.host.uid = getuid() + 1000;
	assert_int_equal(cgroup_create(&fk.host, "ci/agents", "x", &l, &cg, &err), -EACCES);
	char want[1024];
	snprintf(want, sizeof(want),
	         "cgroup v2: [cgroups] parent 'ci/agents' cannot hold limited cgroups: /ci/agents "
	         "is owned by uid %u, not %u",
	         getuid(), getuid() + 1000);
	assert_string_equal(err.msg, want);
	assert_int_equal(fk.scope_calls, 0);

	/* as root a configured parent is created */
	fk.host.rootless = false;
	fk.host.uid = 0;
	assert_int_equal(cgroup_create(&fk.host, "trimo-ci", "y", &l, &cg, &err), 0);
	snprintf(dir, sizeof(dir), "%s/cg2/trimo-ci", fk.root);
	only_leaf(dir, "trimo-y-");
	assert_int_equal(cgroup_destroy(&cg, &err), 0);
	fake_fini(&fk);
}

static void test_v2_swap_and_peak(void **state)
{
	struct fake fk;
	fake_init(&fk, false);
	struct sbx_err err = {0};
	struct sbx_cgroup_limits l;
	limits_64m(&l);
	l.memory_swap_set = true;
	l.memory_swap = 1 << 30;
	struct sbx_cgroup *cg = NULL;
	assert_int_equal(cgroup_create(&fk.host, NULL, "s", &l, &cg, &err), 0);
	char leaf[PATH_MAX];
	snprintf(leaf, sizeof(leaf), "%s", cgroup_path(cg));
	assert_string_equal(get(leaf, "memory.swap.max"), "1073741824");
	assert_string_equal(get(leaf, "memory.oom.group"), "0\n"); /* untouched */
	assert_string_equal(get(leaf, "cpu.max"), "150000 100000");
	/* raise the cap of the live leaf */
	assert_int_equal(cgroup_set_memory(cg, 128 << 20, false, 0, &err), 0);
	assert_string_equal(get(leaf, "memory.max"), "134217728");
	assert_string_equal(get(leaf, "memory.swap.max"), "0");
	assert_int_equal(cgroup_limits(cg)->memory, 128 << 20);
	assert_int_equal(cgroup_destroy(&cg, &err), 0);

	/* no memory.swap.max, swap on: a warning; no memory.peak: sampled */
	fk.no_swap_max = true;
	fk.no_peak = true;
	putf(fk.meminfo, "SwapTotal: 1048576 kB\n");
	limits_64m(&l);
	l.cpu_quota_us = 0;
	assert_int_equal(cgroup_create(&fk.host, NULL, "s", &l, &cg, &err), 0);
	assert_string_equal(cgroup_warning(cg),
	                    "swap is on but this kernel has no memory.swap.max (swap accounting "
	                    "off): the memory cap can be exceeded by swapping");
	snprintf(leaf, sizeof(leaf), "%s", cgroup_path(cg));
	assert_string_equal(get(leaf, "cpu.max"), "max 100000\n"); /* no CPU cap */
	struct sbx_cgroup_stats s;
	put(leaf, "memory.current", "5000\n");
	assert_int_equal(cgroup_stats(cg, &s, &err), 0);
	put(leaf, "memory.current", "300\n");
	assert_int_equal(cgroup_stats(cg, &s, &err), 0);
	assert_int_equal(s.memory_current, 300);
	assert_int_equal(s.memory_peak, 5000);
	assert_true(s.memory_peak_sampled);
	assert_int_equal(cgroup_destroy(&cg, &err), 0);
	fake_fini(&fk);
}

/* ---- v1 / hybrid -------------------------------------------------------- */

static void test_v1_hybrid_memsw(void **state)
{
	struct fake fk;
	fake_init(&fk, true);
	fk.memsw = true;
	struct sbx_err err = {0};
	struct sbx_cgroup_limits l;
	limits_64m(&l);
	l.oom_group = true;
	struct sbx_cgroup *cg = NULL;
	assert_int_equal(cgroup_create(&fk.host, NULL, "hog", &l, &cg, &err), 0);
	assert_int_equal(cgroup_version(cg), SBX_CGROUP_V1);
	assert_int_equal(cgroup_fd(cg), -1);
	assert_null(cgroup_warning(cg));
	char mem[PATH_MAX], cpu[PATH_MAX], acct[PATH_MAX], pids[PATH_MAX];
	snprintf(mem, sizeof(mem), "%s/memory/process_api/6c9d", fk.root);
	const char *name = only_leaf(mem, "trimo-hog-");
	char leafname[256];
	snprintf(leafname, sizeof(leafname), "%s", name);
	snprintf(mem, sizeof(mem), "%s/memory/process_api/6c9d/%s", fk.root, leafname);
	snprintf(cpu, sizeof(cpu), "%s/cpu/%s", fk.root, leafname);
	snprintf(acct, sizeof(acct), "%s/cpuacct/%s", fk.root, leafname);
	snprintf(pids, sizeof(pids), "%s/pids/%s", fk.root, leafname);
	assert_string_equal(get(mem, "memory.limit_in_bytes"), "67108864");
	assert_string_equal(get(mem, "memory.memsw.limit_in_bytes"), "67108864");
	assert_string_equal(get(cpu, "cpu.cfs_period_us"), "100000");
	assert_string_equal(get(cpu, "cpu.cfs_quota_us"), "150000");
	assert_string_equal(get(pids, "pids.max"), "1024");
	assert_true(exists(acct, "cpuacct.usage"));
	assert_false(exists(path2(fk.root, "systemd"), leafname));
	assert_false(exists(path2(fk.root, "unified"), leafname));
	/* the eventfd and memory.oom_control fd were registered */
	int efd, ofd;
	assert_int_equal(sscanf(get(mem, "cgroup.event_control"), "%d %d", &efd, &ofd), 2);
	assert_int_equal(efd, cgroup_oom_fd(cg));

	struct sbx_cgroup_v1_mount mounts[8];
	size_t n = cgroup_v1_mounts(cg, mounts, 8);
	assert_int_equal(n, 4);
	const char *want_names[] = {"memory", "cpu", "cpuacct", "pids"};
	const char *want_paths[] = {mem, cpu, acct, pids};
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(mounts[i].name, want_names[i]);
		assert_string_equal(mounts[i].host_path, want_paths[i]);
	}
	assert_string_equal(cgroup_path(cg), mem);

	assert_int_equal(cgroup_attach(cg, 31337, &err), 0);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(get(want_paths[i], "cgroup.procs"), "31337");
		put(want_paths[i], "cgroup.procs", "");
	}

	put(mem, "memory.max_usage_in_bytes", "67108864\n");
	put(mem, "memory.usage_in_bytes", "4096\n");
	put(mem, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
	put(acct, "cpuacct.usage", "3000000\n");
	put(cpu, "cpu.stat", "nr_periods 10\nnr_throttled 4\nthrottled_time 5000\n");
	put(pids, "pids.peak", "9\n");
	struct sbx_cgroup_stats s;
	assert_int_equal(cgroup_stats(cg, &s, &err), 0);
	assert_int_equal(s.memory_peak, 67108864);
	assert_int_equal(s.memory_current, 4096);
	assert_int_equal(s.oom_kills, 2);
	assert_int_equal(s.cpu_usec, 3000);
	assert_int_equal(s.nr_throttled, 4);
	assert_int_equal(s.throttled_usec, 5);
	assert_int_equal(s.pids_peak, 9);

	/* raising a live v1 cap: both files end at the new value */
	assert_int_equal(cgroup_set_memory(cg, 128 << 20, true, 64 << 20, &err), 0);
	assert_string_equal(get(mem, "memory.limit_in_bytes"), "134217728");
	assert_string_equal(get(mem, "memory.memsw.limit_in_bytes"), "201326592");

	assert_int_equal(cgroup_destroy(&cg, &err), 0);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(access(want_paths[i], F_OK), -1);
	fake_fini(&fk);
}

/* The classic v1 layout: cpu and cpuacct co-mounted share one leaf. */
static void test_v1_comounted(void **state)
{
	struct fake fk;
	fake_init(&fk, true);
	mkdirs(fk.root, "cpu,cpuacct/user.slice");
	char mi[PATH_MAX * 4];
	snprintf(mi, sizeof(mi),
	         "32 31 0:29 / %s/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
	         "35 31 0:32 / %s/memory rw,relatime - cgroup cgroup rw,memory\n"
	         "39 31 0:36 / %s/pids rw,relatime - cgroup cgroup rw,pids\n",
	         fk.root, fk.root, fk.root);
	putf(fk.mountinfo, mi);
	putf(fk.proc_cgroup, "8:pids:/\n4:memory:/process_api/6c9d\n2:cpu,cpuacct:/user.slice\n");
	struct sbx_err err = {0};
	struct sbx_cgroup_limits l;
	limits_64m(&l);
	struct sbx_cgroup *cg = NULL;
	assert_int_equal(cgroup_create(&fk.host, NULL, "c", &l, &cg, &err), 0);
	struct sbx_cgroup_v1_mount m[8];
	assert_int_equal(cgroup_v1_mounts(cg, m, 8), 3);
	assert_string_equal(m[0].name, "memory");
	assert_string_equal(m[1].name, "cpu,cpuacct");
	assert_string_equal(m[2].name, "pids");
	char want[PATH_MAX];
	snprintf(want, sizeof(want), "%s/cpu,cpuacct/user.slice/", fk.root);
	assert_true(sbx_str_has_prefix(m[1].host_path, want));
	assert_string_equal(get(m[1].host_path, "cpu.cfs_quota_us"), "150000");
	put(m[1].host_path, "cpuacct.usage", "7000\n");
	struct sbx_cgroup_stats s;
	assert_int_equal(cgroup_stats(cg, &s, &err), 0);
	assert_int_equal(s.cpu_usec, 7);
	assert_int_equal(cgroup_attach(cg, 55, &err), 0);
	assert_string_equal(get(m[1].host_path, "cgroup.procs"), "55");
	for (size_t i = 0; i < 3; i++)
		put(m[i].host_path, "cgroup.procs", "");
	assert_int_equal(cgroup_destroy(&cg, &err), 0);
	fake_fini(&fk);
}

static void test_v1_no_memsw_swap_on(void **state)
{
	struct fake fk;
	fake_init(&fk, true);
	putf(fk.meminfo, "SwapTotal: 2097148 kB\n");
	struct sbx_err err = {0};
	struct sbx_cgroup_limits l;
	limits_64m(&l);
	struct sbx_cgroup *cg = NULL;
	assert_int_equal(cgroup_create(&fk.host, NULL, "hog", &l, &cg, &err), 0);
	assert_string_equal(cgroup_warning(cg),
	                    "swap is on but this kernel has no memory.memsw.limit_in_bytes (boot "
	                    "with swapaccount=1): the memory cap can be exceeded by swapping");
	const char *mem = cgroup_path(cg);
	assert_string_equal(get(mem, "memory.limit_in_bytes"), "67108864");
	assert_string_equal(get(mem, "memory.swappiness"), "0");
	assert_false(exists(mem, "memory.memsw.limit_in_bytes"));
	assert_int_equal(cgroup_destroy(&cg, &err), 0);

	/* swap off: nothing to warn about */
	putf(fk.meminfo, "SwapTotal: 0 kB\n");
	assert_int_equal(cgroup_create(&fk.host, NULL, "hog", &l, &cg, &err), 0);
	assert_null(cgroup_warning(cg));
	assert_int_equal(cgroup_destroy(&cg, &err), 0);
	fake_fini(&fk);
}

static void test_v1_rootless(void **state)
{
	struct fake fk;
	fake_init(&fk, true);
	fk.host.rootless = true;
	fk.host.uid = getuid() + 1000;
	struct sbx_err err = {0};
	struct sbx_cgroup_limits l;
	limits_64m(&l);
	struct sbx_cgroup *cg = NULL;
	assert_int_equal(cgroup_create(&fk.host, NULL, "hog", &l, &cg, &err), -EACCES);
	assert_null(cg);
	unsigned u = getuid() + 1000;
	char want[2048];
	snprintf(
	    want, sizeof(want),
	    "cgroup v1: no cgroup writable by uid %u for memory cpu pids. Fix: an admin "
	    "delegates one per controller: `for c in memory cpu cpuacct pids; do "
	    "d=%s/$c/trimo.user-%u; mkdir $d && chown %u $d $d/cgroup.procs; done` and you set "
	    "[cgroups] parent = trimo.user-%u; or --no-limits. (%s/memory/process_api/6c9d is "
	    "owned by uid %u, not %u)",
	    u, fk.root, u, u, u, fk.root, getuid(), u);
	want[SBX_ERR_MSG_MAX - 1] = '\0';
	assert_string_equal(err.msg, want);
	/* nothing was created anywhere */
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "find %s -mindepth 1 -name 'trimo-*' | grep -q .", fk.root);
	assert_int_not_equal(system(cmd), 0);

	/* with a chowned subtree per controller (here: ours) it works */
	fk.host.uid = getuid();
	static const char *const c[] = {"memory", "cpu", "cpuacct", "pids"};
	for (size_t i = 0; i < 4; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "%s/trimo.user-%u", c[i], getuid());
		mkdirs(fk.root, rel);
		put(path2(fk.root, rel), "cgroup.procs", "");
	}
	char parent[32];
	snprintf(parent, sizeof(parent), "trimo.user-%u", getuid());
	assert_int_equal(cgroup_create(&fk.host, parent, "hog", &l, &cg, &err), 0);
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/memory/%s", fk.root, parent);
	only_leaf(dir, "trimo-hog-");
	assert_int_equal(cgroup_destroy(&cg, &err), 0);
	fake_fini(&fk);
}

/* ---- stale leaves, kill, unlimited ---------------------------------------- */

static void test_stale_cleanup(void **state)
{
	struct fake fk;
	fake_init(&fk, false);
	char slice[PATH_MAX];
	snprintf(slice, sizeof(slice), "%s/cg2/trimo.slice", fk.root);
	mkdirs(fk.root, "cg2/trimo.slice/trimo-old-deadbeef");  /* crashed: goes */
	mkdirs(fk.root, "cg2/trimo.slice/trimo-busy-00000001"); /* still has tasks */
	put(path2(slice, "trimo-busy-00000001"), "cgroup.procs", "77\n");
	mkdirs(fk.root, "cg2/trimo.slice/trimo-live-00000002");         /* its runner lives */
	mkdirs(fk.root, "cg2/trimo.slice/other");                       /* not ours */
	mkdirs(fk.root, "cg2/trimo.slice/trimo-nested-0000000a/child"); /* has a child */
	mkdirs(fk.root, "cg2/trimo.slice/trimo-1000");                  /* an admin's name */
	mkdirs(fk.root, "cg2/trimo.slice/trimo-ci-agents");             /* an admin's name */
	mkdirs(fk.root, "cg2/trimo.slice/trimo-runner-77");             /* a dead runner's */
	put(slice, "trimo-file", "");
	int lockfd = open(path2(slice, "trimo-live-00000002"), O_RDONLY | O_DIRECTORY);
	assert_true(lockfd >= 0);
	assert_int_equal(flock(lockfd, LOCK_EX), 0);
	put(slice, "cgroup.subtree_control", "memory cpu pids");

	struct sbx_err err = {0};
	struct sbx_cgroup_limits l;
	limits_64m(&l);
	struct sbx_cgroup *cg = NULL;
	assert_int_equal(cgroup_create(&fk.host, NULL, "new", &l, &cg, &err), 0);
	assert_false(exists(slice, "trimo-old-deadbeef"));
	assert_true(exists(slice, "trimo-busy-00000001"));
	assert_true(exists(slice, "trimo-live-00000002"));
	assert_true(exists(slice, "other"));
	assert_true(exists(slice, "trimo-nested-0000000a/child"));
	assert_true(exists(slice, "trimo-1000"));
	assert_true(exists(slice, "trimo-ci-agents"));
	assert_false(exists(slice, "trimo-runner-77"));
	assert_true(exists(slice, "trimo-file"));
	/* our own live leaf is locked: another create does not sweep it */
	struct sbx_cgroup *cg2 = NULL;
	assert_int_equal(cgroup_create(&fk.host, NULL, "other", &l, &cg2, &err), 0);
	assert_true(access(cgroup_path(cg), F_OK) == 0);
	assert_int_equal(cgroup_destroy(&cg2, &err), 0);
	assert_int_equal(cgroup_destroy(&cg, &err), 0);
	close(lockfd);
	fake_fini(&fk);
}

static pid_t spawn_sleeper(void)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(30); /* never outlive the test */
		for (;;)
			pause();
	}
	return pid;
}

/* Only the pids listed in our leaf die; a process outside it lives. */
static void test_leaf_names(void **state)
{
	char name[64];
	cg_leaf_name("JWT auth/../x", name, sizeof(name));
	assert_int_equal(strlen(name), strlen("trimo-jwt-auth----x-") + 8);
	assert_memory_equal(name, "trimo-jwt-auth----x-", 20);
	assert_true(cg_is_our_leaf_name(name));
	cg_leaf_name("", name, sizeof(name));
	assert_memory_equal(name, "trimo-sandbox-", 14);
	assert_true(cg_is_our_leaf_name("trimo-a-0123abcd"));
	assert_true(cg_is_our_leaf_name("trimo-runner-4242"));
	assert_false(cg_is_our_leaf_name("trimo-runner-"));
	assert_false(cg_is_our_leaf_name("trimo-1000"));
	assert_false(cg_is_our_leaf_name("trimo-12345678"));
	assert_false(cg_is_our_leaf_name("trimo-a-0123ABCD"));
	assert_false(cg_is_our_leaf_name("trimo.slice"));
	assert_false(cg_is_our_leaf_name("user-0123abcd"));
}

static void test_kill_only_leaf(void **state)
{
	struct fake fk;
	fake_init(&fk, false);
	struct sbx_err err = {0};
	struct sbx_cgroup_limits l;
	limits_64m(&l);
	struct sbx_cgroup *cg = NULL;
	assert_int_equal(cgroup_create(&fk.host, NULL, "k", &l, &cg, &err), 0);
	pid_t a = spawn_sleeper(), b = spawn_sleeper(), outsider = spawn_sleeper();
	char procs[64];
	snprintf(procs, sizeof(procs), "%d\n%d\n", (int)a, (int)b);
	put(cgroup_path(cg), "cgroup.procs", procs);
	assert_int_equal(cgroup_kill(cg, &err), 0);
	int st;
	assert_int_equal(waitpid(a, &st, 0), a);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_int_equal(waitpid(b, &st, 0), b);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_int_equal(waitpid(outsider, &st, WNOHANG), 0); /* alive */
	kill(outsider, SIGKILL);
	waitpid(outsider, &st, 0);

	/* a leaf the kernel will not remove: destroy says so, and frees cg */
	char leaf[PATH_MAX], want[PATH_MAX + 64];
	snprintf(leaf, sizeof(leaf), "%s", cgroup_path(cg));
	put(leaf, "cgroup.procs", "999999999\n");
	assert_int_equal(cgroup_destroy(&cg, &err), -ENOTEMPTY);
	assert_null(cg);
	snprintf(want, sizeof(want), "remove cgroup %s: Directory not empty", leaf);
	assert_string_equal(err.msg, want);
	fake_fini(&fk);
}

static void test_unlimited(void **state)
{
	struct fake fk;
	fake_init(&fk, false);
	struct sbx_err err = {0};
	struct sbx_cgroup_limits l;
	cgroup_limits_init(&l);
	l.unlimited = true;
	struct sbx_cgroup *cg = NULL;
	assert_int_equal(cgroup_create(&fk.host, NULL, "free", &l, &cg, &err), 0);
	assert_int_equal(cgroup_version(cg), SBX_CGROUP_NONE);
	assert_int_equal(cgroup_fd(cg), -1);
	assert_int_equal(cgroup_oom_fd(cg), -1);
	assert_string_equal(cgroup_path(cg), "");
	assert_int_equal(cgroup_attach(cg, 1, &err), 0);
	struct sbx_cgroup_stats s;
	assert_int_equal(cgroup_stats(cg, &s, &err), 0);
	assert_true(s.memory_peak == SBX_STAT_UNKNOWN);
	assert_true(s.cpu_usec == SBX_STAT_UNKNOWN);
	assert_int_equal(cgroup_kill(cg, &err), 0);
	assert_int_equal(cgroup_destroy(&cg, &err), 0);
	assert_false(exists(path2(fk.root, "cg2"), "trimo.slice"));
	fake_fini(&fk);
}

static void test_no_memory_controller(void **state)
{
	struct fake fk;
	fake_init(&fk, false);
	put(path2(fk.root, "cg2"), "cgroup.controllers", "");
	char mi[PATH_MAX + 128];
	snprintf(mi, sizeof(mi), "22 1 0:21 / /proc rw - proc proc rw\n");
	putf(fk.mountinfo, mi);
	struct sbx_err err = {0};
	struct sbx_cgroup_limits l;
	limits_64m(&l);
	struct sbx_cgroup *cg = NULL;
	assert_int_equal(cgroup_create(&fk.host, NULL, "x", &l, &cg, &err), -ENOENT);
	char want[PATH_MAX + 200];
	snprintf(want, sizeof(want),
	         "cgroup: no cgroup file system with the memory controller is mounted (see %s); "
	         "use --no-limits to run without caps",
	         fk.mountinfo);
	assert_string_equal(err.msg, want);
	fake_fini(&fk);
}

/* The real sd-bus path, as far as a machine without a user bus goes: the
 * reasons end up in the combined message, so they must be plain. */
static void test_systemd_no_bus(void **state)
{
	struct sbx_err err = {0};
	char *saved_rt = getenv("XDG_RUNTIME_DIR") ? strdup(getenv("XDG_RUNTIME_DIR")) : NULL;
	char *saved_bus =
	    getenv("DBUS_SESSION_BUS_ADDRESS") ? strdup(getenv("DBUS_SESSION_BUS_ADDRESS")) : NULL;
	unsetenv("DBUS_SESSION_BUS_ADDRESS");
	unsetenv("XDG_RUNTIME_DIR");
	assert_true(cgroup_systemd_start_scope("trimo-x-00000000.scope", getpid(), NULL, &err) < 0);
	assert_string_equal(err.msg, "no user bus (XDG_RUNTIME_DIR is not set: no login session)");
	setenv("XDG_RUNTIME_DIR", "/nonexistent-trimo-test", 1);
	assert_true(cgroup_systemd_start_scope("trimo-x-00000000.scope", getpid(), NULL, &err) < 0);
	assert_string_equal(
	    err.msg, "no user bus at /nonexistent-trimo-test/bus (No such file or directory), "
	             "nor /nonexistent-trimo-test/systemd/private: No such file or directory");
	unsetenv("XDG_RUNTIME_DIR");
	if (saved_rt)
		setenv("XDG_RUNTIME_DIR", saved_rt, 1);
	if (saved_bus)
		setenv("DBUS_SESSION_BUS_ADDRESS", saved_bus, 1);
	free(saved_rt);
	free(saved_bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_format, remove_fake),
	    cmocka_unit_test_teardown(test_limits_validate, remove_fake),
	    cmocka_unit_test_teardown(test_v1_memory_order, remove_fake),
	    cmocka_unit_test_teardown(test_mountinfo_parsing, remove_fake),
	    cmocka_unit_test_teardown(test_v2_root, remove_fake),
	    cmocka_unit_test_teardown(test_v2_root_enabled_and_missing, remove_fake),
	    cmocka_unit_test_teardown(test_v2_delegated, remove_fake),
	    cmocka_unit_test_teardown(test_v2_scope, remove_fake),
	    cmocka_unit_test_teardown(test_v2_scope_without_cpu, remove_fake),
	    cmocka_unit_test_teardown(test_v2_nothing_writable, remove_fake),
	    cmocka_unit_test_teardown(test_v2_config_parent, remove_fake),
	    cmocka_unit_test_teardown(test_v2_swap_and_peak, remove_fake),
	    cmocka_unit_test_teardown(test_v1_hybrid_memsw, remove_fake),
	    cmocka_unit_test_teardown(test_v1_comounted, remove_fake),
	    cmocka_unit_test_teardown(test_v1_no_memsw_swap_on, remove_fake),
	    cmocka_unit_test_teardown(test_v1_rootless, remove_fake),
	    cmocka_unit_test_teardown(test_stale_cleanup, remove_fake),
	    cmocka_unit_test_teardown(test_leaf_names, remove_fake),
	    cmocka_unit_test_teardown(test_kill_only_leaf, remove_fake),
	    cmocka_unit_test_teardown(test_unlimited, remove_fake),
	    cmocka_unit_test_teardown(test_no_memory_controller, remove_fake),
	    cmocka_unit_test_teardown(test_systemd_no_bus, remove_fake),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
