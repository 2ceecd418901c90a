/* trimo-sbx ps [-a] [--json] [-q] */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "orchestrator/cli.h"
#include "orchestrator/task_cli.h"

static const char ps_usage[] =
    "usage: trimo-sbx ps [-a] [--json] [-q]\n"
    "\n"
    "List tasks: queued, preparing, running and lost ones; with -a also the\n"
    "ended ones (exited, failed, oom, stopped).\n"
    "\n"
    "  ID NAME STATE RUN AGE  the task, its state, its run number (1 + followups),\n"
    "                         the time since launch\n"
    "  MEMORY                 now / peak / cap (- = not known or no cap)\n"
    "  CPU                    CPU time of the current or last run\n"
    "  BRANCH                 its git branch\n"
    "  NOTE                   why it waits in the queue, or why it failed\n"
    "\n"
    "Options:\n"
    "  -a, --all     every task\n"
    "  --json        a JSON array of objects (id, name, state, run, exit_code,\n"
    "                supervisor_pid, memory_current, memory_peak, memory_max,\n"
    "                cpu_usec, branch, queued_reason, error, created, started,\n"
    "                ended: times in ms since the epoch, unknown values null)\n"
    "  -q, --quiet   ids only\n";

static json_t *u64_or_null(uint64_t v)
{
	return v == STATE_UNKNOWN ? json_null() : json_integer((json_int_t)v);
}

static json_t *ms_or_null(int64_t ms)
{
	return ms > 0 ? json_integer(ms) : json_null();
}

static json_t *task_json(const struct sbx_task_state *t, enum sbx_task_status s)
{
	return json_pack(
	    "{s:s, s:s, s:s, s:I, s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
	    "s:o, s:o}",
	    "id", t->id, "name", t->name, "state", state_status_name(s), "run", (json_int_t)t->run,
	    "exit_code", t->has_exit_code ? json_integer(t->exit_code) : json_null(),
	    "supervisor_pid", (json_int_t)t->supervisor_pid, "memory_current",
	    u64_or_null(s == TASK_RUNNING ? t->memory_current : STATE_UNKNOWN), "memory_peak",
	    u64_or_null(t->memory_peak), "memory_max", u64_or_null(t->memory_max), "cpu_usec",
	    u64_or_null(t->cpu_usec), "branch", t->branch[0] ? json_string(t->branch) : json_null(),
	    "queued_reason",
	    s == TASK_QUEUED && t->queued_reason[0] ? json_string(t->queued_reason) : json_null(),
	    "error", t->error[0] ? json_string(t->error) : json_null(), "created",
	    ms_or_null(t->created_ms), "started", ms_or_null(t->started_ms), "ended",
	    ms_or_null(t->ended_ms));
}

static int print_json(const struct sbx_task_state *v, const enum sbx_task_status *eff,
                      const bool *show, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		if (show[i])
			json_array_append_new(a, task_json(&v[i], eff[i]));
	char *text = a ? json_dumps(a, JSON_INDENT(2)) : NULL;
	json_decref(a);
	if (!text)
		return cli_error(EXIT_RUNTIME, "ps: out of memory");
	puts(text);
	free(text);
	return EXIT_OK;
}

enum {
	COL_ID,
	COL_NAME,
	COL_STATE,
	COL_RUN,
	COL_AGE,
	COL_MEM,
	COL_CPU,
	COL_BRANCH,
	COL_NOTE,
	NCOL
};

static const char *const headers[NCOL] = {"ID",     "NAME", "STATE",  "RUN", "AGE",
                                          "MEMORY", "CPU",  "BRANCH", "NOTE"};

struct row {
	char col[NCOL][300];
};

static void fill_row(struct row *r, const struct sbx_task_state *t, enum sbx_task_status s)
{
	char now[32] = "-", peak[32], cap[32];
	if (s == TASK_RUNNING)
		task_fmt_size(t->memory_current, now, sizeof(now));
	task_fmt_size(t->memory_peak, peak, sizeof(peak));
	task_fmt_size(t->memory_max, cap, sizeof(cap));
	snprintf(r->col[COL_ID], sizeof(r->col[0]), "%s", t->id);
	snprintf(r->col[COL_NAME], sizeof(r->col[0]), "%s", t->name);
	if (!state_status_active(s) && s != TASK_LOST && t->has_exit_code)
		snprintf(r->col[COL_STATE], sizeof(r->col[0]), "%s (%d)", state_status_name(s),
		         t->exit_code);
	else
		snprintf(r->col[COL_STATE], sizeof(r->col[0]), "%s", state_status_name(s));
	snprintf(r->col[COL_RUN], sizeof(r->col[0]), "%u", t->run);
	task_fmt_age(t->created_ms, r->col[COL_AGE], sizeof(r->col[0]));
	snprintf(r->col[COL_MEM], sizeof(r->col[0]), "%s/%s/%s", now, peak, cap);
	if (t->cpu_usec == STATE_UNKNOWN)
		snprintf(r->col[COL_CPU], sizeof(r->col[0]), "-");
	else
		snprintf(r->col[COL_CPU], sizeof(r->col[0]), "%.1fs", (double)t->cpu_usec / 1e6);
	snprintf(r->col[COL_BRANCH], sizeof(r->col[0]), "%s", t->branch[0] ? t->branch : "-");
	const char *note = s == TASK_QUEUED ? t->queued_reason
	                   : s == TASK_LOST ? "the supervisor is gone"
	                                    : t->error;
	snprintf(r->col[COL_NOTE], sizeof(r->col[0]), "%s", note);
	/* one row per task, whatever an error text holds (the kernel's
	 * overlay messages end in a newline) */
	for (char *p = r->col[COL_NOTE]; *p; p++)
		if ((unsigned char)*p < ' ')
			*p = ' ';
}

static void print_row(const char (*col)[300], const size_t *w)
{
	for (int c = 0; c < NCOL; c++) {
		if (c == NCOL - 1)
			printf("%s\n", col[c]);
		else
			printf("%-*s  ", (int)w[c], col[c]);
	}
}

static int print_table(const struct sbx_task_state *v, const enum sbx_task_status *eff,
                       const bool *show, size_t n)
{
	_cleanup_free_ struct row *rows = calloc(n + 1, sizeof(*rows));
	if (!rows)
		return cli_error(EXIT_RUNTIME, "ps: out of memory");
	size_t w[NCOL], m = 0;
	for (int c = 0; c < NCOL; c++)
		w[c] = strlen(headers[c]);
	for (size_t i = 0; i < n; i++) {
		if (!show[i])
			continue;
		fill_row(&rows[m], &v[i], eff[i]);
		for (int c = 0; c < NCOL; c++)
			if (strlen(rows[m].col[c]) > w[c])
				w[c] = strlen(rows[m].col[c]);
		m++;
	}
	char hdr[NCOL][300];
	for (int c = 0; c < NCOL; c++)
		snprintf(hdr[c], sizeof(hdr[c]), "%s", headers[c]);
	print_row((const char(*)[300])hdr, w);
	for (size_t i = 0; i < m; i++)
		print_row((const char(*)[300])rows[i].col, w);
	return EXIT_OK;
}

int cmd_ps(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"all", no_argument, NULL, 'a'},
	    {"json", no_argument, NULL, 'j'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool all = false, json = false, quiet = false;
	opterr = 0;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "+aqh", opts, NULL)) != -1) {
		if (c == 'a')
			all = true;
		else if (c == 'j')
			json = true;
		else if (c == 'q')
			quiet = true;
		else if (c == 'h')
			return (fputs(ps_usage, stdout), EXIT_OK);
		else
			return cli_error(EXIT_USAGE,
			                 "ps: unknown option '%s' (see trimo-sbx ps --help)",
			                 argv[optind - 1]);
	}
	if (optind != argc)
		return cli_error(EXIT_USAGE, "ps: unexpected argument '%s'", argv[optind]);
	struct task_ctx ctx;
	int code = task_ctx_open(&ctx, false);
	_cleanup_free_ struct sbx_task_state *v = NULL;
	size_t n = 0;
	struct sbx_err err = {0};
	if (code == EXIT_OK && state_dir_list(&ctx.sd, &v, &n, &err) < 0)
		code = cli_report(EXIT_RUNTIME, &err);
	_cleanup_free_ enum sbx_task_status *eff = calloc(n + 1, sizeof(*eff));
	_cleanup_free_ bool *show = calloc(n + 1, sizeof(*show));
	if (code == EXIT_OK && (!eff || !show))
		code = cli_error(EXIT_RUNTIME, "ps: out of memory");
	if (code == EXIT_OK) {
		for (size_t i = 0; i < n; i++) {
			eff[i] = state_effective(&v[i]);
			show[i] = all || state_status_active(eff[i]) || eff[i] == TASK_LOST;
		}
		if (json)
			code = print_json(v, eff, show, n);
		else if (quiet)
			for (size_t i = 0; i < n; i++)
				show[i] ? (void)puts(v[i].id) : (void)0;
		else
			code = print_table(v, eff, show, n);
	}
	task_ctx_close(&ctx);
	return code;
}
