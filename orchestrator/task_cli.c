#include "orchestrator/task_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "orchestrator/cli.h"
#include "orchestrator/limits.h"
#include "orchestrator/task.h"
#include "orchestrator/task_log.h"
#include "runtime/cgroup.h"

/* How often waiters re-check a supervisor's pid (a SIGKILLed one writes
 * nothing, so no event tells). */
#define LIVENESS_POLL_MS 500

int task_ctx_open(struct task_ctx *ctx, bool create)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->sd.root_fd = ctx->sd.tasks_fd = -1;
	config_env_from_process(&ctx->cenv);
	struct sbx_err err = {0};
	if (config_load_user(&ctx->cenv, &ctx->ucfg, &err) < 0)
		return cli_report(EXIT_USAGE, &err);
	if (state_dir_open(ctx->ucfg->storage.state_dir, create, &ctx->sd, &err) < 0) {
		if (!create && err.errnum == ENOENT) {
			/* no state folder yet: no tasks */
			ctx->sd.root = strdup(ctx->ucfg->storage.state_dir);
			return EXIT_OK;
		}
		return cli_report(EXIT_RUNTIME, &err);
	}
	return EXIT_OK;
}

void task_ctx_close(struct task_ctx *ctx)
{
	state_dir_close(&ctx->sd);
	config_free_user(ctx->ucfg);
	ctx->ucfg = NULL;
}

int task_ctx_find(struct task_ctx *ctx, const char *arg, char ret[STATE_ID_MAX])
{
	struct sbx_err err = {0};
	if (state_dir_find(&ctx->sd, arg, ret, &err) < 0)
		return cli_report(EXIT_USAGE, &err);
	return 0;
}

static bool is_final(const struct sbx_task_state *st)
{
	return !state_status_active(state_effective(st));
}

int task_wait_final(struct task_ctx *ctx, const char *id, int timeout_ms,
                    struct sbx_task_state *ret, struct sbx_err *err)
{
	_cleanup_close_ int tfd = state_dir_open_task(&ctx->sd, id, err);
	if (tfd < 0)
		return tfd;
	char path[96];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", tfd);
	_cleanup_close_ int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ifd >= 0)
		inotify_add_watch(ifd, path, IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int r = state_read(tfd, ret, err);
		if (r < 0)
			return r;
		if (is_final(ret))
			return 0;
		int wait_ms = LIVENESS_POLL_MS;
		if (timeout_ms >= 0) {
			struct timespec t;
			clock_gettime(CLOCK_MONOTONIC, &t);
			long spent =
			    (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
			if (spent >= timeout_ms)
				return sbx_failx(err, ETIMEDOUT, "task %s is still %s", id,
				                 state_status_name(ret->status));
			if (timeout_ms - spent < wait_ms)
				wait_ms = (int)(timeout_ms - spent);
		}
		struct pollfd p = {.fd = ifd, .events = POLLIN};
		poll(&p, 1, wait_ms);
		if (p.revents) {
			char buf[4096];
			while (read(ifd, buf, sizeof(buf)) > 0)
				;
		}
	}
}

int task_status_exit_code(const struct sbx_task_state *st)
{
	enum sbx_task_status s = state_effective(st);
	if (state_status_active(s))
		return 0;
	if (s == TASK_EXITED)
		return 0;
	if (st->has_exit_code && st->exit_code != 0 && s != TASK_LOST)
		return st->exit_code;
	return 1;
}

/* ---- logs --------------------------------------------------------------- */

static int copy_out(int fd, struct sbx_log_strip *strip, bool timestamps)
{
	char in[16384], out[16384];
	for (;;) {
		ssize_t n = read(fd, in, sizeof(in));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		size_t k = (size_t)n;
		const char *p = in;
		if (!timestamps) {
			k = task_log_strip(strip, in, (size_t)n, out);
			p = out;
		}
		if (sbx_write_all(STDOUT_FILENO, p, k) < 0)
			return -EPIPE;
	}
	return 0;
}

int task_print_log(struct task_ctx *ctx, const char *id, unsigned run, bool follow, bool timestamps,
                   struct sbx_err *err)
{
	_cleanup_close_ int tfd = state_dir_open_task(&ctx->sd, id, err);
	if (tfd < 0)
		return tfd;
	char name[64] = "log";
	if (run)
		snprintf(name, sizeof(name), "runs/%u/log", run);
	_cleanup_close_ int fd = openat(tfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && !(errno == ENOENT && follow))
		return errno == ENOENT ? sbx_failx(err, ENOENT, "task %s has no %s", id,
		                                   run ? "such run" : "log yet")
		                       : sbx_fail(err, errno, "open %s", name);
	struct sbx_log_strip strip;
	task_log_strip_init(&strip);
	char path[96];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", tfd);
	_cleanup_close_ int ifd = follow ? inotify_init1(IN_CLOEXEC | IN_NONBLOCK) : -1;
	if (ifd >= 0)
		inotify_add_watch(ifd, path, IN_MODIFY | IN_MOVED_TO | IN_CREATE);
	for (;;) {
		struct sbx_task_state st;
		bool done = !follow || state_read(tfd, &st, err) < 0 || is_final(&st);
		if (fd < 0)
			fd = openat(tfd, name, O_RDONLY | O_CLOEXEC);
		/* read to the end after seeing the end: the supervisor writes
		 * the final state after its last log line */
		if (fd >= 0 && copy_out(fd, &strip, timestamps) < 0)
			return -EPIPE;
		if (done)
			return 0;
		struct pollfd p = {.fd = ifd, .events = POLLIN};
		poll(&p, 1, LIVENESS_POLL_MS);
		if (p.revents) {
			char buf[4096];
			while (read(ifd, buf, sizeof(buf)) > 0)
				;
		}
	}
}

/* ---- formatting ---------------------------------------------------------- */

void task_fmt_size(uint64_t v, char *buf, size_t size)
{
	if (v == STATE_UNKNOWN) {
		snprintf(buf, size, "-");
		return;
	}
	char tmp[32];
	cgroup_format_size(v, tmp, sizeof(tmp));
	snprintf(buf, size, "%s", tmp);
}

void task_fmt_age(int64_t ms, char *buf, size_t size)
{
	if (ms <= 0) {
		snprintf(buf, size, "-");
		return;
	}
	int64_t s = (state_now_ms() - ms) / 1000;
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, size, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(buf, size, "%lldm", (long long)(s / 60));
	else if (s < 172800)
		snprintf(buf, size, "%lldh", (long long)(s / 3600));
	else
		snprintf(buf, size, "%lldd", (long long)(s / 86400));
}

void task_queue_run(struct sbx_task_state *st, const struct sbx_user_config *u,
                    const struct sbx_task_def *def)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	st->status = TASK_QUEUED;
	st->queued_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	st->queue_seq = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	st->started_ms = st->ended_ms = 0;
	st->sandbox_pid = 0;
	st->has_exit_code = false;
	st->exit_code = 0;
	st->stop_requested = st->timed_out = false;
	st->error[0] = st->cgroup[0] = '\0';
	snprintf(st->queued_reason, sizeof(st->queued_reason), "not checked yet");
	st->memory_current = st->memory_peak = st->cpu_usec = st->oom_kills = STATE_UNKNOWN;
	st->memory_admit = task_memory_admit(&def->limits, u->orchestrator.default_memory);
	uint64_t cap = task_memory_max(&def->limits);
	st->memory_max = cap == UINT64_MAX ? STATE_UNKNOWN : cap;
	st->max_parallel = u->orchestrator.max_parallel;
	st->memory_reserve = u->orchestrator.memory_reserve;
	st->max_cpu_pressure = u->orchestrator.max_cpu_pressure;
	snprintf(st->cgroup_parent, sizeof(st->cgroup_parent), "%s",
	         u->cgroups.parent ? u->cgroups.parent : "");
	snprintf(st->overlay, sizeof(st->overlay), "%s", overlay_name(u->storage.overlay));
	snprintf(st->branch, sizeof(st->branch), "%s", def->branch ? def->branch : "");
	state_set_owner(st);
}
