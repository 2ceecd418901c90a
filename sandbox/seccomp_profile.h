/* A seccomp profile in the Docker/podman JSON format
 * (--security-opt seccomp=FILE):
 *   { "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
 *     "syscalls": [ { "names": [...], "action": "SCMP_ACT_ALLOW",
 *                     "errnoRet": 1, "args": [ {"index": 0, "value": 0,
 *                     "valueTwo": 0, "op": "SCMP_CMP_EQ"} ],
 *                     "includes": {"caps": [...], "arches": [...]},
 *                     "excludes": {"caps": [...], "arches": [...]} } ] }
 * Rules whose includes/excludes do not match the sandbox's capabilities or
 * this architecture are skipped, as podman does; names this libseccomp does
 * not know are skipped.  Anything else unexpected is an error naming the
 * file and the entry. */
#ifndef SBX_SANDBOX_SECCOMP_PROFILE_H
#define SBX_SANDBOX_SECCOMP_PROFILE_H

#include <stdint.h>

#include "common/err.h"

/* *ret is a libseccomp scmp_filter_ctx the caller releases. */
int seccomp_profile_build(const char *path, uint64_t caps, void **ret, struct sbx_err *err);

#endif
