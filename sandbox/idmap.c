#include "sandbox/idmap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

int idmap_format(char *buf, size_t size, unsigned inside, unsigned outside, unsigned count)
{
	int n = snprintf(buf, size, "%u %u %u\n", inside, outside, count);
	return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}

static int write_proc(pid_t pid, const char *file, const char *text, struct sbx_err *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return sbx_fail(err, errno, "open %s", path);
	ssize_t n = write(fd, text, strlen(text));
	if (n < 0)
		return sbx_fail(err, errno, "write %s", path);
	if ((size_t)n != strlen(text))
		return sbx_failx(err, EIO, "write %s: short write", path);
	return 0;
}

int idmap_parent(pid_t pid, uid_t uid, gid_t gid, struct sbx_err *err)
{
	char line[64];
	int r = write_proc(pid, "setgroups", "deny", err);
	if (r < 0 && r != -ENOENT)
		return r;
	idmap_format(line, sizeof(line), 0, gid, 1);
	r = write_proc(pid, "gid_map", line, err);
	if (r < 0)
		return r;
	idmap_format(line, sizeof(line), 0, uid, 1);
	return write_proc(pid, "uid_map", line, err);
}

void idmap_diagnose(char *buf, size_t size)
{
	buf[0] = '\0';
	if (sbx_read_long("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", -1) == 1 &&
	    geteuid() != 0) {
		snprintf(
		    buf, size,
		    "AppArmor restricts unprivileged user namespaces "
		    "(kernel.apparmor_restrict_unprivileged_userns=1, Ubuntu 23.10 and later); "
		    "allow trimo-sbx with an AppArmor profile granting 'userns,' "
		    "(see `trimo-sbx check`), or as a last resort run "
		    "`sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`");
		return;
	}
	if (sbx_read_long("/proc/sys/user/max_user_namespaces", -1) == 0) {
		snprintf(buf, size,
		         "user namespaces are disabled (user.max_user_namespaces=0); "
		         "enable them with `sudo sysctl user.max_user_namespaces=15000`");
		return;
	}
	if (sbx_read_long("/proc/sys/kernel/unprivileged_userns_clone", -1) == 0 &&
	    geteuid() != 0) {
		snprintf(buf, size,
		         "unprivileged user namespaces are disabled "
		         "(kernel.unprivileged_userns_clone=0); enable them with "
		         "`sudo sysctl kernel.unprivileged_userns_clone=1`");
		return;
	}
}
