#include "rootfs/decomp.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/cleanup.h"
#include "common/util.h"

#define BUF_SIZE (1U << 20)

int decomp_errnum(int archive_errno)
{
	switch (archive_errno) {
	case ENOSPC:
	case EDQUOT:
	case EIO:
	case ENOMEM:
	case EROFS:
	case EMFILE:
	case ENFILE:
	case EACCES:
	case EPERM:
		return archive_errno;
	default:
		return EBADMSG;
	}
}

struct reader {
	int fd;
	bool hash;
	char *buf;
	struct digest_ctx blob;
	uint64_t blob_size;
};

static ssize_t read_more(struct reader *r)
{
	for (;;) {
		ssize_t n = read(r->fd, r->buf, BUF_SIZE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (r->hash)
			digest_update(&r->blob, r->buf, (size_t)n);
		r->blob_size += (uint64_t)n;
		return n;
	}
}

static ssize_t read_cb(struct archive *a, void *userdata, const void **out)
{
	struct reader *r = userdata;
	ssize_t n = read_more(r);
	if (n < 0) {
		archive_set_error(a, (int)-n, "read: %s", sbx_strerror((int)-n));
		return -1;
	}
	*out = r->buf;
	return n;
}

static int fail_archive(struct decomp_result *res, struct archive *a)
{
	const char *msg = archive_error_string(a);
	return sbx_failx(&res->err, decomp_errnum(archive_errno(a)), "%s",
	                 msg ? msg : "corrupt compressed data");
}

/* Decompress everything into data_fd.  Returns < 0 with res->err set, or
 * -EPIPE when the parent stopped reading (it has its own error then). */
static int pump(struct reader *rd, int data_fd, uint64_t max_out, bool hash,
                struct decomp_result *res)
{
	struct archive *a = archive_read_new();
	if (!a)
		return sbx_fail(&res->err, ENOMEM, "decompress");
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	struct digest_ctx diff;
	digest_init(&diff);
	int r = 0;
	struct archive_entry *e;
	if (archive_read_open(a, rd, NULL, read_cb, NULL) != ARCHIVE_OK)
		r = fail_archive(res, a);
	else if ((r = archive_read_next_header(a, &e)) != ARCHIVE_OK)
		/* an empty blob has no header: an empty stream */
		r = rd->blob_size == 0 && r != ARCHIVE_FATAL ? 0 : fail_archive(res, a);
	else
		for (;;) {
			const void *buf;
			size_t size;
			la_int64_t off;
			r = archive_read_data_block(a, &buf, &size, &off);
			if (r == ARCHIVE_EOF) {
				r = 0;
				break;
			}
			if (r != ARCHIVE_OK) {
				r = fail_archive(res, a);
				break;
			}
			if (hash)
				digest_update(&diff, buf, size);
			res->diff_size += size;
			if (res->diff_size > max_out) {
				r = sbx_failx(&res->err, EFBIG,
				              "uncompressed data is larger than the limit of %llu "
				              "bytes",
				              (unsigned long long)max_out);
				break;
			}
			if (sbx_write_all(data_fd, buf, size) < 0) {
				r = -EPIPE;
				break;
			}
		}
	archive_read_free(a);
	if (hash)
		digest_final_hex(&diff, res->diff_hex);
	return r;
}

static __attribute__((noreturn)) void child_main(int in_fd, int data_fd, int res_fd,
                                                 uint64_t max_out, int hashes)
{
	struct decomp_result res;
	memset(&res, 0, sizeof(res));
	struct reader rd = {
	    .fd = in_fd, .hash = hashes & DECOMP_HASH_BLOB, .buf = malloc(BUF_SIZE)};
	if (!rd.buf)
		_exit(1);
	digest_init(&rd.blob);
	int r = pump(&rd, data_fd, max_out, hashes & DECOMP_HASH_DIFF, &res);
	if (r == -EPIPE)
		_exit(1);
	close(data_fd);
	/* the blob digest covers every byte, also after the end of the
	 * compressed stream */
	while (read_more(&rd) > 0)
		;
	res.blob_size = rd.blob_size;
	if (rd.hash)
		digest_final_hex(&rd.blob, res.blob_hex);
	if (sbx_write_all(res_fd, &res, sizeof(res)) < 0)
		_exit(1);
	_exit(0);
}

/* Close every fd but the three the helper uses (it must not keep the
 * parent's locks alive, nor anything else). */
static void close_others(int a, int b, int c)
{
	int v[3] = {a, b, c};
	for (int i = 0; i < 3; i++)
		for (int j = i + 1; j < 3; j++)
			if (v[j] < v[i]) {
				int t = v[i];
				v[i] = v[j];
				v[j] = t;
			}
	unsigned lo = 3;
	for (int i = 0; i < 3; i++) {
		if ((unsigned)v[i] > lo)
			close_range(lo, (unsigned)v[i] - 1, 0);
		if ((unsigned)v[i] + 1 > lo)
			lo = (unsigned)v[i] + 1;
	}
	close_range(lo, ~0U, 0);
}

int decomp_start(int in_fd, uint64_t max_out, int hashes, struct decomp *ret, struct sbx_err *err)
{
	int dp[2], rp[2];
	if (pipe2(dp, O_CLOEXEC) < 0)
		return sbx_fail(err, errno, "pipe");
	if (pipe2(rp, O_CLOEXEC) < 0) {
		int e = errno;
		close(dp[0]);
		close(dp[1]);
		return sbx_fail(err, e, "pipe");
	}
	(void)fcntl(dp[1], F_SETPIPE_SZ, (int)BUF_SIZE); /* fewer wakeups; optional */
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(dp[0]);
		close(dp[1]);
		close(rp[0]);
		close(rp[1]);
		return sbx_fail(err, e, "fork");
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		signal(SIGPIPE, SIG_DFL);
		close(dp[0]);
		close(rp[0]);
		close_others(in_fd, dp[1], rp[1]);
		child_main(in_fd, dp[1], rp[1], max_out, hashes);
	}
	close(dp[1]);
	close(rp[1]);
	ret->pid = pid;
	ret->data_fd = dp[0];
	ret->result_fd = rp[0];
	return 0;
}

static void drain(int fd)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
	}
}

int decomp_finish(struct decomp *d, bool drain_first, struct decomp_result *ret,
                  struct sbx_err *err)
{
	if (drain_first && d->data_fd >= 0)
		drain(d->data_fd);
	sbx_closep(&d->data_fd);
	d->data_fd = -1;
	ssize_t n;
	do
		n = read(d->result_fd, ret, sizeof(*ret));
	while (n < 0 && errno == EINTR);
	sbx_closep(&d->result_fd);
	d->result_fd = -1;
	int status = 0;
	while (waitpid(d->pid, &status, 0) < 0 && errno == EINTR)
		;
	d->pid = 0;
	if (n != (ssize_t)sizeof(*ret)) {
		if (WIFSIGNALED(status))
			return sbx_failx(err, EIO, "decompressor killed by signal %d",
			                 WTERMSIG(status));
		return sbx_failx(err, EIO, "decompressor exited without a result");
	}
	ret->err.msg[sizeof(ret->err.msg) - 1] = '\0';
	return 0;
}

void decomp_kill(struct decomp *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		while (waitpid(d->pid, NULL, 0) < 0 && errno == EINTR)
			;
		d->pid = 0;
	}
	sbx_closep(&d->data_fd);
	sbx_closep(&d->result_fd);
	d->data_fd = d->result_fd = -1;
}
