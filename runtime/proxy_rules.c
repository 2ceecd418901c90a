/* The proxy's decisions: allowlist rules, CONNECT targets, request heads,
 * which resolved addresses may be used, and the test hosts file.  Pure
 * functions of their input (the hosts file aside), unit-tested. */
#include "runtime/proxy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "common/util.h"

#define HOSTS_MAX_ENTRIES 4096

static bool all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

static int parse_port(const char *s, size_t n, uint16_t *ret)
{
	if (!all_digits(s, n) || n > 5)
		return -EINVAL;
	unsigned v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (v == 0 || v > 65535)
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

/* A DNS name: letters, digits, '-', '_', dot-separated labels of 1 to 63,
 * at most 253 characters.  Lower-cased into out. */
static int parse_name(const char *s, size_t n, char *out)
{
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > PROXY_HOST_MAX - 1)
		return -EINVAL;
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0)
				return -EINVAL;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return -EINVAL;
		} else {
			return -EINVAL;
		}
		out[i] = (char)tolower(c);
	}
	if (label == 0)
		return -EINVAL;
	out[n] = '\0';
	return 0;
}

/* host (n bytes, no brackets) into t: an IP literal or a name.  Numeric
 * forms inet_aton() would accept but that are not a canonical dotted quad
 * ("2130706433", "0x7f.1", "127.1", "010.0.0.1") are refused: a resolver
 * would turn them into an address no rule names. */
static int parse_host(const char *s, size_t n, bool bracketed, struct proxy_target *t)
{
	char buf[PROXY_HOST_MAX];
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(&t->ip, 0, sizeof(t->ip));
	if (bracketed) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&t->ip;
		if (inet_pton(AF_INET6, buf, &a6->sin6_addr) != 1)
			return -EINVAL;
		a6->sin6_family = AF_INET6;
		t->is_ip = true;
		inet_ntop(AF_INET6, &a6->sin6_addr, t->host, sizeof(t->host));
		return 0;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)&t->ip;
	if (inet_pton(AF_INET, buf, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		t->is_ip = true;
		inet_ntop(AF_INET, &a4->sin_addr, t->host, sizeof(t->host));
		return 0;
	}
	struct in_addr any;
	if (inet_aton(buf, &any))
		return -EINVAL;
	t->is_ip = false;
	return parse_name(s, n, t->host);
}

int proxy_target_parse(const char *s, size_t len, uint16_t default_port, struct proxy_target *ret)
{
	struct proxy_target t;
	memset(&t, 0, sizeof(t));
	const char *host = s, *port = NULL;
	size_t host_len, port_len = 0;
	bool bracketed = len > 0 && s[0] == '[';
	if (bracketed) {
		const char *close = memchr(s, ']', len);
		if (!close)
			return -EINVAL;
		host = s + 1;
		host_len = (size_t)(close - host);
		size_t rest = len - (size_t)(close + 1 - s);
		if (rest > 0) {
			if (close[1] != ':')
				return -EINVAL;
			port = close + 2;
			port_len = rest - 1;
		}
	} else {
		const char *colon = memchr(s, ':', len);
		if (colon && memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)))
			return -EINVAL; /* an IPv6 address needs its brackets */
		host_len = colon ? (size_t)(colon - s) : len;
		if (colon) {
			port = colon + 1;
			port_len = len - host_len - 1;
		}
	}
	if (parse_host(host, host_len, bracketed, &t) < 0)
		return -EINVAL;
	if (port) {
		if (parse_port(port, port_len, &t.port) < 0)
			return -EINVAL;
	} else if (default_port) {
		t.port = default_port;
	} else {
		return -EINVAL;
	}
	*ret = t;
	return 0;
}

int proxy_rule_parse(const char *s, const char *what, struct proxy_rule *ret, struct sbx_err *err)
{
	struct proxy_rule r;
	memset(&r, 0, sizeof(r));
	const char *body = s;
	if (!strncmp(s, "*.", 2)) {
		r.wildcard = true;
		body = s + 2;
	}
	struct proxy_target t;
	if (proxy_target_parse(body, strlen(body), 0, &t) < 0) {
		const char *colon = strrchr(s, ':');
		if (!colon || colon[1] == '\0' || (s[0] == '[' && colon < strchr(s, ']')))
			return sbx_failx(err, EINVAL, "%s '%s': name the port (e.g. %s:443)", what,
			                 s, s);
		return sbx_failx(err, EINVAL,
		                 "%s '%s': use NAME:PORT, *.DOMAIN:PORT, IPV4:PORT or [IPV6]:PORT",
		                 what, s);
	}
	if (r.wildcard && t.is_ip)
		return sbx_failx(err, EINVAL, "%s '%s': a wildcard needs a domain name", what, s);
	memcpy(r.host, t.host, sizeof(r.host));
	r.is_ip = t.is_ip;
	r.ip = t.ip;
	r.port = t.port;
	*ret = r;
	return 0;
}

int proxy_rules_parse(char *const *allow, struct proxy_rules *ret, struct sbx_err *err)
{
	size_t n = sbx_strv_len(allow);
	struct proxy_rule *v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return sbx_fail(err, ENOMEM, "allow");
	for (size_t i = 0; i < n; i++) {
		int r = proxy_rule_parse(allow[i], "allow", &v[i], err);
		if (r < 0) {
			free(v);
			return r;
		}
	}
	ret->v = v;
	ret->n = n;
	return 0;
}

void proxy_rules_free(struct proxy_rules *rules)
{
	if (!rules)
		return;
	free(rules->v);
	rules->v = NULL;
	rules->n = 0;
}

static bool same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	               &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
}

bool proxy_rules_match(const struct proxy_rules *rules, const struct proxy_target *t)
{
	size_t hl = strlen(t->host);
	for (size_t i = 0; rules && i < rules->n; i++) {
		const struct proxy_rule *r = &rules->v[i];
		if (r->port != t->port || r->is_ip != t->is_ip)
			continue;
		if (t->is_ip) {
			if (same_ip(&r->ip, &t->ip))
				return true;
			continue;
		}
		if (!r->wildcard) {
			if (!strcmp(r->host, t->host))
				return true;
			continue;
		}
		size_t sl = strlen(r->host);
		if (hl > sl + 1 && t->host[hl - sl - 1] == '.' &&
		    !strcmp(t->host + hl - sl, r->host))
			return true;
	}
	return false;
}

static bool v4_permitted(uint32_t a, bool allow_host_loopback)
{
	if ((a >> 24) == 0) /* 0.0.0.0/8: "this host" */
		return false;
	if ((a >> 24) == 127)
		return allow_host_loopback;
	if ((a >> 16) == 0xa9fe) /* 169.254.0.0/16: link-local, cloud metadata */
		return false;
	if ((a >> 28) >= 0xe) /* multicast, reserved, broadcast */
		return false;
	return true;
}

bool proxy_addr_permitted(const struct sockaddr *sa, bool allow_host_loopback)
{
	if (sa->sa_family == AF_INET)
		return v4_permitted(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr),
		                    allow_host_loopback);
	if (sa->sa_family != AF_INET6)
		return false;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a)) {
		uint32_t v4;
		memcpy(&v4, &a->s6_addr[12], 4);
		return v4_permitted(ntohl(v4), allow_host_loopback);
	}
	if (IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_MULTICAST(a) ||
	    IN6_IS_ADDR_SITELOCAL(a))
		return false;
	if (IN6_IS_ADDR_LOOPBACK(a))
		return allow_host_loopback;
	return true;
}

static int hosts_add(struct proxy_host_entry **v, size_t *n, const struct sockaddr_storage *addr,
                     const char *name)
{
	if (*n >= HOSTS_MAX_ENTRIES)
		return -E2BIG;
	struct proxy_host_entry e;
	memset(&e, 0, sizeof(e));
	if (parse_name(name, strlen(name), e.name) < 0)
		return 0; /* not a name we would ever look up */
	e.addr = *addr;
	struct proxy_host_entry *nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = e;
	*v = nv;
	return 0;
}

static int hosts_line(char *line, struct proxy_host_entry **v, size_t *n)
{
	line[strcspn(line, "#\n")] = '\0';
	char *save = NULL;
	char *addr = strtok_r(line, " \t", &save);
	if (!addr)
		return 0;
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1)
		a4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1)
		a6->sin6_family = AF_INET6;
	else
		return 0;
	for (char *name; (name = strtok_r(NULL, " \t", &save));) {
		int r = hosts_add(v, n, &ss, name);
		if (r < 0)
			return r;
	}
	return 0;
}

int proxy_hosts_load(const char *path, struct proxy_host_entry **ret, size_t *ret_n,
                     struct sbx_err *err)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return sbx_fail(err, errno, "hosts file '%s'", path);
	struct proxy_host_entry *v = NULL;
	size_t n = 0;
	char line[1024];
	while (fgets(line, sizeof(line), f)) {
		int r = hosts_line(line, &v, &n);
		if (r < 0) {
			free(v);
			return sbx_fail(err, -r, "hosts file '%s'", path);
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

size_t proxy_hosts_lookup(const struct proxy_host_entry *hosts, size_t n_hosts, const char *name,
                          struct sockaddr_storage *out, size_t max)
{
	size_t k = 0;
	for (size_t i = 0; i < n_hosts && k < max; i++)
		if (!strcmp(hosts[i].name, name))
			out[k++] = hosts[i].addr;
	return k;
}

/* The end of the head: after "\r\n\r\n" (or "\n\n"); 0 when incomplete. */
static size_t head_end(const char *buf, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static bool is_tchar(char c)
{
	return isalnum((unsigned char)c) || strchr("!#$%&'*+-.^_`|~", c);
}

/* "METHOD SP TARGET SP HTTP/1.x" into its three parts (not copied). */
static int split_request_line(const char *line, size_t n, const char **m, size_t *ml,
                              const char **tgt, size_t *tl, const char **ver, size_t *vl)
{
	const char *sp1 = memchr(line, ' ', n);
	if (!sp1 || sp1 == line)
		return -EINVAL;
	const char *rest = sp1 + 1;
	const char *sp2 = memchr(rest, ' ', n - (size_t)(rest - line));
	if (!sp2 || sp2 == rest)
		return -EINVAL;
	*m = line, *ml = (size_t)(sp1 - line);
	*tgt = rest, *tl = (size_t)(sp2 - rest);
	*ver = sp2 + 1, *vl = n - (size_t)(sp2 + 1 - line);
	for (size_t i = 0; i < *ml; i++)
		if (!is_tchar(line[i]))
			return -EINVAL;
	for (size_t i = 0; i < *tl; i++)
		if ((unsigned char)rest[i] <= ' ' || rest[i] == 0x7f)
			return -EINVAL;
	if (*vl != 8 || strncmp(*ver, "HTTP/1.", 7) || (ver[0][7] != '0' && ver[0][7] != '1'))
		return -EINVAL;
	return 0;
}

struct strbuf {
	char *p;
	size_t len, cap;
};

static int sb_add(struct strbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *np = realloc(b->p, cap);
		if (!np)
			return -ENOMEM;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* "GET http://host[:port]/path HTTP/1.1" + headers -> the origin-form head
 * for that host, without the Proxy-* headers (credentials for us, never
 * for the server). */
static int rewrite_http(const char *head, size_t head_len, const char *m, size_t ml,
                        const char *tgt, size_t tl, const char *ver, size_t vl,
                        struct proxy_request *ret)
{
	const char *auth = tgt + 7;
	size_t rest = tl - 7;
	size_t al = strcspn(auth, "/?# ");
	if (al > rest)
		al = rest;
	if (memchr(auth, '@', al))
		return -EINVAL; /* userinfo: "allowed@other" tricks */
	if (proxy_target_parse(auth, al, 80, &ret->target) < 0)
		return -EINVAL;
	const char *path = auth + al;
	size_t pl = rest - al;
	struct strbuf b = {0};
	int r = sb_add(&b, m, ml);
	r = r < 0 ? r : sb_add(&b, " ", 1);
	if (r >= 0 && (pl == 0 || path[0] != '/'))
		r = sb_add(&b, "/", 1);
	r = r < 0 ? r : sb_add(&b, path, pl);
	r = r < 0 ? r : sb_add(&b, " ", 1);
	r = r < 0 ? r : sb_add(&b, ver, vl);
	r = r < 0 ? r : sb_add(&b, "\r\n", 2);
	const char *p = memchr(head, '\n', head_len) + 1;
	const char *end = head + head_len;
	while (r >= 0 && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)(nl - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n == 0)
			break;
		if (strncasecmp(p, "proxy-", 6))
			r = sb_add(&b, p, n) < 0 ? -ENOMEM : sb_add(&b, "\r\n", 2);
		p = nl + 1;
	}
	r = r < 0 ? r : sb_add(&b, "\r\n", 2);
	if (r < 0) {
		free(b.p);
		return r;
	}
	ret->rewritten = b.p;
	ret->rewritten_len = b.len;
	return 0;
}

int proxy_request_parse(const char *buf, size_t len, size_t max, struct proxy_request *ret)
{
	size_t end = head_end(buf, len);
	if (end == 0)
		return len >= max ? -E2BIG : 0;
	if (memchr(buf, '\0', end))
		return -EINVAL;
	struct proxy_request req;
	memset(&req, 0, sizeof(req));
	req.head_len = end;
	size_t ll = (size_t)((const char *)memchr(buf, '\n', end) - buf);
	if (ll > 0 && buf[ll - 1] == '\r')
		ll--;
	const char *m, *tgt, *ver;
	size_t ml, tl, vl;
	if (split_request_line(buf, ll, &m, &ml, &tgt, &tl, &ver, &vl) < 0)
		return -EINVAL;
	if (ml == 7 && !memcmp(m, "CONNECT", 7)) {
		req.kind = PROXY_REQ_CONNECT;
		if (proxy_target_parse(tgt, tl, 0, &req.target) < 0)
			return -EINVAL;
	} else if (tl > 7 && !strncasecmp(tgt, "http://", 7)) {
		req.kind = PROXY_REQ_HTTP;
		int r = rewrite_http(buf, end, m, ml, tgt, tl, ver, vl, &req);
		if (r < 0)
			return r;
	} else {
		return -EPROTO;
	}
	*ret = req;
	return 1;
}
