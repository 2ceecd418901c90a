/* A task's git inside its supervisor; see git_sup.h. */
#include "orchestrator/git_sup.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "orchestrator/git_cmd.h"

enum { EV_PUSH = 1, EV_TIMER, EV_COMMIT };

#define GIT_SUP_COMMIT_WAIT_S 300

void git_task_from_def(const struct sbx_task_def *d, const char *task_dir,
                       const struct sbx_cgroup_limits *limits, const char *cgroup_parent,
                       struct git_task *ret)
{
	*ret = (struct git_task){
	    .id = d->id,
	    .name = d->name,
	    .task_dir = task_dir,
	    .repo = d->repo_path,
	    .base = d->repo_base,
	    .branch = d->branch,
	    .remote = d->git.remote,
	    .protected_branches = (const char *const *)d->git.protected_branches,
	    .push_tags = d->git.push_tags,
	    .push_mode = d->git.push,
	    .auto_commit = d->git.auto_commit,
	    .author_name = d->git.author_name,
	    .author_email = d->git.author_email,
	    .rootfs = d->image.rootfs,
	    .limits = limits,
	    .cgroup_parent = cgroup_parent,
	};
}

void git_sup_init(struct git_sup *g)
{
	memset(g, 0, sizeof(*g));
	g->ep = g->tfd_commit = g->commit_out = -1;
}

static int add(int ep, int fd, uint32_t id)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = id};
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static int start_timer(struct git_sup *g, uint64_t secs, struct sbx_err *err)
{
	g->tfd_commit = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (g->tfd_commit < 0)
		return sbx_fail(err, errno, "auto-commit timer");
	time_t s = secs > 86400 * 365 ? 86400 * 365 : (time_t)secs;
	struct itimerspec its = {.it_value = {.tv_sec = s}, .it_interval = {.tv_sec = s}};
	if (timerfd_settime(g->tfd_commit, 0, &its, NULL) < 0 ||
	    add(g->ep, g->tfd_commit, EV_TIMER) < 0)
		return sbx_fail(err, errno, "auto-commit timer");
	return 0;
}

int git_sup_prepare(struct git_sup *g, const struct sbx_task_def *def, const char *task_dir,
                    unsigned run, const char *trimo_dir, const struct sbx_cgroup_limits *limits,
                    const char *cgroup_parent, void (*log)(void *data, const char *line),
                    void *data, struct sbx_err *err)
{
	if (!def->repo)
		return 0;
	g->active = true;
	g->run_no = run;
	snprintf(g->task_dir, sizeof(g->task_dir), "%s", task_dir);
	git_task_from_def(def, g->task_dir, limits, cgroup_parent, &g->t);
	g->t.log = log;
	g->t.data = data;
	g->ep = epoll_create1(EPOLL_CLOEXEC);
	if (g->ep < 0)
		return sbx_fail(err, errno, "git: epoll");
	int r = git_task_run_prepare(&g->t, trimo_dir, &g->run, err);
	if (r < 0)
		return sbx_wrap(err, "git");
	g->run_open = true;
	if (add(g->ep, git_pushd_fd(g->run.pushd), EV_PUSH) < 0)
		return sbx_fail(err, errno, "git: epoll");
	if (def->git.auto_commit == SBX_AUTO_COMMIT_INTERVAL && def->git.auto_commit_interval)
		return start_timer(g, def->git.auto_commit_interval, err);
	return 0;
}

const struct sbx_bind *git_sup_bind(const struct git_sup *g)
{
	return g->run_open ? &g->run.bind : NULL;
}

int git_sup_fd(const struct git_sup *g)
{
	return g->active ? g->ep : -1;
}

/* ---- interval auto-commits: `trimo-sbx __git-job commit` ------------------ */

static void say(struct git_sup *g, const char *line)
{
	if (g->t.log)
		g->t.log(g->t.data, line);
}

/* A sandbox cannot run from inside another run's event loop: the commit
 * is a process of its own, whose lines come back through a pipe. */
static void spawn_commit(struct git_sup *g)
{
	char self[PATH_MAX], run[16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int p[2];
	if (n < 0 || pipe2(p, O_CLOEXEC) < 0) {
		say(g, "git: interval auto-commit: cannot start it");
		return;
	}
	self[n] = '\0';
	snprintf(run, sizeof(run), "%u", g->run_no);
	char *argv[] = {self,    GIT_JOB_VERB, "commit", "--task-dir", g->task_dir,
	                "--run", run,          "--why",  "interval",   NULL};
	int r = sbx_spawn(self, argv, -1, p[1], p[1], -1, &g->commit_pid);
	close(p[1]);
	if (r < 0) {
		close(p[0]);
		g->commit_pid = 0;
		say(g, "git: interval auto-commit: cannot start it");
		return;
	}
	g->commit_out = p[0];
	fcntl(g->commit_out, F_SETFL, O_NONBLOCK);
	g->len = 0;
	add(g->ep, g->commit_out, EV_COMMIT);
}

static void say_line(void *data, const char *line)
{
	say(data, line);
}

static void commit_lines(struct git_sup *g, bool flush)
{
	sbx_take_lines(g->buf, &g->len, sizeof(g->buf), flush, say_line, g);
}

/* Read what the commit wrote; at its end, reap it. */
static void commit_output(struct git_sup *g)
{
	ssize_t n = read(g->commit_out, g->buf + g->len, sizeof(g->buf) - 1 - g->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		g->len += (size_t)n;
		commit_lines(g, false);
		return;
	}
	commit_lines(g, true);
	epoll_ctl(g->ep, EPOLL_CTL_DEL, g->commit_out, NULL);
	close(g->commit_out);
	g->commit_out = -1;
	int status = 0;
	while (waitpid(g->commit_pid, &status, 0) < 0 && errno == EINTR)
		;
	g->commit_pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		say(g, "git: interval auto-commit failed");
}

static void on_timer(struct git_sup *g)
{
	uint64_t ticks;
	if (read(g->tfd_commit, &ticks, sizeof(ticks)) != sizeof(ticks))
		return;
	if (g->commit_pid > 0) {
		say(g, "git: interval auto-commit skipped: the previous one still runs");
		return;
	}
	say(g, "git: interval auto-commit");
	spawn_commit(g);
}

void git_sup_handle(struct git_sup *g)
{
	struct epoll_event ev[4];
	int n = epoll_wait(g->ep, ev, 4, 0);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u32 == EV_PUSH)
			git_pushd_handle(g->run.pushd);
		else if (ev[i].data.u32 == EV_TIMER)
			on_timer(g);
		else if (ev[i].data.u32 == EV_COMMIT && g->commit_out >= 0)
			commit_output(g);
	}
}

void git_sup_end_run(struct git_sup *g)
{
	if (!g->active)
		return;
	if (g->tfd_commit >= 0) {
		close(g->tfd_commit);
		g->tfd_commit = -1;
	}
	/* an interval commit in flight finishes first (both write the branch);
	 * one that hangs is killed after GIT_SUP_COMMIT_WAIT_S */
	time_t deadline = time(NULL) + GIT_SUP_COMMIT_WAIT_S;
	while (g->commit_out >= 0) {
		struct pollfd p = {.fd = g->commit_out, .events = POLLIN};
		poll(&p, 1, 1000);
		if (time(NULL) > deadline && g->commit_pid > 0) {
			say(g, "git: interval auto-commit still running at the end: killed");
			kill(g->commit_pid, SIGKILL);
			deadline = time(NULL) + 3600;
		}
		commit_output(g);
	}
	if (g->run_open) {
		git_task_run_finish(&g->run);
		g->run_open = false;
	}
	git_task_after_run(&g->t, g->run_no);
}

void git_sup_release(struct git_sup *g)
{
	if (g->commit_pid > 0) {
		kill(g->commit_pid, SIGKILL);
		while (waitpid(g->commit_pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (g->run_open)
		git_task_run_finish(&g->run);
	int fds[] = {g->commit_out, g->tfd_commit, g->ep};
	for (size_t i = 0; i < ELEMENTSOF(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	git_sup_init(g);
}
