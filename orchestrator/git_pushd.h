/* The push socket's host side, inside the supervisor (or a CLI verb that
 * runs a git job): a unix stream socket the sandbox sees at
 * /run/trimo/push.sock.  It decides and verifies nothing itself: each
 * connection is handed, as fd 3, to a fresh `trimo-sbx-git receive`
 * (libgit2 lives there, never in this process), one at a time; the
 * helper's output lines come back through log().
 *
 * Non-blocking: poll git_pushd_fd() (an epoll set of the socket and the
 * running helper's output) with the rest of the event loop and call
 * git_pushd_handle() when it is readable.  Only peers of our own uid (or
 * root) are served: the sandbox's processes map to it. */
#ifndef SBX_ORCH_GIT_PUSHD_H
#define SBX_ORCH_GIT_PUSHD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "config/config.h"

struct git_push_conf {
	const char *helper; /* bin/trimo-sbx-git; NULL: next to this program */
	const char *repo;   /* the host repository */
	const char *branch; /* the task's branch, short form */
	const char *base;   /* or NULL: the repository's current branch */
	const char *remote; /* or NULL: origin */
	const char *const *protected_branches;
	bool push_tags;
	enum sbx_push_mode push_mode;
	uint64_t max_bytes;                        /* 0: the helper's default (1 GiB) */
	uint64_t max_objects;                      /* 0: the helper's default (1,000,000) */
	const char *record;                        /* git.json of the task, or NULL */
	void (*log)(void *data, const char *line); /* one line, no newline; may be NULL */
	void *data;
};

struct git_pushd;

/* Create the socket at path (an old one there is replaced), for its owner
 * only (umask 077).
 * conf's strings must outlive the server. */
int git_pushd_open(const char *path, const struct git_push_conf *conf, struct git_pushd **ret,
                   struct sbx_err *err);

/* The fd to poll for POLLIN. */
int git_pushd_fd(const struct git_pushd *p);

/* Accept a connection, relay the running helper's output, reap it. */
void git_pushd_handle(struct git_pushd *p);

/* A receive is running. */
bool git_pushd_busy(const struct git_pushd *p);

/* Wait for a running receive (up to wait_s seconds, then kill it), remove
 * the socket, free.  NULL is fine. */
void git_pushd_close(struct git_pushd *p, unsigned wait_s);

/* The argv of `trimo-sbx-git receive` for conf, NULL-terminated and
 * malloc'ed (sbx_strv_free); exposed for tests. */
int git_pushd_argv(const struct git_push_conf *conf, const char *helper, char ***ret,
                   struct sbx_err *err);

/* bin/<name> next to this program, into buf. */
int git_helper_path(const char *name, char *buf, size_t size, struct sbx_err *err);

#endif
