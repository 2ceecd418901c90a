/* Shared between runtime/network*.c only. */
#ifndef SBX_RUNTIME_NETWORK_INTERNAL_H
#define SBX_RUNTIME_NETWORK_INTERNAL_H

#include <sys/socket.h>
#include <sys/types.h>

#include "runtime/network.h"
#include "runtime/proxy.h"

/* network_spawn.c: fork a helper with PR_SET_PDEATHSIG(SIGKILL) (checked
 * against the runner's pid afterwards), signals unblocked, stdin/stdout on
 * /dev/null, stderr on log_fd, pass[i] as fd 3 + i, every other fd closed,
 * and exec path.  *ret_pid is the child. */
int net_spawn(const char *path, char *const *argv, const int *pass, size_t n_pass, int log_fd,
              pid_t *ret_pid, struct sbx_err *err);

/* The same without exec: 0 in the child (set up as above), 1 in the
 * parent with *ret_pid set, < 0 on failure. */
int net_fork(const int *pass, size_t n_pass, int log_fd, pid_t *ret_pid, struct sbx_err *err);

/* What a helper wrote to its log memfd (the last line or two), for errors. */
void net_helper_log_tail(int log_fd, char *buf, size_t size);

/* SIGKILL and reap a child we started; *pid set to 0. */
void net_kill_child(pid_t *pid);

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
