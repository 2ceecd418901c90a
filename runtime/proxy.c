/* The egress proxy's loop: one process, one thread of our own, one poll().
 * Name lookups run through getaddrinfo_a(), whose completion callback (a
 * libc thread) only writes the connection's pointer into a pipe the loop
 * polls; every decision and every socket stays on the loop.  The policy
 * lives in proxy_rules.c and is described in proxy.h. */
#include "runtime/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"

#define HEAD_MAX  8192
#define RELAY_BUF (64 * 1024)
#define MAX_ADDRS 16

enum conn_state {
	ST_HEAD,
	ST_RESOLVE,
	ST_CONNECT,
	ST_RELAY,
};

struct buf {
	char *p;
	size_t off, len;
};

struct conn {
	int cfd, ufd;
	enum conn_state st;
	char *head; /* HEAD_MAX + 1 while the head is read */
	size_t head_len;
	struct proxy_request req;
	char label[PROXY_HOST_MAX + 10]; /* "host:port" for the log */
	struct sockaddr_storage addrs[MAX_ADDRS];
	size_t n_addrs, next_addr;
	int last_errno;
	struct buf up, down; /* client -> upstream, upstream -> client */
	bool c_eof, u_eof;
	bool up_shut, down_shut; /* the half-close was passed on */
	long long deadline;      /* ms on CLOCK_MONOTONIC; 0: none */
	struct gaicb gai;
	struct addrinfo hints;
	bool gai_pending;
	bool dead; /* closed while a lookup runs: freed when it completes */
};

struct proxy {
	const struct proxy_config *cfg;
	int listen_fd;
	int notify[2];
	struct conn **conns;
	size_t n_conns;
	size_t max_conns;
};

static int notify_wr = -1;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_line(const struct proxy_config *cfg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void log_line(const struct proxy_config *cfg, const char *fmt, ...)
{
	if (cfg->log_fd < 0)
		return;
	char line[600];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(cfg->log_fd, line, (size_t)n);
	(void)w;
}

static void count(const struct proxy_config *cfg, int which)
{
	if (!cfg->stats)
		return;
	uint64_t *p = which == 0   ? &cfg->stats->allowed
	              : which == 1 ? &cfg->stats->refused
	                           : &cfg->stats->failed;
	__atomic_add_fetch(p, 1, __ATOMIC_RELAXED);
}

/* A short answer on a fresh socket: it fits the send buffer. */
static void respond(int fd, int code, const char *reason, const char *body)
{
	char msg[800];
	int n = snprintf(msg, sizeof(msg),
	                 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
	                 "Connection: close\r\n\r\n%s",
	                 code, reason, strlen(body), body);
	if (n > 0)
		(void)!send(fd, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1,
		            MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void gai_done(union sigval v)
{
	struct conn *c = v.sival_ptr;
	(void)!write(notify_wr, &c, sizeof(c));
}

static void conn_free(struct conn *c)
{
	free(c->head);
	free(c->req.rewritten);
	free(c->up.p);
	free(c->down.p);
	free(c);
}

/* Close both sockets; the memory waits for a running lookup. */
static void conn_close(struct proxy *px, size_t i)
{
	struct conn *c = px->conns[i];
	if (c->cfd >= 0)
		close(c->cfd);
	if (c->ufd >= 0)
		close(c->ufd);
	c->cfd = c->ufd = -1;
	px->conns[i] = px->conns[--px->n_conns];
	if (c->gai_pending)
		c->dead = true;
	else
		conn_free(c);
}

static size_t conn_index(struct proxy *px, struct conn *c)
{
	for (size_t i = 0; i < px->n_conns; i++)
		if (px->conns[i] == c)
			return i;
	return (size_t)-1;
}

static void refuse(struct proxy *px, size_t i, const char *why)
{
	struct conn *c = px->conns[i];
	char body[400];
	snprintf(body, sizeof(body), "trimo-sbx: egress to %s is not allowed (%s)\n", c->label,
	         why);
	/* counted and logged before the client hears it */
	log_line(px->cfg, "egress refused: %s (%s)", c->label, why);
	count(px->cfg, 1);
	respond(c->cfd, 403, "Forbidden", body);
	conn_close(px, i);
}

static void fail(struct proxy *px, size_t i, int code, const char *why)
{
	struct conn *c = px->conns[i];
	char body[400];
	snprintf(body, sizeof(body), "trimo-sbx: egress to %s failed: %s\n", c->label, why);
	log_line(px->cfg, "egress failed: %s: %s", c->label, why);
	count(px->cfg, 2);
	respond(c->cfd, code, code == 504 ? "Gateway Timeout" : "Bad Gateway", body);
	conn_close(px, i);
}

/* What the client sent, printable, for the log of a bad request. */
static void label_bad_request(struct conn *c)
{
	size_t n = strcspn(c->head, "\r\n");
	if (n > 80)
		n = 80;
	char *o = c->label;
	o += sprintf(o, "bad request \"");
	for (size_t k = 0; k < n && (size_t)(o - c->label) < sizeof(c->label) - 3; k++) {
		unsigned char ch = (unsigned char)c->head[k];
		*o++ = ch >= 0x20 && ch < 0x7f && ch != '"' ? (char)ch : '?';
	}
	*o++ = '"';
	*o = '\0';
}

static void set_label(struct conn *c)
{
	const struct proxy_target *t = &c->req.target;
	if (t->is_ip && t->ip.ss_family == AF_INET6)
		snprintf(c->label, sizeof(c->label), "[%s]:%u", t->host, (unsigned)t->port);
	else
		snprintf(c->label, sizeof(c->label), "%s:%u", t->host, (unsigned)t->port);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static void start_connect(struct proxy *px, size_t i);

static void established(struct proxy *px, size_t i)
{
	struct conn *c = px->conns[i];
	c->up.p = malloc(RELAY_BUF);
	c->down.p = malloc(RELAY_BUF);
	if (!c->up.p || !c->down.p) {
		fail(px, i, 502, "out of memory");
		return;
	}
	/* What the client sent after the head belongs to the tunnel (or the
	 * request body): relayed as it is, after the rewritten head. */
	size_t extra = c->head_len - c->req.head_len;
	if (c->req.kind == PROXY_REQ_HTTP) {
		memcpy(c->up.p, c->req.rewritten, c->req.rewritten_len);
		c->up.len = c->req.rewritten_len;
	} else {
		count(px->cfg, 0);
		static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
		(void)!send(c->cfd, ok, sizeof(ok) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	memcpy(c->up.p + c->up.len, c->head + c->req.head_len, extra);
	c->up.len += extra;
	free(c->head);
	c->head = NULL;
	c->st = ST_RELAY;
	c->deadline = 0;
	if (c->req.kind == PROXY_REQ_HTTP)
		count(px->cfg, 0);
}

static void start_connect(struct proxy *px, size_t i)
{
	struct conn *c = px->conns[i];
	while (c->next_addr < c->n_addrs) {
		struct sockaddr_storage *a = &c->addrs[c->next_addr++];
		set_port(a, c->req.target.port);
		int fd = socket(a->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			c->last_errno = errno;
			continue;
		}
		socklen_t len = a->ss_family == AF_INET ? sizeof(struct sockaddr_in)
		                                        : sizeof(struct sockaddr_in6);
		if (connect(fd, (struct sockaddr *)a, len) == 0 || errno == EINPROGRESS) {
			if (c->ufd >= 0)
				close(c->ufd);
			c->ufd = fd;
			c->st = ST_CONNECT;
			return;
		}
		c->last_errno = errno;
		close(fd);
	}
	fail(px, i, 502, sbx_strerror(c->last_errno ? c->last_errno : EHOSTUNREACH));
}

static void on_connected(struct proxy *px, size_t i)
{
	struct conn *c = px->conns[i];
	int e = 0;
	socklen_t el = sizeof(e);
	if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
		e = errno;
	if (e == 0) {
		established(px, i);
		return;
	}
	c->last_errno = e;
	close(c->ufd);
	c->ufd = -1;
	start_connect(px, i);
}

/* Keep the addresses policy permits; refuse when DNS gave only others. */
static void use_addrs(struct proxy *px, size_t i, const struct addrinfo *res)
{
	struct conn *c = px->conns[i];
	size_t seen = 0;
	for (const struct addrinfo *a = res; a && c->n_addrs < MAX_ADDRS; a = a->ai_next) {
		if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
		    a->ai_addrlen > sizeof(struct sockaddr_storage))
			continue;
		seen++;
		if (!proxy_addr_permitted(a->ai_addr, px->cfg->allow_host_loopback))
			continue;
		memset(&c->addrs[c->n_addrs], 0, sizeof(c->addrs[0]));
		memcpy(&c->addrs[c->n_addrs++], a->ai_addr, a->ai_addrlen);
	}
	if (c->n_addrs == 0 && seen > 0) {
		refuse(px, i, "resolves to a loopback, link-local or reserved address");
		return;
	}
	if (c->n_addrs == 0) {
		fail(px, i, 502, "no address");
		return;
	}
	start_connect(px, i);
}

static void on_resolved(struct proxy *px, struct conn *c)
{
	c->gai_pending = false;
	struct addrinfo *res = c->gai.ar_result;
	c->gai.ar_result = NULL;
	if (c->dead) {
		if (res)
			freeaddrinfo(res);
		conn_free(c);
		return;
	}
	size_t i = conn_index(px, c);
	int r = gai_error(&c->gai);
	if (r != 0) {
		if (res)
			freeaddrinfo(res);
		fail(px, i, 502, gai_strerror(r));
		return;
	}
	use_addrs(px, i, res);
	freeaddrinfo(res);
}

static void start_resolve(struct proxy *px, size_t i)
{
	struct conn *c = px->conns[i];
	const struct proxy_target *t = &c->req.target;
	if (t->is_ip) {
		c->addrs[0] = t->ip;
		c->n_addrs = 1;
		start_connect(px, i);
		return;
	}
	/* the operator's own names: used as they are, loopback included */
	c->n_addrs =
	    proxy_hosts_lookup(px->cfg->hosts, px->cfg->n_hosts, t->host, c->addrs, MAX_ADDRS);
	if (c->n_addrs > 0) {
		start_connect(px, i);
		return;
	}
	c->hints = (struct addrinfo){
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
	c->gai = (struct gaicb){.ar_name = t->host, .ar_request = &c->hints};
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD;
	sev.sigev_notify_function = gai_done;
	sev.sigev_value.sival_ptr = c;
	struct gaicb *list[1] = {&c->gai};
	int r = getaddrinfo_a(GAI_NOWAIT, list, 1, &sev);
	if (r != 0) {
		fail(px, i, 502, gai_strerror(r));
		return;
	}
	c->gai_pending = true;
	c->st = ST_RESOLVE;
}

static void on_head(struct proxy *px, size_t i)
{
	struct conn *c = px->conns[i];
	ssize_t n = recv(c->cfd, c->head + c->head_len, HEAD_MAX - c->head_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(px, i);
		return;
	}
	c->head_len += (size_t)n;
	c->head[c->head_len] = '\0';
	int r = proxy_request_parse(c->head, c->head_len, HEAD_MAX, &c->req);
	if (r == 0)
		return;
	if (r < 0) {
		label_bad_request(c);
		log_line(px->cfg, "egress refused: %s", c->label);
		count(px->cfg, 1);
		respond(c->cfd, 400, "Bad Request",
		        "trimo-sbx: only CONNECT host:port and absolute http:// requests\n");
		conn_close(px, i);
		return;
	}
	set_label(c);
	if (!proxy_rules_match(px->cfg->rules, &c->req.target)) {
		refuse(px, i, "not in the allowlist");
		return;
	}
	c->deadline = now_ms() + px->cfg->connect_timeout_ms;
	start_resolve(px, i);
}

static int pump_in(int from, struct buf *b, bool *eof)
{
	if (b->len || *eof)
		return 0;
	ssize_t n = recv(from, b->p, RELAY_BUF, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0)
		*eof = true;
	b->off = 0;
	b->len = (size_t)n;
	return 0;
}

static int pump_out(int to, struct buf *b)
{
	if (!b->len)
		return 0;
	ssize_t n = send(to, b->p + b->off, b->len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	b->off += (size_t)n;
	b->len -= (size_t)n;
	return 0;
}

/* Bytes both ways, verbatim; a half-close is passed on once the data
 * before it is out. */
static void on_relay(struct proxy *px, size_t i)
{
	struct conn *c = px->conns[i];
	if (pump_in(c->cfd, &c->up, &c->c_eof) < 0 || pump_in(c->ufd, &c->down, &c->u_eof) < 0 ||
	    pump_out(c->ufd, &c->up) < 0 || pump_out(c->cfd, &c->down) < 0) {
		conn_close(px, i);
		return;
	}
	if (c->c_eof && !c->up.len && !c->up_shut) {
		shutdown(c->ufd, SHUT_WR);
		c->up_shut = true;
	}
	if (c->u_eof && !c->down.len && !c->down_shut) {
		shutdown(c->cfd, SHUT_WR);
		c->down_shut = true;
	}
	if (c->c_eof && c->u_eof && !c->up.len && !c->down.len)
		conn_close(px, i);
}

static void on_accept(struct proxy *px)
{
	for (;;) {
		int fd = accept4(px->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (px->n_conns >= px->max_conns) {
			respond(fd, 503, "Service Unavailable",
			        "trimo-sbx: too many connections\n");
			close(fd);
			continue;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (c)
			c->head = malloc(HEAD_MAX + 1);
		if (!c || !c->head) {
			free(c);
			close(fd);
			continue;
		}
		c->cfd = fd;
		c->ufd = -1;
		c->st = ST_HEAD;
		c->deadline = now_ms() + px->cfg->head_timeout_ms;
		px->conns[px->n_conns++] = c;
	}
}

static short relay_events(const struct buf *in, bool eof, const struct buf *out)
{
	return (short)((!in->len && !eof ? POLLIN : 0) | (out->len ? POLLOUT : 0));
}

/* The poll set: [0] listener, [1] lookups done, then each connection's
 * sockets; pi[2*k] / pi[2*k+1] are conn k's client / upstream entries. */
static nfds_t build_poll(struct proxy *px, struct pollfd *p, int *pi, int *timeout)
{
	nfds_t n = 0;
	p[n++] = (struct pollfd){.fd = px->n_conns < px->max_conns ? px->listen_fd : -1,
	                         .events = POLLIN};
	p[n++] = (struct pollfd){.fd = px->notify[0], .events = POLLIN};
	long long now = now_ms(), next = -1;
	for (size_t k = 0; k < px->n_conns; k++) {
		struct conn *c = px->conns[k];
		short ce = 0, ue = 0;
		if (c->st == ST_HEAD)
			ce = POLLIN;
		else if (c->st == ST_CONNECT)
			ue = POLLOUT;
		else if (c->st == ST_RELAY) {
			ce = relay_events(&c->up, c->c_eof, &c->down);
			ue = relay_events(&c->down, c->u_eof, &c->up);
		}
		/* an fd is polled only for what we want from it: a peer that
		 * hung up shows when we next read or write */
		pi[2 * k] = pi[2 * k + 1] = -1;
		if (ce)
			pi[2 * k] = (int)n, p[n++] = (struct pollfd){.fd = c->cfd, .events = ce};
		if (ue)
			pi[2 * k + 1] = (int)n,
			           p[n++] = (struct pollfd){.fd = c->ufd, .events = ue};
		if (c->deadline && (next < 0 || c->deadline < next))
			next = c->deadline;
	}
	*timeout = next < 0 ? -1 : next <= now ? 0 : (int)(next - now);
	return n;
}

static void on_deadlines(struct proxy *px)
{
	long long now = now_ms();
	for (size_t k = px->n_conns; k-- > 0;) {
		struct conn *c = px->conns[k];
		if (!c->deadline || c->deadline > now)
			continue;
		if (c->st == ST_HEAD)
			conn_close(px, k);
		else
			fail(px, k, 504, "timed out");
	}
}

static void on_notify(struct proxy *px)
{
	struct conn *c;
	while (read(px->notify[0], &c, sizeof(c)) == (ssize_t)sizeof(c))
		on_resolved(px, c);
}

static void dispatch(struct proxy *px, const struct pollfd *p, const int *pi)
{
	/* backwards: closing conn k moves the last one (already seen) into k */
	for (size_t k = px->n_conns; k-- > 0;) {
		struct conn *c = px->conns[k];
		short rc = pi[2 * k] >= 0 ? p[pi[2 * k]].revents : 0;
		short ru = pi[2 * k + 1] >= 0 ? p[pi[2 * k + 1]].revents : 0;
		if (!rc && !ru)
			continue;
		if (c->st == ST_HEAD)
			on_head(px, k);
		else if (c->st == ST_CONNECT)
			on_connected(px, k);
		else if (c->st == ST_RELAY)
			on_relay(px, k);
	}
}

int proxy_serve(int listen_fd, const struct proxy_config *cfg_in, struct sbx_err *err)
{
	struct proxy_config cfg = *cfg_in;
	if (!cfg.max_conns)
		cfg.max_conns = 256;
	if (!cfg.head_timeout_ms)
		cfg.head_timeout_ms = 30000;
	if (!cfg.connect_timeout_ms)
		cfg.connect_timeout_ms = 15000;
	struct proxy px = {.cfg = &cfg, .listen_fd = listen_fd, .max_conns = (size_t)cfg.max_conns};
	if (pipe2(px.notify, O_CLOEXEC | O_NONBLOCK) < 0)
		return sbx_fail(err, errno, "proxy: pipe");
	notify_wr = px.notify[1];
	if (fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK) < 0)
		return sbx_fail(err, errno, "proxy: listening socket");
	px.conns = calloc(px.max_conns, sizeof(*px.conns));
	struct pollfd *p = calloc(2 + 2 * px.max_conns, sizeof(*p));
	int *pi = calloc(2 * px.max_conns, sizeof(*pi));
	if (!px.conns || !p || !pi)
		return sbx_fail(err, ENOMEM, "proxy");
	for (;;) {
		int timeout;
		nfds_t n = build_poll(&px, p, pi, &timeout);
		if (poll(p, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			return sbx_fail(err, errno, "proxy: poll");
		}
		dispatch(&px, p, pi);
		if (p[1].revents)
			on_notify(&px);
		on_deadlines(&px);
		if (p[0].revents & POLLIN)
			on_accept(&px);
		else if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL))
			return sbx_failx(err, EPIPE, "proxy: the listening socket failed");
	}
}
