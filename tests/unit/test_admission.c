/* Admission decisions (orchestrator/admission.h) and the host readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orchestrator/admission.h"

#define G (1ULL << 30)
#define M (1ULL << 20)

static struct sbx_task_state task(const char *id, enum sbx_task_status s, uint64_t mem, int64_t seq)
{
	struct sbx_task_state t;
	state_init(&t);
	snprintf(t.id, sizeof(t.id), "%s", id);
	t.status = s;
	t.memory_admit = mem;
	t.queue_seq = seq;
	t.max_parallel = 4;
	t.memory_reserve = 1 * G;
	return t;
}

static const struct sbx_adm_host host16 = {.mem_total = 16 * G, .mem_available = 12 * G};

static bool decide(const struct sbx_task_state *self, const struct sbx_task_state *v,
                   const bool *alive, size_t n, const struct sbx_adm_host *h, char *reason)
{
	return admission_decide(self, v, alive, n, h, reason, 256);
}

static void test_empty_machine_admits(void **unused)
{
	struct sbx_task_state self = task("me-0000", TASK_QUEUED, 2 * G, 10);
	char why[256] = "x";
	assert_true(decide(&self, &self, (bool[]){true}, 1, &host16, why));
	assert_string_equal(why, "");
}

static void test_max_parallel(void **unused)
{
	struct sbx_task_state v[4] = {
	    task("a-0000", TASK_RUNNING, 1 * G, 1),
	    task("b-0000", TASK_PREPARING, 1 * G, 2),
	    task("c-0000", TASK_EXITED, 1 * G, 3),
	    task("me-0000", TASK_QUEUED, 1 * G, 9),
	};
	bool alive[4] = {true, true, false, true};
	char why[256];
	v[3].max_parallel = 2;
	/* preparing counts as running; exited does not */
	assert_false(decide(&v[3], v, alive, 4, &host16, why));
	assert_string_equal(why, "max_parallel 2 reached");
	v[3].max_parallel = 3;
	assert_true(decide(&v[3], v, alive, 4, &host16, why));
	/* a lost task (supervisor gone) holds nothing */
	v[3].max_parallel = 2;
	alive[1] = false;
	assert_true(decide(&v[3], v, alive, 4, &host16, why));
}

static void test_memory_sum_against_total(void **unused)
{
	/* 16G total - 1G reserve = 15G of room: 6G + 6G running + 4G > 15G,
	 * even though MemAvailable (12G) would hold 4G */
	struct sbx_task_state v[3] = {
	    task("a-0000", TASK_RUNNING, 6 * G, 1),
	    task("b-0000", TASK_RUNNING, 6 * G, 2),
	    task("me-0000", TASK_QUEUED, 4 * G, 3),
	};
	bool alive[3] = {true, true, true};
	char why[256];
	assert_false(decide(&v[2], v, alive, 3, &host16, why));
	assert_string_equal(why,
	                    "memory: running 12G + this 4G > MemTotal 16G - memory_reserve 1G");
	v[2].memory_admit = 3 * G; /* exactly 15G: fits */
	assert_true(decide(&v[2], v, alive, 3, &host16, why));
	v[2].memory_reserve = 2 * G;
	assert_false(decide(&v[2], v, alive, 3, &host16, why));
}

static void test_own_cap_against_available(void **unused)
{
	struct sbx_task_state self = task("me-0000", TASK_QUEUED, 3 * G, 1);
	struct sbx_adm_host h = {.mem_total = 16 * G, .mem_available = 2 * G};
	char why[256];
	assert_false(decide(&self, &self, (bool[]){true}, 1, &h, why));
	assert_string_equal(why, "memory: this 3G > MemAvailable 2G");
	h.mem_available = 3 * G;
	assert_true(decide(&self, &self, (bool[]){true}, 1, &h, why));
}

static void test_reserve_above_total(void **unused)
{
	struct sbx_task_state self = task("me-0000", TASK_QUEUED, 1 * M, 1);
	self.memory_reserve = 32 * G;
	char why[256];
	assert_false(decide(&self, &self, (bool[]){true}, 1, &host16, why));
	assert_non_null(strstr(why, "memory_reserve 32G"));
}

static void test_fifo(void **unused)
{
	struct sbx_task_state v[4] = {
	    task("big-0000", TASK_QUEUED, 10 * G, 1),
	    task("me-0000", TASK_QUEUED, 1 * G, 5),
	    task("late-0000", TASK_QUEUED, 1 * G, 9),
	    task("old-0000", TASK_QUEUED, 1 * G, 2),
	};
	bool alive[4] = {true, true, true, true};
	char why[256];
	/* two earlier tasks wait (big, old): we wait behind them, naming the first */
	assert_false(decide(&v[1], v, alive, 4, &host16, why));
	assert_string_equal(why, "behind 2 queued tasks (big-0000 first)");
	/* the earliest may go (it decides on memory alone) */
	assert_true(decide(&v[0], v, alive, 4, &host16, why));
	/* a dead earlier supervisor does not block */
	alive[0] = alive[3] = false;
	assert_true(decide(&v[1], v, alive, 4, &host16, why));
	/* equal enqueue times: the id decides, so exactly one goes first */
	v[2].queue_seq = v[1].queue_seq;
	alive[0] = alive[3] = false;
	assert_true(decide(&v[2], v, alive, 4, &host16, why)); /* "late" < "me" */
	assert_false(decide(&v[1], v, alive, 4, &host16, why));
	assert_string_equal(why, "behind 1 queued task (late-0000)");
}

static void test_cpu_pressure(void **unused)
{
	struct sbx_task_state self = task("me-0000", TASK_QUEUED, 1 * G, 1);
	struct sbx_adm_host h = host16;
	h.has_psi = true;
	h.cpu_some_avg10 = 9050;
	char why[256];
	/* off by default */
	assert_true(decide(&self, &self, (bool[]){true}, 1, &h, why));
	self.max_cpu_pressure = 8000;
	assert_false(decide(&self, &self, (bool[]){true}, 1, &h, why));
	assert_string_equal(why, "cpu pressure 90.50% >= max_cpu_pressure 80.00%");
	h.cpu_some_avg10 = 7999;
	assert_true(decide(&self, &self, (bool[]){true}, 1, &h, why));
	/* no PSI on this kernel: the rule cannot apply */
	h.has_psi = false;
	h.cpu_some_avg10 = 10000;
	assert_true(decide(&self, &self, (bool[]){true}, 1, &h, why));
}

static void test_parse_meminfo(void **unused)
{
	struct sbx_adm_host h = {0};
	assert_int_equal(admission_parse_meminfo("MemTotal:       24568108 kB\n"
	                                         "MemFree:         1000000 kB\n"
	                                         "MemAvailable:   20000000 kB\n"
	                                         "Buffers:           12345 kB\n",
	                                         &h),
	                 0);
	assert_int_equal(h.mem_total, 24568108ULL * 1024);
	assert_int_equal(h.mem_available, 20000000ULL * 1024);
	assert_int_equal(admission_parse_meminfo("MemTotal: 100 kB\n", &h), -EINVAL);
	assert_int_equal(admission_parse_meminfo("", &h), -EINVAL);
}

static void test_parse_psi(void **unused)
{
	uint32_t v = 0;
	assert_int_equal(admission_parse_psi("some avg10=12.34 avg60=1.00 avg300=0.00 total=5\n"
	                                     "full avg10=99.00 avg60=0.00 avg300=0.00 total=0\n",
	                                     &v),
	                 0);
	assert_int_equal(v, 1234);
	assert_int_equal(
	    admission_parse_psi("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(admission_parse_psi("some avg10=100.00 avg60=0 avg300=0 total=0\n", &v),
	                 0);
	assert_int_equal(v, 10000);
	assert_int_equal(admission_parse_psi("full avg10=1.00\n", &v), -EINVAL);
	assert_int_equal(admission_parse_psi("some avg10=x\n", &v), -EINVAL);
}

static void test_read_host_from_env(void **unused)
{
	char mi[] = "/tmp/test-meminfo-XXXXXX", psi[] = "/tmp/test-psi-XXXXXX";
	int a = mkstemp(mi), b = mkstemp(psi);
	assert_true(a >= 0 && b >= 0);
	dprintf(a, "MemTotal: 4194304 kB\nMemAvailable: 1048576 kB\n");
	dprintf(b, "some avg10=55.50 avg60=0.00 avg300=0.00 total=0\n");
	setenv(ADMISSION_MEMINFO_ENV, mi, 1);
	setenv(ADMISSION_PSI_ENV, psi, 1);
	struct sbx_adm_host h;
	struct sbx_err err = {0};
	assert_int_equal(admission_read_host(&h, &err), 0);
	assert_int_equal(h.mem_total, 4 * G);
	assert_int_equal(h.mem_available, 1 * G);
	assert_true(h.has_psi);
	assert_int_equal(h.cpu_some_avg10, 5550);
	/* a PSI file that is not there only turns the rule off */
	setenv(ADMISSION_PSI_ENV, "/nonexistent/psi", 1);
	assert_int_equal(admission_read_host(&h, &err), 0);
	assert_false(h.has_psi);
	/* a meminfo that is not there is an error */
	setenv(ADMISSION_MEMINFO_ENV, "/nonexistent/meminfo", 1);
	assert_true(admission_read_host(&h, &err) < 0);
	unsetenv(ADMISSION_MEMINFO_ENV);
	unsetenv(ADMISSION_PSI_ENV);
	close(a);
	close(b);
	unlink(mi);
	unlink(psi);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty_machine_admits),
	    cmocka_unit_test(test_max_parallel),
	    cmocka_unit_test(test_memory_sum_against_total),
	    cmocka_unit_test(test_own_cap_against_available),
	    cmocka_unit_test(test_reserve_above_total),
	    cmocka_unit_test(test_fifo),
	    cmocka_unit_test(test_cpu_pressure),
	    cmocka_unit_test(test_parse_meminfo),
	    cmocka_unit_test(test_parse_psi),
	    cmocka_unit_test(test_read_host_from_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
