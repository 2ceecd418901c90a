/* Unpack tar streams (a plain rootfs or the layers of an image, in order)
 * into a tree with libarchive's disk writer, after our own checks of every
 * entry.  The unpacker changes the working directory to the tree for its
 * life (libarchive resolves entry paths from the cwd and its SECURE_*
 * checks need that) and restores it in unpacker_done(). */
#ifndef SBX_ROOTFS_UNPACK_H
#define SBX_ROOTFS_UNPACK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/err.h"
#include "rootfs/image.h"
#include "rootfs/tree.h"

struct unpacker {
	int root_fd;
	int saved_cwd;
	bool rootless;  /* no chown, no devices, no security./trusted. xattrs */
	bool whiteouts; /* image layers: .wh. entries are whiteouts */
	uint64_t max_bytes;
	/* results */
	uint64_t bytes_in; /* uncompressed stream bytes, all layers */
	uint64_t claimed;  /* sum of entry sizes, checked against max_bytes */
	uint64_t size;     /* apparent size of the regular files written */
	uint64_t entries;  /* entries of the current layer */
	unsigned skipped_devices, skipped_xattrs, warnings;
	char first_warning[160];
	/* progress */
	image_progress_fn progress;
	void *progress_data;
	unsigned layer, layers;
	struct timespec start, last;
	/* state */
	struct pathset layer_paths;
	struct dirmodes dirmodes;
	char *buf;
};

/* Start unpacking into the (empty) directory root_fd. */
int unpacker_init(struct unpacker *u, int root_fd, bool rootless, bool whiteouts,
                  uint64_t max_bytes, struct sbx_err *err);

/* Unpack one uncompressed tar stream read from data_fd up to the tar's
 * end.  Errors name the entry ("entry '../x': path escapes the image
 * root"); the caller adds which layer.  Fails with EBADMSG for a stream
 * without any entry when !whiteouts (an empty rootfs is a mistake). */
int unpacker_layer(struct unpacker *u, int data_fd, struct sbx_err *err);

/* After the last layer: restore the directory modes held back. */
int unpacker_finish(struct unpacker *u, struct sbx_err *err);

/* Free everything and restore the working directory (always call). */
void unpacker_done(struct unpacker *u);

/* The ARCHIVE_EXTRACT_* flags of the disk writer (for the tests). */
int unpack_disk_flags(bool rootless);

#endif
