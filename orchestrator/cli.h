/* Helpers shared by the CLI verbs.  Only the CLI prints; everything below
 * it returns errors. */
#ifndef SBX_ORCH_CLI_H
#define SBX_ORCH_CLI_H

#include "common/err.h"

/* Exit codes (DESIGN.md): */
enum {
	EXIT_OK = 0,
	EXIT_TASK_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_RUNTIME = 125,
	EXIT_CANNOT_EXEC = 126,
	EXIT_NOT_FOUND = 127,
};

/* "trimo-sbx: <msg>\n" on stderr; returns code. */
int cli_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_report(int code, const struct sbx_err *err);
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
/* Execs bin/trimo-sbx-image with the same arguments. */
int cmd_image_exec(int argc, char **argv);
int cmd_launch(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_followup(int argc, char **argv);

#endif
