/* Limits: defaults, user-text parsers and the file formats of v1 and v2.
 * Pure functions, no I/O. */
#include "runtime/cgroup.h"
#include "runtime/cgroup_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"

#define MEMORY_MIN (1ULL << 20)
#define CPUS_MAX   1024ULL
/* The kernel refuses a quota under 1 ms. */
#define CPU_QUOTA_MIN_US 1000ULL
#define PIDS_MIN         2ULL
/* PID_MAX_LIMIT on 64-bit */
#define PIDS_MAX_VALUE 4194304ULL

void cgroup_limits_init(struct sbx_cgroup_limits *l)
{
	*l = (struct sbx_cgroup_limits){
	    .unlimited = false,
	    .memory = SBX_LIMIT_MAX,
	    .memory_swap_set = false,
	    .memory_swap = 0,
	    .cpu_quota_us = 0,
	    .pids = SBX_PIDS_DEFAULT,
	    .oom_group = false,
	};
}

int cgroup_limits_validate(const struct sbx_cgroup_limits *l, struct sbx_err *err)
{
	if (l->unlimited)
		return 0;
	if (l->memory_swap_set && l->memory == SBX_LIMIT_MAX)
		return sbx_failx(err, EINVAL, "memory_swap needs a memory limit");
	if (l->memory != SBX_LIMIT_MAX && l->memory < MEMORY_MIN)
		return sbx_failx(err, EINVAL, "memory: %llu bytes is below the minimum of 1M",
		                 (unsigned long long)l->memory);
	if (l->cpu_quota_us &&
	    (l->cpu_quota_us < CPU_QUOTA_MIN_US || l->cpu_quota_us > CPUS_MAX * SBX_CPU_PERIOD_US))
		return sbx_failx(err, EINVAL, "cpus: quota %llu us is out of range",
		                 (unsigned long long)l->cpu_quota_us);
	if (l->pids != SBX_LIMIT_MAX && l->pids < PIDS_MIN)
		return sbx_failx(err, EINVAL, "pids: %llu is below the minimum of 2",
		                 (unsigned long long)l->pids);
	return 0;
}

char *cgroup_format_cpu_max(uint64_t quota_us, char *buf, size_t size)
{
	if (quota_us == 0)
		snprintf(buf, size, "max %llu", SBX_CPU_PERIOD_US);
	else
		snprintf(buf, size, "%llu %llu", (unsigned long long)quota_us, SBX_CPU_PERIOD_US);
	return buf;
}

char *cgroup_format_cpus(uint64_t quota_us, char *buf, size_t size)
{
	if (quota_us == 0) {
		snprintf(buf, size, "none");
		return buf;
	}
	uint64_t whole = quota_us / SBX_CPU_PERIOD_US, frac = quota_us % SBX_CPU_PERIOD_US;
	if (!frac) {
		snprintf(buf, size, "%llu", (unsigned long long)whole);
		return buf;
	}
	char digits[8];
	snprintf(digits, sizeof(digits), "%05llu", (unsigned long long)frac);
	for (size_t n = strlen(digits); n > 0 && digits[n - 1] == '0'; n--)
		digits[n - 1] = '\0';
	snprintf(buf, size, "%llu.%s", (unsigned long long)whole, digits);
	return buf;
}

char *cgroup_format_v2_value(uint64_t v, char *buf, size_t size)
{
	if (v == SBX_LIMIT_MAX)
		snprintf(buf, size, "max");
	else
		snprintf(buf, size, "%llu", (unsigned long long)v);
	return buf;
}

char *cgroup_format_v1_value(uint64_t v, char *buf, size_t size)
{
	if (v == SBX_LIMIT_MAX)
		snprintf(buf, size, "-1");
	else
		snprintf(buf, size, "%llu", (unsigned long long)v);
	return buf;
}

char *cgroup_format_size(uint64_t v, char *buf, size_t size)
{
	static const char units[] = "BKMGTPE";
	if (v == SBX_LIMIT_MAX) {
		snprintf(buf, size, "max");
		return buf;
	}
	int u = 0;
	uint64_t unit = 1;
	while (u < 6 && v >= unit * 1024) {
		unit *= 1024;
		u++;
	}
	uint64_t whole = v / unit;
	/* tenths, truncated: 64M minus a page shows 63.9M, never 64M */
	uint64_t tenths = (v % unit) / (unit / 10 ? unit / 10 : 1);
	if (u == 0 || v % unit == 0)
		snprintf(buf, size, "%llu%c", (unsigned long long)whole, units[u]);
	else
		snprintf(buf, size, "%llu.%llu%c", (unsigned long long)whole,
		         (unsigned long long)tenths, units[u]);
	return buf;
}

bool cg_v1_limit_first(uint64_t cur_memsw, uint64_t new_limit)
{
	return new_limit <= cur_memsw;
}

uint64_t cg_v1_memsw_for(uint64_t memory, bool swap_set, uint64_t swap)
{
	if (memory == SBX_LIMIT_MAX)
		return SBX_LIMIT_MAX;
	if (!swap_set)
		return memory;
	if (swap == SBX_LIMIT_MAX || swap > SBX_LIMIT_MAX - 1 - memory)
		return SBX_LIMIT_MAX;
	return memory + swap;
}

/* in the order of the CG_* bits */
static const char *const ctrl_names[] = {"memory", "cpu", "cpuacct", "pids"};
#define ELEMENTSOF_CTRL (sizeof(ctrl_names) / sizeof(ctrl_names[0]))

char *cg_mask_names(unsigned mask, char *buf, size_t size)
{
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < ELEMENTSOF_CTRL; i++) {
		if (!(mask & (1u << i)))
			continue;
		int w = snprintf(buf + n, size - n, "%s%s", n ? " " : "", ctrl_names[i]);
		if (w < 0 || (size_t)w >= size - n)
			break;
		n += (size_t)w;
	}
	return buf;
}

unsigned cg_mask_parse(const char *list)
{
	unsigned mask = 0;
	const char *p = list;
	p += strspn(p, " ,\n\t");
	while (*p) {
		/* "+memory" as written to cgroup.subtree_control counts too */
		if (*p == '+')
			p++;
		size_t len = strcspn(p, " ,\n\t");
		for (size_t i = 0; i < ELEMENTSOF_CTRL; i++)
			if (len == strlen(ctrl_names[i]) && !strncmp(p, ctrl_names[i], len))
				mask |= 1u << i;
		p += len;
		p += strspn(p, " ,\n\t");
	}
	return mask;
}
