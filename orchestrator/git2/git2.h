/* bin/trimo-sbx-git: the short-lived helper that holds libgit2, so that
 * bin/trimo-sbx never loads it.  The supervisor (or the CLI) runs it once
 * per operation:
 *
 *   workspace    clone the host repository into a task's workspace and
 *                create the task branch (workspace.c)
 *   receive      one connection of the push socket on fd 3: policy, pack
 *                into a quarantine, verification, ref update (receive.c)
 *   diff         the task branch against its base, in the host repository
 *   push-remote  the task branch from the host repository to its remote,
 *                with the host user's own git and credentials (remote.c)
 *   serve-push   accept loop on a push socket (tests and debugging; the
 *                supervisor does this itself with orchestrator/git_pushd.h)
 *
 * The host repository is the user's own and trusted.  The workspace is
 * never opened here after `workspace` has made it. */
#ifndef SBX_ORCH_GIT2_H
#define SBX_ORCH_GIT2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <git2.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "config/config.h"

#define GH_DEFAULT_MAX_BYTES   (1ULL << 30) /* largest pack accepted */
#define GH_DEFAULT_MAX_OBJECTS 1000000ULL   /* most objects in one pack */
#define GH_DEFAULT_TIMEOUT_S   600          /* one receive, remote push included */
#define GH_IO_TIMEOUT_S        60           /* silence on the socket */

struct gh_opts {
	const char *repo;   /* host repository (a work tree or a bare repository) */
	const char *branch; /* the task's branch, short form */
	const char *base;   /* its base branch, or NULL: the repository's current one */
	const char *remote; /* the host repository's remote ("origin") */
	const char *dest;   /* workspace: the folder to create */
	const char *socket; /* serve-push */
	const char *record; /* a JSON file that keeps the last push attempts, or NULL */
	char **protected_branches;
	enum sbx_push_mode push_mode;
	bool push_tags;
	bool reuse_branch;
	bool stat;
	uint64_t max_bytes, max_objects;
	unsigned timeout_s;
	int fd; /* receive: the connection */
};

/* libgit2's last error as one line: "what: libgit2's message". */
int gh_fail(struct sbx_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void gh_repo_freep(git_repository **r)
{
	git_repository_free(*r);
}
#define _cleanup_git_repo_ _cleanup_(gh_repo_freep)
static inline void gh_object_freep(git_object **o)
{
	git_object_free(*o);
}
#define _cleanup_git_object_ _cleanup_(gh_object_freep)
static inline void gh_reference_freep(git_reference **r)
{
	git_reference_free(*r);
}
#define _cleanup_git_reference_ _cleanup_(gh_reference_freep)
static inline void gh_odb_freep(git_odb **o)
{
	git_odb_free(*o);
}
#define _cleanup_git_odb_ _cleanup_(gh_odb_freep)

/* Open the host repository (no search upwards). */
int gh_open_host(const char *path, git_repository **ret, struct sbx_err *err);

/* The base branch: base, or the branch HEAD names.  *ret is malloc'ed. */
int gh_base_branch(git_repository *repo, const char *base, char **ret, struct sbx_err *err);

/* refs/heads/<name>'s commit; -ENOENT (err set) when there is none. */
int gh_branch_tip(git_repository *repo, const char *name, git_oid *ret, struct sbx_err *err);

int gh_workspace(const struct gh_opts *o, struct sbx_err *err);
int gh_receive(const struct gh_opts *o, struct sbx_err *err);
int gh_diff(const struct gh_opts *o, struct sbx_err *err);
int gh_push_remote_cmd(const struct gh_opts *o, struct sbx_err *err);

/* Push refs (full names, n of them) from the host repository to its
 * remote with the host's git: the user's ssh-agent, credential helpers
 * and config, never a prompt.  0: pushed; < 0: err has git's reason. */
int gh_push_remote(const char *repo, const char *remote, const char *const *refs, size_t n,
                   unsigned timeout_s, struct sbx_err *err);

/* Connectivity: every object the new tip needs is in the quarantine or in
 * the host repository (verify.c).  host: the host's object database;
 * quarantine: the pack's alone (NULL: no pack); all: a repository over
 * both.  max_walk bounds the objects visited. */
int gh_verify_reachable(git_odb *host, git_odb *quarantine, git_repository *all, const git_oid *tip,
                        uint64_t max_walk, struct sbx_err *err);

/* Record one push attempt in o->record (if set): kind "sandbox" or
 * "remote", the refs, ok or not, the message.  Best effort. */
void gh_record(const struct gh_opts *o, const char *kind, const char *refs, bool ok,
               const char *msg);

#endif
