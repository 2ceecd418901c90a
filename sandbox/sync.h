/* The parent/child sync protocol: fixed-size messages on a
 * SOCK_SEQPACKET|SOCK_CLOEXEC socketpair.
 *
 *   parent -> child  MAPS    the id maps are written: the child may set up
 *                            its mounts (v1: while the runner moves it into
 *                            its cgroups, which waits for the kernel)
 *   parent -> child  GO      the cgroup is joined: the child roots its
 *                            cgroup namespace there (on cgroup v2 before
 *                            its mounts: it mounts cgroup2 of that namespace)
 *   child  -> parent READY   mounts, pivot_root, caps, no_new_privs done
 *   parent -> child  START   run the command
 *   child  -> parent ERROR   {errnum, msg}: setup or exec failed
 *   child  -> parent FUSE    with a /dev/fuse fd (SCM_RIGHTS) it mounted
 *                            its root with: the runner starts fuse-overlayfs
 *                            on it; the child goes on without waiting
 *   EOF after START          the command was exec'ed (every copy of the
 *                            child's end is O_CLOEXEC; init closes its own)
 *
 * Every read checks length and type.  sync_recv() in the child is
 * async-signal-safe. */
#ifndef SBX_SANDBOX_SYNC_H
#define SBX_SANDBOX_SYNC_H

#include <stdint.h>

#include "common/err.h"

enum sbx_sync_type {
	SBX_SYNC_GO = 1,
	SBX_SYNC_READY = 2,
	SBX_SYNC_START = 3,
	SBX_SYNC_ERROR = 4,
	SBX_SYNC_FUSE = 5,
	SBX_SYNC_MAPS = 6,
};

struct sbx_sync_msg {
	uint32_t type;
	int32_t errnum;
	char msg[SBX_ERR_MSG_MAX];
};

/* Create the socketpair: fds[0] for the parent, fds[1] for the child. */
int sync_pair(int fds[2], struct sbx_err *err);

/* Send a message without payload. */
int sync_send(int fd, enum sbx_sync_type type);

/* Send a message without payload, passing fd along (SCM_RIGHTS). */
int sync_send_fd(int fd, enum sbx_sync_type type, int pass);

/* Send ERROR carrying err whole. */
int sync_send_error(int fd, const struct sbx_err *err);

/* Receive one message, waiting at most timeout_ms (-1: forever).
 * Returns 1 and fills *msg, 0 on EOF, -ETIMEDOUT, -EPROTO for a message of
 * the wrong size or an unknown type, or another -errno.  A passed fd
 * (O_CLOEXEC) goes to *ret_fd when ret_fd is given, else it is closed;
 * *ret_fd is -1 when none came. */
int sync_recv(int fd, int timeout_ms, struct sbx_sync_msg *msg);
int sync_recv_fd(int fd, int timeout_ms, struct sbx_sync_msg *msg, int *ret_fd);

/* Child side: wait for `want`.  EOF (the parent is gone) and anything
 * unexpected are failures recorded in err. */
int sync_expect(int fd, enum sbx_sync_type want, struct sbx_err *err);

const char *sync_type_name(uint32_t type);

#endif
