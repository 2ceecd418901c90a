/* Task ids, the resolved configuration (config.json), image resolution,
 * the run history, log stamping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "config/config.h"
#include "orchestrator/state.h"
#include "orchestrator/task.h"
#include "orchestrator/task_log.h"
#include "orchestrator/task_run.h"

static char tmpdir[64];

static int setup(void **unused)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-task-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **unused)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_text(const char *name, const char *text)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* ---- ids ------------------------------------------------------------- */

static void test_make_id(void **unused)
{
	char id[TASK_ID_MAX];
	task_make_id("jwt-auth", 0x3f2a, id, sizeof(id));
	assert_string_equal(id, "jwt-auth-3f2a");
	assert_true(task_id_valid(id));
	task_make_id("a", 0, id, sizeof(id));
	assert_string_equal(id, "a-0000");
	assert_true(task_id_valid(id));
	/* the longest name still makes a valid id */
	char name[SBX_NAME_MAX + 1];
	memset(name, 'x', SBX_NAME_MAX);
	name[SBX_NAME_MAX] = '\0';
	task_make_id(name, 0xffff, id, sizeof(id));
	assert_int_equal(strlen(id), SBX_NAME_MAX + 5);
	assert_true(task_id_valid(id));
}

static void test_id_valid(void **unused)
{
	const char *bad[] = {
	    "",          "jwt",      "jwt-3f2",       "jwt-3F2A", "jwt-3g2a",      "-jwt-3f2a",
	    "../x-0000", "a/b-0000", ".rm-a-0000-12", "JWT-3f2a", "jwt_auth-3f2a", "jwt 3-3f2a"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(task_id_valid(bad[i]));
	assert_true(task_id_valid("a-b-c-0a9f"));
}

/* ---- config.json ------------------------------------------------------ */

static const char task_ini[] = "[task]\n"
                               "name = jwt-auth\n"
                               "command = agent --prompt \"$TRIMO_PROMPT\"\n"
                               "prompt = Add JWT\n"
                               "env = LANG=C.UTF-8\n"
                               "env = A=b c\n"
                               "pass_env = API_KEY OTHER\n"
                               "timeout = 2h\n"
                               "hostname = box\n"
                               "[image]\n"
                               "source = dir:rootfs\n"
                               "[repo]\n"
                               "base = main\n"
                               "[limits]\n"
                               "memory = 2G\n"
                               "memory_swap = max\n"
                               "cpus = 1.5\n"
                               "pids = 1024\n"
                               "oom_kill = group\n";

static void test_def_round_trip(void **unused)
{
	write_text("task.ini", task_ini);
	char path[256], rootfs[256];
	snprintf(path, sizeof(path), "%s/task.ini", tmpdir);
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", tmpdir);
	mkdir(rootfs, 0755);
	const struct sbx_task_config *cfg = NULL;
	struct sbx_err err = {0};
	assert_int_equal(config_parse_task(path, NULL, &cfg, &err), 0);
	struct sbx_limits eff;
	config_merge_limits(&cfg->limits, NULL, &eff);
	struct sbx_task_image img;
	assert_int_equal(task_resolve_image(&cfg->image, "/nonexistent", &img, &err), 0);
	assert_string_equal(img.rootfs, rootfs);
	assert_int_equal(img.hold_fd, -1);
	struct sbx_task_def *d = NULL;
	assert_int_equal(task_def_from_config(cfg, &eff, &img, "jwt-auth-3f2a", &d, &err), 0);
	char *json = NULL;
	assert_int_equal(task_def_to_json(d, &json, &err), 0);
	struct sbx_task_def *e = NULL;
	assert_int_equal(task_def_from_json(json, strlen(json), &e, &err), 0);
	assert_string_equal(e->id, "jwt-auth-3f2a");
	assert_string_equal(e->name, "jwt-auth");
	assert_string_equal(e->task_file, path);
	assert_string_equal(e->command, "agent --prompt \"$TRIMO_PROMPT\"");
	assert_int_equal(sbx_strv_len(e->env), 2);
	assert_string_equal(e->env[1], "A=b c");
	assert_int_equal(sbx_strv_len(e->pass_env), 2);
	assert_string_equal(e->pass_env[0], "API_KEY");
	assert_int_equal(e->timeout, 7200);
	assert_string_equal(e->workdir, "/workspace");
	assert_string_equal(e->hostname, "box");
	assert_string_equal(e->image.rootfs, rootfs);
	assert_true(e->repo);
	assert_string_equal(e->repo_path, tmpdir);
	assert_string_equal(e->repo_base, "main");
	assert_string_equal(e->branch, "trimo/jwt-auth");
	assert_string_equal(e->network, "none");
	/* the limits come back bit for bit */
	assert_int_equal(e->limits.set, d->limits.set);
	assert_int_equal(e->limits.memory, 2ULL << 30);
	assert_int_equal(e->limits.memory_swap, SBX_MEMORY_SWAP_MAX);
	assert_int_equal(e->limits.millicpus, 1500);
	assert_int_equal(e->limits.pids, 1024);
	assert_int_equal(e->limits.oom_kill, SBX_OOM_KILL_GROUP);
	assert_memory_equal(&e->limits, &d->limits, sizeof(e->limits));
	free(json);
	task_def_free(d);
	task_def_free(e);
	config_free_task(cfg);
}

static void test_def_without_repo(void **unused)
{
	write_text("min.ini", "[task]\ncommand = true\n[image]\nsource = dir:/\n");
	char path[256];
	snprintf(path, sizeof(path), "%s/min.ini", tmpdir);
	const struct sbx_task_config *cfg = NULL;
	struct sbx_err err = {0};
	assert_int_equal(config_parse_task(path, NULL, &cfg, &err), 0);
	struct sbx_limits eff;
	config_merge_limits(&cfg->limits, NULL, &eff);
	struct sbx_task_image img;
	assert_int_equal(task_resolve_image(&cfg->image, "/x", &img, &err), 0);
	struct sbx_task_def *d = NULL, *e = NULL;
	char *json = NULL;
	assert_int_equal(task_def_from_config(cfg, &eff, &img, "min-0001", &d, &err), 0);
	assert_int_equal(task_def_to_json(d, &json, &err), 0);
	assert_int_equal(task_def_from_json(json, strlen(json), &e, &err), 0);
	assert_string_equal(e->name, "min"); /* from the file name */
	assert_false(e->repo);
	assert_null(e->branch);
	assert_null(e->hostname);
	assert_int_equal(sbx_strv_len(e->env), 0);
	assert_false(e->limits.set & SBX_LIMIT_MEMORY);
	assert_int_equal(task_memory_max(&e->limits), UINT64_MAX);
	assert_int_equal(task_memory_admit(&e->limits, 3ULL << 30), 3ULL << 30);
	free(json);
	task_def_free(d);
	task_def_free(e);
	config_free_task(cfg);
	/* a damaged config.json is an error, not a crash */
	const char *bad[] = {"{}", "[1]", "{\"id\":1}", "not json"};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(task_def_from_json(bad[i], strlen(bad[i]), &e, &err), -EINVAL);
}

static void test_memory_admit(void **unused)
{
	struct sbx_limits l = {
	    .set = SBX_LIMIT_ENABLED | SBX_LIMIT_MEMORY, .enabled = true, .memory = 512ULL << 20};
	assert_int_equal(task_memory_admit(&l, 2ULL << 30), 512ULL << 20);
	assert_int_equal(task_memory_max(&l), 512ULL << 20);
	/* limits off: no cap, counts as default_memory */
	l.enabled = false;
	assert_int_equal(task_memory_max(&l), UINT64_MAX);
	assert_int_equal(task_memory_admit(&l, 2ULL << 30), 2ULL << 30);
}

static void test_resolve_image_errors(void **unused)
{
	struct sbx_err err = {0};
	struct sbx_task_image img;
	struct sbx_cfg_image missing = {
	    .kind = SBX_IMAGE_DIR, .source = "dir:/no/such/tree", .path = "/no/such/tree"};
	assert_int_equal(task_resolve_image(&missing, "/x", &img, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "/no/such/tree"));
	write_text("file", "x");
	char p[256];
	snprintf(p, sizeof(p), "%s/file", tmpdir);
	struct sbx_cfg_image file = {.kind = SBX_IMAGE_DIR, .source = p, .path = p};
	assert_int_equal(task_resolve_image(&file, "/x", &img, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a folder"));
	/* a stored image: a missing archive is bad input, named */
	struct sbx_cfg_image tar = {
	    .kind = SBX_IMAGE_TAR, .source = "tar:/no/such/a.tar", .path = "/no/such/a.tar"};
	char store[300];
	snprintf(store, sizeof(store), "%s/store", tmpdir);
	assert_int_equal(task_resolve_image(&tar, store, &img, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "[image] source 'tar:/no/such/a.tar'"));
}

/* ---- runs and history -------------------------------------------------- */

static void test_history(void **unused)
{
	int fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct sbx_err err = {0};
	char *h = NULL;
	assert_int_equal(task_run_create(fd, 1, "first prompt", 12, &err), 0);
	assert_int_equal(task_run_history(fd, 1, &h, &err), 0);
	assert_string_equal(h, ""); /* nothing before run 1 */
	free(h);
	struct sbx_task_state st;
	state_init(&st);
	snprintf(st.id, sizeof(st.id), "t-0000");
	st.run = 1;
	st.status = TASK_FAILED;
	st.has_exit_code = true;
	st.exit_code = 3;
	st.started_ms = 1000;
	st.ended_ms = 13500;
	assert_int_equal(task_run_write_record(fd, &st, &err), 0);
	assert_int_equal(task_run_create(fd, 2, "second\nprompt\n", 14, &err), 0);
	assert_int_equal(task_run_create(fd, 3, NULL, 0, &err), 0);
	assert_int_equal(task_run_history(fd, 3, &h, &err), 0);
	assert_non_null(
	    strstr(h, "## Run 1: failed (exit code 3), ran 12.5 s, ended 1970-01-01T00:00:13Z\n\n"
	              "first prompt\n\n"));
	/* run 2 has no record: it never finished */
	assert_non_null(strstr(h, "## Run 2: no record (it never finished)\n\nsecond\nprompt\n\n"));
	assert_null(strstr(h, "Run 3"));
	free(h);
	char *p = NULL;
	size_t n;
	assert_int_equal(task_run_prompt(fd, 3, &p, &n, &err), 0);
	assert_int_equal(n, 0);
	free(p);
	close(fd);
}

/* ---- log stamping ----------------------------------------------------- */

struct sink {
	char buf[65536];
	size_t len;
	unsigned calls;
};

static void collect(void *data, const char *text, size_t len)
{
	struct sink *s = data;
	assert_true(s->len + len < sizeof(s->buf));
	memcpy(s->buf + s->len, text, len);
	s->len += len;
	s->buf[s->len] = '\0';
	s->calls++;
}

static void test_stamp_format(void **unused)
{
	char b[TASK_LOG_STAMP_LEN + 1];
	struct timespec ts = {.tv_sec = 1795860444, .tv_nsec = 761999999};
	task_log_format_stamp(&ts, b);
	assert_string_equal(b, "2026-11-28T10:07:24.761Z ");
	ts = (struct timespec){0, 5000000};
	task_log_format_stamp(&ts, b);
	assert_string_equal(b, "1970-01-01T00:00:00.005Z ");
	assert_int_equal(strlen(b), TASK_LOG_STAMP_LEN);
}

static void test_stamp_lines(void **unused)
{
	static struct sink s;
	memset(&s, 0, sizeof(s));
	static struct sbx_log_stamper st;
	task_log_stamper_init(&st, collect, &s);
	struct timespec t1 = {.tv_sec = 0, .tv_nsec = 1000000}, t2 = {.tv_sec = 1, .tv_nsec = 0};
	/* two lines and the start of a third in one read */
	task_log_feed(&st, "a\nbb\ncc", 7, &t1);
	/* its end, a blank line, a partial one */
	task_log_feed(&st, "c\n\nd", 4, &t2);
	task_log_message(&st, &t2, "run 1: killed by the OOM killer");
	task_log_flush(&st);
	assert_string_equal(
	    s.buf, "1970-01-01T00:00:00.001Z a\n"
	           "1970-01-01T00:00:00.001Z bb\n"
	           "1970-01-01T00:00:00.001Z ccc\n"
	           "1970-01-01T00:00:01.000Z \n"
	           "1970-01-01T00:00:01.000Z d\n"
	           "1970-01-01T00:00:01.000Z trimo-sbx: run 1: killed by the OOM killer\n");
	/* and back without the stamps, fed in awkward pieces */
	struct sbx_log_strip strip;
	task_log_strip_init(&strip);
	char out[sizeof(s.buf)];
	size_t o = 0;
	for (size_t i = 0; i < s.len; i += 7) {
		size_t k = s.len - i < 7 ? s.len - i : 7;
		o += task_log_strip(&strip, s.buf + i, k, out + o);
	}
	out[o] = '\0';
	assert_string_equal(out, "a\nbb\nccc\n\nd\ntrimo-sbx: run 1: killed by the OOM killer\n");
}

static void test_stamp_big_input(void **unused)
{
	/* more than the stamper's buffer, many short lines: nothing lost */
	static struct sink s;
	memset(&s, 0, sizeof(s));
	static struct sbx_log_stamper st;
	task_log_stamper_init(&st, collect, &s);
	static char in[3000];
	for (size_t i = 0; i < sizeof(in); i += 2) {
		in[i] = 'x';
		in[i + 1] = '\n';
	}
	struct timespec t = {0, 0};
	task_log_feed(&st, in, sizeof(in), &t);
	task_log_flush(&st);
	assert_int_equal(s.len, 1500 * (TASK_LOG_STAMP_LEN + 2));
	assert_true(s.calls > 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_make_id),        cmocka_unit_test(test_id_valid),
	    cmocka_unit_test(test_def_round_trip), cmocka_unit_test(test_def_without_repo),
	    cmocka_unit_test(test_memory_admit),   cmocka_unit_test(test_resolve_image_errors),
	    cmocka_unit_test(test_history),        cmocka_unit_test(test_stamp_format),
	    cmocka_unit_test(test_stamp_lines),    cmocka_unit_test(test_stamp_big_input),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
