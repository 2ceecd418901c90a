/* A task: its id, its resolved configuration (config.json in its folder)
 * and the image it runs on.
 *
 * The task folder ($state_dir/tasks/<id>/):
 *   task.ini       a copy of the task file, for the record only
 *   config.json    the resolved configuration (struct sbx_task_def): every
 *                  later run uses it, nothing is re-read from task.ini
 *                  (relative paths were resolved against the original
 *                  file's folder at launch)
 *   state          JSON, see orchestrator/state.h
 *   log            every run's output, each line time-stamped
 *   workspace/     bound read-write at the task's workdir
 *   upper/ work/   the copy-on-write layer over the image (kept across runs)
 *   control.sock   the supervisor's control socket while it lives
 *   runs/N/        prompt, log, record (JSON), trimo/ (bound at /run/trimo)
 */
#ifndef SBX_ORCH_TASK_H
#define SBX_ORCH_TASK_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "config/config.h"

#define TASK_ID_MAX 64

/* "<name>-<4 hex>" from rnd. */
void task_make_id(const char *name, uint16_t rnd, char *buf, size_t size);

/* An id as task_make_id makes them (also keeps ids safe as folder names). */
bool task_id_valid(const char *id);

/* The image a task runs on, resolved once at launch and kept for every
 * run: the upper layer only makes sense over the same tree. */
struct sbx_task_image {
	char source[PATH_MAX]; /* as normalised by config ("dir:/abs/path") */
	char rootfs[PATH_MAX]; /* the read-only tree used as the overlay's lower */
	char digest[80];       /* "sha256:..." for stored images, "" for dir: */
	int hold_fd;           /* >= 0: keeps a stored image from removal */
};

/* Resolve the task's [image] to a tree: dir:PATH in place, anything else
 * imported once into the store and held (ret->hold_fd).  Errors about the
 * source itself return -EINVAL (exit 2). */
int task_resolve_image(const struct sbx_cfg_image *img, const char *image_dir,
                       struct sbx_task_image *ret, struct sbx_err *err);

/* Before a followup: make sure the tree recorded at launch still exists,
 * and hold it for the run (ret->hold_fd). */
int task_hold_image(const struct sbx_task_image *img, const char *image_dir,
                    struct sbx_task_image *ret, struct sbx_err *err);

/* [repo]'s git settings (docs/git.md); meaningful when repo is set. */
struct sbx_task_git {
	enum sbx_push_mode push;
	enum sbx_auto_commit auto_commit;
	uint64_t auto_commit_interval; /* seconds, with SBX_AUTO_COMMIT_INTERVAL */
	char **protected_branches;     /* fnmatch patterns, NULL-terminated */
	char *remote;                  /* the host repository's remote; NULL: origin */
	bool push_tags;
	char *author_name, *author_email; /* auto-commits' author, or NULL */
};

/* The resolved configuration: what the supervisor needs for every run,
 * and what inspect shows.  Strings are malloc'ed. */
struct sbx_task_def {
	char *id;
	char *name;
	char *task_file; /* absolute path of the original task.ini */
	char *command;
	char **env;       /* "K=V", NULL-terminated */
	char **pass_env;  /* names, taken from the environment of whoever starts
	                   * a run (launch, followup): secrets never touch the disk */
	uint64_t timeout; /* seconds, 0 = none */
	char *workdir;
	char *hostname; /* NULL: the task's name */
	struct sbx_task_image image;
	bool repo;                   /* a [repo] section: the workspace is a clone */
	char *repo_path;             /* the host repository, or NULL */
	char *repo_base;             /* or NULL */
	char *branch;                /* or NULL without [repo] */
	struct sbx_task_git git;     /* with [repo] */
	struct sbx_limits limits;    /* effective: task, user config, defaults merged */
	char *network;               /* "none", "nat" or "host" */
	struct sbx_publish *publish; /* nat: published ports */
	size_t n_publish;
	char **allow; /* egress allowlist rules ("host:port"), NULL-terminated */
	bool allow_host_loopback;
};

/* From a parsed task.ini and the effective limits. */
int task_def_from_config(const struct sbx_task_config *cfg, const struct sbx_limits *limits,
                         const struct sbx_task_image *img, const char *id,
                         struct sbx_task_def **ret, struct sbx_err *err);

/* JSON codec; task_def_to_json returns malloc'ed text (indented). */
int task_def_to_json(const struct sbx_task_def *def, char **ret, struct sbx_err *err);
int task_def_from_json(const char *text, size_t len, struct sbx_task_def **ret,
                       struct sbx_err *err);
/* config.json of the task folder dirfd */
int task_def_read(int dirfd, struct sbx_task_def **ret, struct sbx_err *err);

void task_def_free(struct sbx_task_def *def);
static inline void task_def_freep(struct sbx_task_def **def)
{
	task_def_free(*def);
}
#define _cleanup_task_def_ _cleanup_(task_def_freep)

/* The bytes a task counts as in admission: its memory cap, or
 * default_memory when it has none (limits off or no memory key). */
uint64_t task_memory_admit(const struct sbx_limits *limits, uint64_t default_memory);
/* Its cap, or UINT64_MAX for none. */
uint64_t task_memory_max(const struct sbx_limits *limits);

#endif
