/* Image source strings (the forms are listed in image.h). */
#ifndef SBX_ROOTFS_SOURCE_H
#define SBX_ROOTFS_SOURCE_H

#include <limits.h>

#include "common/err.h"
#include "rootfs/digest.h"
#include "rootfs/image.h"

enum source_kind {
	SOURCE_FILE,           /* a plain tar; also a NAME candidate when name[0] */
	SOURCE_OCI,            /* oci:DIR[:TAG] */
	SOURCE_OCI_ARCHIVE,    /* oci-archive:FILE[:TAG] */
	SOURCE_DOCKER_ARCHIVE, /* docker-archive:FILE */
	SOURCE_DIR,            /* dir:PATH */
	SOURCE_DIGEST,         /* sha256:HEX */
};

struct image_source {
	enum source_kind kind;
	char path[PATH_MAX];       /* absolute (joined with base_dir) */
	char tag[128];             /* oci / oci-archive, or "" */
	char name[IMAGE_NAME_MAX]; /* SOURCE_FILE: the string, when it may be a name */
	char hex[DIGEST_HEX_LEN + 1];
};

/* Split and check a source string; relative paths are joined with
 * base_dir (NULL: the working directory).  Looks at the file system only
 * to tell oci:DIR:TAG from a DIR whose name has a colon. */
int source_parse(const char *source, const char *base_dir, struct image_source *ret,
                 struct sbx_err *err);

#endif
