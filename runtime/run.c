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
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "runtime/tty.h"
#include "sandbox/caps.h"
#include "sandbox/child.h"
#include "sandbox/idmap.h"
#include "sandbox/mount.h"
#include "sandbox/seccomp.h"
#include "sandbox/sync.h"

#define NS_FLAGS (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | \
		  CLONE_NEWUTS)

static const int relayed[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR1, SIGUSR2};

struct run_state {
	const struct sbx_spec *spec;
	const struct sbx_run_hooks *hooks;
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
};

static void state_init(struct run_state *st, const struct sbx_spec *spec,
		       const struct sbx_run_hooks *hooks)
{
	memset(st, 0, sizeof(*st));
	st->spec = spec;
	st->hooks = hooks;
	st->sync[0] = st->sync[1] = -1;
	st->sfd = -1;
	st->tty.master = st->tty.slave = -1;
	st->pid = -1;
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
	tty_close(&st->tty);
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
}

static pid_t do_clone(uint64_t flags, int cgroup_fd)
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
	if (pid < 0 && errno == ENOSYS && cgroup_fd < 0)
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

static int prepare(struct run_state *st, struct sbx_run_result *ret, struct sbx_err *err)
{
	const struct sbx_spec *spec = st->spec;
	int r = mount_prepare(spec, &st->mnt, err);
	if (r >= 0)
		r = seccomp_filter_prepare(spec, &st->seccomp, err);
	if (r < 0) {
		ret->bad_input = true;
		return r;
	}
	if (spec->tty) {
		r = tty_open(&st->tty, err);
		if (r < 0)
			return r;
		sbx_fmt(st->mnt.console, sizeof(st->mnt.console), "%s", st->tty.slave_path);
	}
	r = sync_pair(st->sync, err);
	if (r < 0)
		return r;
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
		.spec = st->spec,
		.mnt = &st->mnt,
		.seccomp = &st->seccomp,
		.sync_fd = st->sync[1],
		.tty_fd = st->tty.slave,
		.last_cap = caps_last_cap(),
	};
	int cgfd = st->hooks ? st->hooks->cgroup_fd : -1;
	pid_t pid = do_clone(NS_FLAGS, cgfd);
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

/* The child's answer to GO: READY, or the setup error it sends. */
static int wait_ready(struct run_state *st, struct sbx_err *err)
{
	struct sbx_sync_msg m;
	int timeout = st->spec->ready_timeout_ms > 0 ? st->spec->ready_timeout_ms : 60000;
	int r = sync_recv(st->sync[0], timeout, &m);
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
		err->errnum = m.errnum > 0 ? m.errnum : EIO;
		memcpy(err->msg, m.msg, sizeof(err->msg));
		if (m.errnum == EPERM || m.errnum == EACCES) {
			char why[400];
			idmap_diagnose(why, sizeof(why));
			if (why[0]) {
				char msg[SBX_ERR_MSG_MAX];
				memcpy(msg, err->msg, sizeof(msg));
				sbx_failx(err, m.errnum, "%s (%s)", msg, why);
			}
		}
		return -err->errnum;
	}
	if (m.type != SBX_SYNC_READY)
		return sbx_failx(err, EPROTO, "sandbox setup: unexpected %s", sync_type_name(m.type));
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
	if (r == 0 && st->hooks && st->hooks->started && !ret->exec_failed)
		st->hooks->started(st->hooks->data, st->pid);
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

static void relay(struct run_state *st, struct sbx_run_result *ret)
{
	bool use_stdin = st->tty.master >= 0;
	int watch = st->hooks ? st->hooks->watch_fd : -1;
	while (!st->reaped) {
		struct pollfd p[5];
		int n = 0, i_sync = -1, i_master = -1, i_stdin = -1, i_watch = -1;
		p[n++] = (struct pollfd){.fd = st->sfd, .events = POLLIN};
		if (st->sync[0] >= 0)
			i_sync = n, p[n++] = (struct pollfd){.fd = st->sync[0], .events = POLLIN};
		if (st->tty.master >= 0)
			i_master = n, p[n++] = (struct pollfd){.fd = st->tty.master, .events = POLLIN};
		if (use_stdin)
			i_stdin = n, p[n++] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
		if (watch >= 0)
			i_watch = n, p[n++] = (struct pollfd){.fd = watch, .events = POLLIN};
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			on_signal(st);
		if (i_sync >= 0 && p[i_sync].revents)
			on_sync(st, ret);
		if (i_master >= 0 && p[i_master].revents && !pump(st->tty.master, STDOUT_FILENO)) {
			close(st->tty.master);
			st->tty.master = -1;
		}
		if (i_stdin >= 0 && p[i_stdin].revents && !pump(STDIN_FILENO, st->tty.master))
			use_stdin = false;
		if (i_watch >= 0 && p[i_watch].revents)
			st->hooks->watch(st->hooks->data, st->pid);
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
	const struct sbx_run_hooks *h = st->hooks;
	int r = idmap_parent(st->pid, getuid(), getgid(), err);
	if (r < 0) {
		if (r == -EPERM)
			return userns_error(err, EPERM, "write the sandbox's id maps");
		return r;
	}
	if (h && h->before_go) {
		r = h->before_go(h->data, st->pid, err);
		if (r < 0)
			return r;
	}
	if ((r = sync_send(st->sync[0], SBX_SYNC_GO)) < 0)
		return sbx_fail(err, -r, "sandbox setup: send GO");
	r = wait_ready(st, err);
	if (r < 0)
		return r;
	if (h && h->before_start) {
		r = h->before_start(h->data, st->pid, err);
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

int run_sandbox(const struct sbx_spec *spec, const struct sbx_run_hooks *hooks,
		struct sbx_run_result *ret, struct sbx_err *err)
{
	memset(ret, 0, sizeof(*ret));
	struct run_state st;
	state_init(&st, spec, hooks);
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
	ret->status = st.status;
	ret->exit_code = WIFEXITED(st.status) ? WEXITSTATUS(st.status) : 128 + WTERMSIG(st.status);
	state_release(&st);
	return 0;
}
