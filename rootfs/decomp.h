/* The decompressor: a forked helper process that reads a blob, hashes it
 * as stored (the descriptor digest), decompresses it with libarchive's
 * filters (gzip, zstd, xz, bzip2, lz4 or none, found by content), hashes
 * the result (the diff_id) and writes it into a pipe.  The parent unpacks
 * from the pipe meanwhile: decompression and file creation run on two
 * cores, which is what lets an import with verification beat a plain
 * `bsdtar -xpf`.  A process and not a thread: trimo-sbx calls clone()
 * later and must never have had a second thread (STYLE.md). */
#ifndef SBX_ROOTFS_DECOMP_H
#define SBX_ROOTFS_DECOMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "rootfs/digest.h"

struct decomp {
	pid_t pid;     /* 0 when not running */
	int data_fd;   /* read end of the uncompressed stream */
	int result_fd; /* read end of the result record */
};

struct decomp_result {
	struct sbx_err err; /* errnum 0: the stream was whole */
	char blob_hex[DIGEST_HEX_LEN + 1];
	char diff_hex[DIGEST_HEX_LEN + 1];
	uint64_t blob_size, diff_size;
};

/* What the helper hashes (each costs ~1 s of CPU per GB). */
#define DECOMP_HASH_BLOB 1 /* the blob as stored: blob_hex */
#define DECOMP_HASH_DIFF 2 /* the uncompressed stream: diff_hex */

/* Start the helper on in_fd (read from its current offset to EOF; the
 * parent's copy stays open).  It fails (in its result) when the
 * uncompressed stream grows beyond max_out bytes.  Hashes it does not
 * compute are left "". */
int decomp_start(int in_fd, uint64_t max_out, int hashes, struct decomp *ret, struct sbx_err *err);

/* Wait for the helper and collect its result.  With drain_first, the rest
 * of the stream is read and dropped (tar's end-of-archive comes before the
 * padding); otherwise data_fd is closed at once and a helper still writing
 * dies of SIGPIPE.  Returns 0 when a result came (look at ret->err),
 * -errno when the helper ended without one. */
int decomp_finish(struct decomp *d, bool drain_first, struct decomp_result *ret,
                  struct sbx_err *err);

/* The errno for a libarchive failure: its own when it is the system's
 * trouble (ENOSPC, EIO, EACCES, ...), EBADMSG (bad input) otherwise. */
int decomp_errnum(int archive_errno);

/* Kill and reap a helper that is still running (cleanup path). */
void decomp_kill(struct decomp *d);

#endif
