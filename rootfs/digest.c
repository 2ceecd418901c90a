#include "rootfs/digest.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

void digest_init(struct digest_ctx *c)
{
	sha256_init(&c->sha);
}

void digest_update(struct digest_ctx *c, const void *data, size_t len)
{
	sha256_update(&c->sha, len, data);
}

void digest_final_hex(struct digest_ctx *c, char hex[DIGEST_HEX_LEN + 1])
{
	uint8_t raw[SHA256_DIGEST_SIZE];
	sha256_digest(&c->sha, sizeof(raw), raw);
	for (size_t i = 0; i < sizeof(raw); i++) {
		hex[2 * i] = "0123456789abcdef"[raw[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[raw[i] & 15];
	}
	hex[DIGEST_HEX_LEN] = '\0';
}

bool digest_hex_valid(const char *hex)
{
	size_t i;
	for (i = 0; hex[i]; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			return false;
	return i == DIGEST_HEX_LEN;
}

int digest_parse(const char *s, const char *what, char hex[DIGEST_HEX_LEN + 1], struct sbx_err *err)
{
	if (!s)
		return sbx_failx(err, EBADMSG, "%s: no digest", what);
	if (!sbx_str_has_prefix(s, DIGEST_PREFIX)) {
		const char *colon = strchr(s, ':');
		if (colon && colon - s < 16)
			return sbx_failx(err, EBADMSG, "%s: unsupported digest algorithm in '%s'",
			                 what, s);
		return sbx_failx(err, EBADMSG, "%s: '%s' is not a digest", what, s);
	}
	const char *h = s + strlen(DIGEST_PREFIX);
	if (!digest_hex_valid(h))
		return sbx_failx(err, EBADMSG, "%s: '%s' is not a sha256 digest", what, s);
	memcpy(hex, h, DIGEST_HEX_LEN + 1);
	return 0;
}

void digest_short(const char *hex, char out[20])
{
	memcpy(out, DIGEST_PREFIX, 7);
	memcpy(out + 7, hex, 12);
	out[19] = '\0';
}

int digest_fd(int fd, uint64_t max, char hex[DIGEST_HEX_LEN + 1], uint64_t *ret_size,
              struct sbx_err *err)
{
	const size_t bufsize = 1 << 20;
	_cleanup_free_ char *buf = malloc(bufsize);
	if (!buf)
		return sbx_fail(err, ENOMEM, "hash");
	struct digest_ctx c;
	digest_init(&c);
	uint64_t total = 0;
	for (;;) {
		ssize_t n = read(fd, buf, bufsize);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sbx_fail(err, errno, "read");
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (total > max)
			return sbx_failx(err, EFBIG, "larger than the limit of %llu bytes",
			                 (unsigned long long)max);
		digest_update(&c, buf, (size_t)n);
	}
	digest_final_hex(&c, hex);
	if (ret_size)
		*ret_size = total;
	return 0;
}
