/* The default and --nested seccomp programs, generated at build time into
 * build/gen/seccomp_bpf.c by sandbox/gen/seccomp_gen.c from
 * seccomp_build_policy().  A unit test checks they equal a fresh build. */
#ifndef SBX_SANDBOX_SECCOMP_BPF_H
#define SBX_SANDBOX_SECCOMP_BPF_H

#include <linux/filter.h>

#include "sandbox/seccomp.h"

struct sbx_bpf_prog {
	const struct sock_filter *insns;
	unsigned short len; /* 0 ends the list */
};

/* [0] default, [1] nested; each up to SBX_SECCOMP_MAX_PROGS programs. */
extern const struct sbx_bpf_prog seccomp_builtin[2][SBX_SECCOMP_MAX_PROGS];

#endif
