/* trimo-sbx-scope UNIT PID: put PID into a new transient systemd user
 * scope UNIT with Delegate=yes (runtime/cgroup_systemd.c).  Exec'ed by
 * trimo-sbx only on the rootless cgroup v2 path that needs it, so that
 * libsystemd is loaded there and nowhere else.  Prints the error, if any,
 * as one line on stdout. */
#include <stdio.h>
#include <stdlib.h>

#include "runtime/cgroup.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: trimo-sbx-scope UNIT PID\n");
		return 2;
	}
	struct sbx_err err = {0};
	if (cgroup_systemd_start_scope(argv[1], (pid_t)atoi(argv[2]), NULL, &err) < 0) {
		printf("%s\n", err.msg);
		return 1;
	}
	return 0;
}
