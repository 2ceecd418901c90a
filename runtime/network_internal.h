/* Shared between runtime/network*.c only. */
#ifndef SBX_RUNTIME_NETWORK_INTERNAL_H
#define SBX_RUNTIME_NETWORK_INTERNAL_H

#include <sys/socket.h>
#include <sys/types.h>

#include "runtime/helper.h"
#include "runtime/network.h"
#include "runtime/proxy.h"

/* Whether host ip:port can be bound now (0), or the bind's -errno. */
int net_port_probe(const char *ip, uint16_t port, bool udp);

/* network_tool.c: start pasta / slirp4netns for the sandbox whose init is
 * pid and wait until it is ready. */
int net_tool_start(struct sbx_net *net, pid_t pid, struct sbx_err *err);

/* network_ns.c: a TCP socket listening on 127.0.0.1:port inside the
 * network namespace of pid (made by a helper that joins pid's user and
 * network namespaces). */
int net_listen_in_ns(pid_t pid, uint16_t port, int *ret_fd, struct sbx_err *err);

/* network_ns.c: fork the proxy serving listen_fd. */
int net_proxy_start(struct sbx_net *net, int listen_fd, struct sbx_err *err);

#endif
