/* The push socket's wire format; see push_proto.h.  libc only: the static
 * git-remote-trimo compiles this file too. */
#include "orchestrator/push_proto.h"

#include <string.h>

const char push_zero_oid[PUSH_OID_HEX + 1] = "0000000000000000000000000000000000000000";

bool push_oid_valid(const char *s)
{
	for (int i = 0; i < PUSH_OID_HEX; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[PUSH_OID_HEX] == '\0';
}

bool push_oid_is_zero(const char *s)
{
	return !strcmp(s, push_zero_oid);
}

void push_clean_text(char *dst, size_t size, const char *text)
{
	if (size == 0)
		return;
	size_t o = 0;
	for (const char *c = text; *c && o + 1 < size; c++) {
		unsigned char u = (unsigned char)*c;
		dst[o++] = (u < 0x20 || u == 0x7f) ? ' ' : (char)u;
	}
	dst[o] = '\0';
}

static bool text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* ---- writing --------------------------------------------------------- */

struct wbuf {
	uint8_t *p;
	size_t size, len;
	bool bad;
};

static void put(struct wbuf *w, const void *data, size_t n)
{
	if (w->bad || n > w->size - w->len) {
		w->bad = true;
		return;
	}
	memcpy(w->p + w->len, data, n);
	w->len += n;
}

static void put_u8(struct wbuf *w, uint8_t v)
{
	put(w, &v, 1);
}

static void put_u16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	put(w, b, 2);
}

static void put_u64(struct wbuf *w, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	put(w, b, 8);
}

static void put_str(struct wbuf *w, const char *s, size_t max)
{
	if (!text_ok(s, max)) {
		w->bad = true;
		return;
	}
	size_t n = strlen(s);
	put_u16(w, (uint16_t)n);
	put(w, s, n);
}

static void put_oid(struct wbuf *w, const char *oid)
{
	if (!push_oid_valid(oid)) {
		w->bad = true;
		return;
	}
	put(w, oid, PUSH_OID_HEX);
}

size_t push_request_encode(const struct push_request *req, uint8_t *buf, size_t size)
{
	struct wbuf w = {.p = buf, .size = size};
	if (req->n > PUSH_MAX_UPDATES || (req->flags & ~PUSH_FLAGS_KNOWN) ||
	    (req->kind != PUSH_KIND_LIST && req->kind != PUSH_KIND_PUSH))
		return 0;
	put(&w, PUSH_MAGIC_REQ, PUSH_MAGIC_LEN);
	put_u8(&w, req->kind);
	put_u8(&w, req->flags);
	put_u8(&w, req->n);
	for (unsigned i = 0; i < req->n; i++) {
		const struct push_update *u = &req->u[i];
		put_u8(&w, u->force ? 1 : 0);
		put_oid(&w, u->old_oid);
		put_oid(&w, u->new_oid);
		if (!u->ref[0])
			w.bad = true;
		put_str(&w, u->ref, PUSH_REF_MAX);
	}
	put_u64(&w, req->pack_len);
	return w.bad ? 0 : w.len;
}

size_t push_answer_encode(const struct push_answer *ans, uint8_t *buf, size_t size)
{
	struct wbuf w = {.p = buf, .size = size};
	if (ans->n > PUSH_MAX_ENTRIES)
		return 0;
	put(&w, PUSH_MAGIC_ANS, PUSH_MAGIC_LEN);
	put_u8(&w, ans->status);
	put_str(&w, ans->msg, PUSH_MSG_MAX);
	put_u8(&w, ans->n);
	for (unsigned i = 0; i < ans->n; i++) {
		const struct push_entry *e = &ans->e[i];
		put_u8(&w, e->ok ? 1 : 0);
		put_oid(&w, e->oid);
		put_str(&w, e->ref, PUSH_REF_MAX);
		put_str(&w, e->msg, PUSH_MSG_MAX);
	}
	return w.bad ? 0 : w.len;
}

/* ---- reading --------------------------------------------------------- */

enum { R_OK = 1, R_MORE = 0, R_BAD = -1 };

struct rbuf {
	const uint8_t *p;
	size_t len, pos;
	int state; /* R_OK until something is short (R_MORE) or wrong (R_BAD) */
	const char *why;
};

static bool get(struct rbuf *r, void *out, size_t n)
{
	if (r->state != R_OK)
		return false;
	if (n > r->len - r->pos) {
		r->state = R_MORE;
		return false;
	}
	memcpy(out, r->p + r->pos, n);
	r->pos += n;
	return true;
}

static void bad(struct rbuf *r, const char *why)
{
	if (r->state == R_OK) {
		r->state = R_BAD;
		r->why = why;
	}
}

static uint8_t get_u8(struct rbuf *r)
{
	uint8_t v = 0;
	get(r, &v, 1);
	return v;
}

static uint16_t get_u16(struct rbuf *r)
{
	uint8_t b[2] = {0, 0};
	get(r, b, 2);
	return (uint16_t)(b[0] << 8 | b[1]);
}

static uint64_t get_u64(struct rbuf *r)
{
	uint8_t b[8] = {0};
	get(r, b, 8);
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

static void get_bool(struct rbuf *r, bool *out)
{
	uint8_t v = get_u8(r);
	if (r->state == R_OK && v > 1)
		bad(r, "a flag byte is neither 0 nor 1");
	*out = v == 1;
}

static void get_str(struct rbuf *r, char *out, size_t max, const char *what)
{
	out[0] = '\0';
	uint16_t n = get_u16(r);
	if (r->state != R_OK)
		return;
	if (n > max) {
		bad(r, what);
		return;
	}
	if (!get(r, out, n))
		return;
	out[n] = '\0';
	if (memchr(out, '\0', n) || !text_ok(out, max))
		bad(r, "a string holds control characters");
}

static void get_oid(struct rbuf *r, char *out)
{
	out[0] = '\0';
	if (!get(r, out, PUSH_OID_HEX))
		return;
	out[PUSH_OID_HEX] = '\0';
	if (!push_oid_valid(out))
		bad(r, "an object id is not 40 lowercase hex digits");
}

static void get_magic(struct rbuf *r, const char *magic)
{
	char m[PUSH_MAGIC_LEN];
	/* a partial prefix that is already wrong is wrong */
	size_t have = r->len < PUSH_MAGIC_LEN ? r->len : PUSH_MAGIC_LEN;
	if (memcmp(r->p, magic, have) != 0) {
		bad(r, "not a trimo-sbx push message");
		return;
	}
	get(r, m, PUSH_MAGIC_LEN);
}

static int finish(struct rbuf *r, size_t *ret_used, const char **ret_why)
{
	if (r->state == R_BAD && ret_why)
		*ret_why = r->why;
	if (r->state == R_OK)
		*ret_used = r->pos;
	return r->state;
}

int push_request_decode(const uint8_t *buf, size_t len, struct push_request *ret, size_t *ret_used,
                        const char **ret_why)
{
	struct rbuf r = {.p = buf, .len = len, .state = R_OK};
	memset(ret, 0, sizeof(*ret));
	get_magic(&r, PUSH_MAGIC_REQ);
	ret->kind = get_u8(&r);
	ret->flags = get_u8(&r);
	ret->n = get_u8(&r);
	if (r.state == R_OK && ret->kind != PUSH_KIND_LIST && ret->kind != PUSH_KIND_PUSH)
		bad(&r, "unknown request kind");
	if (r.state == R_OK && (ret->flags & ~PUSH_FLAGS_KNOWN))
		bad(&r, "unknown request flags");
	if (r.state == R_OK && ret->n > PUSH_MAX_UPDATES)
		bad(&r, "too many ref updates in one push");
	if (r.state == R_OK && ret->kind == PUSH_KIND_PUSH && ret->n == 0)
		bad(&r, "a push without ref updates");
	if (r.state == R_OK && ret->kind == PUSH_KIND_LIST && ret->n != 0)
		bad(&r, "a list request with ref updates");
	for (unsigned i = 0; i < ret->n && r.state == R_OK; i++) {
		struct push_update *u = &ret->u[i];
		get_bool(&r, &u->force);
		get_oid(&r, u->old_oid);
		get_oid(&r, u->new_oid);
		get_str(&r, u->ref, PUSH_REF_MAX, "a ref name is too long");
		if (r.state == R_OK && !u->ref[0])
			bad(&r, "an empty ref name");
	}
	ret->pack_len = get_u64(&r);
	if (r.state == R_OK && ret->kind == PUSH_KIND_LIST && ret->pack_len != 0)
		bad(&r, "a list request with a pack");
	return finish(&r, ret_used, ret_why);
}

int push_answer_decode(const uint8_t *buf, size_t len, struct push_answer *ret, size_t *ret_used,
                       const char **ret_why)
{
	struct rbuf r = {.p = buf, .len = len, .state = R_OK};
	memset(ret, 0, sizeof(*ret));
	get_magic(&r, PUSH_MAGIC_ANS);
	ret->status = get_u8(&r);
	get_str(&r, ret->msg, PUSH_MSG_MAX, "a message is too long");
	ret->n = get_u8(&r);
	if (r.state == R_OK && ret->n > PUSH_MAX_ENTRIES)
		bad(&r, "too many entries in an answer");
	for (unsigned i = 0; i < ret->n && r.state == R_OK; i++) {
		struct push_entry *e = &ret->e[i];
		get_bool(&r, &e->ok);
		get_oid(&r, e->oid);
		get_str(&r, e->ref, PUSH_REF_MAX, "a ref name is too long");
		get_str(&r, e->msg, PUSH_MSG_MAX, "a message is too long");
	}
	return finish(&r, ret_used, ret_why);
}
