/* One run of a task's sandbox, inside the supervisor. */
#include "orchestrator/supervisor_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "orchestrator/limits.h"
#include "orchestrator/state_dir.h"
#include "orchestrator/task_run.h"
#include "runtime/network.h"
#include "sandbox/caps.h"

#define RUN_PATH     "/run/trimo"
#define SANDBOX_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

enum { EV_OUT = 1, EV_CTL, EV_TIMEOUT, EV_KILL, EV_STATS, EV_GIT };

extern char **environ;

/* ---- the run folder -------------------------------------------------- */

/* runs/N/trimo/{prompt,history} (bound at /run/trimo) and runs/N/log. */
static int prepare_run_dir(struct sup *s, const char *prompt, size_t plen, struct sbx_err *err)
{
	char dir[96], path[128];
	task_run_dir(s->run, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/trimo", dir);
	if (mkdirat(s->task_fd, path, 0755) < 0 && errno != EEXIST)
		return sbx_fail(err, errno, "mkdir %s", path);
	snprintf(path, sizeof(path), "%s/trimo/prompt", dir);
	int r = sbx_write_file_atomic(s->task_fd, path, prompt, plen, 0644, err);
	_cleanup_free_ char *hist = NULL;
	if (r >= 0)
		r = task_run_history(s->task_fd, s->run, &hist, err);
	snprintf(path, sizeof(path), "%s/trimo/history", dir);
	if (r >= 0)
		r = sbx_write_file_atomic(s->task_fd, path, hist, strlen(hist), 0644, err);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/log", dir);
	s->run_log_fd =
	    openat(s->task_fd, path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (s->run_log_fd < 0)
		return sbx_fail(err, errno, "open %s", path);
	return 0;
}

/* ---- environment and spec -------------------------------------------- */

static bool env_has(char *const *env, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; env && env[i]; i++)
		if (!strncmp(env[i], name, n) && env[i][n] == '=')
			return true;
	return false;
}

static int push_kv(char ***env, const char *k, const char *v)
{
	_cleanup_free_ char *kv = NULL;
	if (asprintf(&kv, "%s=%s", k, v) < 0)
		return -ENOMEM;
	return sbx_strv_push(env, kv);
}

/* The clean environment of `run`, the task's variables, then pass_env
 * from the environment of whoever started this run (never stored). */
static int build_env(struct sup *s, const char *prompt, char ***ret, struct sbx_err *err)
{
	const struct sbx_task_def *d = s->def;
	_cleanup_strv_free_ char **env = NULL;
	char run[16];
	snprintf(run, sizeof(run), "%u", s->run);
	/* with [repo], git-remote-trimo is found in /run/trimo/bin */
	int r =
	    push_kv(&env, "PATH", d->repo ? SANDBOX_PATH GIT_SANDBOX_PATH_SUFFIX : SANDBOX_PATH);
	r = r ?: push_kv(&env, "HOME", "/root");
	r = r ?: push_kv(&env, "HOSTNAME", d->hostname ? d->hostname : d->name);
	r = r ?: push_kv(&env, "TRIMO_TASK", d->id);
	r = r ?: push_kv(&env, "TRIMO_RUN", run);
	r = r ?: push_kv(&env, "TRIMO_PROMPT", prompt);
	for (size_t i = 0; r == 0 && d->env[i]; i++) {
		/* a task value replaces a default of the same name */
		size_t n = strcspn(d->env[i], "=");
		for (size_t j = 0; env[j]; j++) {
			if (!strncmp(env[j], d->env[i], n) && env[j][n] == '=') {
				free(env[j]);
				memmove(&env[j], &env[j + 1],
				        (sbx_strv_len(env) - j) * sizeof(char *));
				break;
			}
		}
		r = sbx_strv_push(&env, d->env[i]);
	}
	for (size_t i = 0; r == 0 && d->pass_env[i]; i++) {
		const char *v = getenv(d->pass_env[i]);
		if (v && !env_has(env, d->pass_env[i]))
			r = push_kv(&env, d->pass_env[i], v);
	}
	if (r < 0)
		return sbx_fail(err, ENOMEM, "environment");
	*ret = TAKE_PTR(env);
	return 0;
}

struct run_paths {
	char upper[PATH_MAX], work[PATH_MAX], workspace[PATH_MAX], trimo[PATH_MAX];
	struct sbx_bind binds[3];
	char *argv[4];
};

static void build_spec(struct sup *s, struct run_paths *p, char **env, struct sbx_spec *spec)
{
	const struct sbx_task_def *d = s->def;
	sbx_fmt(p->upper, sizeof(p->upper), "%s/upper", s->task_path);
	sbx_fmt(p->work, sizeof(p->work), "%s/work", s->task_path);
	sbx_fmt(p->workspace, sizeof(p->workspace), "%s/workspace", s->task_path);
	sbx_fmt(p->trimo, sizeof(p->trimo), "%s/runs/%u/trimo", s->task_path, s->run);
	p->binds[0] = (struct sbx_bind){.src = p->workspace, .dst = d->workdir, .ro = false};
	p->binds[1] = (struct sbx_bind){.src = p->trimo, .dst = RUN_PATH, .ro = true};
	p->argv[0] = "/bin/sh";
	p->argv[1] = "-c";
	p->argv[2] = d->command;
	p->argv[3] = NULL;
	memset(spec, 0, sizeof(*spec));
	spec->name = d->id;
	spec->hostname = d->hostname ? d->hostname : d->name;
	/* the image stays read-only; the task's own layer keeps every change
	 * across runs */
	spec->lower = d->image.rootfs;
	spec->upper = p->upper;
	spec->work = p->work;
	spec->keep_root_rw = true;
	spec->argv = p->argv;
	spec->envp = env;
	spec->workdir = d->workdir;
	spec->binds = p->binds;
	spec->n_binds = 2;
	const struct sbx_bind *git = git_sup_bind(&s->git);
	if (git)
		p->binds[spec->n_binds++] = *git;
	spec->caps = caps_default();
	/* podman's default: as many open files as the hard limit allows */
	struct rlimit cur;
	if (getrlimit(RLIMIT_NOFILE, &cur) == 0) {
		spec->rlimits[0].resource = RLIMIT_NOFILE;
		spec->rlimits[0].lim = (struct rlimit){cur.rlim_max, cur.rlim_max};
		spec->n_rlimits = 1;
	}
}

/* ---- while it runs ---------------------------------------------------- */

/* One-shot after secs (0: at once), then every interval seconds (0: no
 * repeat).  A timeout beyond what time_t holds waits "forever" (68 years). */
static void arm(int tfd, uint64_t secs, unsigned interval)
{
	if (secs > INT32_MAX)
		secs = INT32_MAX;
	struct itimerspec its = {.it_value = {.tv_sec = (time_t)secs, .tv_nsec = secs ? 0 : 1},
	                         .it_interval = {.tv_sec = interval}};
	timerfd_settime(tfd, 0, &its, NULL);
}

void sup_begin_stop(struct sup *s, pid_t pid, int grace)
{
	if (pid <= 0)
		return;
	if (grace <= 0) {
		kill(pid, SIGKILL);
		return;
	}
	/* init forwards SIGTERM to the command; its exit ends the sandbox */
	kill(pid, SIGTERM);
	arm(s->tfd_kill, (uint64_t)grace, 0);
}

static void pump_output(struct sup *s)
{
	char buf[16384];
	ssize_t n = read(s->out_fd, buf, sizeof(buf));
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			epoll_ctl(s->ep, EPOLL_CTL_DEL, s->out_fd, NULL);
		return;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	task_log_feed(&s->log, buf, (size_t)n, &now);
	task_log_flush(&s->log);
}

struct stats_update {
	const struct sbx_cgroup_stats *st;
	bool stop;
};

static int apply_stats(struct sbx_task_state *st, void *data)
{
	const struct stats_update *u = data;
	if (st->status != TASK_RUNNING)
		return 1;
	if (u->st) {
		st->memory_current = u->st->memory_current;
		st->memory_peak = u->st->memory_peak;
		st->cpu_usec = u->st->cpu_usec;
		st->oom_kills = u->st->oom_kills;
	}
	if (u->stop)
		st->stop_requested = true;
	return 0;
}

static void refresh_stats(struct sup *s, const struct sbx_run_info *info)
{
	struct sbx_cgroup_stats cs;
	if (!info->cgroup || cgroup_stats(info->cgroup, &cs, NULL) < 0)
		return;
	struct stats_update u = {.st = &cs};
	struct sbx_err ignored;
	state_update(s->task_fd, apply_stats, &u, &ignored);
}

static void on_timer(struct sup *s, int which, const struct sbx_run_info *info)
{
	uint64_t ticks;
	int fd = which == EV_TIMEOUT ? s->tfd_timeout
	         : which == EV_KILL  ? s->tfd_kill
	                             : s->tfd_stats;
	if (read(fd, &ticks, sizeof(ticks)) != sizeof(ticks))
		return;
	if (which == EV_STATS) {
		refresh_stats(s, info);
	} else if (which == EV_TIMEOUT) {
		s->timed_out = true;
		sup_msg(s, "run %u: timeout of %llus reached: stopping it", s->run,
		        (unsigned long long)s->def->timeout);
		sup_begin_stop(s, info->pid, SUP_TIMEOUT_GRACE_S);
	} else {
		sup_msg(s, "run %u: still running after the grace period: killing it", s->run);
		kill(info->pid, SIGKILL);
	}
}

static void on_watch(void *data, const struct sbx_run_info *info)
{
	struct sup *s = data;
	struct epoll_event ev[8];
	int n = epoll_wait(s->ep, ev, 8, 0);
	for (int i = 0; i < n; i++) {
		int grace;
		switch (ev[i].data.u32) {
		case EV_OUT:
			pump_output(s);
			break;
		case EV_GIT:
			git_sup_handle(&s->git);
			break;
		case EV_CTL:
			if (sup_control(s, info->pid, &grace)) {
				struct stats_update u = {.stop = true};
				struct sbx_err ignored;
				s->stop_requested = true;
				state_update(s->task_fd, apply_stats, &u, &ignored);
				sup_begin_stop(s, info->pid, grace);
			}
			break;
		default:
			on_timer(s, (int)ev[i].data.u32, info);
			break;
		}
	}
}

static int mark_running(struct sbx_task_state *st, void *data)
{
	const struct sbx_run_info *info = data;
	if (st->status != TASK_PREPARING)
		return 1;
	st->status = TASK_RUNNING;
	st->started_ms = state_now_ms();
	st->sandbox_pid = info->pid;
	snprintf(st->cgroup, sizeof(st->cgroup), "%s",
	         info->cgroup ? cgroup_path(info->cgroup) : "");
	return 0;
}

static void on_started(void *data, const struct sbx_run_info *info)
{
	struct sup *s = data;
	struct sbx_err err;
	if (state_update(s->task_fd, mark_running, (void *)info, &err) < 0)
		sup_msg(s, "cannot record the start: %s", err.msg);
	if (info->cgroup) {
		refresh_stats(s, info); /* ps shows figures from the start */
		arm(s->tfd_stats, SUP_STATS_INTERVAL_S, SUP_STATS_INTERVAL_S);
	}
	if (s->def->timeout)
		arm(s->tfd_timeout, s->def->timeout, 0);
}

static int add_ev(int ep, int fd, uint32_t id)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = id};
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/* The output pipe on fds 1 and 2 (the sandbox inherits them), the epoll
 * set the runner watches, the timers. */
static int open_watch(struct sup *s, struct sbx_err *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return sbx_fail(err, errno, "pipe");
	s->out_fd = p[0];
	fcntl(s->out_fd, F_SETFL, O_NONBLOCK);
	int r = dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0 ? -errno : 0;
	close(p[1]);
	if (r < 0)
		return sbx_fail(err, -r, "dup2");
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	s->tfd_timeout = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	s->tfd_kill = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	s->tfd_stats = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (s->ep < 0 || s->tfd_timeout < 0 || s->tfd_kill < 0 || s->tfd_stats < 0 ||
	    add_ev(s->ep, s->out_fd, EV_OUT) < 0 || add_ev(s->ep, s->ctl_fd, EV_CTL) < 0 ||
	    add_ev(s->ep, s->tfd_timeout, EV_TIMEOUT) < 0 ||
	    add_ev(s->ep, s->tfd_kill, EV_KILL) < 0 || add_ev(s->ep, s->tfd_stats, EV_STATS) < 0 ||
	    (git_sup_fd(&s->git) >= 0 && add_ev(s->ep, git_sup_fd(&s->git), EV_GIT) < 0))
		return sbx_fail(err, errno, "epoll");
	return 0;
}

/* After the sandbox: fds 1 and 2 back to the log, what is left in the
 * pipe into it (every writer is gone with the sandbox). */
static void close_watch(struct sup *s)
{
	if (s->log_fd >= 0) {
		dup2(s->log_fd, 1);
		dup2(s->log_fd, 2);
	}
	if (s->out_fd >= 0) {
		for (int i = 0; i < 4096; i++) {
			char buf[16384];
			ssize_t n = read(s->out_fd, buf, sizeof(buf));
			if (n <= 0)
				break;
			struct timespec now;
			clock_gettime(CLOCK_REALTIME, &now);
			task_log_feed(&s->log, buf, (size_t)n, &now);
		}
		task_log_flush(&s->log);
	}
	int fds[] = {s->out_fd, s->ep, s->tfd_timeout, s->tfd_kill, s->tfd_stats};
	for (size_t i = 0; i < ELEMENTSOF(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	s->out_fd = s->ep = s->tfd_timeout = s->tfd_kill = s->tfd_stats = -1;
}

/* ---- the outcome ------------------------------------------------------ */

struct outcome {
	struct sup *s;
	int rc;
	const struct sbx_err *err;
	const struct sbx_run_result *res;
};

static enum sbx_task_status classify(const struct sup *s, const struct sbx_run_result *res)
{
	if (res->exec_failed)
		return TASK_FAILED;
	if (res->oom_killed)
		return TASK_OOM;
	if (s->stop_requested)
		return TASK_STOPPED;
	if (s->timed_out || res->exit_code != 0)
		return TASK_FAILED;
	return TASK_EXITED;
}

static int mark_outcome(struct sbx_task_state *st, void *data)
{
	const struct outcome *o = data;
	const struct sbx_run_result *res = o->res;
	st->ended_ms = state_now_ms();
	st->sandbox_pid = 0;
	st->cgroup[0] = '\0';
	st->memory_current = STATE_UNKNOWN;
	st->stop_requested = o->s->stop_requested;
	st->timed_out = o->s->timed_out;
	st->error[0] = '\0';
	st->has_exit_code = o->rc >= 0;
	if (o->rc < 0) {
		st->status = o->s->stop_requested ? TASK_STOPPED : TASK_FAILED;
		snprintf(st->error, sizeof(st->error), "%s", o->err->msg);
	} else {
		st->exit_code = res->exit_code;
		st->status = classify(o->s, res);
		if (res->exec_failed)
			snprintf(st->error, sizeof(st->error), "%s", res->exec_err.msg);
		else if (o->s->timed_out && st->status == TASK_FAILED)
			snprintf(st->error, sizeof(st->error), "timed out after %llus",
			         (unsigned long long)o->s->def->timeout);
		if (res->has_stats) {
			st->memory_peak = res->stats.memory_peak;
			st->cpu_usec = res->stats.cpu_usec;
			st->oom_kills = res->stats.oom_kills;
		}
	}
	struct sbx_err ignored;
	task_run_write_record(o->s->task_fd, st, &ignored);
	return 0;
}

static void record_outcome(struct sup *s, int rc, const struct sbx_err *err,
                           const struct sbx_run_result *res)
{
	if (rc < 0)
		sup_msg(s, "run %u could not start: %s", s->run, err->msg);
	else if (res->exec_failed)
		sup_msg(s, "run %u: %s", s->run, res->exec_err.msg);
	else if (res->oom_killed)
		sup_msg(s, "run %u: killed by the OOM killer", s->run);
	if (rc >= 0 && res->warning[0])
		sup_msg(s, "warning: %s", res->warning);
	struct outcome o = {.s = s, .rc = rc, .err = err, .res = res};
	struct sbx_err werr;
	if (state_update(s->task_fd, mark_outcome, &o, &werr) < 0)
		sup_msg(s, "cannot record the end of run %u: %s", s->run, werr.msg);
	state_dir_notify(&s->sd);
}

static int read_state(struct sup *s, struct sbx_task_state *st, struct sbx_err *err)
{
	int r = state_read(s->task_fd, st, err);
	if (r >= 0 && st->status != TASK_PREPARING)
		return sbx_failx(err, ECANCELED, "the task is %s, not preparing",
		                 state_status_name(st->status));
	return r;
}

static bool d_has_allow(const struct sbx_task_def *d)
{
	return d->allow && d->allow[0];
}

/* After READY, before START: pasta/slirp4netns or the egress proxy. */
static int attach_net(void *data, const struct sbx_run_info *info, struct sbx_err *err)
{
	struct sup *s = data;
	return net_attach(s->net, info->pid, err);
}

/* [network] of the task: checked (ports free, tools there) before the
 * sandbox exists; the proxy's "egress refused" lines go to fd 2, the log
 * pipe, so they are stamped like the agent's own output. */
static int prepare_net(struct sup *s, struct sbx_net *net, char ***env, bool *ret_host,
                       struct sbx_err *err)
{
	const struct sbx_task_def *d = s->def;
	struct sbx_net_opts o = {.log_fd = STDERR_FILENO};
	int r = net_parse_mode(d->network, "[network] mode", &o.mode, err);
	if (r < 0)
		return r;
	o.publish = d->publish;
	o.n_publish = d->n_publish;
	o.allow_host_loopback = d->allow_host_loopback;
	o.allow = d->allow && d->allow[0] ? d->allow : NULL;
	r = net_prepare(net, &o, err);
	r = r ?: net_env_push(net, env, err);
	if (r < 0)
		return r;
	*ret_host = !net_wants_netns(net);
	if (*ret_host)
		sup_msg(s, "warning: %s", net_host_warning());
	return 0;
}

static int record_egress(struct sbx_task_state *st, void *data)
{
	const struct sbx_net_stats *ns = data;
	st->egress_allowed = ns->allowed;
	st->egress_refused = ns->refused;
	return 0;
}

static void git_log(void *data, const char *line)
{
	sup_msg(data, "%s", line);
}

/* [repo]: the push socket in runs/N/trimo, the helper's mount point, the
 * interval timer; git jobs run under the task's caps. */
static int prepare_git(struct sup *s, const struct sbx_task_state *st,
                       const struct sbx_cgroup_limits *cgl, struct sbx_err *err)
{
	char trimo[PATH_MAX];
	sbx_fmt(trimo, sizeof(trimo), "%s/runs/%u/trimo", s->task_path, s->run);
	git_sup_init(&s->git);
	int r = git_sup_prepare(&s->git, s->def, s->task_path, s->run, trimo, cgl,
	                        st->cgroup_parent[0] ? st->cgroup_parent : NULL, git_log, s, err);
	s->git.t.overlay = overlay_mode(st->overlay);
	return r;
}

int sup_run(struct sup *s, struct sbx_err *err)
{
	struct sbx_task_state st;
	int r = read_state(s, &st, err);
	if (r < 0)
		return r;
	struct sbx_cgroup_limits cgl; /* the git jobs after the run use it too */
	limits_to_cgroup(&s->def->limits, &cgl);
	_cleanup_free_ char *prompt = NULL;
	size_t plen = 0;
	r = task_run_prompt(s->task_fd, s->run, &prompt, &plen, err);
	r = r ?: prepare_run_dir(s, prompt, plen, err);
	_cleanup_strv_free_ char **env = NULL;
	r = r ?: build_env(s, prompt, &env, err);
	r = r ?: prepare_git(s, &st, &cgl, err);
	if (r < 0) {
		git_sup_release(&s->git);
		return r;
	}
	struct sbx_net net;
	net_init(&net);
	s->net = &net;
	bool host_network = false;
	r = prepare_net(s, &net, &env, &host_network, err);
	if (r < 0) {
		net_release(&net);
		s->net = NULL;
		git_sup_release(&s->git);
		return r;
	}
	struct run_paths paths;
	struct sbx_spec spec;
	build_spec(s, &paths, env, &spec);
	spec.host_network = host_network;
	spec.overlay = overlay_mode(st.overlay);
	if (cgl.unlimited)
		sup_msg(s, "warning: %s runs without resource limits (no memory, CPU or pids cap)",
		        s->id);
	r = open_watch(s, err);
	if (r < 0) {
		close_watch(s);
		net_release(&net);
		s->net = NULL;
		git_sup_release(&s->git);
		return r;
	}
	struct sbx_run_opts opts = {
	    .limits = &cgl,
	    .cgroup_parent = st.cgroup_parent[0] ? st.cgroup_parent : NULL,
	    .data = s,
	    .before_start = attach_net,
	    .started = on_started,
	    .watch_fd = s->ep,
	    .watch = on_watch,
	};
	struct sbx_run_result res;
	struct sbx_err rerr = {0};
	r = run_sandbox(&spec, &opts, &res, &rerr);
	/* the helpers end first: the proxy writes into the log pipe */
	struct sbx_net_stats ns;
	net_detach(&net, &ns);
	bool proxy = d_has_allow(s->def);
	close_watch(s);
	net_release(&net);
	s->net = NULL;
	/* before the outcome: `wait` returns once the commits are on the host */
	git_sup_end_run(&s->git);
	git_sup_release(&s->git);
	sup_control_close(s);
	if (proxy) {
		struct sbx_err ignored;
		state_update(s->task_fd, record_egress, &ns, &ignored);
	}
	record_outcome(s, r, &rerr, &res);
	return 0;
}
