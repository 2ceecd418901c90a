/* From the user's [limits] (config/) to what the runtime writes into a
 * cgroup (runtime/cgroup.h). */
#ifndef SBX_ORCH_LIMITS_H
#define SBX_ORCH_LIMITS_H

#include "config/config.h"
#include "runtime/cgroup.h"
#include "sandbox/spec.h"

/* Effective limits (config_merge_limits' result) in the cgroup's terms. */
void limits_to_cgroup(const struct sbx_limits *eff, struct sbx_cgroup_limits *ret);

/* [storage] overlay (enum sbx_cfg_overlay) by name, as the task state
 * keeps it, and in the sandbox's terms. */
const char *overlay_name(int cfg_overlay);
enum sbx_overlay_mode overlay_mode(const char *name);

#endif
