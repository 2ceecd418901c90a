#include "orchestrator/task_run.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "config/config.h"

void task_run_dir(unsigned run, char *buf, size_t size)
{
	snprintf(buf, size, "runs/%u", run);
}

int task_run_create(int task_fd, unsigned run, const char *prompt, size_t len, struct sbx_err *err)
{
	char dir[64], path[96];
	if (mkdirat(task_fd, "runs", 0700) < 0 && errno != EEXIST)
		return sbx_fail(err, errno, "mkdir runs");
	task_run_dir(run, dir, sizeof(dir));
	if (mkdirat(task_fd, dir, 0700) < 0 && errno != EEXIST)
		return sbx_fail(err, errno, "mkdir %s", dir);
	snprintf(path, sizeof(path), "%s/prompt", dir);
	return sbx_write_file_atomic(task_fd, path, prompt ? prompt : "", prompt ? len : 0, 0600,
	                             err);
}

int task_run_prompt(int task_fd, unsigned run, char **ret, size_t *ret_len, struct sbx_err *err)
{
	char path[96];
	snprintf(path, sizeof(path), "runs/%u/prompt", run);
	return sbx_read_file(task_fd, path, SBX_PROMPT_MAX + 1, ret, ret_len, err);
}

int task_run_write_record(int task_fd, const struct sbx_task_state *st, struct sbx_err *err)
{
	_cleanup_free_ char *text = NULL;
	int r = state_to_json(st, &text, err);
	if (r < 0)
		return r;
	char path[96];
	snprintf(path, sizeof(path), "runs/%u/record", st->run);
	size_t n = strlen(text);
	text[n] = '\n';
	return sbx_write_file_atomic(task_fd, path, text, n + 1, 0600, err);
}

int task_run_read_record(int task_fd, unsigned run, struct sbx_task_state *ret, struct sbx_err *err)
{
	char path[96];
	snprintf(path, sizeof(path), "runs/%u/record", run);
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = sbx_read_file(task_fd, path, 64 * 1024, &text, &len, err);
	if (r < 0)
		return r;
	return state_from_json(text, len, ret, err);
}

void task_run_format_time(int64_t ms, char *buf, size_t size)
{
	if (ms <= 0) {
		snprintf(buf, size, "-");
		return;
	}
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void task_run_outcome(const struct sbx_task_state *st, char *buf, size_t size)
{
	enum sbx_task_status s = state_effective(st);
	if (s == TASK_OOM)
		snprintf(buf, size, "oom: killed by the OOM killer (exit code %d)", st->exit_code);
	else if (s == TASK_STOPPED && st->has_exit_code)
		snprintf(buf, size, "stopped (exit code %d)", st->exit_code);
	else if (st->error[0])
		snprintf(buf, size, "%s: %s", state_status_name(s), st->error);
	else if (st->has_exit_code)
		snprintf(buf, size, "%s (exit code %d)", state_status_name(s), st->exit_code);
	else
		snprintf(buf, size, "%s", state_status_name(s));
}

static int append(char **buf, size_t *len, const char *s, size_t n)
{
	char *nb = realloc(*buf, *len + n + 1);
	if (!nb)
		return -ENOMEM;
	memcpy(nb + *len, s, n);
	*len += n;
	nb[*len] = '\0';
	*buf = nb;
	return 0;
}

/* One earlier run: a heading with its outcome, then its prompt. */
static int history_entry(int task_fd, unsigned i, char **text, size_t *len)
{
	struct sbx_task_state rec;
	struct sbx_err ignored;
	char head[800], outcome[600], when[32];
	if (task_run_read_record(task_fd, i, &rec, &ignored) < 0) {
		snprintf(head, sizeof(head), "## Run %u: no record (it never finished)\n\n", i);
	} else {
		task_run_outcome(&rec, outcome, sizeof(outcome));
		task_run_format_time(rec.ended_ms, when, sizeof(when));
		double secs = rec.started_ms && rec.ended_ms >= rec.started_ms
		                  ? (double)(rec.ended_ms - rec.started_ms) / 1000.0
		                  : 0;
		snprintf(head, sizeof(head), "## Run %u: %s, ran %.1f s, ended %s\n\n", i, outcome,
		         secs, when);
	}
	_cleanup_free_ char *prompt = NULL;
	size_t plen = 0;
	if (task_run_prompt(task_fd, i, &prompt, &plen, &ignored) < 0 || plen == 0) {
		free(prompt);
		prompt = strdup("(no prompt)");
		plen = prompt ? strlen(prompt) : 0;
	}
	if (append(text, len, head, strlen(head)) < 0 ||
	    (prompt && append(text, len, prompt, plen) < 0) ||
	    append(text, len, plen && prompt[plen - 1] == '\n' ? "\n" : "\n\n",
	           plen && prompt[plen - 1] == '\n' ? 1 : 2) < 0)
		return -ENOMEM;
	return 0;
}

int task_run_history(int task_fd, unsigned run, char **ret, struct sbx_err *err)
{
	_cleanup_free_ char *text = strdup("");
	size_t len = 0;
	if (!text)
		return sbx_fail(err, ENOMEM, "history");
	if (run > 1) {
		static const char title[] = "# Earlier runs of this task, oldest first\n\n";
		if (append(&text, &len, title, sizeof(title) - 1) < 0)
			return sbx_fail(err, ENOMEM, "history");
	}
	for (unsigned i = 1; i < run; i++)
		if (history_entry(task_fd, i, &text, &len) < 0)
			return sbx_fail(err, ENOMEM, "history");
	*ret = TAKE_PTR(text);
	return 0;
}
