/* trimo-sbx inspect ID */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "orchestrator/cli.h"
#include "orchestrator/task_cli.h"
#include "orchestrator/task_run.h"

static const char inspect_usage[] =
    "usage: trimo-sbx inspect ID\n"
    "\n"
    "Print everything known about a task as JSON: its state, its resolved\n"
    "configuration (config), its folder, and every run (runs) with its prompt,\n"
    "start and end (ms since the epoch), exit code, state, OOM kills, peak memory,\n"
    "CPU time, image digest and branch.\n";

static json_t *load_json_text(const char *text)
{
	return text ? json_loads(text, 0, NULL) : NULL;
}

static json_t *run_json(int tfd, unsigned run, const struct sbx_task_state *cur, const char *digest)
{
	struct sbx_task_state rec;
	struct sbx_err err;
	const struct sbx_task_state *src = &rec;
	if (task_run_read_record(tfd, run, &rec, &err) < 0)
		src = run == cur->run ? cur : NULL;
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "run", json_integer(run));
	_cleanup_free_ char *prompt = NULL;
	size_t plen;
	if (task_run_prompt(tfd, run, &prompt, &plen, &err) == 0)
		json_object_set_new(o, "prompt", json_stringn(prompt, plen));
	if (!src)
		return o;
	enum sbx_task_status s = src == cur ? state_effective(cur) : src->status;
	json_object_set_new(o, "state", json_string(state_status_name(s)));
	json_object_set_new(o, "queued",
	                    src->queued_ms ? json_integer(src->queued_ms) : json_null());
	json_object_set_new(o, "started",
	                    src->started_ms ? json_integer(src->started_ms) : json_null());
	json_object_set_new(o, "ended", src->ended_ms ? json_integer(src->ended_ms) : json_null());
	json_object_set_new(o, "exit_code",
	                    src->has_exit_code ? json_integer(src->exit_code) : json_null());
	json_object_set_new(o, "signal",
	                    src->has_exit_code && src->exit_code > 128 && src->exit_code < 128 + 65
	                        ? json_integer(src->exit_code - 128)
	                        : json_null());
	json_object_set_new(o, "error", src->error[0] ? json_string(src->error) : json_null());
	json_object_set_new(o, "timed_out", json_boolean(src->timed_out));
	json_object_set_new(o, "stopped", json_boolean(src->stop_requested));
	json_object_set_new(o, "oom_kills",
	                    src->oom_kills == STATE_UNKNOWN
	                        ? json_null()
	                        : json_integer((json_int_t)src->oom_kills));
	json_object_set_new(o, "egress_allowed",
	                    src->egress_allowed == STATE_UNKNOWN
	                        ? json_null()
	                        : json_integer((json_int_t)src->egress_allowed));
	json_object_set_new(o, "egress_refused",
	                    src->egress_refused == STATE_UNKNOWN
	                        ? json_null()
	                        : json_integer((json_int_t)src->egress_refused));
	json_object_set_new(o, "memory_peak",
	                    src->memory_peak == STATE_UNKNOWN
	                        ? json_null()
	                        : json_integer((json_int_t)src->memory_peak));
	json_object_set_new(
	    o, "cpu_usec",
	    src->cpu_usec == STATE_UNKNOWN ? json_null() : json_integer((json_int_t)src->cpu_usec));
	json_object_set_new(o, "image_digest",
	                    digest && *digest ? json_string(digest) : json_null());
	json_object_set_new(o, "branch", src->branch[0] ? json_string(src->branch) : json_null());
	return o;
}

static int inspect(struct task_ctx *ctx, const char *id)
{
	struct sbx_err err = {0};
	_cleanup_close_ int tfd = state_dir_open_task(&ctx->sd, id, &err);
	if (tfd < 0)
		return cli_report(EXIT_RUNTIME, &err);
	struct sbx_task_state st;
	_cleanup_free_ char *state_text = NULL, *config_text = NULL;
	if (state_read(tfd, &st, &err) < 0 || state_to_json(&st, &state_text, &err) < 0 ||
	    sbx_read_file(tfd, "config.json", 4 << 20, &config_text, NULL, &err) < 0)
		return cli_report(EXIT_RUNTIME, &err);
	json_t *config = load_json_text(config_text);
	json_t *image = json_object_get(config, "image");
	const char *digest = json_string_value(json_object_get(image, "digest"));
	json_t *state = load_json_text(state_text);
	json_object_set_new(state, "state", json_string(state_status_name(state_effective(&st))));
	json_t *runs = json_array();
	for (unsigned i = 1; i <= st.run; i++)
		json_array_append_new(runs, run_json(tfd, i, &st, digest));
	char folder[4200];
	snprintf(folder, sizeof(folder), "%s/tasks/%s", ctx->sd.root, id);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "id", st.id, "name", st.name,
	                      "state", state_status_name(state_effective(&st)), "folder", folder,
	                      "status", state ? state : json_null(), "config",
	                      config ? config : json_null(), "runs", runs ? runs : json_null());
	/* [repo]: the last push attempts from the sandbox and to the remote */
	_cleanup_free_ char *git_text = NULL;
	json_t *git = NULL;
	if (sbx_read_file(tfd, "git.json", 1 << 20, &git_text, NULL, &err) == 0)
		git = load_json_text(git_text);
	if (o)
		json_object_set_new(o, "git", git ? git : json_null());
	char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
	json_decref(o);
	if (!text)
		return cli_error(EXIT_RUNTIME, "inspect: out of memory");
	puts(text);
	free(text);
	return EXIT_OK;
}

int cmd_inspect(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return (fputs(inspect_usage, stdout), EXIT_OK);
	if (argc != 2 || argv[1][0] == '-')
		return cli_error(EXIT_USAGE,
		                 "inspect: give one task ID (see trimo-sbx inspect --help)");
	struct task_ctx ctx;
	char id[STATE_ID_MAX];
	int code = task_ctx_open(&ctx, false);
	if (code == EXIT_OK)
		code = task_ctx_find(&ctx, argv[1], id);
	if (code == EXIT_OK)
		code = inspect(&ctx, id);
	task_ctx_close(&ctx);
	return code;
}
