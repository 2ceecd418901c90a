/* trimo-sbx wait ID... */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "orchestrator/cli.h"
#include "orchestrator/task_cli.h"

static const char wait_usage[] =
    "usage: trimo-sbx wait ID...\n"
    "\n"
    "Wait until each task ends and print its exit code (or its state when it\n"
    "has none).  Exits with the first failing task's status: its command's\n"
    "own code, or 1 (failed to start, lost); 0 when all succeeded.\n";

int cmd_wait(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return (fputs(wait_usage, stdout), EXIT_OK);
	if (argc < 2)
		return cli_error(EXIT_USAGE, "wait: give at least one task ID");
	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-')
			return cli_error(EXIT_USAGE, "wait: unknown option '%s'", argv[i]);
	struct task_ctx ctx;
	int code = task_ctx_open(&ctx, false);
	int result = EXIT_OK;
	for (int i = 1; code == EXIT_OK && i < argc; i++) {
		char id[STATE_ID_MAX];
		code = task_ctx_find(&ctx, argv[i], id);
		struct sbx_task_state st;
		struct sbx_err err = {0};
		if (code == EXIT_OK && task_wait_final(&ctx, id, -1, &st, &err) < 0)
			code = cli_report(EXIT_RUNTIME, &err);
		if (code != EXIT_OK)
			break;
		int rc = task_status_exit_code(&st);
		if (st.has_exit_code && state_effective(&st) != TASK_LOST)
			printf("%d\n", st.exit_code);
		else
			printf("%s\n", state_status_name(state_effective(&st)));
		if (rc != 0 && result == EXIT_OK)
			result = rc;
	}
	task_ctx_close(&ctx);
	return code != EXIT_OK ? code : result;
}
