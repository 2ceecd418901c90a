/* The rootless v2 fallback: ask the user's systemd for a transient scope
 * with Delegate=yes holding the caller (crun and podman do the same), over
 * the user bus, or the manager's own socket where the host has no user
 * bus.  The user manager runs only while user@UID.service does: a login
 * session, or `loginctl enable-linger`.  Callers reached through su or a CI
 * job often have none; the error then says so. */
#include "runtime/cgroup.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#define SCOPE_TIMEOUT_USEC (10ULL * 1000 * 1000)

struct job_wait {
	const char *unit;
	bool done;
	char result[32];
};

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct job_wait *w = userdata;
	uint32_t id;
	const char *path, *unit, *result;
	(void)error;
	if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
		return 0;
	/* matched on the unit name: the signal can come before our reply */
	if (!strcmp(unit, w->unit)) {
		w->done = true;
		snprintf(w->result, sizeof(w->result), "%s", result);
	}
	return 0;
}

static uint64_t now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

static int start_unit(sd_bus *bus, const char *unit, pid_t pid, sd_bus_error *error)
{
	sd_bus_message *m = NULL, *reply = NULL;
	int r = sd_bus_message_new_method_call(
	    bus, &m, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
	    "org.freedesktop.systemd1.Manager", "StartTransientUnit");
	if (r >= 0)
		r = sd_bus_message_append(m, "ss", unit, "fail");
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(sv)");
	if (r >= 0)
		r = sd_bus_message_append(m, "(sv)(sv)(sv)(sv)", "PIDs", "au", 1, (uint32_t)pid,
		                          "Delegate", "b", 1, "Description", "s",
		                          "trimo-sbx sandbox runner",
		                          /* a scope whose start failed would stay
		                           * loaded as failed (the user's
		                           * `systemctl --user --failed`) until
		                           * reset-failed: let systemd drop it */
		                          "CollectMode", "s", "inactive-or-failed");
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r >= 0)
		r = sd_bus_message_append(m, "a(sa(sv))", 0);
	if (r >= 0)
		r = sd_bus_call(bus, m, SCOPE_TIMEOUT_USEC, error, &reply);
	sd_bus_message_unref(m);
	sd_bus_message_unref(reply);
	return r;
}

/* A D-Bus address for a socket path: bytes other than [A-Za-z0-9/_.-]
 * %-escaped, as the address syntax wants. */
static int socket_address(const char *path, char *buf, size_t size)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                           "0123456789/_.-";
	size_t n = (size_t)snprintf(buf, size, "unix:path=");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		int w = strchr(safe, *p) ? snprintf(buf + n, size - n, "%c", *p)
		                         : snprintf(buf + n, size - n, "%%%02x", *p);
		if (w < 0 || (size_t)w >= size - n)
			return -ENAMETOOLONG;
		n += (size_t)w;
	}
	return 0;
}

/* The user bus, or else the user manager's own socket: `systemd --user`
 * always listens on $XDG_RUNTIME_DIR/systemd/private (systemctl --user
 * talks to it), while a user bus at $XDG_RUNTIME_DIR/bus needs
 * dbus-user-session (or dbus-broker's user units) on the host. */
static int open_manager_bus(const char *rt, sd_bus **ret, struct sbx_err *err)
{
	sd_bus *bus = NULL;
	int r = sd_bus_open_user(&bus);
	if (r >= 0) {
		*ret = bus;
		return 0;
	}
	if (!rt)
		return sbx_fail(err, -r, "no user bus at $DBUS_SESSION_BUS_ADDRESS");
	char path[PATH_MAX], addr[3 * PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/systemd/private", rt);
	int r2 = socket_address(path, addr, sizeof(addr));
	if (r2 >= 0)
		r2 = sd_bus_new(&bus);
	if (r2 >= 0) {
		r2 = sd_bus_set_address(bus, addr);
		if (r2 >= 0)
			r2 = sd_bus_start(bus);
		if (r2 < 0)
			bus = sd_bus_unref(bus);
	}
	if (r2 < 0)
		return sbx_fail(err, -r2, "no user bus at %s/bus (%s), nor %s", rt,
		                sbx_strerror(-r), path);
	*ret = bus;
	return 0;
}

int cgroup_systemd_start_scope(const char *unit, pid_t pid, void *data, struct sbx_err *err)
{
	(void)data;
	const char *rt = getenv("XDG_RUNTIME_DIR");
	if (!rt && !getenv("DBUS_SESSION_BUS_ADDRESS"))
		return sbx_failx(err, ENOENT,
		                 "no user bus (XDG_RUNTIME_DIR is not set: no login session)");
	sd_bus *bus = NULL;
	int r = open_manager_bus(rt, &bus, err);
	if (r < 0)
		return r;
	struct job_wait w = {.unit = unit};
	sd_bus_slot *slot = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	/* A direct connection to the manager carries no sender names: match
	 * the sender only on a bus (systemctl does the same). */
	r = sd_bus_match_signal(bus, &slot,
	                        sd_bus_is_bus_client(bus) > 0 ? "org.freedesktop.systemd1" : NULL,
	                        "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
	                        "JobRemoved", on_job_removed, &w);
	if (r >= 0)
		r = start_unit(bus, unit, pid, &error);
	if (r < 0) {
		if (sd_bus_error_is_set(&error))
			sbx_failx(err, -r, "start %s: %s", unit, error.message);
		else
			sbx_fail(err, -r, "start %s", unit);
		goto out;
	}
	uint64_t deadline = now_usec() + SCOPE_TIMEOUT_USEC;
	while (!w.done) {
		r = sd_bus_process(bus, NULL);
		if (r < 0) {
			sbx_fail(err, -r, "wait for %s", unit);
			goto out;
		}
		if (r > 0)
			continue;
		uint64_t now = now_usec();
		if (now >= deadline) {
			r = sbx_failx(err, ETIMEDOUT, "systemd did not start %s in time", unit);
			goto out;
		}
		r = sd_bus_wait(bus, deadline - now);
		if (r < 0) {
			sbx_fail(err, -r, "wait for %s", unit);
			goto out;
		}
	}
	/* systemd logs the reason (e.g. it may not move pid into the scope) */
	r = strcmp(w.result, "done")
	        ? sbx_failx(err, EIO, "start %s: job %s (`journalctl --user -u %s`)", unit,
	                    w.result, unit)
	        : 0;
out:
	sd_bus_error_free(&error);
	sd_bus_slot_unref(slot);
	sd_bus_flush_close_unref(bus);
	return r < 0 ? r : 0;
}
