#include "orchestrator/state.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#define STATE_FILE     "state"
#define STATE_FILE_MAX (64 * 1024)

static const char *const status_names[TASK_STATUS_COUNT] = {
    [TASK_QUEUED] = "queued",   [TASK_PREPARING] = "preparing", [TASK_RUNNING] = "running",
    [TASK_EXITED] = "exited",   [TASK_FAILED] = "failed",       [TASK_OOM] = "oom",
    [TASK_STOPPED] = "stopped", [TASK_LOST] = "lost",
};

const char *state_status_name(enum sbx_task_status s)
{
	return (unsigned)s < TASK_STATUS_COUNT ? status_names[s] : "?";
}

int state_status_parse(const char *name, enum sbx_task_status *ret)
{
	for (unsigned i = 0; i < TASK_STATUS_COUNT; i++) {
		if (!strcmp(status_names[i], name)) {
			*ret = (enum sbx_task_status)i;
			return 0;
		}
	}
	return -EINVAL;
}

bool state_status_active(enum sbx_task_status s)
{
	return s == TASK_QUEUED || s == TASK_PREPARING || s == TASK_RUNNING;
}

void state_init(struct sbx_task_state *st)
{
	memset(st, 0, sizeof(*st));
	st->memory_max = STATE_UNKNOWN;
	st->memory_current = STATE_UNKNOWN;
	st->memory_peak = STATE_UNKNOWN;
	st->cpu_usec = STATE_UNKNOWN;
	st->oom_kills = STATE_UNKNOWN;
	st->egress_allowed = STATE_UNKNOWN;
	st->egress_refused = STATE_UNKNOWN;
}

int64_t state_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- JSON ----------------------------------------------------------- */

/* Fields are described once and both directions walk the table. */
enum field_kind { F_STR, F_I64, F_U64, F_UNKNOWN_U64, F_PID, F_UINT, F_BOOL, F_INT };

struct field {
	const char *key;
	enum field_kind kind;
	size_t off;
	size_t size; /* F_STR: the array's size */
};

#define FS(k, m)                                                                                   \
	{                                                                                          \
		k, F_STR, offsetof(struct sbx_task_state, m),                                      \
		    sizeof(((struct sbx_task_state *)0)->m)                                        \
	}
#define FK(k, kind, m)                                                                             \
	{                                                                                          \
		k, kind, offsetof(struct sbx_task_state, m), 0                                     \
	}

static const struct field fields[] = {
    FS("id", id),
    FS("name", name),
    FK("run", F_UINT, run),
    FK("created_ms", F_I64, created_ms),
    FK("queued_ms", F_I64, queued_ms),
    FK("started_ms", F_I64, started_ms),
    FK("ended_ms", F_I64, ended_ms),
    FK("queue_seq", F_I64, queue_seq),
    FK("supervisor_pid", F_PID, supervisor_pid),
    FK("supervisor_start", F_U64, supervisor_start),
    FS("boot_id", boot_id),
    FK("sandbox_pid", F_PID, sandbox_pid),
    FK("stop_requested", F_BOOL, stop_requested),
    FK("timed_out", F_BOOL, timed_out),
    FS("error", error),
    FK("memory_admit", F_U64, memory_admit),
    FK("memory_max", F_UNKNOWN_U64, memory_max),
    FK("max_parallel", F_U64, max_parallel),
    FK("memory_reserve", F_U64, memory_reserve),
    FK("max_cpu_pressure", F_INT, max_cpu_pressure),
    FS("queued_reason", queued_reason),
    FS("cgroup_parent", cgroup_parent),
    FS("overlay", overlay),
    FK("memory_current", F_UNKNOWN_U64, memory_current),
    FK("memory_peak", F_UNKNOWN_U64, memory_peak),
    FK("cpu_usec", F_UNKNOWN_U64, cpu_usec),
    FK("oom_kills", F_UNKNOWN_U64, oom_kills),
    FK("egress_allowed", F_UNKNOWN_U64, egress_allowed),
    FK("egress_refused", F_UNKNOWN_U64, egress_refused),
    FS("cgroup", cgroup),
    FS("branch", branch),
};

static json_t *field_to_json(const struct sbx_task_state *st, const struct field *f)
{
	const char *p = (const char *)st + f->off;
	switch (f->kind) {
	case F_STR:
		return json_string(p);
	case F_I64:
		return json_integer(*(const int64_t *)p);
	case F_U64:
		return json_integer((json_int_t) * (const uint64_t *)p);
	case F_UNKNOWN_U64: {
		uint64_t v = *(const uint64_t *)p;
		return v == STATE_UNKNOWN ? json_null() : json_integer((json_int_t)v);
	}
	case F_PID:
		return json_integer(*(const pid_t *)p);
	case F_UINT:
		return json_integer(*(const unsigned *)p);
	case F_BOOL:
		return json_boolean(*(const bool *)p);
	case F_INT:
		return json_integer(*(const uint32_t *)p);
	}
	return NULL;
}

int state_to_json(const struct sbx_task_state *st, char **ret, struct sbx_err *err)
{
	json_t *o = json_object();
	if (!o)
		return sbx_fail(err, ENOMEM, "state");
	int r = 0;
	for (size_t i = 0; i < ELEMENTSOF(fields) && r == 0; i++) {
		r = json_object_set_new(o, fields[i].key, field_to_json(st, &fields[i]));
		if (r == 0 && !strcmp(fields[i].key, "name"))
			r = json_object_set_new(o, "state",
			                        json_string(state_status_name(st->status)));
	}
	if (r == 0 && st->has_exit_code)
		r = json_object_set_new(o, "exit_code", json_integer(st->exit_code));
	else if (r == 0)
		r = json_object_set_new(o, "exit_code", json_null());
	char *text = r == 0 ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return sbx_fail(err, ENOMEM, "state");
	*ret = text;
	return 0;
}

static int field_from_json(struct sbx_task_state *st, const struct field *f, json_t *v)
{
	char *p = (char *)st + f->off;
	if (json_is_null(v)) {
		if (f->kind == F_UNKNOWN_U64)
			*(uint64_t *)p = STATE_UNKNOWN;
		return 0;
	}
	if (f->kind == F_STR) {
		if (!json_is_string(v))
			return -EINVAL;
		snprintf(p, f->size, "%s", json_string_value(v));
		return 0;
	}
	if (f->kind == F_BOOL) {
		if (!json_is_boolean(v))
			return -EINVAL;
		*(bool *)p = json_is_true(v);
		return 0;
	}
	if (!json_is_integer(v))
		return -EINVAL;
	json_int_t n = json_integer_value(v);
	switch (f->kind) {
	case F_I64:
		*(int64_t *)p = n;
		break;
	case F_U64:
	case F_UNKNOWN_U64:
		*(uint64_t *)p = (uint64_t)n;
		break;
	case F_PID:
		*(pid_t *)p = (pid_t)n;
		break;
	case F_UINT:
		*(unsigned *)p = (unsigned)n;
		break;
	case F_INT:
		*(uint32_t *)p = (uint32_t)n;
		break;
	default:
		break;
	}
	return 0;
}

int state_from_json(const char *text, size_t len, struct sbx_task_state *ret, struct sbx_err *err)
{
	json_error_t jerr;
	json_t *o = json_loadb(text, len, 0, &jerr);
	if (!o || !json_is_object(o)) {
		json_decref(o);
		return sbx_failx(err, EINVAL, "state: not a JSON object (%s)", o ? "" : jerr.text);
	}
	struct sbx_task_state st;
	state_init(&st);
	int r = 0;
	for (size_t i = 0; i < ELEMENTSOF(fields) && r == 0; i++) {
		json_t *v = json_object_get(o, fields[i].key);
		if (v && field_from_json(&st, &fields[i], v) < 0)
			r = sbx_failx(err, EINVAL, "state: '%s' has the wrong type", fields[i].key);
	}
	json_t *s = json_object_get(o, "state");
	if (r == 0 &&
	    (!json_is_string(s) || state_status_parse(json_string_value(s), &st.status) < 0 ||
	     st.status == TASK_LOST))
		r = sbx_failx(err, EINVAL, "state: bad or missing 'state'");
	json_t *code = json_object_get(o, "exit_code");
	if (r == 0 && json_is_integer(code)) {
		st.has_exit_code = true;
		st.exit_code = (int)json_integer_value(code);
	}
	if (r == 0 && !st.id[0])
		r = sbx_failx(err, EINVAL, "state: missing 'id'");
	json_decref(o);
	if (r < 0)
		return r;
	*ret = st;
	return 0;
}

int state_read(int dirfd, struct sbx_task_state *ret, struct sbx_err *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = sbx_read_file(dirfd, STATE_FILE, STATE_FILE_MAX, &text, &len, err);
	if (r < 0)
		return r;
	return state_from_json(text, len, ret, err);
}

int state_write(int dirfd, const struct sbx_task_state *st, struct sbx_err *err)
{
	_cleanup_free_ char *text = NULL;
	int r = state_to_json(st, &text, err);
	if (r < 0)
		return r;
	size_t n = strlen(text);
	text[n] = '\n';
	return sbx_write_file_atomic(dirfd, STATE_FILE, text, n + 1, 0600, err);
}

int state_lock(int dirfd, struct sbx_err *err)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sbx_fail(err, errno, "open the task folder");
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return sbx_fail(err, e, "lock the task");
		}
	}
	return fd;
}

int state_update(int dirfd, int (*fn)(struct sbx_task_state *st, void *data), void *data,
                 struct sbx_err *err)
{
	_cleanup_close_ int lock = state_lock(dirfd, err);
	if (lock < 0)
		return lock;
	struct sbx_task_state st;
	int r = state_read(dirfd, &st, err);
	if (r < 0)
		return r;
	r = fn(&st, data);
	if (r != 0)
		return r < 0 ? r : 0;
	return state_write(dirfd, &st, err);
}

/* ---- liveness -------------------------------------------------------- */

const char *state_boot_id(void)
{
	static char id[STATE_BOOT_ID_MAX];
	static bool done;
	if (!done) {
		done = true;
		_cleanup_close_ int fd =
		    open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, id, sizeof(id) - 1) : -1;
		if (n < 0)
			n = 0;
		id[n] = '\0';
		id[strcspn(id, "\n")] = '\0';
	}
	return id;
}

int state_proc_start(const char *proc_root, pid_t pid, uint64_t *ret)
{
	if (pid <= 0)
		return -ESRCH;
	char path[128], buf[1024];
	snprintf(path, sizeof(path), "%s/%d/stat", proc_root, (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields start after the last ')' */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EINVAL;
	p += 2;
	if (*p == 'Z' || *p == 'X')
		return -ESRCH;
	/* p is field 3 (state); the start time is field 22 */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EINVAL;
		p++;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p, &end, 10);
	if (errno || end == p)
		return -EINVAL;
	*ret = v;
	return 0;
}

void state_set_owner(struct sbx_task_state *st)
{
	st->supervisor_pid = getpid();
	st->supervisor_start = 0;
	state_proc_start("/proc", st->supervisor_pid, &st->supervisor_start);
	snprintf(st->boot_id, sizeof(st->boot_id), "%s", state_boot_id());
}

bool state_owner_alive(const struct sbx_task_state *st)
{
	if (st->supervisor_pid <= 0)
		return false;
	if (st->boot_id[0] && state_boot_id()[0] && strcmp(st->boot_id, state_boot_id()))
		return false;
	uint64_t start;
	if (state_proc_start("/proc", st->supervisor_pid, &start) < 0)
		return false;
	return start == st->supervisor_start;
}

enum sbx_task_status state_effective(const struct sbx_task_state *st)
{
	if (state_status_active(st->status) && !state_owner_alive(st))
		return TASK_LOST;
	return st->status;
}
