/* The sandbox's own UTS and network namespace, child side. */
#ifndef SBX_SANDBOX_NET_H
#define SBX_SANDBOX_NET_H

#include "common/err.h"

/* Bring the loopback interface up (the only one in a new namespace). */
int net_child_loopback(struct sbx_err *err);

/* Set the host name of the sandbox's UTS namespace. */
int net_child_hostname(const char *name, struct sbx_err *err);

#endif
