/* What a sandbox may push: pure decisions, no I/O, no git library.
 *
 * The receiver asks twice per ref update: once before it reads the pack
 * (names, deletion, tags, protected patterns: fast_forward unknown), and
 * once after the pack is indexed and verified (fast-forward known).  The
 * first refusal wins; its reason is what git shows the agent:
 *
 *   ! [remote rejected] main -> main (only trimo/jwt-auth may be pushed)
 */
#ifndef SBX_ORCH_PUSH_POLICY_H
#define SBX_ORCH_PUSH_POLICY_H

#include <stdbool.h>
#include <stddef.h>

struct push_policy {
	const char *branch;                    /* the task's branch, short form: "trimo/jwt-auth" */
	const char *const *protected_branches; /* fnmatch(3) patterns, flags 0; NULL-terminated
	                                        * or NULL */
	bool push_tags;                        /* tags may be created (never moved or deleted) */
};

enum push_ff {
	PUSH_FF_UNKNOWN = -1, /* not checked yet: the pack is not indexed */
	PUSH_FF_NO = 0,
	PUSH_FF_YES = 1,
};

/* What the receiver knows about one update. */
struct push_facts {
	const char *ref;           /* the destination as the client sent it */
	bool remove;               /* the new id is zero */
	bool force;                /* the client pushed +src:dst */
	bool exists;               /* the host has ref */
	bool same;                 /* the new id is the host's current one */
	enum push_ff fast_forward; /* the host's tip is an ancestor of the new id */
};

/* 0: allowed (so far); -1: refused, the reason in why. */
int push_policy_decide(const struct push_policy *p, const struct push_facts *f, char *why,
                       size_t size);

/* git check-ref-format for a full ref name ("refs/heads/x"): at least two
 * components, none starting with '.', none ending in ".lock", no "..",
 * "@{", "//", control characters, space, ~ ^ : ? * [ \, not ending in '/'
 * or '.', not "@". */
bool push_ref_valid(const char *ref);

/* The first of patterns that name matches (fnmatch, flags 0: '*' also
 * matches '/'), or NULL. */
const char *push_protected_match(const char *const *patterns, const char *name);

#endif
