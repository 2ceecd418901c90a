/* The import of one source into the store (used by image.c). */
#ifndef SBX_ROOTFS_IMPORT_H
#define SBX_ROOTFS_IMPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "rootfs/digest.h"
#include "rootfs/image.h"
#include "rootfs/source.h"
#include "rootfs/store.h"

struct import_req {
	struct store *st;
	const struct image_source *src;
	const char *source; /* as the user wrote it, for meta */
	const struct image_import_opts *opts;
	uint64_t max_bytes;
	bool rootless;
};

/* Import a SOURCE_FILE, SOURCE_OCI, SOURCE_OCI_ARCHIVE or
 * SOURCE_DOCKER_ARCHIVE source unless the store has it; fills hex and
 * ret's digest, imported flag and unpack statistics. */
int import_source(const struct import_req *req, char hex[DIGEST_HEX_LEN + 1], struct sbx_image *ret,
                  struct sbx_err *err);

/* True when this process cannot chown or mknod freely: euid != 0, or
 * root in a user namespace without the full id map. */
bool import_is_rootless(void);

#endif
