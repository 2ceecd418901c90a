/* Reading an OCI image layout (or a staged docker-archive): index.json,
 * nested indexes, the manifest for this platform, the config, every JSON
 * blob bounded and checked against its digest.  No libarchive here:
 * resolving an image that is already in the store needs only this. */
#include "rootfs/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#define MAX_INDEX_DEPTH 4
#define MAX_CANDIDATES  1024

void layout_free(struct layout *l)
{
	oci_manifest_free(&l->manifest);
	oci_config_free(&l->config);
	docker_manifest_free(&l->docker);
}

/* Open a file below root (a layout or a staging folder): symlinks inside
 * are followed but stay inside. */
static int open_in(int root_fd, const char *path)
{
	struct open_how how = {
	    .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd;
	do
		fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
	while (fd < 0 && (errno == EAGAIN || errno == EINTR));
	return fd < 0 ? -errno : (int)fd;
}

/* Open path (below root) as a regular file of want_size bytes. */
int layout_open_regular(int root_fd, const char *path, uint64_t want_size, const char *what,
                        struct sbx_err *err)
{
	int fd = open_in(root_fd, path);
	if (fd == -ENOENT || fd == -ENOTDIR)
		return sbx_failx(err, EBADMSG, "%s: '%s' is missing", what, path);
	if (fd < 0)
		return sbx_fail(err, -fd, "%s: open '%s'", what, path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return sbx_failx(err, EBADMSG, "%s: '%s' is not a regular file", what, path);
	}
	if (want_size != NO_SIZE && (uint64_t)st.st_size != want_size) {
		close(fd);
		return sbx_failx(err, EBADMSG,
		                 "%s: size mismatch: the descriptor says %llu bytes, the blob has "
		                 "%llu",
		                 what, (unsigned long long)want_size,
		                 (unsigned long long)st.st_size);
	}
	return fd;
}

void layout_blob_path(const char *hex, char *buf, size_t size)
{
	snprintf(buf, size, "blobs/sha256/%s", hex);
}

/* Read all of fd, at most max bytes, NUL-terminated. */
static int read_all(int fd, size_t max, char **ret, size_t *ret_len)
{
	size_t cap = 4096, len = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > max)
				return -EFBIG;
			char *n = realloc(buf, cap * 2);
			if (!n)
				return -ENOMEM;
			buf = n;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max)
			return -EFBIG;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

/* Read a JSON blob (bounded) and check its digest when one is expected. */
static int read_json(int root_fd, const char *path, const char *hex, uint64_t size,
                     const char *what, char **ret, size_t *ret_len, struct sbx_err *err)
{
	if (size != NO_SIZE && size > IMAGE_MAX_JSON)
		return sbx_failx(err, EFBIG, "%s: %llu bytes is larger than the limit of %u", what,
		                 (unsigned long long)size, IMAGE_MAX_JSON);
	_cleanup_close_ int fd = layout_open_regular(root_fd, path, size, what, err);
	if (fd < 0)
		return fd;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = read_all(fd, IMAGE_MAX_JSON, &buf, &len);
	if (r == -EFBIG)
		return sbx_failx(err, EFBIG, "%s: larger than the limit of %u bytes", what,
		                 IMAGE_MAX_JSON);
	if (r < 0)
		return sbx_fail(err, -r, "%s: read '%s'", what, path);
	if (hex) {
		struct digest_ctx c;
		char got[DIGEST_HEX_LEN + 1];
		digest_init(&c);
		digest_update(&c, buf, len);
		digest_final_hex(&c, got);
		if (strcmp(got, hex))
			return sbx_failx(err, EBADMSG,
			                 "%s: digest mismatch: the blob hashes to sha256:%s", what,
			                 got);
	}
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

/* "<hex>.json" or "blobs/sha256/<hex>": the name carries the digest. */
bool layout_name_digest(const char *path, char hex[DIGEST_HEX_LEN + 1])
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (strlen(base) < DIGEST_HEX_LEN)
		return false;
	memcpy(hex, base, DIGEST_HEX_LEN);
	hex[DIGEST_HEX_LEN] = '\0';
	const char *rest = base + DIGEST_HEX_LEN;
	return digest_hex_valid(hex) && (!strcmp(rest, ".json") || !rest[0]);
}

int layout_read_config(struct layout *l, const char *path, const char *hex, uint64_t size,
                       struct sbx_err *err)
{
	char what[40], shrt[20];
	digest_short(hex, shrt);
	snprintf(what, sizeof(what), "config %s", shrt);
	_cleanup_free_ char *json = NULL;
	size_t len;
	int r = read_json(l->fd, path, hex, size, what, &json, &len, err);
	if (r < 0)
		return r;
	if ((r = oci_parse_config(json, len, IMAGE_MAX_LAYERS, what, &l->config, err)) < 0)
		return r;
	if (l->config.platform.os[0] && strcmp(l->config.platform.os, "linux"))
		return sbx_failx(err, EBADMSG, "%s: the image is for %s, not linux", what,
		                 l->config.platform.os);
	return 0;
}

static int push_desc(struct oci_desc **v, size_t *n, const struct oci_desc *d, struct sbx_err *err)
{
	if (*n >= MAX_CANDIDATES)
		return sbx_failx(err, EFBIG, "index: more than %d manifests", MAX_CANDIDATES);
	struct oci_desc *nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return sbx_fail(err, ENOMEM, "index");
	*v = nv;
	nv[(*n)++] = *d;
	return 0;
}

/* The image manifests below descs: nested indexes are read (and checked)
 * and replaced by their entries; artifacts and unknown types are left out. */
static int expand(struct layout *l, const struct oci_desc *descs, size_t n, int depth,
                  struct oci_desc **v, size_t *nv, struct sbx_err *err)
{
	for (size_t i = 0; i < n; i++) {
		enum oci_media kind = oci_media_kind(descs[i].media_type);
		int r = 0;
		if (kind == OCI_MEDIA_MANIFEST)
			r = push_desc(v, nv, &descs[i], err);
		if (kind != OCI_MEDIA_INDEX)
			continue;
		if (r < 0)
			return r;
		char what[40], shrt[20], path[PATH_MAX];
		digest_short(descs[i].hex, shrt);
		snprintf(what, sizeof(what), "index %s", shrt);
		if (depth >= MAX_INDEX_DEPTH)
			return sbx_failx(err, EBADMSG, "%s: indexes nested too deep", what);
		_cleanup_free_ char *json = NULL;
		size_t len;
		struct oci_index ix = {0};
		layout_blob_path(descs[i].hex, path, sizeof(path));
		if ((r = read_json(l->fd, path, descs[i].hex, descs[i].size, what, &json, &len,
		                   err)) < 0 ||
		    (r = oci_parse_index(json, len, l->max_bytes, what, &ix, err)) < 0)
			return r;
		r = expand(l, ix.manifests, ix.n, depth + 1, v, nv, err);
		oci_index_free(&ix);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Keep the top-level entries tagged `tag`; without a tag, refuse a layout
 * that holds several differently tagged images. */
static int filter_tag(struct oci_index *ix, const char *tag, const char *what, struct sbx_err *err)
{
	char tags[256] = "";
	size_t kept = 0, ntags = 0;
	for (size_t i = 0; i < ix->n; i++) {
		const char *t = ix->manifests[i].ref_name;
		if (t[0] && !strstr(tags, t) && strlen(tags) + strlen(t) + 3 < sizeof(tags)) {
			snprintf(tags + strlen(tags), sizeof(tags) - strlen(tags), "%s%s",
			         ntags ? ", " : "", t);
			ntags++;
		}
		if (!tag[0] || !strcmp(t, tag))
			ix->manifests[kept++] = ix->manifests[i];
	}
	if (tag[0] && kept == 0)
		return sbx_failx(err, ENOENT, "%s: no image tagged '%s' (tags: %s)", what, tag,
		                 tags[0] ? tags : "none");
	if (!tag[0] && ntags > 1)
		return sbx_failx(err, EBADMSG,
		                 "%s: %zu tagged images; name one with :TAG (tags: %s)", what,
		                 ntags, tags);
	ix->n = kept;
	return 0;
}

/* index.json -> the manifest for this platform (and tag), read and checked. */
int layout_resolve_manifest(struct layout *l, const char *tag, char hex[DIGEST_HEX_LEN + 1],
                            struct sbx_err *err)
{
	_cleanup_free_ char *json = NULL;
	size_t len;
	struct oci_index ix = {0};
	int r = read_json(l->fd, "index.json", NULL, NO_SIZE, "index.json", &json, &len, err);
	if (r == -EBADMSG && strstr(err->msg, "is missing"))
		return sbx_failx(err, EBADMSG, "not an OCI image layout: index.json is missing");
	if (r < 0 || (r = oci_parse_index(json, len, l->max_bytes, "index.json", &ix, err)) < 0)
		return r;
	_cleanup_free_ struct oci_desc *cand = NULL;
	size_t n = 0, pick = 0;
	struct oci_platform want;
	oci_host_platform(&want);
	if ((r = filter_tag(&ix, tag, "index.json", err)) >= 0 &&
	    (r = expand(l, ix.manifests, ix.n, 0, &cand, &n, err)) >= 0)
		r = oci_pick_platform(cand, n, &want, "index.json", &pick, err);
	oci_index_free(&ix);
	if (r < 0)
		return r;
	char what[40], shrt[20], path[PATH_MAX];
	digest_short(cand[pick].hex, shrt);
	snprintf(what, sizeof(what), "manifest %s", shrt);
	layout_blob_path(cand[pick].hex, path, sizeof(path));
	free(json);
	json = NULL;
	if ((r = read_json(l->fd, path, cand[pick].hex, cand[pick].size, what, &json, &len, err)) <
	    0)
		return r;
	if ((r = oci_parse_manifest(json, len, l->max_bytes, IMAGE_MAX_LAYERS, what, &l->manifest,
	                            err)) < 0)
		return r;
	memcpy(hex, cand[pick].hex, DIGEST_HEX_LEN + 1);
	return 0;
}

/* docker-archive: manifest.json names the config; the image's key is the
 * config's digest (there is no manifest digest to use). */
int layout_resolve_docker(struct layout *l, char hex[DIGEST_HEX_LEN + 1], struct sbx_err *err)
{
	_cleanup_free_ char *json = NULL, *cfg = NULL;
	size_t len, clen;
	int r = read_json(l->fd, "manifest.json", NULL, NO_SIZE, "manifest.json", &json, &len, err);
	if (r == -EBADMSG && strstr(err->msg, "is missing"))
		return sbx_failx(err, EBADMSG, "not a docker archive: manifest.json is missing");
	if (r < 0 || (r = docker_parse_manifest(json, len, IMAGE_MAX_LAYERS, &l->docker, err)) < 0)
		return r;
	r = read_json(l->fd, l->docker.config, NULL, NO_SIZE, "config", &cfg, &clen, err);
	if (r < 0)
		return r;
	struct digest_ctx d;
	digest_init(&d);
	digest_update(&d, cfg, clen);
	digest_final_hex(&d, hex);
	char named[DIGEST_HEX_LEN + 1];
	if (layout_name_digest(l->docker.config, named) && strcmp(named, hex))
		return sbx_failx(err, EBADMSG,
		                 "config '%s': digest mismatch: the file hashes to sha256:%s",
		                 l->docker.config, hex);
	return layout_read_config(l, l->docker.config, hex, NO_SIZE, err);
}
