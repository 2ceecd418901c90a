/* An OCI image layout or a staged docker-archive, read without libarchive
 * (resolving an image the store has must not load it: see image.h). */
#ifndef SBX_ROOTFS_LAYOUT_H
#define SBX_ROOTFS_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "rootfs/digest.h"
#include "rootfs/image.h"
#include "rootfs/oci.h"

#define NO_SIZE UINT64_MAX

struct layout {
	int fd;             /* the layout's root (not owned) */
	uint64_t max_bytes; /* bound on descriptor sizes */
	struct oci_manifest manifest;
	struct oci_config config;
	struct docker_manifest docker;
};

void layout_free(struct layout *l);

/* Open path below root_fd (openat2 RESOLVE_IN_ROOT: symlinks inside stay
 * inside) as a regular file of want_size bytes (NO_SIZE: any). */
int layout_open_regular(int root_fd, const char *path, uint64_t want_size, const char *what,
                        struct sbx_err *err);

/* "blobs/sha256/<hex>" */
void layout_blob_path(const char *hex, char *buf, size_t size);

/* True when a file name carries a digest: "<hex>.json", ".../<hex>". */
bool layout_name_digest(const char *path, char hex[DIGEST_HEX_LEN + 1]);

/* index.json -> the manifest for this platform (and tag, "" for none),
 * read, checked and parsed into l->manifest; hex is its digest. */
int layout_resolve_manifest(struct layout *l, const char *tag, char hex[DIGEST_HEX_LEN + 1],
                            struct sbx_err *err);

/* Read, check and parse a config into l->config. */
int layout_read_config(struct layout *l, const char *path, const char *hex, uint64_t size,
                       struct sbx_err *err);

/* docker-archive: manifest.json into l->docker, its config into
 * l->config; hex is the config's digest (the image's key). */
int layout_resolve_docker(struct layout *l, char hex[DIGEST_HEX_LEN + 1], struct sbx_err *err);

#endif
