/* `trimo-sbx image import|ls|rm|prune`. */
#ifndef SBX_ORCHESTRATOR_CMD_IMAGE_H
#define SBX_ORCHESTRATOR_CMD_IMAGE_H

#include <stddef.h>

#include "common/err.h"

/* argv[0] is "image".  Returns the exit code: 0 ok, 2 bad input or usage,
 * 125 runtime error. */
int cmd_image(int argc, char **argv);

/* Where images live: the user config's [storage] image_dir
 * (/var/lib/trimo-sbx/images as root, else $XDG_DATA_HOME/trimo-sbx/images). */
int image_default_store_dir(char *buf, size_t size, struct sbx_err *err);

#endif
