#include "sandbox/seccomp.h"

#include <errno.h>
#include <jansson.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "sandbox/caps.h"
#include "sandbox/seccomp_profile.h"
#include "sandbox/seccomp_bpf.h"

/* In the tradition of the Docker/podman default profile: what ordinary
 * programs (shells, compilers, language runtimes, git, test suites, dev
 * servers) need.  Names this libseccomp does not know are skipped and so
 * stay denied. */
const char *const seccomp_default_allow[] = {
    "accept",
    "accept4",
    "access",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chroot",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "clone",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futex",
    "futex_requeue",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "get_mempolicy",
    "get_robust_list",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    "kcmp",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "madvise",
    "map_shadow_stack",
    "mbind",
    "membarrier",
    "memfd_create",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    /* not openat2: its mode is in a struct the filter cannot read (the
     * setuid rule below); ENOSYS makes callers fall back to openat */
    "pause",
    "pidfd_getfd",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_madvise",
    "process_vm_readv",
    "process_vm_writev",
    "pselect6",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "sendfile",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "set_mempolicy",
    "set_robust_list",
    "set_tid_address",
    "setdomainname",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "sethostname",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "setsid",
    "setsockopt",
    "setuid",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "socket",
    "socketpair",
    "splice",
    "stat",
    "statfs",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "times",
    "tkill",
    "truncate",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "unshare",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "write",
    "writev",
    NULL,
};

/* Named and refused with EPERM: they reach the kernel's most exposed code
 * or the host (mounts, namespaces, keys, BPF, perf, modules, kexec, swap,
 * reboot, userfaultfd, file handles). */
const char *const seccomp_default_deny[] = {
    "acct",
    "add_key",
    "bpf",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "init_module",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "mount",
    "mount_setattr",
    "move_mount",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "setns",
    "swapoff",
    "swapon",
    "umount2",
    "userfaultfd",
    NULL,
};

/* Needed by a sandbox that makes its own sandbox (bubblewrap, unshare):
 * with --nested they move from the deny list to the allow list, and the
 * namespace-flag checks on clone/unshare go away. */
static const char *const nested_allow[] = {"mount", "umount2", "pivot_root", NULL};

static const uint64_t ns_flags[] = {
    CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
    CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET, CLONE_NEWTIME,
};

static const unsigned personalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

static int in_list(const char *const *list, const char *name)
{
	for (size_t i = 0; list[i]; i++)
		if (!strcmp(list[i], name))
			return 1;
	return 0;
}

static int add_names(scmp_filter_ctx ctx, const char *const *names, uint32_t action,
                     const char *const *except, struct sbx_err *err)
{
	for (size_t i = 0; names[i]; i++) {
		if (except && in_list(except, names[i]))
			continue;
		int nr = seccomp_syscall_resolve_name(names[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* unknown to this libseccomp: stays denied */
		int r = seccomp_rule_add(ctx, action, nr, 0);
		if (r < 0)
			return sbx_fail(err, -r, "seccomp rule for %s", names[i]);
	}
	return 0;
}

static int build_allow_list(bool nested, scmp_filter_ctx *ret, struct sbx_err *err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(ENOSYS));
	if (!ctx)
		return sbx_failx(err, ENOMEM, "seccomp_init failed");
	int r = add_names(ctx, seccomp_default_allow, SCMP_ACT_ALLOW, NULL, err);
	if (r >= 0)
		r = add_names(ctx, seccomp_default_deny, SCMP_ACT_ERRNO(EPERM),
		              nested ? nested_allow : NULL, err);
	if (r >= 0 && nested)
		r = add_names(ctx, nested_allow, SCMP_ACT_ALLOW, NULL, err);
	/* clone3 is left out on purpose: the default answer, ENOSYS, is the
	 * one that makes glibc fall back to clone, whose flags we can read. */
	for (size_t i = 0; r >= 0 && i < sizeof(personalities) / sizeof(personalities[0]); i++) {
		int e =
		    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1,
		                     SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffULL, personalities[i]));
		if (e < 0)
			r = sbx_fail(err, -e, "seccomp rule for personality");
	}
	if (r < 0) {
		seccomp_release(ctx);
		return r;
	}
	*ret = ctx;
	return 0;
}

static int build_arg_checks(bool nested, scmp_filter_ctx *ret, struct sbx_err *err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return sbx_failx(err, ENOMEM, "seccomp_init failed");
	int e = 0;
	for (size_t i = 0; !nested && e >= 0 && i < sizeof(ns_flags) / sizeof(ns_flags[0]); i++) {
		e = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
		                     SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
		if (e >= 0)
			e = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
			                     SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
	}
	/* No setuid or setgid file is made inside: through a writable bind it
	 * would be one on the host too (as root: setuid root).  The mode
	 * argument of every call that sets one, on its low bits. */
	static const struct {
		int nr;
		unsigned arg;
	} mode_args[] = {
	    {SCMP_SYS(chmod), 1}, {SCMP_SYS(fchmod), 1},  {SCMP_SYS(fchmodat), 2},
	    {SCMP_SYS(open), 2},  {SCMP_SYS(openat), 3},  {SCMP_SYS(creat), 1},
	    {SCMP_SYS(mknod), 1}, {SCMP_SYS(mknodat), 2},
	};
	for (size_t i = 0; e >= 0 && i < sizeof(mode_args) / sizeof(mode_args[0]); i++)
		for (unsigned bit = S_ISGID; e >= 0 && bit <= S_ISUID; bit <<= 1)
			e = seccomp_rule_add(
			    ctx, SCMP_ACT_ERRNO(EPERM), mode_args[i].nr, 1,
			    (struct scmp_arg_cmp){mode_args[i].arg, SCMP_CMP_MASKED_EQ, bit, bit});
	int fchmodat2 = seccomp_syscall_resolve_name("fchmodat2");
	for (unsigned bit = S_ISGID; e >= 0 && fchmodat2 != __NR_SCMP_ERROR && bit <= S_ISUID;
	     bit <<= 1)
		e = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), fchmodat2, 1,
		                     SCMP_A2(SCMP_CMP_MASKED_EQ, bit, bit));
	/* vsock is not confined by network namespaces: a sandbox without a
	 * network would still reach the hypervisor's or host's services */
	if (e >= 0)
		e = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
		                     SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffULL, AF_VSOCK));
	if (e >= 0)
		e = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
		                     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL, TIOCSTI));
	if (e >= 0)
		e = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
		                     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL, TIOCLINUX));
	if (e < 0) {
		seccomp_release(ctx);
		return sbx_fail(err, -e, "seccomp argument rules");
	}
	*ret = ctx;
	return 0;
}

static int export_prog(scmp_filter_ctx ctx, struct sock_fprog *prog, struct sbx_err *err)
{
	_cleanup_close_ int fd = memfd_create("trimo-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return sbx_fail(err, errno, "memfd_create");
	int r = seccomp_export_bpf(ctx, fd);
	if (r < 0)
		return sbx_fail(err, -r, "seccomp_export_bpf");
	off_t size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size % sizeof(struct sock_filter) != 0 ||
	    size / sizeof(struct sock_filter) > BPF_MAXINSNS)
		return sbx_failx(err, EINVAL, "seccomp: exported filter has a bad size (%ld)",
		                 (long)size);
	struct sock_filter *insns = malloc((size_t)size);
	if (!insns)
		return sbx_fail(err, ENOMEM, "seccomp filter");
	if (pread(fd, insns, (size_t)size, 0) != size) {
		free(insns);
		return sbx_fail(err, errno ? errno : EIO, "read seccomp filter");
	}
	prog->len = (unsigned short)(size / sizeof(struct sock_filter));
	prog->filter = insns;
	return 0;
}

static int finish(struct sbx_seccomp *ret, scmp_filter_ctx ctx, struct sbx_err *err)
{
	int r = export_prog(ctx, &ret->progs[ret->n], err);
	seccomp_release(ctx);
	if (r < 0)
		return r;
	ret->n++;
	return 0;
}

int seccomp_build_policy(bool nested, struct sbx_seccomp *ret, struct sbx_err *err)
{
	memset(ret, 0, sizeof(*ret));
	scmp_filter_ctx ctx = NULL;
	int r = build_allow_list(nested, &ctx, err);
	if (r < 0)
		return r;
	r = finish(ret, ctx, err);
	if (r < 0)
		return r;
	r = build_arg_checks(nested, &ctx, err);
	if (r < 0)
		goto fail;
	r = finish(ret, ctx, err);
	if (r < 0)
		goto fail;
	return 0;
fail:
	seccomp_filter_free(ret);
	return r;
}

/* The default and nested policies, compiled at build time (build/gen,
 * from seccomp_build_policy() by sandbox/gen/seccomp_gen.c): building
 * them with libseccomp costs ~4 ms, more than the whole rest of a start. */
static int builtin_policy(bool nested, struct sbx_seccomp *ret, struct sbx_err *err)
{
	memset(ret, 0, sizeof(*ret));
	const struct sbx_bpf_prog *progs = seccomp_builtin[nested ? 1 : 0];
	for (int i = 0; i < SBX_SECCOMP_MAX_PROGS && progs[i].len; i++) {
		size_t size = progs[i].len * sizeof(struct sock_filter);
		struct sock_filter *copy = malloc(size);
		if (!copy) {
			seccomp_filter_free(ret);
			return sbx_fail(err, ENOMEM, "seccomp filter");
		}
		memcpy(copy, progs[i].insns, size);
		ret->progs[i] = (struct sock_fprog){.len = progs[i].len, .filter = copy};
		ret->n++;
	}
	return 0;
}

int seccomp_filter_prepare(const struct sbx_spec *spec, struct sbx_seccomp *ret,
                           struct sbx_err *err)
{
	memset(ret, 0, sizeof(*ret));
	if (spec->seccomp == SBX_SECCOMP_UNCONFINED)
		return 0;
	if (spec->seccomp == SBX_SECCOMP_FILE) {
		void *ctx = NULL;
		int r = seccomp_profile_build(spec->seccomp_file, spec->caps, &ctx, err);
		if (r < 0)
			return r;
		return finish(ret, ctx, err);
	}
	return builtin_policy(spec->nested, ret, err);
}

void seccomp_filter_free(struct sbx_seccomp *s)
{
	for (int i = 0; i < s->n; i++) {
		free(s->progs[i].filter);
		s->progs[i].filter = NULL;
	}
	s->n = 0;
}

int seccomp_filter_child(const struct sbx_seccomp *s, struct sbx_err *err)
{
	for (int i = 0; i < s->n; i++) {
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &s->progs[i]) < 0)
			return sbx_fail(err, errno, "load seccomp filter");
	}
	return 0;
}
