#include "orchestrator/admission.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "runtime/cgroup.h"

#define ADMISSION_LOCK "admission.lock"

int admission_parse_meminfo(const char *text, struct sbx_adm_host *ret)
{
	bool total = false, avail = false;
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		unsigned long long kb;
		if (sscanf(p, "MemTotal: %llu kB", &kb) == 1) {
			ret->mem_total = kb * 1024;
			total = true;
		} else if (sscanf(p, "MemAvailable: %llu kB", &kb) == 1) {
			ret->mem_available = kb * 1024;
			avail = true;
		}
	}
	return total && avail ? 0 : -EINVAL;
}

int admission_parse_psi(const char *text, uint32_t *ret_avg10)
{
	/* "some avg10=1.23 avg60=0.50 avg300=0.10 total=12345" */
	const char *p = strstr(text, "some ");
	if (!p || !(p = strstr(p, "avg10=")))
		return -EINVAL;
	char *end;
	errno = 0;
	double v = strtod(p + 6, &end);
	if (errno || end == p + 6 || v < 0 || v > 100)
		return -EINVAL;
	*ret_avg10 = (uint32_t)(v * 100 + 0.5);
	return 0;
}

int admission_read_host(struct sbx_adm_host *ret, struct sbx_err *err)
{
	struct sbx_adm_host h = {0};
	const char *mi = getenv(ADMISSION_MEMINFO_ENV);
	const char *psi = getenv(ADMISSION_PSI_ENV);
	if (!mi || !*mi)
		mi = "/proc/meminfo";
	if (!psi || !*psi)
		psi = "/proc/pressure/cpu";
	_cleanup_free_ char *text = NULL;
	int r = sbx_read_file(AT_FDCWD, mi, 1 << 20, &text, NULL, err);
	if (r < 0)
		return r;
	if (admission_parse_meminfo(text, &h) < 0)
		return sbx_failx(err, EINVAL, "'%s': no MemTotal or MemAvailable", mi);
	_cleanup_free_ char *ptext = NULL;
	struct sbx_err ignored;
	if (sbx_read_file(AT_FDCWD, psi, 1 << 16, &ptext, NULL, &ignored) == 0 &&
	    admission_parse_psi(ptext, &h.cpu_some_avg10) == 0)
		h.has_psi = true;
	*ret = h;
	return 0;
}

static bool queued_before(const struct sbx_task_state *a, const struct sbx_task_state *b)
{
	if (a->queue_seq != b->queue_seq)
		return a->queue_seq < b->queue_seq;
	return strcmp(a->id, b->id) < 0;
}

static const char *size_text(uint64_t v, char *buf)
{
	return cgroup_format_size(v, buf, 32);
}

bool admission_decide(const struct sbx_task_state *self, const struct sbx_task_state *tasks,
                      const bool *alive, size_t n, const struct sbx_adm_host *host, char *reason,
                      size_t size)
{
	uint64_t running = 0, sum = 0;
	unsigned ahead = 0;
	const struct sbx_task_state *first = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct sbx_task_state *t = &tasks[i];
		if (!alive[i] || !strcmp(t->id, self->id))
			continue;
		if (t->status == TASK_PREPARING || t->status == TASK_RUNNING) {
			running++;
			sum += t->memory_admit;
		} else if (t->status == TASK_QUEUED && queued_before(t, self)) {
			ahead++;
			if (!first || queued_before(t, first))
				first = t;
		}
	}
	char a[32], b[32], c[32], d[32];
	if (ahead) {
		snprintf(reason, size, "behind %u queued task%s (%s%s)", ahead,
		         ahead == 1 ? "" : "s", first->id, ahead > 1 ? " first" : "");
		return false;
	}
	if (running >= self->max_parallel) {
		snprintf(reason, size, "max_parallel %" PRIu64 " reached", self->max_parallel);
		return false;
	}
	uint64_t room =
	    host->mem_total > self->memory_reserve ? host->mem_total - self->memory_reserve : 0;
	if (sum + self->memory_admit > room) {
		snprintf(reason, size,
		         "memory: running %s + this %s > MemTotal %s - memory_reserve %s",
		         size_text(sum, a), size_text(self->memory_admit, b),
		         size_text(host->mem_total, c), size_text(self->memory_reserve, d));
		return false;
	}
	if (self->memory_admit > host->mem_available) {
		snprintf(reason, size, "memory: this %s > MemAvailable %s",
		         size_text(self->memory_admit, a), size_text(host->mem_available, b));
		return false;
	}
	if (self->max_cpu_pressure && host->has_psi &&
	    host->cpu_some_avg10 >= self->max_cpu_pressure) {
		snprintf(reason, size, "cpu pressure %u.%02u%% >= max_cpu_pressure %u.%02u%%",
		         host->cpu_some_avg10 / 100, host->cpu_some_avg10 % 100,
		         self->max_cpu_pressure / 100, self->max_cpu_pressure % 100);
		return false;
	}
	reason[0] = '\0';
	return true;
}

static int lock_admission(const struct sbx_state_dir *sd, struct sbx_err *err)
{
	/* read-only: closing a file opened for writing is an inotify event
	 * (IN_CLOSE_WRITE) in the folder the queued supervisors watch */
	int fd =
	    openat(sd->root_fd, ADMISSION_LOCK, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return sbx_fail(err, errno, "open '%s/%s'", sd->root, ADMISSION_LOCK);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return sbx_fail(err, e, "lock '%s/%s'", sd->root, ADMISSION_LOCK);
		}
	}
	return fd;
}

struct decision {
	bool admit;
	char reason[STATE_REASON_MAX];
};

static int apply_decision(struct sbx_task_state *st, void *data)
{
	const struct decision *d = data;
	if (st->status != TASK_QUEUED)
		return -ECANCELED; /* stopped meanwhile */
	if (d->admit) {
		st->status = TASK_PREPARING;
		st->queued_reason[0] = '\0';
		return 0;
	}
	if (!strcmp(st->queued_reason, d->reason))
		return 1;
	snprintf(st->queued_reason, sizeof(st->queued_reason), "%s", d->reason);
	return 0;
}

int admission_try(const struct sbx_state_dir *sd, int task_fd, struct sbx_err *err)
{
	_cleanup_close_ int lock = lock_admission(sd, err);
	if (lock < 0)
		return lock;
	struct sbx_task_state self;
	int r = state_read(task_fd, &self, err);
	if (r < 0)
		return r;
	if (self.status != TASK_QUEUED)
		return -ECANCELED;
	struct sbx_adm_host host;
	r = admission_read_host(&host, err);
	if (r < 0)
		return r;
	_cleanup_free_ struct sbx_task_state *tasks = NULL;
	size_t n;
	r = state_dir_list(sd, &tasks, &n, err);
	if (r < 0)
		return r;
	_cleanup_free_ bool *alive = calloc(n + 1, sizeof(bool));
	if (!alive)
		return sbx_fail(err, ENOMEM, "admission");
	for (size_t i = 0; i < n; i++)
		alive[i] = state_status_active(tasks[i].status) && state_owner_alive(&tasks[i]);
	struct decision d;
	d.admit = admission_decide(&self, tasks, alive, n, &host, d.reason, sizeof(d.reason));
	r = state_update(task_fd, apply_decision, &d, err);
	if (r < 0)
		return r;
	return d.admit ? 1 : 0;
}
