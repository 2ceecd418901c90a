#include "sandbox/sync.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

int sync_pair(int fds[2], struct sbx_err *err)
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
		return sbx_fail(err, errno, "sync socketpair");
	return 0;
}

static int send_msg(int fd, const struct sbx_sync_msg *m)
{
	for (;;) {
		ssize_t n = send(fd, m, sizeof(*m), MSG_NOSIGNAL);
		if (n == (ssize_t)sizeof(*m))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EPROTO;
	}
}

int sync_send(int fd, enum sbx_sync_type type)
{
	struct sbx_sync_msg m;
	memset(&m, 0, sizeof(m));
	m.type = type;
	return send_msg(fd, &m);
}

int sync_send_error(int fd, const struct sbx_err *err)
{
	struct sbx_sync_msg m;
	memset(&m, 0, sizeof(m));
	m.type = SBX_SYNC_ERROR;
	m.errnum = err->errnum;
	memcpy(m.msg, err->msg, sizeof(m.msg));
	m.msg[sizeof(m.msg) - 1] = '\0';
	return send_msg(fd, &m);
}

int sync_recv(int fd, int timeout_ms, struct sbx_sync_msg *msg)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	for (;;) {
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		break;
	}
	ssize_t n;
	do
		n = recv(fd, msg, sizeof(*msg), MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ECONNRESET ? 0 : -errno;
	if (n == 0)
		return 0;
	if (n != (ssize_t)sizeof(*msg))
		return -EPROTO;
	if (msg->type < SBX_SYNC_GO || msg->type > SBX_SYNC_ERROR)
		return -EPROTO;
	msg->msg[sizeof(msg->msg) - 1] = '\0';
	return 1;
}

const char *sync_type_name(uint32_t type)
{
	switch (type) {
	case SBX_SYNC_GO:
		return "GO";
	case SBX_SYNC_READY:
		return "READY";
	case SBX_SYNC_START:
		return "START";
	case SBX_SYNC_ERROR:
		return "ERROR";
	default:
		return "unknown";
	}
}

int sync_expect(int fd, enum sbx_sync_type want, struct sbx_err *err)
{
	struct sbx_sync_msg m;
	int r = sync_recv(fd, -1, &m);
	if (r == 0)
		return sbx_failx(err, EPIPE, "waiting for %s: the runner is gone",
		                 sync_type_name(want));
	if (r < 0)
		return sbx_fail(err, -r, "waiting for %s", sync_type_name(want));
	if (m.type != want)
		return sbx_failx(err, EPROTO, "waiting for %s: got %s", sync_type_name(want),
		                 sync_type_name(m.type));
	return 0;
}
