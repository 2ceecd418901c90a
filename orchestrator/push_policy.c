/* Push policy; see push_policy.h. */
#include "orchestrator/push_policy.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define HEADS "refs/heads/"
#define TAGS  "refs/tags/"

static bool has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static bool component_ok(const char *c, size_t n)
{
	if (n == 0 || c[0] == '.')
		return false;
	if (n >= 5 && !memcmp(c + n - 5, ".lock", 5))
		return false;
	return true;
}

bool push_ref_valid(const char *ref)
{
	size_t n = strlen(ref);
	if (n == 0 || n > 255 || !has_prefix(ref, "refs/") || ref[n - 1] == '/' ||
	    ref[n - 1] == '.' || !strcmp(ref, "@"))
		return false;
	if (strstr(ref, "..") || strstr(ref, "@{"))
		return false;
	for (const char *c = ref; *c; c++) {
		unsigned char u = (unsigned char)*c;
		if (u < 0x20 || u == 0x7f || strchr(" ~^:?*[\\", u))
			return false;
	}
	int parts = 0;
	for (const char *c = ref; *c;) {
		size_t k = strcspn(c, "/");
		if (!component_ok(c, k))
			return false;
		parts++;
		c += k;
		if (*c == '/')
			c++;
	}
	/* "refs/x" is a ref, but nothing we accept lives directly under refs/ */
	return parts >= 3;
}

const char *push_protected_match(const char *const *patterns, const char *name)
{
	for (size_t i = 0; patterns && patterns[i]; i++)
		if (fnmatch(patterns[i], name, 0) == 0)
			return patterns[i];
	return NULL;
}

/* A refusal with its reason. */
__attribute__((format(printf, 3, 4))) static int refuse(char *why, size_t size, const char *fmt,
                                                        ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
	return -1;
}

static int decide_tag(const struct push_policy *p, const struct push_facts *f, char *why,
                      size_t size)
{
	const char *name = f->ref + strlen(TAGS);
	if (!p->push_tags)
		return refuse(why, size,
		              "pushing tags is refused by trimo-sbx policy (push_tags = no); only "
		              "%s may be pushed",
		              p->branch);
	if (f->remove)
		return refuse(why, size, "deleting tags is refused by trimo-sbx policy");
	const char *pat = push_protected_match(p->protected_branches, f->ref);
	if (pat)
		return refuse(why, size, "%s is protected by trimo-sbx policy (pattern '%s')", name,
		              pat);
	if (f->exists && !f->same)
		return refuse(why, size,
		              "tag %s exists on the host; moving tags is refused by trimo-sbx "
		              "policy",
		              name);
	return 0;
}

int push_policy_decide(const struct push_policy *p, const struct push_facts *f, char *why,
                       size_t size)
{
	if (!push_ref_valid(f->ref))
		return refuse(why, size, "'%s' is not a valid ref name; only %s may be pushed",
		              f->ref, p->branch);
	if (has_prefix(f->ref, TAGS))
		return decide_tag(p, f, why, size);
	bool is_branch = has_prefix(f->ref, HEADS);
	const char *name = is_branch ? f->ref + strlen(HEADS) : f->ref;
	if (f->remove)
		return refuse(why, size, "deleting %s is refused by trimo-sbx policy",
		              is_branch ? "branches" : "refs");
	if (!is_branch || strcmp(name, p->branch) != 0) {
		const char *pat = push_protected_match(p->protected_branches, name);
		if (is_branch && pat)
			return refuse(
			    why, size,
			    "%s is protected by trimo-sbx policy (pattern '%s'); only the "
			    "task's branch may be pushed",
			    name, pat);
		return refuse(why, size, "only %s may be pushed", p->branch);
	}
	/* the task's own branch: never protected (config refuses such a name),
	 * but a user config may have changed since launch */
	const char *pat = push_protected_match(p->protected_branches, name);
	if (pat)
		return refuse(why, size, "%s is protected by trimo-sbx policy (pattern '%s')", name,
		              pat);
	if (f->exists && !f->same && f->fast_forward == PUSH_FF_NO)
		return f->force ? refuse(why, size,
		                         "force-push refused by trimo-sbx policy (not a "
		                         "fast-forward of the host's %s)",
		                         name)
		                : refuse(why, size,
		                         "not a fast-forward of the host's %s (force-push refused "
		                         "by trimo-sbx policy)",
		                         name);
	return 0;
}
