/* trimo-sbx: the command line. */
#include <stdio.h>
#include <string.h>

#include "orchestrator/cmd_image.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: trimo-sbx COMMAND [ARGS...]\n");
		return 2;
	}
	if (!strcmp(argv[1], "image"))
		return cmd_image(argc - 1, argv + 1);
	fprintf(stderr, "trimo-sbx: unknown command '%s'\n", argv[1]);
	return 2;
}
