/* A task's git; see git_task.h. */
#include "orchestrator/git_task.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "runtime/run.h"
#include "sandbox/caps.h"
#include "sandbox/mount.h"

extern char **environ;

__attribute__((format(printf, 2, 3))) static void logf_(const struct git_task *t, const char *fmt,
                                                        ...)
{
	if (!t->log)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	t->log(t->data, line);
}

/* ---- the image ---------------------------------------------------------- */

int git_task_check_image(const char *rootfs, enum sbx_auto_commit auto_commit, struct sbx_err *err)
{
	static const char *const places[] = {"/usr/bin/git", "/bin/git", "/usr/local/bin/git"};
	_cleanup_close_ int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return sbx_fail(err, errno, "image '%s'", rootfs);
	for (size_t i = 0; i < ELEMENTSOF(places); i++) {
		_cleanup_close_ int fd = mount_resolve(root, places[i], 0);
		struct stat st;
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111))
			return 1;
	}
	if (auto_commit == SBX_AUTO_COMMIT_OFF)
		return 0;
	return sbx_failx(err, EINVAL,
	                 "[repo] auto_commit: the image has no git (looked for /usr/bin/git, "
	                 "/bin/git, /usr/local/bin/git); auto-commits run the image's own git");
}

/* ---- running the helper --------------------------------------------------- */

struct helper_io {
	void (*out)(void *data, const char *buf, size_t len);
	void *data;
	char errbuf[2048];
	size_t errlen;
};

static void pump_helper(int out_fd, int err_fd, struct helper_io *io)
{
	struct pollfd p[2] = {{.fd = out_fd, .events = POLLIN}, {.fd = err_fd, .events = POLLIN}};
	while (p[0].fd >= 0 || p[1].fd >= 0) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		char buf[8192];
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				p[i].fd = -1;
			} else if (i == 0 && io->out) {
				io->out(io->data, buf, (size_t)n);
			} else if (i == 1) {
				size_t take = sizeof(io->errbuf) - 1 - io->errlen;
				take = (size_t)n < take ? (size_t)n : take;
				memcpy(io->errbuf + io->errlen, buf, take);
				io->errlen += take;
			}
		}
	}
	io->errbuf[io->errlen] = '\0';
}

static int spawn_helper(const char *path, char *const *argv, int out_w, int err_w, pid_t *ret)
{
	return sbx_spawn(path, argv, -1, out_w, err_w, -1, ret);
}

/* The helper's one-line error, without its "trimo-sbx-git CMD: " prefix. */
static int helper_error(const char *text, int code, struct sbx_err *err)
{
	const char *line = text;
	if (!strncmp(line, "trimo-sbx-git ", 14) && strstr(line, ": "))
		line = strstr(line, ": ") + 2;
	char first[SBX_ERR_MSG_MAX];
	snprintf(first, sizeof(first), "%.*s", (int)strcspn(line, "\n"), line);
	if (!first[0])
		return sbx_failx(err, EIO, "trimo-sbx-git failed (exit %d)", code);
	/* sbx_fmt knows no precision: the line is cut above */
	return sbx_failx(err, code == 2 ? EINVAL : code == 1 ? EPERM : EIO, "%s", first);
}

int git_helper_run(char *const *argv, void (*out)(void *data, const char *buf, size_t len),
                   void *out_data, struct sbx_err *err)
{
	char path[PATH_MAX];
	int r = git_helper_path("trimo-sbx-git", path, sizeof(path), err);
	if (r < 0)
		return r;
	int po[2] = {-1, -1}, pe[2] = {-1, -1};
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		r = sbx_fail(err, errno, "run trimo-sbx-git: pipe");
		goto out;
	}
	pid_t pid;
	r = spawn_helper(path, argv, po[1], pe[1], &pid);
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	if (r < 0) {
		r = sbx_fail(err, -r, "run '%s'", path);
		goto out;
	}
	struct helper_io *io = calloc(1, sizeof(*io));
	if (io) {
		*io = (struct helper_io){.out = out, .data = out_data};
		pump_helper(po[0], pe[0], io);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	r = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (r != 0 && io)
		helper_error(io->errbuf, r, err);
	else if (r != 0)
		sbx_failx(err, EIO, "trimo-sbx-git failed (exit %d)", r);
	free(io);
out:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	return r;
}

/* Helper output into the task log, line by line. */
struct line_sink {
	const struct git_task *t;
	char buf[1024];
	size_t len;
};

static void sink_flush(struct line_sink *s)
{
	if (s->len) {
		s->buf[s->len] = '\0';
		logf_(s->t, "%s", s->buf);
		s->len = 0;
	}
}

static void sink_lines(void *data, const char *buf, size_t len)
{
	struct line_sink *s = data;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n' || s->len == sizeof(s->buf) - 1)
			sink_flush(s);
		if (buf[i] != '\n')
			s->buf[s->len++] = buf[i];
	}
}

/* ---- the workspace ---------------------------------------------------------- */

int git_task_workspace_create(const struct git_task *t, bool reuse_branch, struct sbx_err *err)
{
	char dest[PATH_MAX];
	if ((size_t)snprintf(dest, sizeof(dest), "%s/workspace", t->task_dir) >= sizeof(dest))
		return sbx_failx(err, ENAMETOOLONG, "workspace: path too long");
	char *argv[16];
	size_t a = 0;
	argv[a++] = "trimo-sbx-git";
	argv[a++] = "workspace";
	argv[a++] = "--repo";
	argv[a++] = (char *)t->repo;
	argv[a++] = "--dest";
	argv[a++] = dest;
	argv[a++] = "--branch";
	argv[a++] = (char *)t->branch;
	if (t->base) {
		argv[a++] = "--base";
		argv[a++] = (char *)t->base;
	}
	if (reuse_branch)
		argv[a++] = "--reuse-branch";
	argv[a] = NULL;
	struct line_sink sink = {.t = t};
	int r = git_helper_run(argv, sink_lines, &sink, err);
	sink_flush(&sink);
	if (r == 0)
		return 0;
	bool exists = strstr(err->msg, "already exists") != NULL;
	sbx_wrap(err, "workspace");
	return exists ? -EEXIST : r < 0 ? r : -err->errnum;
}

/* ---- a run ------------------------------------------------------------------ */

/* bin/git-remote-trimo, an empty file to bind the helper onto, in a
 * folder the sandbox sees read-only at /run/trimo. */
static int helper_mount_point(const char *dir, struct sbx_err *err)
{
	char path[PATH_MAX];
	sbx_fmt(path, sizeof(path), "%s/bin", dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return sbx_fail(err, errno, "mkdir '%s'", path);
	sbx_fmt(path, sizeof(path), "%s/bin/git-remote-trimo", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0755);
	if (fd < 0)
		return sbx_fail(err, errno, "create '%s'", path);
	close(fd);
	return 0;
}

static void push_conf(const struct git_task *t, const char *record, struct git_push_conf *c)
{
	*c = (struct git_push_conf){
	    .repo = t->repo,
	    .branch = t->branch,
	    .base = t->base,
	    .remote = t->remote,
	    .protected_branches = t->protected_branches,
	    .push_tags = t->push_tags,
	    .push_mode = t->push_mode,
	    .record = record,
	    .log = t->log,
	    .data = t->data,
	};
}

int git_task_run_prepare(const struct git_task *t, const char *trimo_dir, struct git_run *ret,
                         struct sbx_err *err)
{
	memset(ret, 0, sizeof(*ret));
	int r = git_helper_path("git-remote-trimo", ret->helper, sizeof(ret->helper), err);
	r = r < 0 ? r : helper_mount_point(trimo_dir, err);
	if (r < 0)
		return r;
	ret->bind = (struct sbx_bind){.src = ret->helper, .dst = GIT_SANDBOX_HELPER, .ro = true};
	/* the server keeps pointers to the conf's strings: ret outlives it */
	sbx_fmt(ret->record, sizeof(ret->record), "%s/%s", t->task_dir, GIT_RECORD);
	struct git_push_conf c;
	push_conf(t, ret->record, &c);
	char sock[PATH_MAX];
	sbx_fmt(sock, sizeof(sock), "%s/%s", trimo_dir, GIT_PUSH_SOCK);
	return git_pushd_open(sock, &c, &ret->pushd, err);
}

void git_task_run_finish(struct git_run *run)
{
	git_pushd_close(run->pushd, 120);
	run->pushd = NULL;
}

/* ---- git jobs: the image's git in a sandbox over the workspace ------------------ */

/* Every job's git: no hooks, no fsmonitor, no signing program, no prompt,
 * whatever the workspace's config says (it runs inside anyway; this keeps
 * the job from failing on what the agent configured). */
static const char job_prelude[] =
    "cd /workspace || exit 1\n"
    "g() { git --no-optional-locks -c core.hooksPath=/dev/null -c core.fsmonitor=false "
    "-c commit.gpgSign=false -c tag.gpgSign=false \"$@\"; }\n"
    "g rev-parse --git-dir >/dev/null || exit 4\n";

static const char job_sync[] =
    "g push --quiet origin \"refs/heads/$TRIMO_BRANCH:refs/heads/$TRIMO_BRANCH\" 2>&1 || exit 3\n";

static const char job_commit[] =
    "head=$(g symbolic-ref -q HEAD) || head=\n"
    "if [ \"$head\" != \"refs/heads/$TRIMO_BRANCH\" ]; then\n"
    "  echo \"auto-commit skipped: HEAD is ${head:-detached}, not $TRIMO_BRANCH\"\n"
    "else\n"
    "  g add -A || exit 2\n"
    "  if g diff --cached --quiet; then echo 'auto-commit: nothing to commit'\n"
    "  else g -c user.name=\"$TRIMO_AUTHOR_NAME\" -c user.email=\"$TRIMO_AUTHOR_EMAIL\" "
    "commit --quiet --no-verify -m \"$TRIMO_MESSAGE\" || exit 2\n"
    "    echo \"auto-commit: $(g rev-parse --short HEAD) $TRIMO_MESSAGE\"\n"
    "  fi\n"
    "fi\n";

static const char job_diff[] =
    "g diff --no-ext-diff --no-textconv $TRIMO_STAT HEAD -- || exit 2\n"
    "g ls-files -o --exclude-standard | while IFS= read -r f; do echo \"untracked: $f\"; "
    "done\n";

struct job {
	const struct git_task *t;
	void (*out)(void *data, const char *buf, size_t len);
	void *out_data;
	struct git_pushd *pushd;
	int ep, out_r, saved[2];
	char dir[PATH_MAX], record[PATH_MAX], helper[PATH_MAX], ws[PATH_MAX];
	char name[96];
	struct sbx_bind binds[3];
	char **env;
	char *argv[4];
};

enum { JOB_EV_OUT = 1, JOB_EV_PUSH };

static void job_pump(struct job *j)
{
	char buf[16384];
	for (;;) {
		ssize_t n = read(j->out_r, buf, sizeof(buf));
		if (n <= 0)
			return;
		if (j->out)
			j->out(j->out_data, buf, (size_t)n);
	}
}

static void job_watch(void *data, const struct sbx_run_info *info)
{
	(void)info;
	struct job *j = data;
	struct epoll_event ev[4];
	int n = epoll_wait(j->ep, ev, 4, 0);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u32 == JOB_EV_OUT)
			job_pump(j);
		else
			git_pushd_handle(j->pushd);
	}
}

static int job_env(struct job *j, enum git_job job, unsigned run, const char *why)
{
	const struct git_task *t = j->t;
	char msg[512];
	snprintf(msg, sizeof(msg), "trimo-sbx: auto-commit of task %s (run %u, %s)", t->name, run,
	         why ? why : "exit");
	const char *kv[][2] = {
	    {"PATH",
	     "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:" GIT_SANDBOX_BIN},
	    {"HOME", "/tmp"},
	    {"LANG", "C"},
	    {"GIT_TERMINAL_PROMPT", "0"},
	    {"TRIMO_BRANCH", t->branch},
	    {"TRIMO_AUTHOR_NAME", t->author_name ? t->author_name : GIT_DEFAULT_AUTHOR_NAME},
	    {"TRIMO_AUTHOR_EMAIL", t->author_email ? t->author_email : GIT_DEFAULT_AUTHOR_EMAIL},
	    {"TRIMO_MESSAGE", msg},
	    {"TRIMO_STAT", job == GIT_JOB_STAT ? "--stat" : ""},
	};
	for (size_t i = 0; i < ELEMENTSOF(kv); i++) {
		_cleanup_free_ char *e = NULL;
		if (asprintf(&e, "%s=%s", kv[i][0], kv[i][1]) < 0 || sbx_strv_push(&j->env, e) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* The job's folder (bound at /run/trimo) with its push socket, and its
 * output through a pipe on fds 1 and 2 (the sandbox inherits them). */
static int job_open(struct job *j, struct sbx_err *err)
{
	const struct git_task *t = j->t;
	sbx_fmt(j->dir, sizeof(j->dir), "%s/git-job-%d", t->task_dir, (int)getpid());
	sbx_fmt(j->record, sizeof(j->record), "%s/%s", t->task_dir, GIT_RECORD);
	sbx_fmt(j->ws, sizeof(j->ws), "%s/workspace", t->task_dir);
	sbx_fmt(j->name, sizeof(j->name), "%s-git", t->id);
	struct sbx_err ignored;
	sbx_rm_rf_at(AT_FDCWD, j->dir, &ignored);
	if (mkdir(j->dir, 0755) < 0)
		return sbx_fail(err, errno, "mkdir '%s'", j->dir);
	int r = helper_mount_point(j->dir, err);
	r = r < 0 ? r : git_helper_path("git-remote-trimo", j->helper, sizeof(j->helper), err);
	if (r < 0)
		return r;
	struct git_push_conf c;
	push_conf(t, j->record, &c);
	char sock[PATH_MAX];
	sbx_fmt(sock, sizeof(sock), "%s/%s", j->dir, GIT_PUSH_SOCK);
	if ((r = git_pushd_open(sock, &c, &j->pushd, err)) < 0)
		return r;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return sbx_fail(err, errno, "git job: pipe");
	j->out_r = p[0];
	fcntl(j->out_r, F_SETFL, O_NONBLOCK);
	j->saved[0] = fcntl(1, F_DUPFD_CLOEXEC, 10);
	j->saved[1] = fcntl(2, F_DUPFD_CLOEXEC, 10);
	r = dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0 ? -errno : 0;
	close(p[1]);
	if (r < 0)
		return sbx_fail(err, -r, "git job: dup2");
	struct epoll_event ev1 = {.events = EPOLLIN, .data.u32 = JOB_EV_OUT};
	struct epoll_event ev2 = {.events = EPOLLIN, .data.u32 = JOB_EV_PUSH};
	j->ep = epoll_create1(EPOLL_CLOEXEC);
	if (j->ep < 0 || epoll_ctl(j->ep, EPOLL_CTL_ADD, j->out_r, &ev1) < 0 ||
	    epoll_ctl(j->ep, EPOLL_CTL_ADD, git_pushd_fd(j->pushd), &ev2) < 0)
		return sbx_fail(err, errno, "git job: epoll");
	return 0;
}

static void job_close(struct job *j)
{
	for (int i = 0; i < 2; i++) {
		if (j->saved[i] >= 0) {
			dup2(j->saved[i], i + 1);
			close(j->saved[i]);
		}
	}
	if (j->out_r >= 0) {
		job_pump(j); /* every writer is gone with the sandbox */
		close(j->out_r);
	}
	if (j->ep >= 0)
		close(j->ep);
	git_pushd_close(j->pushd, 120);
	if (j->dir[0]) {
		struct sbx_err ignored;
		sbx_rm_rf_at(AT_FDCWD, j->dir, &ignored);
	}
	sbx_strv_free(j->env);
}

static void job_spec(struct job *j, const char *script, struct sbx_spec *spec)
{
	j->binds[0] = (struct sbx_bind){.src = j->ws, .dst = "/workspace"};
	j->binds[1] = (struct sbx_bind){.src = j->dir, .dst = "/run/trimo", .ro = true};
	j->binds[2] = (struct sbx_bind){.src = j->helper, .dst = GIT_SANDBOX_HELPER, .ro = true};
	j->argv[0] = "/bin/sh";
	j->argv[1] = "-c";
	j->argv[2] = (char *)script;
	j->argv[3] = NULL;
	memset(spec, 0, sizeof(*spec));
	spec->name = j->name;
	spec->hostname = "trimo-git";
	/* the image alone, read-only: not the task's own layer */
	spec->lower = j->t->rootfs;
	spec->argv = j->argv;
	spec->envp = j->env;
	spec->workdir = "/workspace";
	spec->binds = j->binds;
	spec->n_binds = ELEMENTSOF(j->binds);
	spec->caps = caps_default();
	spec->overlay = j->t->overlay;
}

static const char *job_script(enum git_job job, char *buf, size_t size)
{
	const char *body = job == GIT_JOB_COMMIT ? job_commit : "";
	const char *tail = job == GIT_JOB_COMMIT || job == GIT_JOB_SYNC ? job_sync : job_diff;
	snprintf(buf, size, "%s%s%s", job_prelude, body, tail);
	return buf;
}

int git_task_job(const struct git_task *t, enum git_job job, unsigned run, const char *why,
                 void (*out)(void *data, const char *buf, size_t len), void *out_data,
                 int *ret_code, struct sbx_err *err)
{
	struct job j = {
	    .t = t, .out = out, .out_data = out_data, .ep = -1, .out_r = -1, .saved = {-1, -1}};
	char script[4096];
	struct sbx_spec spec;
	int r = job_env(&j, job, run, why) < 0 ? sbx_fail(err, ENOMEM, "git job") : 0;
	r = r < 0 ? r : job_open(&j, err);
	if (r >= 0) {
		job_spec(&j, job_script(job, script, sizeof(script)), &spec);
		struct sbx_run_opts opts = {.limits = t->limits,
		                            .cgroup_parent = t->cgroup_parent,
		                            .data = &j,
		                            .watch_fd = j.ep,
		                            .watch = job_watch};
		struct sbx_run_result res;
		r = run_sandbox(&spec, &opts, &res, err);
		if (r >= 0 && res.exec_failed)
			r = sbx_failx(err, res.exec_err.errnum ? res.exec_err.errnum : EIO, "%s",
			              res.exec_err.msg);
		if (r >= 0)
			*ret_code = res.exit_code;
	}
	job_close(&j);
	return r < 0 ? sbx_wrap(err, "git in a sandbox") : 0;
}

/* ---- after a run, push, diff ------------------------------------------------------ */

static void sink_raw(void *data, const char *buf, size_t len)
{
	sink_lines(data, buf, len);
}

/* The host's branch to its remote (bin/trimo-sbx-git push-remote). */
static int push_remote(const struct git_task *t, struct sbx_err *err)
{
	char record[PATH_MAX];
	sbx_fmt(record, sizeof(record), "%s/%s", t->task_dir, GIT_RECORD);
	char *argv[] = {"trimo-sbx-git",
	                "push-remote",
	                "--repo",
	                (char *)t->repo,
	                "--branch",
	                (char *)t->branch,
	                "--remote",
	                (char *)(t->remote ? t->remote : "origin"),
	                "--record",
	                record,
	                NULL};
	struct line_sink sink = {.t = t};
	int r = git_helper_run(argv, sink_raw, &sink, err);
	sink_flush(&sink);
	return r == 0 ? 0 : r < 0 ? r : -(err->errnum ? err->errnum : EIO);
}

/* The workspace's branch to the host (and, with auto_commit, a commit
 * first), logged.  0, or the job's failure. */
static int commit_or_sync(const struct git_task *t, unsigned run, bool commit, const char *why,
                          struct sbx_err *err)
{
	struct line_sink sink = {.t = t};
	int code = 0;
	int r = git_task_job(t, commit ? GIT_JOB_COMMIT : GIT_JOB_SYNC, run, why, sink_raw, &sink,
	                     &code, err);
	sink_flush(&sink);
	if (r < 0)
		return r;
	if (code == 4)
		return sbx_failx(err, EIO, "the workspace is not a git repository any more");
	if (code == 2)
		return sbx_failx(err, EIO, "auto-commit failed (exit %d)", code);
	if (code != 0)
		return sbx_failx(err, EIO, "pushing %s to the host failed (exit %d)", t->branch,
		                 code);
	return 0;
}

void git_task_after_run(const struct git_task *t, unsigned run)
{
	struct sbx_err err = {0};
	bool commit = t->auto_commit != SBX_AUTO_COMMIT_OFF;
	logf_(t, "git: %s after run %u", commit ? "auto-commit and sync" : "sync", run);
	if (commit_or_sync(t, run, commit, "exit", &err) < 0)
		logf_(t, "git: %s", err.msg);
	if (t->push_mode != SBX_PUSH_ON_EXIT)
		return;
	logf_(t, "git: pushing %s to %s (push = on-exit)", t->branch,
	      t->remote ? t->remote : "origin");
	if (push_remote(t, &err) < 0)
		logf_(t, "git: %s", err.msg);
}

int git_task_push(const struct git_task *t, bool sync, struct sbx_err *err)
{
	if (sync) {
		int r = commit_or_sync(t, 0, false, NULL, err);
		if (r < 0)
			return r;
	}
	return push_remote(t, err);
}

/* Diff output: as it is into a file or pipe; for a terminal without the
 * control characters the sandbox's text may hold (escape sequences). */
struct diff_out {
	int fd;
	bool clean;
};

static void diff_write(void *data, const char *buf, size_t len)
{
	struct diff_out *o = data;
	if (!o->clean) {
		sbx_write_all(o->fd, buf, len);
		return;
	}
	char tmp[8192];
	while (len > 0) {
		size_t n = len < sizeof(tmp) ? len : sizeof(tmp);
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)buf[i];
			tmp[i] = (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ? '?' : (char)c;
		}
		sbx_write_all(o->fd, tmp, n);
		buf += n;
		len -= n;
	}
}

static void diff_head(struct diff_out *o, const char *text)
{
	sbx_write_all(o->fd, text, strlen(text));
}

int git_task_diff(const struct git_task *t, bool stat, int out_fd, bool clean, struct sbx_err *err)
{
	/* a copy: while the job runs, fds 1 and 2 are its pipe */
	_cleanup_close_ int fd = fcntl(out_fd, F_DUPFD_CLOEXEC, 10);
	if (fd < 0)
		return sbx_fail(err, errno, "diff: output");
	struct diff_out o = {.fd = fd, .clean = clean};
	char head[600];
	const char *base = t->base ? t->base : "its base";
	snprintf(head, sizeof(head), "## %s against %s, as the host has it\n", t->branch, base);
	diff_head(&o, head);
	char *argv[10];
	size_t a = 0;
	argv[a++] = "trimo-sbx-git";
	argv[a++] = "diff";
	argv[a++] = "--repo";
	argv[a++] = (char *)t->repo;
	argv[a++] = "--branch";
	argv[a++] = (char *)t->branch;
	if (t->base) {
		argv[a++] = "--base";
		argv[a++] = (char *)t->base;
	}
	if (stat)
		argv[a++] = "--stat";
	argv[a] = NULL;
	int r = git_helper_run(argv, diff_write, &o, err);
	if (r != 0)
		return r < 0 ? r : -(err->errnum ? err->errnum : EIO);
	diff_head(&o, "## uncommitted in the workspace\n");
	int code = 0;
	r = git_task_job(t, stat ? GIT_JOB_STAT : GIT_JOB_DIFF, 0, NULL, diff_write, &o, &code,
	                 err);
	if (r >= 0 && code == 4)
		r = sbx_failx(err, EIO,
		              "uncommitted changes: the workspace is not a git repository "
		              "any more");
	else if (r >= 0 && code != 0)
		r = sbx_failx(err, EIO, "uncommitted changes: git in the sandbox failed (exit %d)",
		              code);
	return r;
}
