/* OCI image-spec and docker-archive JSON, parsed with jansson into plain
 * structs.  No I/O: callers read the blobs (size-limited) and verify their
 * digests; these functions check that the JSON says what the specs say and
 * name what is wrong ("manifest: layers[2].digest: ..."). */
#ifndef SBX_ROOTFS_OCI_H
#define SBX_ROOTFS_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "rootfs/digest.h"

enum oci_media {
	OCI_MEDIA_UNKNOWN = 0,
	OCI_MEDIA_INDEX,    /* OCI index, docker manifest list */
	OCI_MEDIA_MANIFEST, /* OCI manifest, docker schema 2 manifest */
	OCI_MEDIA_CONFIG,   /* OCI config, docker container image config */
	OCI_MEDIA_LAYER,    /* tar, tar+gzip, tar+zstd (OCI or docker) */
};

/* What a media type string is; unknown types (encrypted layers, foreign
 * blobs, artifacts) are OCI_MEDIA_UNKNOWN. */
enum oci_media oci_media_kind(const char *media_type);

struct oci_platform {
	char os[32];
	char arch[32];
	char variant[16];
};

struct oci_desc {
	char media_type[128];
	char hex[DIGEST_HEX_LEN + 1];
	uint64_t size;
	bool has_platform;
	struct oci_platform platform;
	char ref_name[128]; /* org.opencontainers.image.ref.name, or "" */
};

struct oci_index {
	struct oci_desc *manifests;
	size_t n;
};

struct oci_manifest {
	struct oci_desc config;
	struct oci_desc *layers;
	size_t n_layers;
};

struct oci_config {
	char (*diff_ids)[DIGEST_HEX_LEN + 1];
	size_t n_diff_ids;
	struct oci_platform platform;
	char *config; /* the "config" object (Env, Cmd, ...) as compact JSON, or NULL */
};

struct docker_manifest {
	char *config;  /* path inside the archive */
	char **layers; /* paths inside the archive, NULL-terminated */
	size_t n_layers;
	char **tags; /* RepoTags, NULL-terminated, may be empty */
};

/* index.json or a nested index blob.  max_size bounds descriptor sizes;
 * what names the blob in errors ("index.json", "manifest sha256:ab..."). */
int oci_parse_index(const char *json, size_t len, uint64_t max_size, const char *what,
                    struct oci_index *ret, struct sbx_err *err);
void oci_index_free(struct oci_index *ix);

/* An image manifest: config must be an image config, every layer a layer
 * media type we can unpack, at most max_layers of them. */
int oci_parse_manifest(const char *json, size_t len, uint64_t max_size, size_t max_layers,
                       const char *what, struct oci_manifest *ret, struct sbx_err *err);
void oci_manifest_free(struct oci_manifest *m);

/* An image config: rootfs.type "layers" and its diff_ids. */
int oci_parse_config(const char *json, size_t len, size_t max_layers, const char *what,
                     struct oci_config *ret, struct sbx_err *err);
void oci_config_free(struct oci_config *c);

/* docker-archive manifest.json: exactly one image. */
int docker_parse_manifest(const char *json, size_t len, size_t max_layers,
                          struct docker_manifest *ret, struct sbx_err *err);
void docker_manifest_free(struct docker_manifest *m);

/* The platform this process runs on, in OCI terms (linux/amd64,
 * linux/arm64/v8, linux/arm/v7, ...). */
void oci_host_platform(struct oci_platform *ret);

/* Format "os/arch[/variant]". */
void oci_platform_str(const struct oci_platform *p, char *buf, size_t size);

/* Pick one manifest among candidates (already expanded from nested indexes
 * and filtered by tag): the one for `want`; a candidate without a platform
 * only when it is the only candidate.  Entries whose platform is
 * unknown/unknown (build attestations) never match.  what names the source
 * in errors. */
int oci_pick_platform(const struct oci_desc *c, size_t n, const struct oci_platform *want,
                      const char *what, size_t *ret_idx, struct sbx_err *err);

#endif
