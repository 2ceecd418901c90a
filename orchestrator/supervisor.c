/* The supervisor process: claim the task, wait in the queue, run, record.
 * See orchestrator/supervisor.h. */
#include "orchestrator/supervisor_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "orchestrator/admission.h"
#include "orchestrator/cli.h"
#include "orchestrator/task_run.h"

/* Re-check admission at least this often: memory freed elsewhere makes no
 * inotify event. */
#define QUEUE_RECHECK_MS 1000

static void emit_log(void *data, const char *text, size_t len)
{
	struct sup *s = data;
	if (s->log_fd >= 0)
		sbx_write_all(s->log_fd, text, len);
	if (s->run_log_fd >= 0)
		sbx_write_all(s->run_log_fd, text, len);
}

void sup_msg(struct sup *s, const char *fmt, ...)
{
	char text[900];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	task_log_message(&s->log, &now, text);
	task_log_flush(&s->log);
}

/* ---- claiming and ending -------------------------------------------- */

static int claim(struct sbx_task_state *st, void *data)
{
	(void)data;
	if (st->status != TASK_QUEUED)
		return -ECANCELED;
	state_set_owner(st);
	return 0;
}

struct failure {
	struct sup *s;
	enum sbx_task_status status;
	const char *error;
};

/* A run that ends before (or instead of) its sandbox: stopped in the
 * queue, or a failure of our own. */
static int mark_ended(struct sbx_task_state *st, void *data)
{
	const struct failure *f = data;
	if (!state_status_active(st->status))
		return 1;
	st->status = f->status;
	st->ended_ms = state_now_ms();
	st->queued_reason[0] = '\0';
	st->sandbox_pid = 0;
	st->has_exit_code = false;
	st->stop_requested = f->status == TASK_STOPPED;
	snprintf(st->error, sizeof(st->error), "%s", f->error ? f->error : "");
	struct sbx_err ignored;
	task_run_write_record(f->s->task_fd, st, &ignored);
	return 0;
}

static void end_without_run(struct sup *s, enum sbx_task_status status, const char *error)
{
	struct failure f = {.s = s, .status = status, .error = error};
	struct sbx_err err;
	sup_control_close(s);
	if (error)
		sup_msg(s, "run %u: %s", s->run, error);
	if (state_update(s->task_fd, mark_ended, &f, &err) < 0)
		sup_msg(s, "cannot record the end of run %u: %s", s->run, err.msg);
	state_dir_notify(&s->sd);
}

/* ---- the control socket --------------------------------------------- */

static int control_open(struct sup *s, struct sbx_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", s->task_fd, CONTROL_SOCK);
	unlinkat(s->task_fd, CONTROL_SOCK, 0);
	s->ctl_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->ctl_fd < 0)
		return sbx_fail(err, errno, "control socket");
	mode_t old = umask(0077);
	int r = bind(s->ctl_fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(s->ctl_fd, 16) < 0)
		return sbx_fail(err, errno, "control socket '%s'", CONTROL_SOCK);
	return 0;
}

void sup_control_close(struct sup *s)
{
	if (s->ctl_fd < 0)
		return;
	unlinkat(s->task_fd, CONTROL_SOCK, 0);
	close(s->ctl_fd);
	s->ctl_fd = -1;
}

static bool peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	return cred.uid == 0 || cred.uid == getuid();
}

bool sup_control(struct sup *s, pid_t pid, int *ret_grace)
{
	_cleanup_close_ int fd = accept4(s->ctl_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return false;
	if (!peer_allowed(fd))
		return false;
	/* the client sends right after connecting; never wait long for it */
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 1000) <= 0)
		return false;
	char req[128];
	ssize_t n = recv(fd, req, sizeof(req) - 1, MSG_DONTWAIT);
	if (n <= 0)
		return false;
	req[n] = '\0';
	char reply[128];
	bool stop = false;
	int grace = 10;
	if (sscanf(req, "stop %d", &grace) == 1 && grace >= 0) {
		stop = true;
		snprintf(reply, sizeof(reply), "ok");
	} else if (!strcmp(req, "status")) {
		snprintf(reply, sizeof(reply), "%s %d", pid > 0 ? "running" : "queued", (int)pid);
	} else {
		snprintf(reply, sizeof(reply), "error unknown request");
	}
	send(fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
	if (stop)
		*ret_grace = grace;
	return stop;
}

/* ---- the queue ------------------------------------------------------ */

static int queue_signals(sigset_t *old, struct sbx_err *err)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, old) < 0)
		return sbx_fail(err, errno, "block signals");
	int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return sbx_fail(err, errno, "signalfd");
	return fd;
}

/* Read the pending inotify events; true when one is about queue.event
 * (other files of the state folder change too). */
static bool queue_event(int fd)
{
	bool hit = false;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if (ev->len && !strcmp(ev->name, STATE_DIR_EVENT))
				hit = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	return hit;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum wake { WAKE_CHECK, WAKE_STOP, WAKE_ERROR };

/* Until queue.event changes, the re-check timer runs out, or a stop
 * arrives (control socket or signal). */
static enum wake wait_queue(struct sup *s, int ifd, int sfd)
{
	int64_t deadline = mono_ms() + QUEUE_RECHECK_MS;
	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return WAKE_CHECK;
		struct pollfd p[3] = {{.fd = ifd, .events = POLLIN},
		                      {.fd = s->ctl_fd, .events = POLLIN},
		                      {.fd = sfd, .events = POLLIN}};
		if (poll(p, 3, (int)left) < 0 && errno != EINTR)
			return WAKE_ERROR;
		int grace;
		if ((p[1].revents && sup_control(s, 0, &grace)) || p[2].revents)
			return WAKE_STOP;
		if (p[0].revents && queue_event(ifd))
			return WAKE_CHECK;
	}
}

/* 1: admitted (the state says preparing); 0: the run ended while queued
 * (stopped); < 0: error. */
static int wait_admission(struct sup *s, struct sbx_err *err)
{
	sigset_t old;
	_cleanup_close_ int sfd = queue_signals(&old, err);
	if (sfd < 0)
		return sfd;
	_cleanup_close_ int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ifd < 0 || inotify_add_watch(ifd, s->sd.root, IN_CLOSE_WRITE) < 0)
		sup_msg(s, "inotify on the state folder: %s (re-checking every %d ms)",
		        sbx_strerror(errno), QUEUE_RECHECK_MS);
	int r;
	for (;;) {
		r = admission_try(&s->sd, s->task_fd, err);
		if (r != 0)
			break;
		enum wake w = wait_queue(s, ifd, sfd);
		if (w == WAKE_ERROR) {
			r = sbx_fail(err, errno, "poll");
			break;
		}
		if (w == WAKE_STOP) {
			end_without_run(s, TASK_STOPPED, NULL);
			r = 0;
			break;
		}
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (r == -ECANCELED)
		return 0; /* somebody else ended the run (stop's fallback) */
	if (r == 1)
		state_dir_notify(&s->sd); /* the next in line may fit now */
	return r;
}

/* ---- main ----------------------------------------------------------- */

static void sup_init(struct sup *s)
{
	memset(s, 0, sizeof(*s));
	s->sd.root_fd = s->sd.tasks_fd = -1;
	s->task_fd = s->hold_fd = s->log_fd = s->run_log_fd = s->ctl_fd = -1;
	s->ep = s->out_fd = s->tfd_timeout = s->tfd_kill = s->tfd_stats = -1;
	task_log_stamper_init(&s->log, emit_log, s);
}

static void sup_release(struct sup *s)
{
	sup_control_close(s);
	int fds[] = {s->task_fd, s->hold_fd, s->log_fd, s->run_log_fd};
	for (size_t i = 0; i < ELEMENTSOF(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	task_def_free(s->def);
	state_dir_close(&s->sd);
}

static int sup_open(struct sup *s, char **argv, struct sbx_err *err)
{
	int r = state_dir_open(argv[1], false, &s->sd, err);
	if (r < 0)
		return r;
	snprintf(s->id, sizeof(s->id), "%s", argv[2]);
	snprintf(s->task_path, sizeof(s->task_path), "%s/tasks/%s", s->sd.root, s->id);
	s->task_fd = state_dir_open_task(&s->sd, s->id, err);
	if (s->task_fd < 0)
		return s->task_fd;
	s->log_fd =
	    openat(s->task_fd, "log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (s->log_fd < 0)
		return sbx_fail(err, errno, "open the log");
	return task_def_read(s->task_fd, &s->def, err);
}

static void notify_launcher(int fd)
{
	if (fd >= 0) {
		(void)!write(fd, "k", 1);
		close(fd);
	}
}

int supervisor_main(int argc, char **argv)
{
	if (argc != 5)
		return cli_error(EXIT_USAGE, "%s is started by launch and followup, not by hand",
		                 SUPERVISOR_VERB);
	int notify_fd = atoi(argv[3]);
	struct sup s;
	sup_init(&s);
	s.hold_fd = atoi(argv[4]);
	prctl(PR_SET_NAME, "trimo-sup", 0, 0, 0);
	struct sbx_err err = {0};
	struct sbx_task_state st;
	int r = sup_open(&s, argv, &err);
	if (r >= 0)
		r = state_update(s.task_fd, claim, NULL, &err);
	if (r >= 0)
		r = state_read(s.task_fd, &st, &err);
	if (r < 0) {
		/* nothing claimed: the launcher sees EOF and reports it */
		if (s.log_fd >= 0)
			sup_msg(&s, "the supervisor cannot start: %s", err.msg);
		else
			cli_report(EXIT_RUNTIME, &err);
		sup_release(&s);
		return EXIT_RUNTIME;
	}
	s.run = st.run;
	notify_launcher(notify_fd);
	r = control_open(&s, &err);
	if (r >= 0)
		r = wait_admission(&s, &err);
	if (r > 0)
		r = sup_run(&s, &err);
	if (r < 0 && err.msg[0])
		end_without_run(&s, TASK_FAILED, err.msg);
	else if (r < 0)
		end_without_run(&s, TASK_FAILED, sbx_strerror(-r));
	sup_release(&s);
	return r < 0 ? EXIT_RUNTIME : EXIT_OK;
}
