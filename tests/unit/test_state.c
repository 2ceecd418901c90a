/* The task state file: JSON round trip, status names, liveness. */
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
#include "orchestrator/state.h"

static void fill(struct sbx_task_state *st)
{
	state_init(st);
	snprintf(st->id, sizeof(st->id), "jwt-auth-3f2a");
	snprintf(st->name, sizeof(st->name), "jwt-auth");
	st->status = TASK_RUNNING;
	st->run = 3;
	st->created_ms = 1795860444761;
	st->queued_ms = 1795860444972;
	st->started_ms = 1795860445008;
	st->queue_seq = 1795860444972782170;
	st->supervisor_pid = 4242;
	st->supervisor_start = 242166;
	snprintf(st->boot_id, sizeof(st->boot_id), "1b2c3bde-0691-4f3b-833c-ec4d426f5c03");
	st->sandbox_pid = 4250;
	st->has_exit_code = true;
	st->exit_code = 137;
	st->stop_requested = true;
	snprintf(st->error, sizeof(st->error), "a \"quoted\" error\nwith a newline");
	st->memory_admit = 2ULL << 30;
	st->memory_max = 1ULL << 30;
	st->max_parallel = 4;
	st->memory_reserve = 1ULL << 30;
	st->max_cpu_pressure = 8050;
	snprintf(st->queued_reason, sizeof(st->queued_reason), "max_parallel 4 reached");
	snprintf(st->cgroup_parent, sizeof(st->cgroup_parent), "./trimo");
	st->memory_current = 12345;
	st->memory_peak = 67890;
	st->cpu_usec = 5509;
	st->oom_kills = 0;
	snprintf(st->cgroup, sizeof(st->cgroup), "/sys/fs/cgroup/trimo.slice/trimo-x-01234567");
	snprintf(st->branch, sizeof(st->branch), "trimo/jwt-auth");
}

static void test_round_trip(void **unused)
{
	struct sbx_task_state a, b;
	struct sbx_err err = {0};
	fill(&a);
	char *text = NULL;
	assert_int_equal(state_to_json(&a, &text, &err), 0);
	assert_non_null(strstr(text, "\"state\":\"running\""));
	assert_non_null(strstr(text, "\"exit_code\":137"));
	assert_int_equal(state_from_json(text, strlen(text), &b, &err), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	free(text);
}

static void test_unknown_values_are_null(void **unused)
{
	struct sbx_task_state a, b;
	struct sbx_err err = {0};
	state_init(&a);
	snprintf(a.id, sizeof(a.id), "x-0000");
	char *text = NULL;
	assert_int_equal(state_to_json(&a, &text, &err), 0);
	assert_non_null(strstr(text, "\"memory_max\":null"));
	assert_non_null(strstr(text, "\"memory_peak\":null"));
	assert_non_null(strstr(text, "\"exit_code\":null"));
	assert_int_equal(state_from_json(text, strlen(text), &b, &err), 0);
	assert_int_equal(b.memory_max, STATE_UNKNOWN);
	assert_int_equal(b.cpu_usec, STATE_UNKNOWN);
	assert_false(b.has_exit_code);
	free(text);
}

static void test_bad_json(void **unused)
{
	struct sbx_task_state st;
	struct sbx_err err = {0};
	const char *bad[] = {
	    "",
	    "[]",
	    "{\"id\":\"x-0000\"}",                                    /* no state */
	    "{\"id\":\"x-0000\",\"state\":\"lost\"}",                 /* never written */
	    "{\"id\":\"x-0000\",\"state\":\"sleeping\"}",             /* unknown */
	    "{\"id\":\"x-0000\",\"state\":\"queued\",\"run\":\"1\"}", /* wrong type */
	    "{\"state\":\"queued\"}",                                 /* no id */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(state_from_json(bad[i], strlen(bad[i]), &st, &err), -EINVAL);
	const char *ok = "{\"id\":\"x-0000\",\"state\":\"queued\",\"future_key\":[1,2]}";
	assert_int_equal(state_from_json(ok, strlen(ok), &st, &err), 0);
	assert_int_equal(st.status, TASK_QUEUED);
}

static void test_status_names(void **unused)
{
	const char *names[] = {"queued", "preparing", "running", "exited",
	                       "failed", "oom",       "stopped", "lost"};
	for (int i = 0; i < TASK_STATUS_COUNT; i++) {
		enum sbx_task_status s;
		assert_string_equal(state_status_name((enum sbx_task_status)i), names[i]);
		assert_int_equal(state_status_parse(names[i], &s), 0);
		assert_int_equal(s, i);
	}
	enum sbx_task_status s;
	assert_int_equal(state_status_parse("done", &s), -EINVAL);
	assert_true(state_status_active(TASK_QUEUED));
	assert_true(state_status_active(TASK_RUNNING));
	assert_false(state_status_active(TASK_EXITED));
	assert_false(state_status_active(TASK_LOST));
}

static void test_file_and_update(void **unused)
{
	char dir[] = "/tmp/test-state-XXXXXX";
	assert_non_null(mkdtemp(dir));
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct sbx_task_state a, b;
	struct sbx_err err = {0};
	fill(&a);
	assert_int_equal(state_write(fd, &a, &err), 0);
	assert_int_equal(state_read(fd, &b, &err), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	/* no temporary file is left behind */
	char tmp[300];
	snprintf(tmp, sizeof(tmp), "%s/state.tmp.%d", dir, (int)getpid());
	assert_int_equal(access(tmp, F_OK), -1);
	snprintf(tmp, sizeof(tmp), "%s/state", dir);
	unlink(tmp);
	rmdir(dir);
	close(fd);
}

static int set_exited(struct sbx_task_state *st, void *data)
{
	st->status = TASK_EXITED;
	st->run += *(unsigned *)data;
	return 0;
}

static int refuse(struct sbx_task_state *st, void *data)
{
	st->run = 99;
	return -ECANCELED;
}

static void test_update(void **unused)
{
	char dir[] = "/tmp/test-state-XXXXXX";
	assert_non_null(mkdtemp(dir));
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct sbx_task_state a, b;
	struct sbx_err err = {0};
	fill(&a);
	assert_int_equal(state_write(fd, &a, &err), 0);
	unsigned add = 2;
	assert_int_equal(state_update(fd, set_exited, &add, &err), 0);
	assert_int_equal(state_read(fd, &b, &err), 0);
	assert_int_equal(b.status, TASK_EXITED);
	assert_int_equal(b.run, 5);
	/* an aborted update writes nothing */
	assert_int_equal(state_update(fd, refuse, NULL, &err), -ECANCELED);
	assert_int_equal(state_read(fd, &b, &err), 0);
	assert_int_equal(b.run, 5);
	char p[300];
	snprintf(p, sizeof(p), "%s/state", dir);
	unlink(p);
	rmdir(dir);
	close(fd);
}

static void write_stat(const char *root, int pid, const char *content)
{
	char p[300];
	snprintf(p, sizeof(p), "%s/%d", root, pid);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/%d/stat", root, pid);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void test_proc_start(void **unused)
{
	char root[] = "/tmp/test-proc-XXXXXX";
	assert_non_null(mkdtemp(root));
	/* a comm with spaces and parentheses */
	write_stat(root, 10,
	           "10 (a) b (c) S 1 10 10 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 "
	           "777123 1000 100 18446744073709551615\n");
	write_stat(root, 11, "11 (zz) Z 1 11 11 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 5 1 1\n");
	uint64_t v = 0;
	assert_int_equal(state_proc_start(root, 10, &v), 0);
	assert_int_equal(v, 777123);
	assert_int_equal(state_proc_start(root, 11, &v), -ESRCH); /* zombie */
	assert_int_equal(state_proc_start(root, 12, &v), -ESRCH); /* none */
	assert_int_equal(state_proc_start(root, 0, &v), -ESRCH);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
}

static void test_lost(void **unused)
{
	struct sbx_task_state st;
	fill(&st);
	/* ourselves: alive */
	state_set_owner(&st);
	assert_true(state_owner_alive(&st));
	assert_int_equal(state_effective(&st), TASK_RUNNING);
	/* same pid, other start time: pid reused by another process */
	st.supervisor_start++;
	assert_false(state_owner_alive(&st));
	assert_int_equal(state_effective(&st), TASK_LOST);
	/* another boot */
	state_set_owner(&st);
	snprintf(st.boot_id, sizeof(st.boot_id), "00000000-0000-0000-0000-000000000000");
	assert_int_equal(state_effective(&st), TASK_LOST);
	/* no owner at all */
	state_set_owner(&st);
	st.supervisor_pid = 0;
	assert_int_equal(state_effective(&st), TASK_LOST);
	/* an ended task is never lost */
	st.status = TASK_EXITED;
	assert_int_equal(state_effective(&st), TASK_EXITED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_unknown_values_are_null),
	    cmocka_unit_test(test_bad_json),        cmocka_unit_test(test_status_names),
	    cmocka_unit_test(test_file_and_update), cmocka_unit_test(test_update),
	    cmocka_unit_test(test_proc_start),      cmocka_unit_test(test_lost),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
