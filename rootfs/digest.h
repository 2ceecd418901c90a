/* sha256 digests ("sha256:<64 lowercase hex>").  Nettle's sha256: libarchive
 * already links it (so no new library), and it uses the SHA-NI
 * instructions where the CPU has them (1.2 GB/s on the CI machine). */
#ifndef SBX_ROOTFS_DIGEST_H
#define SBX_ROOTFS_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nettle/sha2.h>

#include "common/err.h"

#define DIGEST_HEX_LEN 64
#define DIGEST_PREFIX  "sha256:"

struct digest_ctx {
	struct sha256_ctx sha;
};

void digest_init(struct digest_ctx *c);
void digest_update(struct digest_ctx *c, const void *data, size_t len);
/* Finish and write 64 hex digits and a NUL into hex. */
void digest_final_hex(struct digest_ctx *c, char hex[DIGEST_HEX_LEN + 1]);

/* True when hex is exactly 64 lowercase hex digits. */
bool digest_hex_valid(const char *hex);

/* Parse "sha256:<hex>" into hex.  Fails (EBADMSG, naming `what`) for other
 * algorithms and malformed strings. */
int digest_parse(const char *s, const char *what, char hex[DIGEST_HEX_LEN + 1],
                 struct sbx_err *err);

/* "sha256:" + the first 12 hex digits: how errors name a blob. */
void digest_short(const char *hex, char out[20]);

/* Hash everything readable from fd (from its current offset).  Fails
 * with EFBIG when more than max bytes come. */
int digest_fd(int fd, uint64_t max, char hex[DIGEST_HEX_LEN + 1], uint64_t *ret_size,
              struct sbx_err *err);

#endif
