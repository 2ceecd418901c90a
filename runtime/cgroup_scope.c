/* The transient systemd scope through a helper process: sd-bus (libsystemd,
 * with its compression and crypto libraries) is loaded only by
 * bin/trimo-sbx-scope, on the rare path that needs it, never by every
 * sandbox start and never by a long-lived supervisor. */
#include "runtime/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

int cgroup_start_scope_helper(const char *unit, pid_t pid, void *data, struct sbx_err *err)
{
	(void)data;
	char path[PATH_MAX], pidbuf[32];
	int r = sbx_helper_path("trimo-sbx-scope", NULL, path, sizeof(path));
	if (r < 0)
		return sbx_fail(err, -r, "systemd scope: find trimo-sbx-scope");
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)pid);
	int out[2];
	if (pipe2(out, O_CLOEXEC) < 0)
		return sbx_fail(err, errno, "systemd scope: pipe");
	char *argv[] = {path, (char *)unit, pidbuf, NULL};
	pid_t child;
	r = sbx_spawn(path, argv, -1, out[1], -1, -1, &child);
	close(out[1]);
	_cleanup_close_ int rd = out[0];
	if (r < 0)
		return sbx_fail(err, -r, "systemd scope: run %s", path);
	char msg[SBX_ERR_MSG_MAX] = "";
	size_t len = 0;
	ssize_t n;
	while (len + 1 < sizeof(msg) && (n = read(rd, msg + len, sizeof(msg) - 1 - len)) > 0)
		len += (size_t)n;
	msg[len] = '\0';
	msg[strcspn(msg, "\n")] = '\0';
	int status;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	return sbx_failx(err, EIO, "%s", msg[0] ? msg : "trimo-sbx-scope failed");
}
