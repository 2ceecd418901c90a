/* trimo-sbx launch [-f] [--set SECTION.KEY=VALUE]... TASK.ini */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "orchestrator/admission.h"
#include "orchestrator/cli.h"
#include "orchestrator/git_sup.h"
#include "orchestrator/supervisor.h"
#include "orchestrator/task.h"
#include "orchestrator/task_cli.h"
#include "orchestrator/task_log.h"
#include "orchestrator/task_run.h"

static const char launch_usage[] =
    "usage: trimo-sbx launch [OPTIONS] TASK.ini\n"
    "\n"
    "Start a task in the background: check TASK.ini (a bad file starts nothing),\n"
    "create the task's folder, hand it to its own supervisor and print the task\n"
    "id (NAME-XXXX).  The task waits in the queue while the machine has no room\n"
    "for it (see `trimo-sbx help config`: max_parallel, memory_reserve).\n"
    "\n"
    "Options:\n"
    "  -f, --follow             show the task's output until it ends, and exit\n"
    "                           with its status (0, the command's code, or 1)\n"
    "  --set SECTION.KEY=VALUE  override a key of TASK.ini (repeatable)\n"
    "  --reuse-branch           [repo]: continue the task's branch when the host\n"
    "                           repository has it already (default: refuse)\n"
    "\n"
    "`trimo-sbx help task.ini` describes every key.\n";

struct launch_opts {
	bool follow;
	bool help;
	bool reuse_branch;
	char **sets;
	const char *file;
};

static int parse_args(struct launch_opts *o, int argc, char **argv, struct sbx_err *err)
{
	static const struct option opts[] = {
	    {"follow", no_argument, NULL, 'f'},
	    {"set", required_argument, NULL, 's'},
	    {"reuse-branch", no_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	opterr = 0;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "+fh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o->follow = true;
			break;
		case 's':
			if (sbx_strv_push(&o->sets, optarg) < 0)
				return sbx_fail(err, ENOMEM, "--set");
			break;
		case 'r':
			o->reuse_branch = true;
			break;
		case 'h':
			o->help = true;
			return 0;
		default:
			return sbx_failx(err, EINVAL,
			                 "unknown option '%s' (see trimo-sbx launch --help)",
			                 argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return sbx_failx(err, EINVAL, "%s (see trimo-sbx launch --help)",
		                 optind >= argc ? "missing TASK.ini" : "give one TASK.ini");
	o->file = argv[optind];
	return 0;
}

/* What launch checks beyond config/: rules that involve the effective
 * limits or the layout of a task. */
static int check_supported(const struct sbx_task_config *cfg, const struct sbx_limits *eff,
                           struct sbx_err *err)
{
	if (!strcmp(cfg->task.workdir, "/"))
		return sbx_failx(err, EINVAL,
		                 "%s: [task] workdir: the workspace cannot be bound at /",
		                 cfg->file);
	if ((cfg->limits.set & SBX_LIMIT_MEMORY_SWAP) && !(eff->set & SBX_LIMIT_MEMORY))
		return sbx_failx(err, EINVAL, "%s: [limits] memory_swap needs memory", cfg->file);
	return 0;
}

/* A task whose memory can never fit would wait forever (and hold the
 * queue behind it): refuse it now. */
static int check_fits(const struct sbx_user_config *u, uint64_t admit, struct sbx_err *err)
{
	struct sbx_adm_host host;
	int r = admission_read_host(&host, err);
	if (r < 0)
		return r;
	uint64_t room = host.mem_total > u->orchestrator.memory_reserve
	                    ? host.mem_total - u->orchestrator.memory_reserve
	                    : 0;
	if (admit <= room)
		return 0;
	char a[32], b[32], c[32];
	task_fmt_size(admit, a, sizeof(a));
	task_fmt_size(host.mem_total, b, sizeof(b));
	task_fmt_size(u->orchestrator.memory_reserve, c, sizeof(c));
	return sbx_failx(err, EINVAL,
	                 "the task's memory (%s) can never fit: MemTotal %s - memory_reserve %s "
	                 "(lower [limits] memory, or [orchestrator] memory_reserve or "
	                 "default_memory in the user config)",
	                 a, b, c);
}

/* mkdir tasks/<id>: the directory is the reservation of the id. */
static int reserve_id(const struct sbx_state_dir *sd, const char *name, char id[STATE_ID_MAX],
                      struct sbx_err *err)
{
	for (int i = 0; i < 256; i++) {
		uint16_t rnd;
		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			return sbx_fail(err, errno, "getrandom");
		task_make_id(name, rnd, id, STATE_ID_MAX);
		if (mkdirat(sd->tasks_fd, id, 0700) == 0)
			return 0;
		if (errno != EEXIST)
			return sbx_fail(err, errno, "create the task folder '%s'", id);
	}
	return sbx_failx(err, EEXIST, "no free task id for '%s'", name);
}

static int write_def(int tfd, const struct sbx_task_def *def, struct sbx_err *err)
{
	_cleanup_free_ char *json = NULL;
	int r = task_def_to_json(def, &json, err);
	if (r < 0)
		return r;
	size_t n = strlen(json);
	json[n] = '\n';
	return sbx_write_file_atomic(tfd, "config.json", json, n + 1, 0600, err);
}

/* Everything in the folder, the state (queued, owned by us) last. */
static int fill_task(struct task_ctx *ctx, int tfd, const struct sbx_task_config *cfg,
                     const struct sbx_task_def *def, struct sbx_err *err)
{
	_cleanup_free_ char *ini = NULL;
	size_t len = 0;
	int r = sbx_read_file(AT_FDCWD, cfg->path, SBX_CONFIG_FILE_MAX, &ini, &len, err);
	r = r ?: sbx_write_file_atomic(tfd, "task.ini", ini, len, 0600, err);
	r = r ?: write_def(tfd, def, err);
	static const char *const dirs[] = {"upper", "work", "workspace"};
	/* with [repo], the clone makes the workspace (git_task_workspace_create) */
	for (size_t i = 0; r == 0 && i < ELEMENTSOF(dirs) - def->repo; i++)
		if (mkdirat(tfd, dirs[i], 0755) < 0)
			r = sbx_fail(err, errno, "mkdir %s", dirs[i]);
	const char *prompt = cfg->task.prompt;
	r = r ?: task_run_create(tfd, 1, prompt, prompt ? strlen(prompt) : 0, err);
	if (r < 0)
		return r;
	struct sbx_task_state st;
	state_init(&st);
	snprintf(st.id, sizeof(st.id), "%s", def->id);
	snprintf(st.name, sizeof(st.name), "%s", def->name);
	st.run = 1;
	st.created_ms = state_now_ms();
	task_queue_run(&st, ctx->ucfg, def);
	return state_write(tfd, &st, err);
}

static int fail_start(struct sbx_task_state *st, void *data)
{
	const struct sbx_err *e = data;
	if (st->status != TASK_QUEUED || st->supervisor_pid != getpid())
		return 1; /* the supervisor claimed it after all */
	st->status = TASK_FAILED;
	st->ended_ms = state_now_ms();
	snprintf(st->error, sizeof(st->error), "%s", e->msg);
	return 0;
}

/* Lines of the clone into the task's log (the supervisor appends to it). */
static void workspace_log(void *data, const char *line)
{
	int *fd = data;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	char stamp[TASK_LOG_STAMP_LEN + 1], text[1100];
	task_log_format_stamp(&now, stamp);
	int n = snprintf(text, sizeof(text), "%strimo-sbx: git: %s\n", stamp, line);
	if (*fd >= 0 && n > 0)
		sbx_write_all(*fd, text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
}

/* [repo]: the workspace is a clone on the task's branch, made before the
 * supervisor exists (a branch that exists is the user's error: exit 2). */
static int make_workspace(struct task_ctx *ctx, int tfd, const struct sbx_task_def *def,
                          bool reuse_branch, struct sbx_err *err)
{
	if (!def->repo)
		return 0;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/tasks/%s", ctx->sd.root, def->id);
	_cleanup_close_ int log_fd =
	    openat(tfd, "log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	struct git_task t;
	git_task_from_def(def, dir, NULL, NULL, &t);
	t.log = workspace_log;
	t.data = &log_fd;
	return git_task_workspace_create(&t, reuse_branch, err);
}

/* Create the task folder and start its supervisor; prints nothing. */
static int create_and_start(struct task_ctx *ctx, const struct sbx_task_config *cfg,
                            const struct sbx_limits *eff, struct sbx_task_image *img,
                            bool reuse_branch, char id[STATE_ID_MAX], struct sbx_err *err)
{
	int r = reserve_id(&ctx->sd, cfg->task.name, id, err);
	if (r < 0)
		return r;
	_cleanup_close_ int tfd = state_dir_open_task(&ctx->sd, id, err);
	_cleanup_task_def_ struct sbx_task_def *def = NULL;
	if (tfd < 0)
		return tfd;
	r = task_def_from_config(cfg, eff, img, id, &def, err);
	r = r ?: fill_task(ctx, tfd, cfg, def, err);
	r = r ?: make_workspace(ctx, tfd, def, reuse_branch, err);
	if (r < 0) {
		struct sbx_err ignored;
		sbx_rm_rf_at(ctx->sd.tasks_fd, id, &ignored);
		return sbx_wrap(err, "task %s", id);
	}
	r = supervisor_spawn(&ctx->sd, id, img->hold_fd, err);
	if (r < 0) {
		struct sbx_err ignored;
		state_update(tfd, fail_start, err, &ignored);
		return sbx_wrap(err, "task %s", id);
	}
	return 0;
}

static int follow_task(struct task_ctx *ctx, const char *id)
{
	struct sbx_err err = {0};
	if (task_print_log(ctx, id, 0, true, false, &err) < 0)
		return err.msg[0] ? cli_report(EXIT_RUNTIME, &err) : EXIT_RUNTIME;
	struct sbx_task_state st;
	if (task_wait_final(ctx, id, -1, &st, &err) < 0)
		return cli_report(EXIT_RUNTIME, &err);
	return task_status_exit_code(&st);
}

static int launch(struct launch_opts *o)
{
	struct sbx_err err = {0};
	_cleanup_task_config_ const struct sbx_task_config *cfg = NULL;
	if (config_parse_task(o->file, o->sets, &cfg, &err) < 0)
		return cli_report(EXIT_USAGE, &err);
	struct task_ctx ctx;
	int code = task_ctx_open(&ctx, true);
	if (code != EXIT_OK) {
		task_ctx_close(&ctx);
		return code;
	}
	struct sbx_limits eff;
	config_merge_limits(&cfg->limits, &ctx.ucfg->limits, &eff);
	struct sbx_task_image img = {.hold_fd = -1};
	char id[STATE_ID_MAX];
	if (check_supported(cfg, &eff, &err) < 0 ||
	    task_resolve_image(&cfg->image, ctx.ucfg->storage.image_dir, &img, &err) < 0 ||
	    (cfg->repo.enabled &&
	     git_task_check_image(img.rootfs, cfg->repo.auto_commit, &err) < 0 &&
	     sbx_wrap(&err, "%s", cfg->file) < 0) ||
	    check_fits(ctx.ucfg, task_memory_admit(&eff, ctx.ucfg->orchestrator.default_memory),
	               &err) < 0) {
		code = cli_report(err.errnum == EINVAL ? EXIT_USAGE : EXIT_RUNTIME, &err);
	} else if (create_and_start(&ctx, cfg, &eff, &img, o->reuse_branch, id, &err) < 0) {
		bool input = err.errnum == EEXIST || err.errnum == EINVAL || err.errnum == ENOENT;
		code = cli_report(input ? EXIT_USAGE : EXIT_RUNTIME, &err);
	} else {
		printf("%s\n", id);
		fflush(stdout);
		code = o->follow ? follow_task(&ctx, id) : EXIT_OK;
	}
	if (img.hold_fd >= 0)
		close(img.hold_fd);
	task_ctx_close(&ctx);
	return code;
}

int cmd_launch(int argc, char **argv)
{
	struct launch_opts o = {0};
	struct sbx_err err = {0};
	int code;
	if (parse_args(&o, argc, argv, &err) < 0)
		code = cli_error(EXIT_USAGE, "launch: %s", err.msg);
	else if (o.help)
		code = (fputs(launch_usage, stdout), EXIT_OK);
	else
		code = launch(&o);
	sbx_strv_free(o.sets);
	return code;
}
