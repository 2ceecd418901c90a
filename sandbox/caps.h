/* Capabilities kept inside the sandbox.  All of them are capabilities over
 * the sandbox's own user namespace only.
 *
 * Parent: caps_compute() turns --cap-add/--cap-drop into a bit mask.
 * Child:  caps_child() drops the bounding set first (that needs
 *         CAP_SETPCAP, which the child still has), then sets permitted and
 *         effective to the mask, empties inheritable, clears ambient.
 *         Raw prctl()/capset() only: libcap allocates. */
#ifndef SBX_SANDBOX_CAPS_H
#define SBX_SANDBOX_CAPS_H

#include <stdint.h>

#include "common/err.h"

/* The 11 capabilities podman keeps by default; as root without SETFCAP
 * (a file capability set inside would be valid for host root). */
uint64_t caps_default(void);

/* Highest capability number this kernel knows (/proc/sys/kernel/cap_last_cap). */
int caps_last_cap(void);

/* Parse one name: "NET_ADMIN", "cap_net_admin", "ALL" (-> *ret_all). */
int caps_parse_name(const char *name, int *ret_cap, int *ret_all, struct sbx_err *err);

/* base, then adds, minus drops, the way podman merges them: "ALL" in adds
 * means every capability, "ALL" in drops starts from nothing but adds.
 * A capability both added and dropped by name is an error. */
int caps_compute(uint64_t base, char *const *adds, char *const *drops, uint64_t *ret,
                 struct sbx_err *err);

/* Format a mask as "CHOWN,DAC_OVERRIDE,..." into buf (for messages). */
void caps_format(uint64_t caps, char *buf, size_t size);

/* In the child (async-signal-safe). */
int caps_child(uint64_t keep, int last_cap, struct sbx_err *err);

#endif
