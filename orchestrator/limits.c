#include "orchestrator/limits.h"

#include <string.h>

void limits_to_cgroup(const struct sbx_limits *eff, struct sbx_cgroup_limits *ret)
{
	cgroup_limits_init(ret);
	ret->unlimited = !eff->enabled;
	if (eff->set & SBX_LIMIT_MEMORY)
		ret->memory = eff->memory;
	/* swap is a cap's allowance: without a memory cap there is none to give */
	if ((eff->set & SBX_LIMIT_MEMORY) && (eff->set & SBX_LIMIT_MEMORY_SWAP)) {
		ret->memory_swap_set = true;
		ret->memory_swap =
		    eff->memory_swap == SBX_MEMORY_SWAP_MAX ? SBX_LIMIT_MAX : eff->memory_swap;
	}
	if (eff->set & SBX_LIMIT_CPUS)
		ret->cpu_quota_us = (uint64_t)eff->millicpus * SBX_CPU_PERIOD_US / 1000;
	ret->pids = eff->pids ? eff->pids : SBX_PIDS_DEFAULT;
	ret->oom_group = eff->oom_kill == SBX_OOM_KILL_GROUP;
}

_Static_assert((int)SBX_CFG_OVERLAY_KERNEL == (int)SBX_OVERLAY_KERNEL &&
                   (int)SBX_CFG_OVERLAY_FUSE == (int)SBX_OVERLAY_FUSE,
               "[storage] overlay and enum sbx_overlay_mode");

static const char *const overlay_names[] = {"auto", "kernel", "fuse"};

const char *overlay_name(int cfg_overlay)
{
	return cfg_overlay > 0 && cfg_overlay < 3 ? overlay_names[cfg_overlay] : "auto";
}

enum sbx_overlay_mode overlay_mode(const char *name)
{
	for (int i = 1; i < 3; i++)
		if (!strcmp(name, overlay_names[i]))
			return (enum sbx_overlay_mode)i;
	return SBX_OVERLAY_AUTO;
}
