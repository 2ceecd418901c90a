/* `trimo-sbx image ...` runs bin/trimo-sbx-image (see image_main.c). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "orchestrator/cli.h"
#include "rootfs/image.h"

int cmd_image_exec(int argc, char **argv)
{
	char path[PATH_MAX];
	int r = sbx_helper_path(IMAGE_HELPER, "TRIMO_SBX_IMAGE_HELPER", path, sizeof(path));
	if (r < 0)
		return cli_error(EXIT_RUNTIME, "image: find %s: %s", IMAGE_HELPER,
		                 sbx_strerror(-r));
	/* TRIMO_SBX_IMAGE_HELPER naming this very program would exec forever */
	struct stat a, b;
	if (stat(path, &a) == 0 && stat("/proc/self/exe", &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino)
		return cli_error(EXIT_RUNTIME, "image: %s is trimo-sbx itself, not %s", path,
		                 IMAGE_HELPER);
	char **args = calloc((size_t)argc + 2, sizeof(char *));
	if (!args)
		return cli_error(EXIT_RUNTIME, "image: %s", sbx_strerror(ENOMEM));
	args[0] = path;
	for (int i = 0; i < argc; i++)
		args[i + 1] = argv[i];
	execv(path, args);
	r = errno;
	free(args);
	return cli_error(EXIT_RUNTIME, "image: run %s: %s", path, sbx_strerror(r));
}
