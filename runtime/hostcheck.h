/* `trimo-sbx check`: what this host supports, each feature tried for real
 * (a user namespace, mounts and an overlay inside it, seccomp, ...), with
 * the fix where something does not work. */
#ifndef SBX_RUNTIME_HOSTCHECK_H
#define SBX_RUNTIME_HOSTCHECK_H

#include <stdbool.h>

#define HOSTCHECK_MAX 16

enum hostcheck_level {
	CHECK_OK,
	CHECK_WARN, /* works with limits, or an optional feature is missing */
	CHECK_FAIL, /* `run` cannot work */
};

struct hostcheck_item {
	const char *name;
	enum hostcheck_level level;
	char detail[400];
};

struct hostcheck {
	struct hostcheck_item items[HOSTCHECK_MAX];
	int n;
};

/* Run every check; scratch is a folder on the file system that will hold
 * overlay uppers (the state folder), used for the overlay test. */
void hostcheck_run(struct hostcheck *hc, const char *scratch);

/* Whether `run` can work here (no CHECK_FAIL). */
bool hostcheck_ok(const struct hostcheck *hc);

#endif
