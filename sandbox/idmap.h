/* User and group id maps of the sandbox's user namespace, written by the
 * parent after clone (the child has no usable ids until then; it waits for
 * GO).  One id: container 0 is the caller, so no setuid helper is needed.
 * For such a map we write setgroups=deny first — the kernel refuses an
 * unprivileged gid_map otherwise.  Deny is permanent for the namespace. */
#ifndef SBX_SANDBOX_IDMAP_H
#define SBX_SANDBOX_IDMAP_H

#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

/* "0 1000 1\n" */
int idmap_format(char *buf, size_t size, unsigned inside, unsigned outside, unsigned count);

/* Write /proc/PID/{setgroups,gid_map,uid_map}: 0 -> uid/gid, one id. */
int idmap_parent(pid_t pid, uid_t uid, gid_t gid, struct sbx_err *err);

/* Why user namespaces do not work here, when we can tell (AppArmor's
 * userns restriction, max_user_namespaces = 0, Debian's old sysctl), as
 * text with the fix; "" when nothing explains it. */
void idmap_diagnose(char *buf, size_t size);

#endif
