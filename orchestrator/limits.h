/* From the user's [limits] (config/) to what the runtime writes into a
 * cgroup (runtime/cgroup.h). */
#ifndef SBX_ORCH_LIMITS_H
#define SBX_ORCH_LIMITS_H

#include "config/config.h"
#include "runtime/cgroup.h"

/* Effective limits (config_merge_limits' result) in the cgroup's terms. */
void limits_to_cgroup(const struct sbx_limits *eff, struct sbx_cgroup_limits *ret);

#endif
