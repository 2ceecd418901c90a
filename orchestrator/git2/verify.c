/* Connectivity of a received pack: walk from the new tip through every
 * object it needs; each must be in the host repository (whose own closure
 * is complete, as git assumes of any repository) or in the quarantined
 * pack, and parse as its type says. */
#include "orchestrator/git2/git2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* An open-addressing set of object ids. */
struct oidset {
	git_oid *slot;
	bool *used;
	size_t cap, n;
};

static size_t oid_hash(const git_oid *id)
{
	size_t h;
	memcpy(&h, id->id, sizeof(h)); /* object ids are uniformly random */
	return h;
}

static int oidset_grow(struct oidset *s)
{
	size_t cap = s->cap ? s->cap * 2 : 1024;
	git_oid *slot = calloc(cap, sizeof(*slot));
	bool *used = calloc(cap, sizeof(*used));
	if (!slot || !used) {
		free(slot);
		free(used);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->used[i])
			continue;
		size_t j = oid_hash(&s->slot[i]) & (cap - 1);
		while (used[j])
			j = (j + 1) & (cap - 1);
		used[j] = true;
		slot[j] = s->slot[i];
	}
	free(s->slot);
	free(s->used);
	s->slot = slot;
	s->used = used;
	s->cap = cap;
	return 0;
}

/* 1: added; 0: already there; -ENOMEM */
static int oidset_add(struct oidset *s, const git_oid *id)
{
	if ((s->n + 1) * 2 > s->cap && oidset_grow(s) < 0)
		return -ENOMEM;
	size_t j = oid_hash(id) & (s->cap - 1);
	while (s->used[j]) {
		if (git_oid_equal(&s->slot[j], id))
			return 0;
		j = (j + 1) & (s->cap - 1);
	}
	s->used[j] = true;
	s->slot[j] = *id;
	s->n++;
	return 1;
}

static void oidset_free(struct oidset *s)
{
	free(s->slot);
	free(s->used);
}

/* Objects still to visit, each with the type its referrer says it has. */
struct todo {
	git_oid id;
	git_object_t type;
};

struct stack {
	struct todo *v;
	size_t n, cap;
};

static int stack_push(struct stack *st, const git_oid *id, git_object_t type)
{
	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 256;
		struct todo *v = realloc(st->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		st->v = v;
		st->cap = cap;
	}
	st->v[st->n++] = (struct todo){.id = *id, .type = type};
	return 0;
}

static git_object_t entry_type(git_filemode_t mode)
{
	return mode == GIT_FILEMODE_TREE ? GIT_OBJECT_TREE : GIT_OBJECT_BLOB;
}

/* Push what obj points at. */
static int push_links(struct stack *st, git_object *obj)
{
	int r = 0;
	switch (git_object_type(obj)) {
	case GIT_OBJECT_COMMIT: {
		git_commit *c = (git_commit *)obj;
		r = stack_push(st, git_commit_tree_id(c), GIT_OBJECT_TREE);
		for (unsigned i = 0; r == 0 && i < git_commit_parentcount(c); i++)
			r = stack_push(st, git_commit_parent_id(c, i), GIT_OBJECT_COMMIT);
		break;
	}
	case GIT_OBJECT_TREE: {
		git_tree *t = (git_tree *)obj;
		for (size_t i = 0; r == 0 && i < git_tree_entrycount(t); i++) {
			const git_tree_entry *e = git_tree_entry_byindex(t, i);
			/* a submodule's commit lives in another repository */
			git_filemode_t mode = git_tree_entry_filemode(e);
			if (mode != GIT_FILEMODE_COMMIT)
				r = stack_push(st, git_tree_entry_id(e), entry_type(mode));
		}
		break;
	}
	case GIT_OBJECT_TAG:
		r = stack_push(st, git_tag_target_id((git_tag *)obj),
		               git_tag_target_type((git_tag *)obj));
		break;
	default:
		break;
	}
	return r;
}

/* One object of the walk: skip what the host has, parse what the pack
 * brought, refuse what is nowhere. */
static int visit(git_odb *host, git_odb *quarantine, git_repository *all, const struct todo *t,
                 struct stack *st, struct sbx_err *err)
{
	char hex[GIT_OID_HEXSZ + 1];
	git_oid_tostr(hex, sizeof(hex), &t->id);
	size_t len;
	git_object_t type;
	if (git_odb_exists(host, &t->id)) {
		if (git_odb_read_header(&len, &type, host, &t->id) < 0)
			return gh_fail(err, EIO, "object %s on the host", hex);
		if (t->type != GIT_OBJECT_ANY && type != t->type)
			return sbx_failx(err, EBADMSG, "object %s is a %s, not a %s", hex,
			                 git_object_type2string(type),
			                 git_object_type2string(t->type));
		return 0;
	}
	if (!quarantine || !git_odb_exists(quarantine, &t->id))
		return sbx_failx(err, EBADMSG,
		                 "object %s is missing: neither in the pack nor on the host", hex);
	_cleanup_git_object_ git_object *obj = NULL;
	if (git_object_lookup(&obj, all, &t->id, t->type) < 0)
		return gh_fail(err, EBADMSG, "object %s (%s) does not parse", hex,
		               git_object_type2string(t->type));
	if (push_links(st, obj) < 0)
		return sbx_fail(err, ENOMEM, "walk");
	return 1;
}

int gh_verify_reachable(git_odb *host, git_odb *quarantine, git_repository *all, const git_oid *tip,
                        uint64_t max_walk, struct sbx_err *err)
{
	struct oidset seen = {0};
	struct stack st = {0};
	uint64_t walked = 0;
	int r = stack_push(&st, tip, GIT_OBJECT_ANY) < 0 ? sbx_fail(err, ENOMEM, "walk") : 0;
	while (r >= 0 && st.n > 0) {
		struct todo t = st.v[--st.n];
		int added = oidset_add(&seen, &t.id);
		if (added < 0) {
			r = sbx_fail(err, ENOMEM, "walk");
			break;
		}
		if (added == 0)
			continue;
		r = visit(host, quarantine, all, &t, &st, err);
		if (r > 0 && ++walked > max_walk)
			r = sbx_failx(err, E2BIG, "the walk visits more than %llu new objects",
			              (unsigned long long)max_walk);
	}
	oidset_free(&seen);
	free(st.v);
	return r < 0 ? r : 0;
}
