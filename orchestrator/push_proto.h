/* The push socket's wire format: git-remote-trimo (inside the sandbox,
 * static, libc only) talks to the host's receiver over
 * /run/trimo/push.sock, one request and one answer per connection.
 *
 * Everything here is pure: encoders write into a caller's buffer, decoders
 * read from one and never trust a length they have not checked.  Integers
 * are big-endian; strings are a u16 length and bytes, never NUL-terminated
 * on the wire, and may not contain control characters (they end up in
 * git's line protocol).  Object ids are 40 lowercase hex digits (SHA-1);
 * forty zeros mean "no object" (a ref that does not exist, or a delete).
 *
 *   request  := MAGIC_REQ kind:u8 flags:u8 n:u8 update*n pack_len:u64
 *   update   := force:u8 old:40 new:40 ref:str
 *   (pack_len bytes of a git pack follow a PUSH request; a LIST has n = 0
 *    and pack_len = 0)
 *
 *   answer   := MAGIC_ANS status:u8 message:str n:u8 entry*n
 *   entry    := ok:u8 oid:40 ref:str message:str
 *
 * LIST answers with the host's tips (ok = 1, oid, ref).  PUSH answers one
 * entry per update, in order: ok = 1 with an informational message, or
 * ok = 0 with the reason git shows the agent.  status != 0 means the
 * whole request failed (message says why; entries may be absent). */
#ifndef SBX_ORCH_PUSH_PROTO_H
#define SBX_ORCH_PUSH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PUSH_MAGIC_REQ   "TRIMOPQ1"
#define PUSH_MAGIC_ANS   "TRIMOPA1"
#define PUSH_MAGIC_LEN   8
#define PUSH_OID_HEX     40
#define PUSH_REF_MAX     255 /* git's limit on a ref name is the file system's */
#define PUSH_MSG_MAX     400
#define PUSH_MAX_UPDATES 32
#define PUSH_MAX_ENTRIES 32
/* The largest encoded request header and answer. */
#define PUSH_REQ_HDR_MAX                                                                           \
	(PUSH_MAGIC_LEN + 3 + PUSH_MAX_UPDATES * (1 + 2 * PUSH_OID_HEX + 2 + PUSH_REF_MAX) + 8)
#define PUSH_ANS_MAX                                                                               \
	(PUSH_MAGIC_LEN + 1 + 2 + PUSH_MSG_MAX + 1 +                                               \
	 PUSH_MAX_ENTRIES * (1 + PUSH_OID_HEX + 2 + PUSH_REF_MAX + 2 + PUSH_MSG_MAX))

enum push_kind {
	PUSH_KIND_LIST = 1, /* the host's tips, for `list for-push` */
	PUSH_KIND_PUSH = 2, /* updates and a pack */
};

#define PUSH_FLAG_DRY_RUN 0x01u /* decide and verify, write nothing */
#define PUSH_FLAGS_KNOWN  PUSH_FLAG_DRY_RUN

struct push_update {
	bool force;                     /* git's "+src:dst" */
	char old_oid[PUSH_OID_HEX + 1]; /* the tip the client saw advertised */
	char new_oid[PUSH_OID_HEX + 1]; /* zeros: delete */
	char ref[PUSH_REF_MAX + 1];     /* destination, "refs/heads/..." */
};

struct push_request {
	uint8_t kind;
	uint8_t flags;
	uint8_t n;
	struct push_update u[PUSH_MAX_UPDATES];
	uint64_t pack_len;
};

struct push_entry {
	bool ok;
	char oid[PUSH_OID_HEX + 1];
	char ref[PUSH_REF_MAX + 1];
	char msg[PUSH_MSG_MAX + 1];
};

struct push_answer {
	uint8_t status; /* 0: see the entries; else msg is the failure */
	char msg[PUSH_MSG_MAX + 1];
	uint8_t n;
	struct push_entry e[PUSH_MAX_ENTRIES];
};

extern const char push_zero_oid[PUSH_OID_HEX + 1];

/* 40 lowercase hex digits. */
bool push_oid_valid(const char *s);
bool push_oid_is_zero(const char *s);

/* Encoders: return the encoded length, or 0 when the structure is not
 * valid to send (bad oid, ref too long or with control characters, too
 * many entries) or does not fit in size. */
size_t push_request_encode(const struct push_request *req, uint8_t *buf, size_t size);
size_t push_answer_encode(const struct push_answer *ans, uint8_t *buf, size_t size);

/* Decoders over the len bytes received so far.  Return 1 with *ret and
 * *ret_used (the header's length; a request's pack starts there) when a
 * whole header is there, 0 when more bytes are needed, and -1 when the
 * bytes can never be valid (why, a short phrase, in *ret_why). */
int push_request_decode(const uint8_t *buf, size_t len, struct push_request *ret, size_t *ret_used,
                        const char **ret_why);
int push_answer_decode(const uint8_t *buf, size_t len, struct push_answer *ret, size_t *ret_used,
                       const char **ret_why);

/* Copy text into dst (size bytes), replacing control characters with
 * spaces and cutting at size - 1: a message safe for git's line protocol
 * and for a terminal. */
void push_clean_text(char *dst, size_t size, const char *text);

#endif
