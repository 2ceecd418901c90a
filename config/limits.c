/* [limits]: one key table for task.ini, the user config and the command
 * line, and the merge of a task's limits over the user's defaults. */
#include "config/internal.h"

#include <errno.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"

#define PID_MAX_LIMIT 4194304 /* the kernel's ceiling for pid_max */

static int set_memory_swap(struct cfg_parser *p, const struct cfg_key *k, void *field,
                           const char *value)
{
	if (!*value)
		return 0;
	if (!strcmp(value, "max")) {
		*(uint64_t *)field = SBX_MEMORY_SWAP_MAX;
		return 0;
	}
	return sbx_parse_size(value, cfg_where(p), field, p->err);
}

static int set_cpus(struct cfg_parser *p, const struct cfg_key *k, void *field, const char *value)
{
	if (!*value)
		return 0;
	if (cfg_parse_cpus(value, field) < 0)
		return cfg_fail(p,
		                "'%s' is not accepted (a number of CPUs above 0 and at most %d, "
		                "up to 3 decimals, e.g. 1.5)",
		                value, SBX_MAX_CPUS);
	return 0;
}

static const char *const oom_kill_choices[] = {"process", "group", NULL};

const struct cfg_key cfg_limits_keys[] = {
    {.name = "enabled",
     .type = CFG_BOOL,
     .offset = offsetof(struct sbx_limits, enabled),
     .set_bit = SBX_LIMIT_ENABLED,
     .def = 1},
    {.name = "memory",
     .type = CFG_SIZE,
     .offset = offsetof(struct sbx_limits, memory),
     .set_bit = SBX_LIMIT_MEMORY,
     .min = SBX_MIN_MEMORY,
     .accepted = "at least 1M"},
    {.name = "memory_swap",
     .type = CFG_CUSTOM,
     .offset = offsetof(struct sbx_limits, memory_swap),
     .set_bit = SBX_LIMIT_MEMORY_SWAP,
     .set = set_memory_swap},
    {.name = "cpus",
     .type = CFG_CUSTOM,
     .offset = offsetof(struct sbx_limits, millicpus),
     .set_bit = SBX_LIMIT_CPUS,
     .set = set_cpus},
    {.name = "pids",
     .type = CFG_U64,
     .offset = offsetof(struct sbx_limits, pids),
     .set_bit = SBX_LIMIT_PIDS,
     .min = 1,
     .max = PID_MAX_LIMIT},
    {.name = "oom_kill",
     .type = CFG_ENUM,
     .offset = offsetof(struct sbx_limits, oom_kill),
     .set_bit = SBX_LIMIT_OOM_KILL,
     .choices = oom_kill_choices},
};
_Static_assert(ELEMENTSOF(cfg_limits_keys) == CFG_LIMITS_N_KEYS, "CFG_LIMITS_N_KEYS");

void config_merge_limits(const struct sbx_limits *task, const struct sbx_limits *user,
                         struct sbx_limits *ret)
{
	struct sbx_limits m = {
	    .set = SBX_LIMIT_ENABLED | SBX_LIMIT_MEMORY_SWAP | SBX_LIMIT_PIDS | SBX_LIMIT_OOM_KILL,
	    .enabled = true,
	    .memory_swap = 0,
	    .pids = SBX_DEFAULT_PIDS,
	    .oom_kill = SBX_OOM_KILL_PROCESS,
	};
	/* user first, then the task over it */
	const struct sbx_limits *layers[] = {user, task};
	for (size_t i = 0; i < ELEMENTSOF(layers); i++) {
		const struct sbx_limits *l = layers[i];
		if (!l)
			continue;
		if (l->set & SBX_LIMIT_ENABLED)
			m.enabled = l->enabled;
		if (l->set & SBX_LIMIT_MEMORY)
			m.memory = l->memory;
		if (l->set & SBX_LIMIT_MEMORY_SWAP)
			m.memory_swap = l->memory_swap;
		if (l->set & SBX_LIMIT_CPUS)
			m.millicpus = l->millicpus;
		if (l->set & SBX_LIMIT_PIDS)
			m.pids = l->pids;
		if (l->set & SBX_LIMIT_OOM_KILL)
			m.oom_kill = l->oom_kill;
		m.set |= l->set;
	}
	*ret = m;
}

int config_parse_limit(struct sbx_limits *limits, const char *key, const char *value,
                       const char *what, struct sbx_err *err)
{
	const struct cfg_section section = {
	    .name = "limits",
	    .keys = cfg_limits_keys,
	    .n_keys = CFG_LIMITS_N_KEYS,
	    .has_set_mask = true,
	};
	struct cfg_parser p = {
	    .file = what,
	    .dir = "/",
	    .what = what,
	    .sections = &section,
	    .n_sections = 1,
	    .target = limits,
	    .err = err,
	};
	int r = cfg_parser_init(&p);
	if (r >= 0) {
		p.origin = CFG_OPTION;
		r = cfg_assign(&p, "limits", key, value);
	}
	cfg_parser_done(&p);
	return r;
}
