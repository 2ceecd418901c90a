/* trimo-sbx logs [-f] [-t] [--run N] ID */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"
#include "orchestrator/cli.h"
#include "orchestrator/task_cli.h"

static const char logs_usage[] =
    "usage: trimo-sbx logs [-f] [-t] [--run N] ID\n"
    "\n"
    "Print a task's output: stdout and stderr interleaved as written, every run\n"
    "in turn (or only run N).\n"
    "\n"
    "Options:\n"
    "  -f, --follow       keep printing until the task ends\n"
    "  -t, --timestamps   show each line's time stamp (UTC, when it was written)\n"
    "  --run N            only run N (1 = the launch, 2 = the first followup, ...)\n";

int cmd_logs(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"follow", no_argument, NULL, 'f'},
	    {"timestamps", no_argument, NULL, 't'},
	    {"run", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool follow = false, stamps = false;
	uint64_t run = 0;
	struct sbx_err err = {0};
	opterr = 0;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "+fth", opts, NULL)) != -1) {
		if (c == 'f')
			follow = true;
		else if (c == 't')
			stamps = true;
		else if (c == 'r') {
			if (sbx_parse_u64(optarg, "--run", 1, 1000000, &run, &err) < 0)
				return cli_error(EXIT_USAGE, "logs: %s", err.msg);
		} else if (c == 'h')
			return (fputs(logs_usage, stdout), EXIT_OK);
		else
			return cli_error(EXIT_USAGE,
			                 "logs: unknown option '%s' (see trimo-sbx logs --help)",
			                 argv[optind - 1]);
	}
	if (optind != argc - 1)
		return cli_error(EXIT_USAGE, "logs: give one task ID (see trimo-sbx logs --help)");
	struct task_ctx ctx;
	char id[STATE_ID_MAX];
	int code = task_ctx_open(&ctx, false);
	if (code == EXIT_OK)
		code = task_ctx_find(&ctx, argv[optind], id);
	if (code == EXIT_OK && task_print_log(&ctx, id, (unsigned)run, follow, stamps, &err) < 0)
		code = err.msg[0]
		           ? cli_report(err.errnum == ENOENT ? EXIT_USAGE : EXIT_RUNTIME, &err)
		           : EXIT_OK; /* stdout went away */
	task_ctx_close(&ctx);
	return code;
}
