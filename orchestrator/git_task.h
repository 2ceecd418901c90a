/* A task's git, as the orchestrator drives it (docs/git.md).  Nothing here
 * links libgit2 or opens the workspace: host-repository work runs in the
 * helper bin/trimo-sbx-git, and anything that reads or writes the
 * workspace as a repository (auto-commits, syncing its branch to the host,
 * uncommitted changes) runs the image's own git inside a sandbox with
 * network none, whose only way out is the push socket.
 *
 * The calls, in a task's life:
 *
 *   launch        git_task_check_image()        auto_commit needs git in the image
 *                 git_task_workspace_create()   before the first run: clone,
 *                                               branch (here and on the host)
 *   each run      git_task_run_prepare()        bin/git-remote-trimo mount point in
 *                                               runs/N/trimo, its bind, the push
 *                                               socket runs/N/trimo/push.sock
 *                 git_pushd_fd() / _handle()    polled with the run (git_pushd.h)
 *                 git_task_run_finish()         close the socket after the run
 *   interval      git_task_job(GIT_JOB_COMMIT)  in a process of its own (never from
 *                                               inside another run_sandbox())
 *   after a run   git_task_after_run()          auto-commit or sync, then the
 *                                               on-exit push to the remote
 *   CLI           git_task_diff(), git_task_push() */
#ifndef SBX_ORCH_GIT_TASK_H
#define SBX_ORCH_GIT_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "config/config.h"
#include "orchestrator/git_pushd.h"
#include "runtime/cgroup.h"
#include "sandbox/spec.h"

/* Where git-remote-trimo is inside, and the PATH entry that finds it
 * (appended: it never shadows the image's own programs). */
#define GIT_SANDBOX_BIN          "/run/trimo/bin"
#define GIT_SANDBOX_HELPER       GIT_SANDBOX_BIN "/git-remote-trimo"
#define GIT_PUSH_SOCK            "push.sock"
#define GIT_RECORD               "git.json" /* in the task folder: the last push attempts */
#define GIT_DEFAULT_AUTHOR_NAME  "trimo-sbx"
#define GIT_DEFAULT_AUTHOR_EMAIL "trimo-sbx@localhost"

/* One task's git settings; strings are the caller's. */
struct git_task {
	const char *id;       /* the task id (sandbox names, messages) */
	const char *name;     /* the task name (commit messages) */
	const char *task_dir; /* absolute task folder: workspace/, git.json, git-job/ */
	const char *repo;     /* the host repository */
	const char *base;     /* or NULL: the repository's current branch */
	const char *branch;   /* the task's branch */
	const char *remote;   /* or NULL: origin */
	const char *const *protected_branches;
	bool push_tags;
	enum sbx_push_mode push_mode;
	enum sbx_auto_commit auto_commit;
	const char *author_name, *author_email; /* or NULL: the defaults above */
	/* for git jobs: the image tree, the caps it runs under */
	const char *rootfs;
	const struct sbx_cgroup_limits *limits;
	const char *cgroup_parent;
	enum sbx_overlay_mode overlay;
	/* where progress and results go, one line at a time (no newline) */
	void (*log)(void *data, const char *line);
	void *data;
};

/* Whether the image tree at rootfs has git (usr/bin/git, bin/git or
 * usr/local/bin/git, resolved inside the tree): 1 yes, 0 no (fine with
 * auto_commit off), -EINVAL with a message for launch when auto_commit is
 * on. */
int git_task_check_image(const char *rootfs, enum sbx_auto_commit auto_commit, struct sbx_err *err);

/* Make <task_dir>/workspace (see orchestrator/git2/workspace.c).  -EEXIST
 * when the host already has the branch and !reuse_branch (launch's exit 2). */
int git_task_workspace_create(const struct git_task *t, bool reuse_branch, struct sbx_err *err);

/* One run's git plumbing. */
struct git_run {
	struct sbx_bind bind; /* git-remote-trimo at GIT_SANDBOX_HELPER, read-only */
	char helper[4096];    /* the bind's source */
	char record[4096];    /* <task_dir>/git.json, for the server */
	struct git_pushd *pushd;
};

/* In trimo_dir (the run's folder bound at /run/trimo, which must be bound
 * before ret->bind): bin/git-remote-trimo as a mount point, and the push
 * socket push.sock served with the task's policy. */
int git_task_run_prepare(const struct git_task *t, const char *trimo_dir, struct git_run *ret,
                         struct sbx_err *err);

/* After the run: let a push in progress finish (bounded), close. */
void git_task_run_finish(struct git_run *run);

enum git_job {
	GIT_JOB_COMMIT, /* commit everything on the task branch (if anything changed), then sync */
	GIT_JOB_SYNC,   /* push the workspace's task branch to the host (verified) */
	GIT_JOB_DIFF,   /* uncommitted changes and untracked files, as a patch */
	GIT_JOB_STAT,   /* the same, --stat */
};

/* Run a job in a sandbox over the workspace with the image's git.  Its
 * output goes to out(data, bytes, len) (the log for commits, the
 * terminal for diffs); why names the job in commit messages ("exit",
 * "interval").  *ret_code is the job's exit code.
 *
 * The sandbox inherits this process's fds 1 and 2, so for the job's
 * duration they are a pipe this function reads: out() and t->log must
 * write to descriptors of their own (a log file, a dup of stdout), never
 * to fds 1 and 2.  (A stdout/stderr fd in struct sbx_run_opts would lift
 * this; see docs/git.md.) */
int git_task_job(const struct git_task *t, enum git_job job, unsigned run, const char *why,
                 void (*out)(void *data, const char *buf, size_t len), void *out_data,
                 int *ret_code, struct sbx_err *err);

/* After run N: auto-commit (auto_commit on) or sync, then push = on-exit:
 * the host's branch to its remote.  Every step logs a line. */
void git_task_after_run(const struct git_task *t, unsigned run);

/* `trimo-sbx push`: sync (when sync is true: no run holds the workspace),
 * then the host's branch to its remote.  0 or -errno with err. */
int git_task_push(const struct git_task *t, bool sync, struct sbx_err *err);

/* `trimo-sbx diff [--stat]`: the task branch against its base as the
 * host has it, then the workspace's uncommitted changes (a sandbox), to
 * out_fd; control characters are removed when clean is true (a terminal). */
int git_task_diff(const struct git_task *t, bool stat, int out_fd, bool clean, struct sbx_err *err);

/* Run bin/trimo-sbx-git with argv (argv[0] ignored); its stdout to
 * out(data, ...) when out is set, its stderr's first line into err on
 * failure.  Returns its exit code (>= 0) or -errno. */
int git_helper_run(char *const *argv, void (*out)(void *data, const char *buf, size_t len),
                   void *out_data, struct sbx_err *err);

#endif
