#include "orchestrator/cli.h"

int cmd_check(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_error(EXIT_RUNTIME, "check: not implemented yet");
}
