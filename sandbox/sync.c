#include "sandbox/sync.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int sync_pair(int fds[2], struct sbx_err *err)
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
		return sbx_fail(err, errno, "sync socketpair");
	return 0;
}

static int send_msg_fd(int fd, const struct sbx_sync_msg *m, int pass)
{
	struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof(*m)};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} c;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (pass >= 0) {
		memset(&c, 0, sizeof(c));
		mh.msg_control = c.buf;
		mh.msg_controllen = sizeof(c.buf);
		struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &pass, sizeof(int));
	}
	for (;;) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n == (ssize_t)sizeof(*m))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EPROTO;
	}
}

static int send_msg(int fd, const struct sbx_sync_msg *m)
{
	return send_msg_fd(fd, m, -1);
}

int sync_send(int fd, enum sbx_sync_type type)
{
	struct sbx_sync_msg m;
	memset(&m, 0, sizeof(m));
	m.type = type;
	return send_msg(fd, &m);
}

int sync_send_fd(int fd, enum sbx_sync_type type, int pass)
{
	struct sbx_sync_msg m;
	memset(&m, 0, sizeof(m));
	m.type = type;
	return send_msg_fd(fd, &m, pass);
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

/* The fds that came with a message: the first to *ret_fd (if asked and
 * none yet), every other one closed. */
static void take_fds(struct msghdr *mh, int *ret_fd)
{
	for (struct cmsghdr *h = CMSG_FIRSTHDR(mh); h; h = CMSG_NXTHDR(mh, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int got;
			memcpy(&got, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
			if (ret_fd && *ret_fd < 0)
				*ret_fd = got;
			else
				close(got);
		}
	}
}

int sync_recv(int fd, int timeout_ms, struct sbx_sync_msg *msg)
{
	return sync_recv_fd(fd, timeout_ms, msg, NULL);
}

int sync_recv_fd(int fd, int timeout_ms, struct sbx_sync_msg *msg, int *ret_fd)
{
	if (ret_fd)
		*ret_fd = -1;
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
	struct iovec iov = {.iov_base = msg, .iov_len = sizeof(*msg)};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} c;
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = c.buf,
	                    .msg_controllen = sizeof(c.buf)};
	ssize_t n;
	do
		n = recvmsg(fd, &mh, MSG_TRUNC | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	/* A peer that closed with a message of ours unread (a child that
	 * failed before reading GO) sets ECONNRESET, reported once and ahead
	 * of what it sent before closing: take that message now. */
	if (n < 0 && errno == ECONNRESET)
		n = recvmsg(fd, &mh, MSG_TRUNC | MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return errno == ECONNRESET || errno == EAGAIN ? 0 : -errno;
	take_fds(&mh, n > 0 ? ret_fd : NULL);
	if (n == 0)
		return 0;
	if (n != (ssize_t)sizeof(*msg) || (mh.msg_flags & MSG_CTRUNC))
		goto bad;
	if (msg->type < SBX_SYNC_GO || msg->type > SBX_SYNC_MAPS)
		goto bad;
	msg->msg[sizeof(msg->msg) - 1] = '\0';
	return 1;
bad:
	if (ret_fd && *ret_fd >= 0) {
		close(*ret_fd);
		*ret_fd = -1;
	}
	return -EPROTO;
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
	case SBX_SYNC_FUSE:
		return "FUSE";
	case SBX_SYNC_MAPS:
		return "MAPS";
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
