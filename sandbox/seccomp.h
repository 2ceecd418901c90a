/* The seccomp filter.  Built in the parent with libseccomp and exported as
 * BPF (through a memfd: libseccomp 2.5 exports only to an fd) into memory
 * the child inherits; the sandbox's init loads it with the raw seccomp()
 * call just before it forks the command.
 *
 * The default policy is two filters, because libseccomp lets an
 * unconditional rule for a syscall silently replace conditional ones:
 *   1. an allow-list: syscalls it does not name fail with ENOSYS (glibc
 *      falls back, and syscalls newer than the list stay denied); the ones
 *      it names and denies fail with EPERM; clone3 fails with ENOSYS
 *      (seccomp cannot read its flags; glibc falls back to clone).
 *   2. argument checks, default allow: clone/unshare with namespace flags,
 *      ioctl TIOCSTI/TIOCLINUX (compared on the low 32 bits: the kernel
 *      truncates the command) -> EPERM; socket(AF_VSOCK) -> EAFNOSUPPORT
 *      (network namespaces do not confine vsock).
 * The kernel runs both and takes the most restrictive answer. */
#ifndef SBX_SANDBOX_SECCOMP_H
#define SBX_SANDBOX_SECCOMP_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "sandbox/spec.h"

#define SBX_SECCOMP_MAX_PROGS 2

struct sbx_seccomp {
	struct sock_fprog progs[SBX_SECCOMP_MAX_PROGS];
	int n;
};

/* Build the filters for spec (default, --nested, or a JSON profile file;
 * nothing for unconfined).  Errors in a profile name the file and entry. */
int seccomp_filter_prepare(const struct sbx_spec *spec, struct sbx_seccomp *ret,
                           struct sbx_err *err);
void seccomp_filter_free(struct sbx_seccomp *s);

/* Build the default (nested false) or --nested policy with libseccomp.
 * seccomp_filter_prepare() uses the same programs compiled in at build
 * time; this is the generator's and the tests' way to them. */
int seccomp_build_policy(bool nested, struct sbx_seccomp *ret, struct sbx_err *err);

/* In the sandbox's init (async-signal-safe): load every program. */
int seccomp_filter_child(const struct sbx_seccomp *s, struct sbx_err *err);

/* For tests and `check`: the names of the default allow-list and deny-list. */
extern const char *const seccomp_default_allow[];
extern const char *const seccomp_default_deny[];

#endif
