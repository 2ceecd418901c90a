/* One connection of the push socket (fd o->fd), from git-remote-trimo in
 * the sandbox.  Everything that arrives is hostile:
 *
 *   1. the request header, decoded with limits (push_proto.h);
 *   2. policy on names alone (push_policy.h): refused updates need no pack;
 *   3. the pack, if its announced size is within the limit, streamed into
 *      git_indexer inside a quarantine folder (objects/incoming-trimo-*,
 *      invisible to git; removed on every path), with an object-count
 *      limit checked as soon as the pack's header is in;
 *   4. per update: the new tip and everything it needs are in the
 *      quarantine or the host repository, with the types their referrers
 *      claim; the host's tip is an ancestor of it (fast-forward);
 *   5. unless dry-run: the pack moved into objects/pack, the ref updated
 *      with compare-and-swap; with push = auto, pushed on to the remote;
 *   6. one answer, and one log line per update on stdout. */
#include "orchestrator/git2/git2.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "orchestrator/push_policy.h"
#include "orchestrator/push_proto.h"

struct recv {
	const struct gh_opts *o;
	struct push_request req;
	uint8_t hdr[PUSH_REQ_HDR_MAX];
	size_t have, used; /* bytes read into hdr; the header's length */
	git_repository *repo;
	git_odb *host_odb;
	char objects[PATH_MAX];
	char qdir[PATH_MAX]; /* the quarantine, "" when none */
	char pack[GIT_OID_HEXSZ * 2 + 1];
	uint64_t pack_objects;
	git_odb *q_odb;
	git_repository *all;                /* host objects and the quarantine */
	char remote_log[PUSH_MSG_MAX + 64]; /* the push on to the remote, "" when none */
	bool exists[PUSH_MAX_UPDATES];
	git_oid tip[PUSH_MAX_UPDATES]; /* the host's, when exists */
	struct push_answer ans;
};

static volatile sig_atomic_t timed_out;

static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
}

/* ---- the answer ------------------------------------------------------------ */

static void set_entry(struct recv *r, unsigned i, bool ok, const char *msg)
{
	struct push_entry *e = &r->ans.e[i];
	e->ok = ok;
	push_clean_text(e->msg, sizeof(e->msg), msg);
}

/* Refuse every update still accepted, for a reason that concerns them all
 * (the pack). */
static void refuse_rest(struct recv *r, const char *why)
{
	for (unsigned i = 0; i < r->req.n; i++)
		if (r->ans.e[i].ok)
			set_entry(r, i, false, why);
}

static unsigned count_ok(const struct recv *r)
{
	unsigned n = 0;
	for (unsigned i = 0; i < r->req.n; i++)
		n += r->ans.e[i].ok;
	return n;
}

static void send_answer(struct recv *r)
{
	uint8_t buf[PUSH_ANS_MAX];
	size_t n = push_answer_encode(&r->ans, buf, sizeof(buf));
	if (n > 0)
		sbx_write_all(r->o->fd, buf, n);
}

static void answer_failure(struct recv *r, const char *msg)
{
	r->ans.status = 1;
	r->ans.n = 0;
	push_clean_text(r->ans.msg, sizeof(r->ans.msg), msg);
	send_answer(r);
}

/* ---- reading ------------------------------------------------------------- */

static ssize_t read_some(struct recv *r, void *buf, size_t size, struct sbx_err *err)
{
	for (;;) {
		ssize_t n = read(r->o->fd, buf, size);
		if (n >= 0)
			return n;
		if (errno == EINTR && !timed_out)
			continue;
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			return sbx_failx(err, ETIMEDOUT, "the sandbox stopped sending (timeout)");
		return sbx_fail(err, errno, "read the push socket");
	}
}

static int read_header(struct recv *r, struct sbx_err *err)
{
	for (;;) {
		const char *why = NULL;
		int d = push_request_decode(r->hdr, r->have, &r->req, &r->used, &why);
		if (d == 1)
			return 0;
		if (d < 0)
			return sbx_failx(err, EPROTO, "bad request: %s", why);
		if (r->have == sizeof(r->hdr))
			return sbx_failx(err, EPROTO, "bad request: header too long");
		ssize_t n = read_some(r, r->hdr + r->have, sizeof(r->hdr) - r->have, err);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return sbx_failx(err, EPROTO, "bad request: the connection closed early");
		r->have += (size_t)n;
	}
}

/* ---- LIST ------------------------------------------------------------------ */

static void list_one(struct recv *r, const char *branch)
{
	git_oid id;
	struct sbx_err ignored;
	if (r->ans.n >= PUSH_MAX_ENTRIES || gh_branch_tip(r->repo, branch, &id, &ignored) < 0)
		return;
	struct push_entry *e = &r->ans.e[r->ans.n];
	char ref[PUSH_REF_MAX + 1];
	if ((size_t)snprintf(ref, sizeof(ref), "refs/heads/%s", branch) >= sizeof(ref))
		return;
	for (unsigned i = 0; i < r->ans.n; i++)
		if (!strcmp(r->ans.e[i].ref, ref))
			return;
	e->ok = true;
	git_oid_tostr(e->oid, sizeof(e->oid), &id);
	snprintf(e->ref, sizeof(e->ref), "%s", ref);
	r->ans.n++;
}

/* The task branch and its base: enough for git to report deletes and
 * non-fast-forwards itself, and to leave out what the host has. */
static void do_list(struct recv *r)
{
	list_one(r, r->o->branch);
	_cleanup_free_ char *base = NULL;
	struct sbx_err ignored;
	if (gh_base_branch(r->repo, r->o->base, &base, &ignored) >= 0)
		list_one(r, base);
	send_answer(r);
}

/* ---- policy before the pack ------------------------------------------------- */

static void policy_of(const struct recv *r, struct push_policy *p)
{
	*p = (struct push_policy){.branch = r->o->branch,
	                          .protected_branches =
	                              (const char *const *)r->o->protected_branches,
	                          .push_tags = r->o->push_tags};
}

static void facts_of(const struct recv *r, unsigned i, enum push_ff ff, struct push_facts *f)
{
	const struct push_update *u = &r->req.u[i];
	git_oid new_id;
	bool same = false;
	if (r->exists[i] && git_oid_fromstr(&new_id, u->new_oid) == 0)
		same = git_oid_equal(&new_id, &r->tip[i]);
	*f = (struct push_facts){.ref = u->ref,
	                         .remove = push_oid_is_zero(u->new_oid),
	                         .force = u->force,
	                         .exists = r->exists[i],
	                         .same = same,
	                         .fast_forward = ff};
}

/* The host's current id of update i's ref. */
static int host_state(struct recv *r, unsigned i, char *why, size_t size)
{
	const struct push_update *u = &r->req.u[i];
	int e = git_reference_name_to_id(&r->tip[i], r->repo, u->ref);
	if (e < 0 && e != GIT_ENOTFOUND) {
		const git_error *ge = git_error_last();
		snprintf(why, size, "cannot read the host's %s: %s", u->ref,
		         ge ? ge->message : "unknown error");
		return -1;
	}
	r->exists[i] = e == 0;
	return 0;
}

/* The client saw the id the host has now (compare-and-swap: a ref that
 * moved meanwhile is refused, push again). */
static int not_stale(struct recv *r, unsigned i, char *why, size_t size)
{
	const struct push_update *u = &r->req.u[i];
	char cur[GIT_OID_HEXSZ + 1];
	if (r->exists[i])
		git_oid_tostr(cur, sizeof(cur), &r->tip[i]);
	else
		snprintf(cur, sizeof(cur), "%s", push_zero_oid);
	if (strcmp(cur, u->old_oid) != 0) {
		snprintf(why, size, "the host's %s moved to %.7s during the push; push again",
		         u->ref, cur);
		return -1;
	}
	return 0;
}

/* A branch checked out in a host work tree is never moved under it. */
static int checked_out(struct recv *r, unsigned i, char *why, size_t size)
{
	_cleanup_git_reference_ git_reference *ref = NULL;
	if (!r->exists[i] || strncmp(r->req.u[i].ref, "refs/heads/", 11) != 0 ||
	    git_reference_lookup(&ref, r->repo, r->req.u[i].ref) < 0)
		return 0;
	if (git_branch_is_checked_out(ref) == 1) {
		snprintf(why, size, "%s is checked out in the host repository; it cannot move",
		         r->req.u[i].ref + 11);
		return -1;
	}
	return 0;
}

static void decide_names(struct recv *r)
{
	struct push_policy p;
	policy_of(r, &p);
	r->ans.n = r->req.n;
	for (unsigned i = 0; i < r->req.n; i++) {
		const struct push_update *u = &r->req.u[i];
		struct push_entry *e = &r->ans.e[i];
		_Static_assert(sizeof(e->oid) == sizeof(u->new_oid), "oid sizes");
		_Static_assert(sizeof(e->ref) == sizeof(u->ref), "ref sizes");
		memcpy(e->oid, u->new_oid, sizeof(e->oid));
		memcpy(e->ref, u->ref, sizeof(e->ref));
		char why[PUSH_MSG_MAX + 1] = "";
		struct push_facts f;
		facts_of(r, i, PUSH_FF_UNKNOWN, &f);
		/* names first: a bad name is never looked up */
		bool ok = push_policy_decide(&p, &f, why, sizeof(why)) == 0 &&
		          host_state(r, i, why, sizeof(why)) == 0;
		if (ok) {
			facts_of(r, i, PUSH_FF_UNKNOWN, &f);
			ok = push_policy_decide(&p, &f, why, sizeof(why)) == 0 &&
			     not_stale(r, i, why, sizeof(why)) == 0 &&
			     checked_out(r, i, why, sizeof(why)) == 0;
		}
		set_entry(r, i, ok, ok ? "" : why);
	}
}

/* ---- the pack into the quarantine --------------------------------------------- */

static int make_quarantine(struct recv *r, struct sbx_err *err)
{
	if ((size_t)snprintf(r->qdir, sizeof(r->qdir), "%s/incoming-trimo-XXXXXX", r->objects) >=
	    sizeof(r->qdir))
		return sbx_failx(err, ENAMETOOLONG, "quarantine: path too long");
	if (!mkdtemp(r->qdir)) {
		int e = errno;
		r->qdir[0] = '\0';
		return sbx_fail(err, e, "create a quarantine in '%s'", r->objects);
	}
	return 0;
}

static int feed(struct recv *r, git_indexer *idx, const void *buf, size_t n,
                git_indexer_progress *st, struct sbx_err *err)
{
	if (git_indexer_append(idx, buf, n, st) < 0)
		return gh_fail(err, EBADMSG, "bad pack");
	if (st->total_objects > r->o->max_objects)
		return sbx_failx(err, E2BIG,
		                 "the pack holds %u objects, more than the limit of %llu",
		                 st->total_objects, (unsigned long long)r->o->max_objects);
	return 0;
}

/* Stream pack_len bytes (some already in hdr) into the indexer. */
static int stream_pack(struct recv *r, git_indexer *idx, git_indexer_progress *st,
                       struct sbx_err *err)
{
	uint64_t left = r->req.pack_len;
	size_t early = r->have - r->used;
	if (early > left)
		early = (size_t)left;
	int e = early ? feed(r, idx, r->hdr + r->used, early, st, err) : 0;
	left -= early;
	static uint8_t buf[1 << 16];
	while (e >= 0 && left > 0) {
		size_t want = left < sizeof(buf) ? (size_t)left : sizeof(buf);
		ssize_t n = read_some(r, buf, want, err);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return sbx_failx(err, EBADMSG, "the pack ended after %llu of %llu bytes",
			                 (unsigned long long)(r->req.pack_len - left),
			                 (unsigned long long)r->req.pack_len);
		e = feed(r, idx, buf, (size_t)n, st, err);
		left -= (uint64_t)n;
	}
	return e;
}

static int index_pack(struct recv *r, struct sbx_err *err)
{
	int e = make_quarantine(r, err);
	if (e < 0)
		return e;
	git_indexer *idx = NULL;
	git_indexer_options opts = GIT_INDEXER_OPTIONS_INIT;
	/* no odb: a thin pack (bases outside it) is refused */
	if (git_indexer_new(&idx, r->qdir, 0, NULL, &opts) < 0)
		return gh_fail(err, EIO, "indexer");
	git_indexer_progress st = {0};
	e = stream_pack(r, idx, &st, err);
	if (e >= 0 && git_indexer_commit(idx, &st) < 0)
		e = gh_fail(err, EBADMSG, "bad pack");
	if (e >= 0)
		snprintf(r->pack, sizeof(r->pack), "%s", git_indexer_name(idx));
	r->pack_objects = st.total_objects;
	git_indexer_free(idx);
	return e;
}

/* The quarantine's own odb, and a repository over host and quarantine. */
static int open_views(struct recv *r, struct sbx_err *err)
{
	char idx[PATH_MAX];
	git_odb_backend *be = NULL;
	git_odb *all = NULL;
	if (r->pack[0]) {
		sbx_fmt(idx, sizeof(idx), "%s/pack-%s.idx", r->qdir, r->pack);
		if (git_odb_new(&r->q_odb) < 0 || git_odb_backend_one_pack(&be, idx) < 0 ||
		    git_odb_add_backend(r->q_odb, be, 1) < 0)
			return gh_fail(err, EIO, "open the quarantine");
	}
	if (git_odb_open(&all, r->objects) < 0)
		return gh_fail(err, EIO, "open the host's objects");
	if (r->pack[0] &&
	    (git_odb_backend_one_pack(&be, idx) < 0 || git_odb_add_backend(all, be, 1) < 0)) {
		git_odb_free(all);
		return gh_fail(err, EIO, "open the quarantine");
	}
	int e = git_repository_wrap_odb(&r->all, all);
	git_odb_free(all);
	return e < 0 ? gh_fail(err, EIO, "open the quarantine") : 0;
}

/* ---- verification after the pack ------------------------------------------------ */

static int check_tip(struct recv *r, unsigned i, const git_oid *id, char *why, size_t size)
{
	struct sbx_err err = {0};
	git_odb *odb = NULL;
	size_t len;
	git_object_t type;
	if (git_repository_odb(&odb, r->all) < 0 || git_odb_read_header(&len, &type, odb, id) < 0) {
		git_odb_free(odb);
		snprintf(why, size, "%.7s is missing: neither in the pack nor on the host",
		         r->req.u[i].new_oid);
		return -1;
	}
	git_odb_free(odb);
	if (!strncmp(r->req.u[i].ref, "refs/heads/", 11) && type != GIT_OBJECT_COMMIT) {
		snprintf(why, size, "a branch must point at a commit, not a %s",
		         git_object_type2string(type));
		return -1;
	}
	if (gh_verify_reachable(r->host_odb, r->q_odb, r->all, id, r->o->max_objects, &err) < 0) {
		sbx_fmt(why, size, "refused: %s", err.msg);
		return -1;
	}
	return 0;
}

static void verify_one(struct recv *r, unsigned i)
{
	struct push_policy p;
	policy_of(r, &p);
	char why[PUSH_MSG_MAX + 1] = "";
	git_oid id;
	if (git_oid_fromstr(&id, r->req.u[i].new_oid) < 0 ||
	    check_tip(r, i, &id, why, sizeof(why)) < 0) {
		set_entry(r, i, false, why);
		return;
	}
	enum push_ff ff = PUSH_FF_UNKNOWN;
	if (r->exists[i]) {
		int d = git_graph_descendant_of(r->all, &id, &r->tip[i]);
		if (d < 0) {
			set_entry(r, i, false, "cannot compare with the host's tip");
			return;
		}
		ff = d == 1 ? PUSH_FF_YES : PUSH_FF_NO;
	}
	struct push_facts f;
	facts_of(r, i, ff, &f);
	if (push_policy_decide(&p, &f, why, sizeof(why)) < 0)
		set_entry(r, i, false, why);
}

/* ---- applying ----------------------------------------------------------------- */

/* objects/incoming-trimo-X/pack-N.{pack,idx} -> objects/pack/: the .pack
 * first, the .idx last (the .idx makes the pack visible to git). */
static int move_pack(struct recv *r, struct sbx_err *err)
{
	static const char *const ext[] = {"pack", "idx"};
	for (size_t k = 0; k < ELEMENTSOF(ext); k++) {
		char from[PATH_MAX], to[PATH_MAX];
		sbx_fmt(from, sizeof(from), "%s/pack-%s.%s", r->qdir, r->pack, ext[k]);
		sbx_fmt(to, sizeof(to), "%s/pack/pack-%s.%s", r->objects, r->pack, ext[k]);
		if (access(to, F_OK) == 0)
			continue; /* the same objects arrived before */
		if (rename(from, to) < 0)
			return sbx_fail(err, errno, "move the pack into '%s/pack'", r->objects);
	}
	if (git_odb_refresh(r->host_odb) < 0)
		return gh_fail(err, EIO, "refresh the host's objects");
	return 0;
}

static void update_ref(struct recv *r, unsigned i)
{
	const struct push_update *u = &r->req.u[i];
	git_oid id;
	git_oid_fromstr(&id, u->new_oid);
	if (r->exists[i] && git_oid_equal(&id, &r->tip[i]))
		return; /* already there */
	static const char msg[] = "trimo-sbx: push from the task's sandbox";
	git_reference *ref = NULL;
	int e = r->exists[i]
	            ? git_reference_create_matching(&ref, r->repo, u->ref, &id, 1, &r->tip[i], msg)
	            : git_reference_create(&ref, r->repo, u->ref, &id, 0, msg);
	git_reference_free(ref);
	if (e == GIT_EMODIFIED || e == GIT_EEXISTS) {
		set_entry(r, i, false, "the host's branch moved during the push; push again");
	} else if (e < 0) {
		const git_error *ge = git_error_last();
		char why[PUSH_MSG_MAX + 1];
		snprintf(why, sizeof(why), "cannot update the host's %s: %s", u->ref,
		         ge ? ge->message : "unknown error");
		set_entry(r, i, false, why);
	}
}

static const char *short_ref(const char *ref)
{
	if (!strncmp(ref, "refs/heads/", 11))
		return ref + 11;
	if (!strncmp(ref, "refs/tags/", 10))
		return ref + 10;
	return ref;
}

/* push = auto: straight on to the remote.  Otherwise say when. */
static void after_update(struct recv *r)
{
	const char *refs[PUSH_MAX_UPDATES];
	size_t n = 0;
	for (unsigned i = 0; i < r->req.n; i++)
		if (r->ans.e[i].ok)
			refs[n++] = r->req.u[i].ref;
	if (n == 0)
		return;
	const char *remote = r->o->remote ? r->o->remote : "origin";
	char msg[PUSH_MSG_MAX + 1];
	if (r->o->push_mode != SBX_PUSH_AUTO) {
		snprintf(msg, sizeof(msg), "saved on the host; %s",
		         r->o->push_mode == SBX_PUSH_ON_EXIT
		             ? "the host pushes it to its remote after the run (push = on-exit)"
		             : "`trimo-sbx push` sends it to the host's remote (push = manual)");
		for (unsigned i = 0; i < r->req.n; i++)
			if (r->ans.e[i].ok)
				set_entry(r, i, true, msg);
		return;
	}
	struct sbx_err err = {0};
	int e = gh_push_remote(r->o->repo, remote, refs, n, r->o->timeout_s, &err);
	if (e >= 0)
		snprintf(msg, sizeof(msg), "saved on the host and pushed to %s", remote);
	else
		sbx_fmt(msg, sizeof(msg), "saved on the host, but the push to %s failed: %s",
		        remote, err.msg);
	sbx_fmt(r->remote_log, sizeof(r->remote_log), "push to %s: %s", remote,
	        e >= 0 ? "ok" : err.msg);
	gh_record(r->o, "remote", refs[0], e >= 0, e >= 0 ? "pushed" : err.msg);
	for (unsigned i = 0; i < r->req.n; i++)
		if (r->ans.e[i].ok)
			set_entry(r, i, e >= 0, msg);
}

static void apply(struct recv *r)
{
	struct sbx_err err = {0};
	if (r->pack[0] && move_pack(r, &err) < 0) {
		refuse_rest(r, err.msg);
		return;
	}
	for (unsigned i = 0; i < r->req.n; i++)
		if (r->ans.e[i].ok)
			update_ref(r, i);
	after_update(r);
}

/* ---- the whole exchange --------------------------------------------------------- */

static void log_results(struct recv *r)
{
	bool dry = r->req.flags & PUSH_FLAG_DRY_RUN;
	for (unsigned i = 0; i < r->req.n; i++) {
		const struct push_update *u = &r->req.u[i];
		const struct push_entry *e = &r->ans.e[i];
		char what[128];
		snprintf(what, sizeof(what), "%.7s..%.7s", u->old_oid, u->new_oid);
		printf("push from the sandbox%s: %s %s: %s%s%s\n", dry ? " (dry run)" : "",
		       short_ref(u->ref), what, e->ok ? "accepted" : "refused",
		       e->msg[0] ? ": " : "", e->msg);
		if (!dry)
			gh_record(r->o, "sandbox", u->ref, e->ok, e->ok ? "accepted" : e->msg);
	}
	if (r->remote_log[0])
		printf("%s\n", r->remote_log);
	fflush(stdout);
}

static int do_push(struct recv *r)
{
	struct sbx_err err = {0};
	decide_names(r);
	if (count_ok(r) > 0 && r->req.pack_len > r->o->max_bytes) {
		char why[PUSH_MSG_MAX + 1];
		snprintf(why, sizeof(why), "the pack is %llu bytes, more than the limit of %llu",
		         (unsigned long long)r->req.pack_len, (unsigned long long)r->o->max_bytes);
		refuse_rest(r, why);
	}
	if (count_ok(r) > 0 && r->req.pack_len > 0 && index_pack(r, &err) < 0)
		refuse_rest(r, err.msg);
	if (count_ok(r) > 0 && open_views(r, &err) < 0)
		refuse_rest(r, err.msg);
	for (unsigned i = 0; i < r->req.n; i++)
		if (r->ans.e[i].ok)
			verify_one(r, i);
	if (r->req.flags & PUSH_FLAG_DRY_RUN) {
		for (unsigned i = 0; i < r->req.n; i++)
			if (r->ans.e[i].ok)
				set_entry(r, i, true, "dry run: the host would accept this update");
	} else if (count_ok(r) > 0) {
		apply(r);
	}
	log_results(r);
	send_answer(r);
	return count_ok(r) == r->req.n ? 0 : 1;
}

static void recv_release(struct recv *r)
{
	git_repository_free(r->all);
	git_odb_free(r->q_odb);
	git_odb_free(r->host_odb);
	git_repository_free(r->repo);
	if (r->qdir[0]) {
		struct sbx_err ignored;
		sbx_rm_rf_at(AT_FDCWD, r->qdir, &ignored);
	}
}

static void set_timeouts(const struct gh_opts *o)
{
	struct timeval tv = {.tv_sec = GH_IO_TIMEOUT_S};
	setsockopt(o->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(o->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART: reads end */
	sigaction(SIGALRM, &sa, NULL);
	alarm(o->timeout_s ? o->timeout_s : GH_DEFAULT_TIMEOUT_S);
	signal(SIGPIPE, SIG_IGN);
}

static int open_host(struct recv *r, struct sbx_err *err)
{
	int e = gh_open_host(r->o->repo, &r->repo, err);
	if (e < 0)
		return e;
	if (git_repository_odb(&r->host_odb, r->repo) < 0)
		return gh_fail(err, EIO, "the host's objects");
	/* room for "/incoming-trimo-XXXXXX/pack-<hash>.pack" below it */
	if ((size_t)snprintf(r->objects, sizeof(r->objects), "%sobjects",
	                     git_repository_commondir(r->repo)) >= sizeof(r->objects) - 200)
		return sbx_failx(err, ENAMETOOLONG, "the host's objects: path too long");
	return 0;
}

/* 0: every update accepted (or a list); 1: some refused; < 0: the request
 * failed as a whole (answered, logged, and in err). */
int gh_receive(const struct gh_opts *o, struct sbx_err *err)
{
	struct recv *r = calloc(1, sizeof(*r));
	if (!r)
		return sbx_fail(err, ENOMEM, "receive");
	r->o = o;
	set_timeouts(o);
	int e = read_header(r, err);
	if (e >= 0)
		e = open_host(r, err);
	if (e < 0) {
		answer_failure(r, err->msg);
		printf("push from the sandbox: refused: %s\n", err->msg);
		fflush(stdout);
		if (e == -EPROTO)
			gh_record(o, "sandbox", "", false, err->msg);
	} else if (r->req.kind == PUSH_KIND_LIST) {
		do_list(r);
	} else {
		e = do_push(r);
	}
	recv_release(r);
	free(r);
	return e;
}
