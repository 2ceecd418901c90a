#include "runtime/run.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "runtime/helper.h"
#include "runtime/tty.h"
#include "sandbox/caps.h"
#include "sandbox/child.h"
#include "sandbox/idmap.h"
#include "sandbox/mount.h"
#include "sandbox/seccomp.h"
#include "sandbox/sync.h"

#define NS_FLAGS                                                                                   \
	(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)

static const int relayed[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR1, SIGUSR2};

struct run_state {
	struct sbx_spec spec;   /* the caller's, plus the cgroup mounts */
	struct termios termios; /* the caller's terminal, restored at the end */
	bool termios_saved;
	const struct sbx_run_opts *opts;
	struct sbx_cgroup *cg;
	struct timespec t0;
	uint64_t oom_kills;
	struct sbx_mount_ctx mnt;
	struct sbx_seccomp seccomp;
	struct sbx_tty tty;
	int sync[2];
	int sfd;
	sigset_t old_mask;
	bool mask_set;
	pid_t pid;
	bool reaped;
	int status;
	bool in_cgroup; /* born there: clone3 with CLONE_INTO_CGROUP */
	pid_t fuse_pid; /* the fuse-overlayfs server of a fuse root, or 0 */
	int fuse_log;   /* its stderr (a memfd) */
};

static const struct sbx_run_opts no_opts = {.watch_fd = -1};

static void state_init(struct run_state *st, const struct sbx_spec *spec,
                       const struct sbx_run_opts *opts)
{
	memset(st, 0, sizeof(*st));
	st->spec = *spec;
	st->opts = opts ? opts : &no_opts;
	/* Without -t the command gets the caller's terminal as its stdio:
	 * whatever it does to the settings (stty -echo raw) ends with it. */
	st->termios_saved = !spec->tty && tcgetattr(STDIN_FILENO, &st->termios) == 0;
	st->sync[0] = st->sync[1] = -1;
	st->sfd = -1;
	st->tty.master = st->tty.slave = -1;
	st->pid = -1;
	st->fuse_log = -1;
}

/* Put the caller's terminal settings back if the command changed them
 * (SIGTTOU blocked: a runner in the background must not stop on it). */
static void restore_termios(const struct termios *saved)
{
	struct termios now;
	if (tcgetattr(STDIN_FILENO, &now) == 0 && !memcmp(&now, saved, sizeof(now)))
		return;
	sigset_t ttou, old;
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, &old);
	tcsetattr(STDIN_FILENO, TCSANOW, saved);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

/* Wait up to ms for our child pid to end; true when it did (reaped). */
static bool wait_child(pid_t pid, int ms, int *status)
{
	_cleanup_close_ int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd >= 0) {
		struct pollfd p = {.fd = pfd, .events = POLLIN};
		while (poll(&p, 1, ms) < 0 && errno == EINTR)
			;
	}
	return waitpid(pid, status, WNOHANG) == pid;
}

/* The sandbox is gone: fuse-overlayfs gets SIGTERM to end cleanly (every
 * file of the sandbox is closed and flushed by now), SIGKILL after 2 s. */
static void fuse_stop(struct run_state *st)
{
	if (st->fuse_pid > 0) {
		kill(st->fuse_pid, SIGTERM);
		if (wait_child(st->fuse_pid, 2000, NULL))
			st->fuse_pid = 0;
		else
			helper_kill(&st->fuse_pid);
	}
	if (st->fuse_log >= 0)
		close(st->fuse_log);
	st->fuse_log = -1;
}

/* The child mounted its root from fuse_fd (a /dev/fuse fd opened in its
 * user namespace): serve it with fuse-overlayfs, from a helper that joins
 * that user namespace but none of the sandbox's other namespaces. */
static int fuse_start(struct run_state *st, int fuse_fd, struct sbx_err *err)
{
	if (st->fuse_pid > 0 || !st->mnt.fuse_prog[0])
		return sbx_failx(err, EPROTO, "sandbox setup: an unexpected fuse root");
	char path[64];
	sbx_fmt(path, sizeof(path), "/proc/%d/ns/user", (int)st->pid);
	_cleanup_close_ int userns = open(path, O_RDONLY | O_CLOEXEC);
	if (userns < 0)
		return sbx_fail(err, errno, "fuse-overlayfs: open %s", path);
	st->fuse_log = memfd_create("fuse-overlayfs", MFD_CLOEXEC);
	if (st->fuse_log < 0)
		return sbx_fail(err, errno, "fuse-overlayfs: memfd_create");
	int pass[2] = {fuse_fd, userns};
	int r = helper_fork(pass, 2, st->fuse_log, &st->fuse_pid, err);
	/* The server's memory (a node per file the sandbox touched) and CPU
	 * are the sandbox's: under its caps, counted in its stats, killed
	 * with it.  An OOM that picks the server ends only this sandbox. */
	if (r > 0 && st->cg && cgroup_attach(st->cg, st->fuse_pid, err) < 0)
		return sbx_wrap(err, "fuse-overlayfs");
	if (r > 0)
		mount_mark_fuse_layer(&st->mnt);
	if (r == 0) {
		/* fd 3: /dev/fuse, fd 4: the user namespace */
		if (setns(4, CLONE_NEWUSER) < 0) {
			dprintf(2, "fuse-overlayfs: join the sandbox's user namespace: %s\n",
			        strerror(errno));
			_exit(127);
		}
		close(4);
		helper_rearm(); /* the change of credentials cleared PDEATHSIG */
		mount_fuse_exec(&st->mnt, 3);
		_exit(127);
	}
	return r < 0 ? sbx_wrap(err, "start fuse-overlayfs") : 0;
}

/* A setup error with a fuse root: when the server has ended, say why. */
static int fuse_explain(struct run_state *st, struct sbx_err *err)
{
	int status;
	/* a request on a root whose server ended fails with ENOTCONN (the
	 * server may still be exiting: wait a moment); another error is the
	 * child's own, but a server that is already gone is still worth saying */
	int ms = err->errnum == ENOTCONN || err->errnum == ECONNABORTED ? 1000 : 0;
	if (st->fuse_pid <= 0 || !wait_child(st->fuse_pid, ms, &status))
		return -err->errnum;
	st->fuse_pid = 0;
	char said[300], msg[SBX_ERR_MSG_MAX];
	helper_log_tail(st->fuse_log, said, sizeof(said));
	memcpy(msg, err->msg, sizeof(msg));
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	return sbx_failx(err, err->errnum ? err->errnum : EIO,
	                 "%s (fuse-overlayfs exited with %d%s%s)", msg, code, said[0] ? ": " : "",
	                 said);
}

/* Everything the runner holds; on an early return the sandbox is killed
 * and reaped first (crun's cleanup_pid). */
static void state_release(struct run_state *st)
{
	if (st->pid > 0 && !st->reaped) {
		kill(st->pid, SIGKILL);
		while (waitpid(st->pid, &st->status, 0) < 0 && errno == EINTR)
			;
		st->reaped = true;
	}
	fuse_stop(st);
	tty_close(&st->tty);
	if (st->termios_saved)
		restore_termios(&st->termios);
	for (int i = 0; i < 2; i++)
		if (st->sync[i] >= 0)
			close(st->sync[i]);
	if (st->sfd >= 0)
		close(st->sfd);
	if (st->mask_set)
		sigprocmask(SIG_SETMASK, &st->old_mask, NULL);
	seccomp_filter_free(&st->seccomp);
	if (st->mnt.spec)
		mount_release(&st->mnt);
	if (st->cg)
		cgroup_destroy(&st->cg, NULL);
}

static pid_t do_clone(uint64_t flags, int cgroup_fd, bool *ret_in_cgroup)
{
	struct clone_args args;
	memset(&args, 0, sizeof(args));
	args.flags = flags;
	args.exit_signal = SIGCHLD;
	if (cgroup_fd >= 0) {
		args.flags |= CLONE_INTO_CGROUP;
		args.cgroup = (uint64_t)cgroup_fd;
	}
	long pid = syscall(SYS_clone3, &args, sizeof(args));
	*ret_in_cgroup = pid >= 0 && cgroup_fd >= 0;
	/* No clone3, or no CLONE_INTO_CGROUP (before 5.7): plain clone; the
	 * runner then attaches the child to its cgroup before GO. */
	if (pid < 0 && (errno == ENOSYS || errno == E2BIG || (errno == EINVAL && cgroup_fd >= 0)))
		pid = syscall(SYS_clone, (unsigned long)flags | SIGCHLD, 0, 0, 0, 0);
	return (pid_t)pid;
}

static int userns_error(struct sbx_err *err, int e, const char *what)
{
	char why[400];
	idmap_diagnose(why, sizeof(why));
	if (why[0])
		return sbx_failx(err, e, "%s: %s: %s", what, sbx_strerror(e), why);
	return sbx_fail(err, e, "%s", what);
}

/* The cgroup leaf with its limits, before the child exists: the limits
 * hold from its first instruction.  Inside, the sandbox sees its own
 * limits under /sys/fs/cgroup. */
static int prepare_cgroup(struct run_state *st, struct sbx_run_result *ret, struct sbx_err *err)
{
	const struct sbx_cgroup_limits *l = st->opts->limits;
	ret->memory_max = SBX_LIMIT_MAX;
	if (!l || l->unlimited)
		return 0;
	struct sbx_cgroup_host host;
	cgroup_host_default(&host);
	int r = cgroup_create(&host, st->opts->cgroup_parent, st->spec.name, l, &st->cg, err);
	if (r < 0)
		return r;
	ret->memory_max = l->memory;
	/* v1 has no read-only namespace root: a nested sandbox can mount the
	 * hierarchy in a cgroup namespace of its own and rewrite its caps */
	if (st->spec.nested && cgroup_version(st->cg) == SBX_CGROUP_V1) {
		ret->bad_input = true;
		return sbx_failx(err, EPERM,
		                 "--nested with resource caps needs cgroup v2: on cgroup v1 a "
		                 "nested sandbox could lift its own caps (use --no-limits, or a "
		                 "cgroup v2 host)");
	}
	if (cgroup_warning(st->cg))
		sbx_fmt(ret->warning, sizeof(ret->warning), "%s", cgroup_warning(st->cg));
	if (cgroup_version(st->cg) == SBX_CGROUP_V2) {
		st->spec.cgroup2 = true;
	} else if (cgroup_version(st->cg) == SBX_CGROUP_V1) {
		struct sbx_cgroup_v1_mount m[SBX_MAX_CGROUP_MOUNTS];
		size_t n = cgroup_v1_mounts(st->cg, m, SBX_MAX_CGROUP_MOUNTS);
		for (size_t i = 0; i < n; i++)
			st->spec.cgroup_mounts[i] =
			    (struct sbx_cgroup_mount){.name = m[i].name, .src = m[i].host_path};
		st->spec.n_cgroup_mounts = n;
	}
	return 0;
}

static int prepare(struct run_state *st, struct sbx_run_result *ret, struct sbx_err *err)
{
	const struct sbx_spec *spec = &st->spec;
	int r = mount_prepare(spec, &st->mnt, err);
	if (r >= 0)
		r = seccomp_filter_prepare(spec, &st->seccomp, err);
	if (r < 0) {
		ret->bad_input = true;
		return r;
	}
	r = mount_fuse_missing(&st->mnt, err);
	if (r < 0)
		return r;
	r = prepare_cgroup(st, ret, err);
	if (r < 0)
		return r;
	if (spec->tty) {
		r = tty_open(&st->tty, err);
		if (r < 0)
			return r;
		sbx_fmt(st->mnt.console, sizeof(st->mnt.console), "%s", st->tty.slave_path);
	}
	r = sync_pair(st->sync, err);
	if (r < 0)
		return r;
	st->mnt.sync_fd = st->sync[1];
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < ELEMENTSOF(relayed); i++)
		sigaddset(&set, relayed[i]);
	if (sigprocmask(SIG_BLOCK, &set, &st->old_mask) < 0)
		return sbx_fail(err, errno, "block signals");
	st->mask_set = true;
	st->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (st->sfd < 0)
		return sbx_fail(err, errno, "signalfd");
	return 0;
}

static int spawn(struct run_state *st, struct sbx_err *err)
{
	struct sbx_child_ctx c = {
	    .spec = &st->spec,
	    .mnt = &st->mnt,
	    .seccomp = &st->seccomp,
	    .sync_fd = st->sync[1],
	    .tty_fd = st->tty.slave,
	    .last_cap = caps_last_cap(),
	    /* half of the host user's: the rest stays the user's own */
	    .inotify_instances = sbx_read_long("/proc/sys/fs/inotify/max_user_instances", 0) / 2,
	    .inotify_watches = sbx_read_long("/proc/sys/fs/inotify/max_user_watches", 0) / 2,
	};
	clock_gettime(CLOCK_MONOTONIC, &st->t0);
	uint64_t flags = NS_FLAGS;
	if (st->spec.host_network)
		flags &= ~(uint64_t)CLONE_NEWNET;
	pid_t pid = do_clone(flags, st->cg ? cgroup_fd(st->cg) : -1, &st->in_cgroup);
	if (pid < 0) {
		int e = errno;
		if (e == EPERM || e == ENOSPC || e == EUSERS || e == EACCES)
			return userns_error(err, e, "create the sandbox's namespaces");
		return sbx_fail(err, e, "clone");
	}
	if (pid == 0)
		child_main(&c);
	st->pid = pid;
	close(st->sync[1]);
	st->sync[1] = -1;
	if (st->tty.slave >= 0) {
		close(st->tty.slave);
		st->tty.slave = -1;
	}
	return 0;
}

/* The child's ERROR as ours. */
static void err_from_msg(struct sbx_err *err, const struct sbx_sync_msg *m)
{
	err->errnum = m->errnum > 0 ? m->errnum : EIO;
	memcpy(err->msg, m->msg, sizeof(err->msg));
}

/* An ERROR the child has sent already (a fuse fd that came first is
 * closed: setup is failing anyway). */
static bool child_error(struct run_state *st, struct sbx_err *err)
{
	struct sbx_sync_msg m;
	int fd;
	while (sync_recv_fd(st->sync[0], 0, &m, &fd) == 1) {
		if (fd >= 0)
			close(fd);
		if (m.type == SBX_SYNC_ERROR) {
			err_from_msg(err, &m);
			return true;
		}
	}
	return false;
}

/* The child's answer to GO: READY, or the setup error it sends. */
static int wait_ready(struct run_state *st, struct sbx_err *err)
{
	struct sbx_sync_msg m;
	int timeout = st->spec.ready_timeout_ms > 0 ? st->spec.ready_timeout_ms : 60000;
	int fuse_fd = -1;
	int r = sync_recv_fd(st->sync[0], timeout, &m, &fuse_fd);
	if (r == 1 && m.type == SBX_SYNC_FUSE) {
		r = fuse_fd >= 0 ? fuse_start(st, fuse_fd, err)
		                 : sbx_failx(err, EPROTO, "sandbox setup: FUSE without a file");
		if (fuse_fd >= 0)
			close(fuse_fd); /* the server's copy is the only one now */
		if (r < 0)
			return r;
		r = sync_recv(st->sync[0], timeout, &m);
	} else if (fuse_fd >= 0) {
		close(fuse_fd);
	}
	if (r == -ETIMEDOUT)
		return sbx_failx(err, ETIMEDOUT, "sandbox setup: no answer after %d ms", timeout);
	if (r < 0)
		return sbx_fail(err, -r, "sandbox setup: sync socket");
	if (r == 0) {
		int status = 0;
		while (waitpid(st->pid, &status, 0) < 0 && errno == EINTR)
			;
		st->reaped = true;
		if (WIFSIGNALED(status))
			return sbx_failx(err, ECHILD, "sandbox setup: killed by signal %d",
			                 WTERMSIG(status));
		return sbx_failx(err, ECHILD, "sandbox setup: exited with %d", WEXITSTATUS(status));
	}
	if (m.type == SBX_SYNC_ERROR) {
		err_from_msg(err, &m);
		if (m.errnum == EPERM || m.errnum == EACCES) {
			char why[400];
			idmap_diagnose(why, sizeof(why));
			if (why[0]) {
				char msg[SBX_ERR_MSG_MAX];
				memcpy(msg, err->msg, sizeof(msg));
				sbx_failx(err, m.errnum, "%s (%s)", msg, why);
			}
		}
		return fuse_explain(st, err);
	}
	if (m.type != SBX_SYNC_READY)
		return sbx_failx(err, EPROTO, "sandbox setup: unexpected %s",
		                 sync_type_name(m.type));
	return 0;
}

static void on_sync(struct run_state *st, struct sbx_run_result *ret)
{
	struct sbx_sync_msg m;
	int r = sync_recv(st->sync[0], 0, &m);
	if (r == -ETIMEDOUT)
		return;
	if (r == 1 && m.type == SBX_SYNC_ERROR) {
		ret->exec_failed = true;
		ret->exec_err.errnum = m.errnum;
		memcpy(ret->exec_err.msg, m.msg, sizeof(m.msg));
		return; /* EOF follows */
	}
	if (r == 0 && st->opts->started && !ret->exec_failed) {
		struct sbx_run_info info = {.pid = st->pid, .cgroup = st->cg};
		st->opts->started(st->opts->data, &info);
	}
	close(st->sync[0]);
	st->sync[0] = -1;
}

static void on_signal(struct run_state *st)
{
	struct signalfd_siginfo si;
	while (read(st->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		int sig = (int)si.ssi_signo;
		if (sig == SIGCHLD) {
			int status;
			pid_t p = waitpid(st->pid, &status, WNOHANG);
			if (p == st->pid) {
				st->status = status;
				st->reaped = true;
			}
		} else if (sig == SIGWINCH && st->tty.master >= 0) {
			tty_resize(&st->tty); /* the kernel signals the foreground inside */
		} else {
			kill(st->pid, sig);
		}
	}
}

/* Copy what is readable from one fd to another; 0 at EOF/EIO. */
static int pump(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 1;
	if (n <= 0)
		return 0;
	if (sbx_write_all(to, buf, (size_t)n) < 0)
		return 0;
	return 1;
}

/* The cgroup's OOM events: counted as they come (v1 with --oom-kill group:
 * cgroup_oom_event also kills the rest of the sandbox). */
static void on_oom(struct run_state *st)
{
	uint64_t kills = 0;
	if (cgroup_oom_event(st->cg, &kills, NULL) >= 0)
		st->oom_kills += kills;
}

enum { P_SIG, P_SYNC, P_MASTER, P_STDIN, P_WATCH, P_OOM, P_MAX };

static void relay(struct run_state *st, struct sbx_run_result *ret)
{
	bool use_stdin = st->tty.master >= 0;
	int oom = st->cg ? cgroup_oom_fd(st->cg) : -1;
	struct sbx_run_info info = {.pid = st->pid, .cgroup = st->cg};
	while (!st->reaped) {
		struct pollfd p[P_MAX];
		int fds[P_MAX] = {st->sfd,
		                  st->sync[0],
		                  st->tty.master,
		                  use_stdin ? STDIN_FILENO : -1,
		                  st->opts->watch_fd,
		                  oom};
		for (int i = 0; i < P_MAX; i++)
			p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
		/* a timeout keeps a sampled memory peak where the kernel has none */
		int n = poll(p, P_MAX, st->cg ? 1000 : -1);
		if (n < 0 && errno != EINTR)
			break;
		if (n == 0) {
			struct sbx_cgroup_stats s;
			cgroup_stats(st->cg, &s, NULL);
			continue;
		}
		if (p[P_SIG].revents)
			on_signal(st);
		if (p[P_SYNC].revents)
			on_sync(st, ret);
		if (p[P_MASTER].revents && !pump(st->tty.master, STDOUT_FILENO)) {
			close(st->tty.master);
			st->tty.master = -1;
		}
		if (p[P_STDIN].revents && !pump(STDIN_FILENO, st->tty.master))
			use_stdin = false;
		if (p[P_WATCH].revents)
			st->opts->watch(st->opts->data, &info);
		if (p[P_OOM].revents)
			on_oom(st);
	}
	/* What the command wrote last is still in the pty. */
	if (st->tty.master >= 0) {
		fcntl(st->tty.master, F_SETFL, O_NONBLOCK);
		while (pump(st->tty.master, STDOUT_FILENO) > 0) {
			struct pollfd p = {.fd = st->tty.master, .events = POLLIN};
			if (poll(&p, 1, 50) <= 0)
				break;
		}
	}
	if (st->sync[0] >= 0)
		on_sync(st, ret);
}

static int start(struct run_state *st, struct sbx_err *err)
{
	const struct sbx_run_opts *o = st->opts;
	int r = idmap_parent(st->pid, getuid(), getgid(), err);
	if (r < 0) {
		if (r == -EPERM)
			return userns_error(err, EPERM, "write the sandbox's id maps");
		return r;
	}
	if ((r = sync_send(st->sync[0], SBX_SYNC_MAPS)) < 0)
		return sbx_fail(err, -r, "sandbox setup: send MAPS");
	/* v1, or clone3 without CLONE_INTO_CGROUP: join the cgroup now, before
	 * the child runs anything of its own (it mounts meanwhile).  Not when
	 * it was born there: a write to cgroup.procs waits for an RCU grace
	 * period in the kernel (cgroup_threadgroup_rwsem), for nothing. */
	if (st->cg && !st->in_cgroup)
		r = cgroup_attach(st->cg, st->pid, err);
	if (r >= 0 && (r = sync_send(st->sync[0], SBX_SYNC_GO)) < 0)
		r = sbx_fail(err, -r, "sandbox setup: send GO");
	if (r < 0) /* a child that failed meanwhile says why itself */
		return child_error(st, err) ? -err->errnum : r;
	r = wait_ready(st, err);
	if (r < 0)
		return r;
	if (o->before_start) {
		struct sbx_run_info info = {.pid = st->pid, .cgroup = st->cg};
		r = o->before_start(o->data, &info, err);
		if (r < 0)
			return r;
	}
	if (st->tty.master >= 0) {
		r = tty_raw(&st->tty, err);
		if (r < 0)
			return r;
	}
	if ((r = sync_send(st->sync[0], SBX_SYNC_START)) < 0)
		return sbx_fail(err, -r, "sandbox setup: send START");
	return 0;
}

/* Exit status, accounting, and whether the OOM killer ended the command. */
static void finish(struct run_state *st, struct sbx_run_result *ret)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ret->wall_ms = (uint64_t)(t1.tv_sec - st->t0.tv_sec) * 1000 +
	               (uint64_t)((t1.tv_nsec - st->t0.tv_nsec) / 1000000);
	ret->status = st->status;
	ret->exit_code =
	    WIFEXITED(st->status) ? WEXITSTATUS(st->status) : 128 + WTERMSIG(st->status);
	if (!st->cg || cgroup_version(st->cg) == SBX_CGROUP_NONE)
		return;
	uint64_t kills = 0;
	cgroup_oom_event(st->cg, &kills, NULL); /* one that raced the exit */
	st->oom_kills += kills;
	if (cgroup_stats(st->cg, &ret->stats, NULL) >= 0) {
		ret->has_stats = true;
		if (ret->stats.oom_kills == SBX_STAT_UNKNOWN ||
		    ret->stats.oom_kills < st->oom_kills)
			ret->stats.oom_kills = st->oom_kills;
	}
	/* SIGKILLed (init reports 128+9) while the cgroup counted an OOM kill */
	ret->oom_killed =
	    ret->exit_code == 128 + SIGKILL && ret->has_stats && ret->stats.oom_kills > 0;
}

int run_sandbox(const struct sbx_spec *spec, const struct sbx_run_opts *opts,
                struct sbx_run_result *ret, struct sbx_err *err)
{
	memset(ret, 0, sizeof(*ret));
	struct run_state st;
	state_init(&st, spec, opts);
	int r = prepare(&st, ret, err);
	if (r >= 0)
		r = spawn(&st, err);
	if (r >= 0)
		r = start(&st, err);
	if (r < 0) {
		state_release(&st);
		return r;
	}
	ret->pid = st.pid;
	relay(&st, ret);
	finish(&st, ret);
	state_release(&st);
	return 0;
}
