/* The egress allowlist proxy: an HTTP CONNECT proxy in one single-threaded
 * poll loop, run in a process the runner forks (runtime/network.c).
 *
 * Policy:
 *  - A rule is NAME:PORT, *.SUFFIX:PORT, IPV4:PORT or [IPV6]:PORT.  Names
 *    match case-insensitively (one trailing dot ignored); *.npmjs.org
 *    matches registry.npmjs.org and a.b.npmjs.org, not npmjs.org.  An IP
 *    literal matches only a rule with that literal (never a name, never a
 *    wildcard), and numeric forms other than the canonical dotted quad
 *    ("2130706433", "0x7f.1", "127.1") are refused outright.
 *  - CONNECT HOST:PORT: allowed -> the proxy resolves HOST itself (hosts
 *    file first, then DNS) and connects to those addresses only; the
 *    client never chooses the address.  Addresses from DNS that are
 *    loopback are refused unless allow_host_loopback; unspecified,
 *    link-local (169.254.0.0/16: cloud metadata), multicast and broadcast
 *    always.  Addresses from the hosts file are the operator's and used.
 *  - One request per connection: after "200 Connection established" the
 *    bytes are relayed verbatim both ways and never parsed again (a
 *    CONNECT sent through the tunnel reaches the allowed server as data).
 *  - Plain HTTP (absolute-form "GET http://host[:port]/path HTTP/1.1") is
 *    handled under the same rule (port 80 by default): the request line is
 *    rewritten to origin-form, Proxy-* headers dropped, and the rest of the
 *    connection relayed verbatim to that one upstream.  Any other request
 *    form gets 400.
 *  - Refused: 403 and the log line "egress refused: HOST:PORT (why)".
 *    Allowed but unreachable: 502/504 and "egress failed: HOST:PORT: why".
 */
#ifndef SBX_RUNTIME_PROXY_H
#define SBX_RUNTIME_PROXY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/err.h"
#include "runtime/network.h"

#define PROXY_HOST_MAX 254 /* 253 characters and the NUL */

struct proxy_rule {
	char host[PROXY_HOST_MAX]; /* lower case; for a wildcard the suffix after "*." */
	bool wildcard;
	bool is_ip;
	struct sockaddr_storage ip; /* when is_ip (port unset) */
	uint16_t port;
};

struct proxy_rules {
	struct proxy_rule *v;
	size_t n;
};

struct proxy_host_entry {
	char name[PROXY_HOST_MAX];
	struct sockaddr_storage addr;
};

struct proxy_config {
	const struct proxy_rules *rules;
	const struct proxy_host_entry *hosts; /* the hosts file, loaded */
	size_t n_hosts;
	bool allow_host_loopback;
	int log_fd; /* -1: no log */
	struct sbx_net_stats *stats;
	int max_conns;          /* 0: 256 */
	int head_timeout_ms;    /* a request head must arrive within; 0: 30 s */
	int connect_timeout_ms; /* resolve + connect; 0: 15 s */
};

/* A CONNECT target or an authority.  The host is lower-cased, without
 * brackets and without one trailing dot. */
struct proxy_target {
	char host[PROXY_HOST_MAX];
	uint16_t port;
	bool is_ip;
	struct sockaddr_storage ip; /* when is_ip */
};

/* Parse one rule (see above); what names the option in the error. */
int proxy_rule_parse(const char *s, const char *what, struct proxy_rule *ret, struct sbx_err *err);
int proxy_rules_parse(char *const *allow, struct proxy_rules *ret, struct sbx_err *err);
void proxy_rules_free(struct proxy_rules *rules);

/* "host:port", "[v6]:port"; default_port when the port is missing and
 * default_port != 0.  -EINVAL for anything else (bad characters, empty
 * labels, non-canonical numeric forms). */
int proxy_target_parse(const char *s, size_t len, uint16_t default_port, struct proxy_target *ret);

bool proxy_rules_match(const struct proxy_rules *rules, const struct proxy_target *t);

/* Whether a resolved address may be used (see the policy above). */
bool proxy_addr_permitted(const struct sockaddr *sa, bool allow_host_loopback);

/* Load a hosts(5)-format file: "ADDR NAME [ALIAS...]", '#' comments. */
int proxy_hosts_load(const char *path, struct proxy_host_entry **ret, size_t *ret_n,
                     struct sbx_err *err);

/* The addresses of name in the loaded hosts file (up to max). */
size_t proxy_hosts_lookup(const struct proxy_host_entry *hosts, size_t n_hosts, const char *name,
                          struct sockaddr_storage *out, size_t max);

/* A parsed request head (what the proxy reads before deciding). */
enum proxy_req_kind {
	PROXY_REQ_CONNECT,
	PROXY_REQ_HTTP, /* absolute-form http:// */
};

struct proxy_request {
	enum proxy_req_kind kind;
	struct proxy_target target;
	size_t head_len; /* bytes of the head, through the blank line */
	/* PROXY_REQ_HTTP: the head rewritten for the origin server */
	char *rewritten;
	size_t rewritten_len;
};

/* Parse the head in buf[0..len).  1: complete (ret filled; free
 * ret->rewritten), 0: need more bytes, < 0: bad request (-EINVAL), or a
 * form we do not serve (-EPROTO), or too large (-E2BIG when len reaches
 * max without a complete head). */
int proxy_request_parse(const char *buf, size_t len, size_t max, struct proxy_request *ret);

/* Serve connections accepted on listen_fd until a fatal error.  Never
 * returns 0.  Meant to run in its own process. */
int proxy_serve(int listen_fd, const struct proxy_config *cfg, struct sbx_err *err);

#endif
