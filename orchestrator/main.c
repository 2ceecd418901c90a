/* trimo-sbx: the command line. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: trimo-sbx COMMAND [ARGS...]\n");
		return 2;
	}
	fprintf(stderr, "trimo-sbx: unknown command '%s'\n", argv[1]);
	return 2;
}
