/* The sandbox's side of clone(): everything between clone() and execve(),
 * in the order STYLE.md gives, and the small init that runs as pid 1.
 * Async-signal-safe from start to end: no malloc, no stdio, no locks. */
#ifndef SBX_SANDBOX_CHILD_H
#define SBX_SANDBOX_CHILD_H

#include "sandbox/mount.h"
#include "sandbox/seccomp.h"
#include "sandbox/spec.h"

struct sbx_child_ctx {
	const struct sbx_spec *spec;
	const struct sbx_mount_ctx *mnt;
	const struct sbx_seccomp *seccomp;
	int sync_fd; /* the child's end of the sync socketpair */
	int tty_fd;  /* the pty slave with --tty, else -1 */
	int last_cap;
	/* The sandbox's own share of per-user kernel limits (charged to the
	 * host user too): written into its user namespace; 0 leaves one alone. */
	long inotify_instances, inotify_watches;
};

/* The memory of the runner's argv (main() hands it over): the sandbox's
 * init is a copy of the runner, and overwrites it so that /proc/1/cmdline
 * inside shows "trimo-init", not the caller's command line. */
void child_set_title_area(char *start, size_t len);

/* Never returns: becomes the sandbox's init, or _exit()s with 125 after
 * sending ERROR (or silently when the runner is gone). */
_Noreturn void child_main(const struct sbx_child_ctx *c);

#endif
