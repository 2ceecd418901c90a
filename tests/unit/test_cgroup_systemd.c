/* cgroup_systemd_start_scope against a stand-in for the user's systemd:
 * a private dbus-daemon and a tiny org.freedesktop.systemd1.Manager that
 * answers StartTransientUnit and emits JobRemoved; and the same stand-in on
 * a direct connection, as systemd --user serves its private socket.  It
 * checks what is sent (unit name, PIDs, Delegate=yes, CollectMode) and that
 * the wait for the job works, on any build machine.  The real manager and
 * the cgroup move: tests/integration/test_systemd_scope.py (check-vm).  The
 * bus half is skipped when dbus-daemon is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "runtime/cgroup.h"

struct mock {
	int report_fd; /* what each call carried, one line per call */
	int calls;
};

static int on_start(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct mock *mk = userdata;
	const char *name, *mode;
	uint32_t pid = 0;
	int delegate = -1, r;
	const char *collect = "-";
	if ((r = sd_bus_message_read(m, "ss", &name, &mode)) < 0)
		return r;
	if ((r = sd_bus_message_enter_container(m, 'a', "(sv)")) < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'r', "sv")) > 0) {
		const char *key;
		sd_bus_message_read(m, "s", &key);
		if (!strcmp(key, "PIDs")) {
			sd_bus_message_enter_container(m, 'v', "au");
			sd_bus_message_enter_container(m, 'a', "u");
			while (sd_bus_message_read(m, "u", &pid) > 0)
				;
			sd_bus_message_exit_container(m);
			sd_bus_message_exit_container(m);
		} else if (!strcmp(key, "Delegate")) {
			sd_bus_message_read(m, "v", "b", &delegate);
		} else if (!strcmp(key, "CollectMode")) {
			sd_bus_message_read(m, "v", "s", &collect);
		} else {
			sd_bus_message_skip(m, "v");
		}
		sd_bus_message_exit_container(m);
	}
	sd_bus_message_exit_container(m);
	char line[256];
	int n = snprintf(line, sizeof(line), "%s %s pid=%u delegate=%d collect=%s\n", name, mode,
	                 pid, delegate, collect);
	if (write(mk->report_fd, line, (size_t)n) != n)
		return -EIO;
	mk->calls++;
	const char *job = "/org/freedesktop/systemd1/job/7";
	r = sd_bus_reply_method_return(m, "o", job);
	if (r < 0)
		return r;
	/* a unit named ...-failing-... gets a failed job, as systemd reports it */
	return sd_bus_emit_signal(sd_bus_message_get_bus(m), "/org/freedesktop/systemd1",
	                          "org.freedesktop.systemd1.Manager", "JobRemoved", "uoss", 7, job,
	                          name, strstr(name, "-failing-") ? "failed" : "done");
}

static const sd_bus_vtable manager_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("StartTransientUnit", "ssa(sv)a(sa(sv))", "o", on_start,
                  SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL("JobRemoved", "uoss", 0),
    SD_BUS_VTABLE_END,
};

static void serve(sd_bus *bus, struct mock *mk, int ready_fd, int want_calls)
{
	while (mk->calls < want_calls) {
		int r = sd_bus_process(bus, NULL);
		if (r < 0)
			_exit(4);
		if (r == 0)
			sd_bus_wait(bus, UINT64_MAX);
	}
	sd_bus_flush(bus);
	/* stay until the client has read the signal */
	char c;
	(void)!read(ready_fd, &c, 1);
	_exit(0);
}

static void run_mock(int report_fd, int ready_fd, int want_calls)
{
	alarm(20);
	sd_bus *bus = NULL;
	struct mock mk = {.report_fd = report_fd};
	if (sd_bus_open_user(&bus) < 0 ||
	    sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/systemd1",
	                             "org.freedesktop.systemd1.Manager", manager_vtable, &mk) < 0 ||
	    sd_bus_request_name(bus, "org.freedesktop.systemd1", 0) < 0)
		_exit(2);
	if (write(ready_fd, "r", 1) != 1)
		_exit(3);
	serve(bus, &mk, ready_fd, want_calls);
}

/* The stand-in as `systemd --user` serves $XDG_RUNTIME_DIR/systemd/private:
 * a direct connection, no bus daemon, so no sender names on its signals. */
static void run_direct_mock(const char *path, int report_fd, int ready_fd)
{
	alarm(20);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0)
		_exit(2);
	if (write(ready_fd, "r", 1) != 1)
		_exit(3);
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	sd_bus *bus = NULL;
	sd_id128_t id;
	struct mock mk = {.report_fd = report_fd};
	if (fd < 0 || sd_id128_randomize(&id) < 0 || sd_bus_new(&bus) < 0 ||
	    sd_bus_set_fd(bus, fd, fd) < 0 || sd_bus_set_server(bus, 1, id) < 0 ||
	    sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/systemd1",
	                             "org.freedesktop.systemd1.Manager", manager_vtable, &mk) < 0 ||
	    sd_bus_start(bus) < 0)
		_exit(4);
	serve(bus, &mk, ready_fd, 1);
}

struct env {
	char dir[64];
	pid_t daemon, mock;
	int report[2], ready[2];
};

static int setup(void **state)
{
	if (access("/usr/bin/dbus-daemon", X_OK) != 0) {
		*state = NULL;
		return 0;
	}
	struct env *e = calloc(1, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/trimo-dbus-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	char addr[128];
	snprintf(addr, sizeof(addr), "unix:path=%s/bus", e->dir);
	e->daemon = fork();
	if (e->daemon == 0) {
		alarm(30);
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execl("/usr/bin/dbus-daemon", "dbus-daemon", "--session", "--nofork", "--nopidfile",
		      "--address", addr, (char *)NULL);
		_exit(127);
	}
	char sock[128];
	snprintf(sock, sizeof(sock), "%s/bus", e->dir);
	for (int i = 0; i < 500 && access(sock, F_OK) != 0; i++)
		usleep(10000);
	assert_int_equal(access(sock, F_OK), 0);
	setenv("DBUS_SESSION_BUS_ADDRESS", addr, 1);
	assert_int_equal(pipe(e->report), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, e->ready), 0);
	e->mock = fork();
	if (e->mock == 0) {
		close(e->report[0]);
		close(e->ready[0]);
		run_mock(e->report[1], e->ready[1], 2);
	}
	close(e->report[1]);
	close(e->ready[1]);
	char c;
	assert_int_equal(read(e->ready[0], &c, 1), 1);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	if (!e)
		return 0;
	close(e->ready[0]);
	close(e->report[0]);
	kill(e->mock, SIGKILL);
	kill(e->daemon, SIGTERM);
	waitpid(e->mock, NULL, 0);
	waitpid(e->daemon, NULL, 0);
	unsetenv("DBUS_SESSION_BUS_ADDRESS");
	struct sbx_err err = {0};
	sbx_rm_rf_at(AT_FDCWD, e->dir, &err);
	free(e);
	return 0;
}

static void read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	while (n + 1 < size) {
		ssize_t r = read(fd, buf + n, 1);
		assert_int_equal(r, 1);
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
}

static void test_start_scope(void **state)
{
	struct env *e = *state;
	if (!e) {
		print_message("skipped: no /usr/bin/dbus-daemon\n");
		skip();
	}
	struct sbx_err err = {0};
	int r = cgroup_systemd_start_scope("trimo-jwt-0123abcd.scope", 4242, NULL, &err);
	if (r < 0)
		fail_msg("start_scope: %s", err.msg);
	char line[256];
	read_line(e->report[0], line, sizeof(line));
	assert_string_equal(line, "trimo-jwt-0123abcd.scope fail pid=4242 delegate=1 "
	                          "collect=inactive-or-failed\n");

	/* a failed job is an error that says so */
	r = cgroup_systemd_start_scope("trimo-failing-0123abcd.scope", 4242, NULL, &err);
	assert_int_equal(r, -EIO);
	assert_string_equal(err.msg, "start trimo-failing-0123abcd.scope: job failed (`journalctl "
	                             "--user -u trimo-failing-0123abcd.scope`)");
	read_line(e->report[0], line, sizeof(line));
	assert_string_equal(line, "trimo-failing-0123abcd.scope fail pid=4242 delegate=1 "
	                          "collect=inactive-or-failed\n");
}

/* No user bus (no dbus-user-session on the host): the manager's own
 * socket serves, and JobRemoved is matched without a sender. */
static void test_start_scope_private_socket(void **state)
{
	(void)state;
	char dir[] = "/tmp/trimo-sdpriv-XXXXXX", sub[64], sock[96];
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/systemd", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(sock, sizeof(sock), "%s/private", sub);
	int report[2], ready[2];
	assert_int_equal(pipe(report), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, ready), 0);
	pid_t mock = fork();
	if (mock == 0) {
		close(report[0]);
		close(ready[0]);
		run_direct_mock(sock, report[1], ready[1]);
	}
	close(report[1]);
	close(ready[1]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	char *saved_rt = getenv("XDG_RUNTIME_DIR") ? strdup(getenv("XDG_RUNTIME_DIR")) : NULL;
	char *saved_bus =
	    getenv("DBUS_SESSION_BUS_ADDRESS") ? strdup(getenv("DBUS_SESSION_BUS_ADDRESS")) : NULL;
	unsetenv("DBUS_SESSION_BUS_ADDRESS");
	setenv("XDG_RUNTIME_DIR", dir, 1);
	struct sbx_err err = {0};
	int r = cgroup_systemd_start_scope("trimo-direct-0123abcd.scope", 4242, NULL, &err);
	char line[256] = "";
	if (r >= 0)
		read_line(report[0], line, sizeof(line));
	close(ready[0]);
	close(report[0]);
	kill(mock, SIGKILL);
	waitpid(mock, NULL, 0);
	unsetenv("XDG_RUNTIME_DIR");
	if (saved_rt)
		setenv("XDG_RUNTIME_DIR", saved_rt, 1);
	if (saved_bus)
		setenv("DBUS_SESSION_BUS_ADDRESS", saved_bus, 1);
	free(saved_rt);
	free(saved_bus);
	struct sbx_err e2 = {0};
	sbx_rm_rf_at(AT_FDCWD, dir, &e2);
	if (r < 0)
		fail_msg("start_scope: %s", err.msg);
	assert_string_equal(line, "trimo-direct-0123abcd.scope fail pid=4242 delegate=1 "
	                          "collect=inactive-or-failed\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_start_scope, setup, teardown),
	    cmocka_unit_test(test_start_scope_private_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
