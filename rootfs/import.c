#include "rootfs/import.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "rootfs/decomp.h"
#include "rootfs/oci.h"
#include "rootfs/unpack.h"

#define NO_SIZE         UINT64_MAX
#define MAX_INDEX_DEPTH 4
#define MAX_CANDIDATES  1024

struct ctx {
	const struct import_req *req;
	struct sbx_image *ret;
	const char *kind;
	int src_fd;    /* plain tar: the archive */
	int layout_fd; /* OCI layout (the user's or the staged one) or docker staging */
	char src_hex[DIGEST_HEX_LEN + 1];
	struct oci_manifest manifest;
	struct oci_config config;
	struct docker_manifest docker;
};

bool import_is_rootless(void)
{
	if (geteuid() != 0)
		return true;
	_cleanup_fclose_ FILE *f = fopen("/proc/self/uid_map", "re");
	unsigned long inside, outside, count;
	if (!f || fscanf(f, "%lu %lu %lu", &inside, &outside, &count) != 3)
		return true;
	return !(inside == 0 && outside == 0 && count == 4294967295UL);
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
static int open_regular(int root_fd, const char *path, uint64_t want_size, const char *what,
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

static void blob_path(const char *hex, char *buf, size_t size)
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
	_cleanup_close_ int fd = open_regular(root_fd, path, size, what, err);
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
static bool name_digest(const char *path, char hex[DIGEST_HEX_LEN + 1])
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

static void decompp(struct decomp *d)
{
	decomp_kill(d);
}

/* One blob through the decompressor into the unpacker, then the checks:
 * size and digest of the blob as stored, digest of the uncompressed
 * stream (diff_id).  NULL / NO_SIZE: nothing to check. */
static int stream_blob(struct ctx *c, struct unpacker *u, int fd, const char *blob_hex,
                       const char *diff_hex, uint64_t size, struct sbx_err *err)
{
	_cleanup_(decompp) struct decomp d = {0, -1, -1};
	int hashes = (blob_hex ? DECOMP_HASH_BLOB : 0) | (diff_hex ? DECOMP_HASH_DIFF : 0);
	int r = decomp_start(fd, c->req->max_bytes, hashes, &d, err);
	if (r < 0)
		return r;
	r = unpacker_layer(u, d.data_fd, err);
	struct decomp_result res;
	struct sbx_err ferr = {0};
	int fr = decomp_finish(&d, r >= 0, &res, &ferr);
	if (fr == 0 && res.err.errnum) {
		/* the helper saw the cause (truncated gzip, too big): ours is
		 * only its echo ("truncated tar archive") */
		*err = res.err;
		return -res.err.errnum;
	}
	if (r < 0)
		return r;
	if (fr < 0) {
		*err = ferr;
		return fr;
	}
	if (size != NO_SIZE && res.blob_size != size)
		return sbx_failx(err, EBADMSG,
		                 "size mismatch: the descriptor says %llu bytes, the blob has %llu",
		                 (unsigned long long)size, (unsigned long long)res.blob_size);
	if (blob_hex && strcmp(blob_hex, res.blob_hex))
		return sbx_failx(err, EBADMSG, "digest mismatch: the blob hashes to sha256:%s",
		                 res.blob_hex);
	if (diff_hex && strcmp(diff_hex, res.diff_hex))
		return sbx_failx(
		    err, EBADMSG,
		    "diff_id mismatch: the uncompressed layer hashes to sha256:%s, the "
		    "config says sha256:%s",
		    res.diff_hex, diff_hex);
	return 0;
}

static void progress_setup(struct ctx *c, struct unpacker *u, unsigned layers)
{
	u->progress = c->req->opts->progress;
	u->progress_data = c->req->opts->progress_data;
	u->layers = layers;
}

static void collect_stats(struct ctx *c, const struct unpacker *u, unsigned layers)
{
	struct sbx_image *r = c->ret;
	r->bytes = u->bytes_in;
	r->size = u->size;
	r->layers = layers;
	r->skipped_devices = u->skipped_devices;
	r->skipped_xattrs = u->skipped_xattrs;
	r->warnings = u->warnings;
	snprintf(r->first_warning, sizeof(r->first_warning), "%s", u->first_warning);
}

static int unpack_tar(struct ctx *c, int tree_fd, struct sbx_err *err)
{
	struct unpacker u;
	int r = unpacker_init(&u, tree_fd, c->req->rootless, false, c->req->max_bytes, err);
	progress_setup(c, &u, 1);
	u.layer = 1;
	if (r >= 0 && lseek(c->src_fd, 0, SEEK_SET) < 0)
		r = sbx_fail(err, errno, "seek");
	/* hashed again on the way (in the helper, beside the unpack): the
	 * digest we locked and will publish under must be this content's,
	 * even if the file changed since, or the digest came from sources/ */
	if (r >= 0 &&
	    (r = stream_blob(c, &u, c->src_fd, c->src_hex, NULL, NO_SIZE, err)) == -EBADMSG &&
	    sbx_str_has_prefix(err->msg, "digest mismatch"))
		r = sbx_failx(err, EBADMSG, "the file changed while it was imported");
	if (r >= 0)
		r = unpacker_finish(&u, err);
	collect_stats(c, &u, 1);
	unpacker_done(&u);
	return r;
}

/* The layers of an OCI manifest or a docker-archive, in order. */
static int unpack_layers(struct ctx *c, int tree_fd, struct sbx_err *err)
{
	bool docker = c->docker.layers != NULL;
	size_t n = docker ? c->docker.n_layers : c->manifest.n_layers;
	if (c->config.n_diff_ids != n)
		return sbx_failx(err, EBADMSG, "config: %zu diff_ids for %zu layers",
		                 c->config.n_diff_ids, n);
	struct unpacker u;
	int r = unpacker_init(&u, tree_fd, c->req->rootless, true, c->req->max_bytes, err);
	progress_setup(c, &u, (unsigned)n);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		char path[PATH_MAX], what[PATH_MAX + 32], shrt[20], named[DIGEST_HEX_LEN + 1];
		const char *hex = NULL;
		uint64_t size = NO_SIZE;
		if (docker) {
			snprintf(path, sizeof(path), "%s", c->docker.layers[i]);
			snprintf(what, sizeof(what), "layer '%s'", path);
			/* newer docker saves name blobs by digest: check it too */
			if (sbx_str_has_prefix(path, "blobs/sha256/") && name_digest(path, named))
				hex = named;
		} else {
			hex = c->manifest.layers[i].hex;
			size = c->manifest.layers[i].size;
			blob_path(hex, path, sizeof(path));
			digest_short(hex, shrt);
			snprintf(what, sizeof(what), "layer %s", shrt);
		}
		u.layer = (unsigned)i + 1;
		_cleanup_close_ int fd = open_regular(c->layout_fd, path, size, what, err);
		if (fd < 0)
			r = fd;
		else if ((r = stream_blob(c, &u, fd, hex, c->config.diff_ids[i], size, err)) < 0)
			sbx_wrap(err, "%s", what);
	}
	if (r >= 0)
		r = unpacker_finish(&u, err);
	collect_stats(c, &u, (unsigned)n);
	unpacker_done(&u);
	return r;
}

static int read_config(struct ctx *c, const char *path, const char *hex, uint64_t size,
                       struct sbx_err *err)
{
	char what[40], shrt[20];
	digest_short(hex, shrt);
	snprintf(what, sizeof(what), "config %s", shrt);
	_cleanup_free_ char *json = NULL;
	size_t len;
	int r = read_json(c->layout_fd, path, hex, size, what, &json, &len, err);
	if (r < 0)
		return r;
	if ((r = oci_parse_config(json, len, IMAGE_MAX_LAYERS, what, &c->config, err)) < 0)
		return r;
	if (c->config.platform.os[0] && strcmp(c->config.platform.os, "linux"))
		return sbx_failx(err, EBADMSG, "%s: the image is for %s, not linux", what,
		                 c->config.platform.os);
	return 0;
}

static int unpack_oci(struct ctx *c, int tree_fd, struct sbx_err *err)
{
	char path[PATH_MAX];
	blob_path(c->manifest.config.hex, path, sizeof(path));
	int r = read_config(c, path, c->manifest.config.hex, c->manifest.config.size, err);
	return r < 0 ? r : unpack_layers(c, tree_fd, err);
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
static int expand(struct ctx *c, const struct oci_desc *descs, size_t n, int depth,
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
		blob_path(descs[i].hex, path, sizeof(path));
		if ((r = read_json(c->layout_fd, path, descs[i].hex, descs[i].size, what, &json,
		                   &len, err)) < 0 ||
		    (r = oci_parse_index(json, len, c->req->max_bytes, what, &ix, err)) < 0)
			return r;
		r = expand(c, ix.manifests, ix.n, depth + 1, v, nv, err);
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
static int resolve_manifest(struct ctx *c, const char *tag, char hex[DIGEST_HEX_LEN + 1],
                            struct sbx_err *err)
{
	_cleanup_free_ char *json = NULL;
	size_t len;
	struct oci_index ix = {0};
	int r =
	    read_json(c->layout_fd, "index.json", NULL, NO_SIZE, "index.json", &json, &len, err);
	if (r == -EBADMSG && strstr(err->msg, "is missing"))
		return sbx_failx(err, EBADMSG, "not an OCI image layout: index.json is missing");
	if (r < 0 ||
	    (r = oci_parse_index(json, len, c->req->max_bytes, "index.json", &ix, err)) < 0)
		return r;
	_cleanup_free_ struct oci_desc *cand = NULL;
	size_t n = 0, pick = 0;
	struct oci_platform want;
	oci_host_platform(&want);
	if ((r = filter_tag(&ix, tag, "index.json", err)) >= 0 &&
	    (r = expand(c, ix.manifests, ix.n, 0, &cand, &n, err)) >= 0)
		r = oci_pick_platform(cand, n, &want, "index.json", &pick, err);
	oci_index_free(&ix);
	if (r < 0)
		return r;
	char what[40], shrt[20], path[PATH_MAX];
	digest_short(cand[pick].hex, shrt);
	snprintf(what, sizeof(what), "manifest %s", shrt);
	blob_path(cand[pick].hex, path, sizeof(path));
	free(json);
	json = NULL;
	if ((r = read_json(c->layout_fd, path, cand[pick].hex, cand[pick].size, what, &json, &len,
	                   err)) < 0)
		return r;
	if ((r = oci_parse_manifest(json, len, c->req->max_bytes, IMAGE_MAX_LAYERS, what,
	                            &c->manifest, err)) < 0)
		return r;
	memcpy(hex, cand[pick].hex, DIGEST_HEX_LEN + 1);
	return 0;
}

/* docker-archive: manifest.json names the config; the image's key is the
 * config's digest (there is no manifest digest to use). */
static int resolve_docker(struct ctx *c, char hex[DIGEST_HEX_LEN + 1], struct sbx_err *err)
{
	_cleanup_free_ char *json = NULL, *cfg = NULL;
	size_t len, clen;
	int r = read_json(c->layout_fd, "manifest.json", NULL, NO_SIZE, "manifest.json", &json,
	                  &len, err);
	if (r == -EBADMSG && strstr(err->msg, "is missing"))
		return sbx_failx(err, EBADMSG, "not a docker archive: manifest.json is missing");
	if (r < 0 || (r = docker_parse_manifest(json, len, IMAGE_MAX_LAYERS, &c->docker, err)) < 0)
		return r;
	r = read_json(c->layout_fd, c->docker.config, NULL, NO_SIZE, "config", &cfg, &clen, err);
	if (r < 0)
		return r;
	struct digest_ctx d;
	digest_init(&d);
	digest_update(&d, cfg, clen);
	digest_final_hex(&d, hex);
	char named[DIGEST_HEX_LEN + 1];
	if (name_digest(c->docker.config, named) && strcmp(named, hex))
		return sbx_failx(err, EBADMSG,
		                 "config '%s': digest mismatch: the file hashes to sha256:%s",
		                 c->docker.config, hex);
	return read_config(c, c->docker.config, hex, NO_SIZE, err);
}

static char *meta_json(struct ctx *c, const char *hex)
{
	json_t *o = json_pack("{s:s+, s:s, s:s, s:I, s:I, s:I, s:i}", "digest", "sha256:", hex,
	                      "source", c->req->source, "kind", c->kind, "created",
	                      (json_int_t)time(NULL), "size", (json_int_t)c->ret->size, "bytes",
	                      (json_int_t)c->ret->bytes, "layers", (int)c->ret->layers);
	if (!o)
		return NULL;
	if (c->config.config) {
		json_t *cfg = json_loads(c->config.config, 0, NULL);
		if (cfg)
			json_object_set_new(o, "config", cfg);
	}
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

typedef int (*unpack_fn)(struct ctx *c, int tree_fd, struct sbx_err *err);

/* Unpack the image `hex` with fn unless the store has it, under its lock:
 * concurrent imports of one image unpack it once. */
static int ensure(struct ctx *c, const char *hex, unpack_fn fn, struct sbx_err *err)
{
	struct store *st = c->req->st;
	if (store_has(st, hex))
		return 0;
	_cleanup_close_ int lock = store_lock_image(st, hex, err);
	if (lock < 0)
		return lock;
	if (store_has(st, hex))
		return 0; /* another process unpacked it while we waited */
	int r = store_clean_tmp(st, hex, NULL, err);
	if (r < 0)
		return r;
	char name[128];
	int fd = store_mktemp(st, hex, name, err);
	if (fd < 0)
		return fd;
	if ((r = fn(c, fd, err)) < 0) {
		store_drop_tmp(st, name, fd);
		return r;
	}
	_cleanup_free_ char *meta = meta_json(c, hex);
	if (!meta) {
		store_drop_tmp(st, name, fd);
		return sbx_fail(err, ENOMEM, "meta");
	}
	if ((r = store_publish(st, hex, name, fd, meta, err)) < 0) {
		store_drop_tmp(st, name, -1);
		return r;
	}
	c->ret->imported = true;
	return 0;
}

static int open_source(const char *path, struct stat *st, struct sbx_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? sbx_failx(err, ENOENT, "'%s' does not exist", path)
		                       : sbx_fail(err, errno, "open '%s'", path);
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return sbx_failx(err, EBADMSG, "'%s' is not a regular file", path);
	}
	return fd;
}

static int import_tar(struct ctx *c, char hex[DIGEST_HEX_LEN + 1], struct sbx_err *err)
{
	struct stat st;
	_cleanup_close_ int fd = open_source(c->req->src->path, &st, err);
	if (fd < 0)
		return fd;
	c->kind = "tar";
	c->src_fd = fd;
	/* a digest remembered for this very file is checked again while it
	 * streams, so a stale one cannot publish wrong content */
	if (store_source_lookup(c->req->st, &st, NULL, hex) < 0) {
		int r = digest_fd(fd, c->req->max_bytes, hex, NULL, err);
		if (r < 0)
			return r;
	}
	memcpy(c->src_hex, hex, DIGEST_HEX_LEN + 1);
	int r = ensure(c, hex, unpack_tar, err);
	if (r >= 0)
		store_source_record(c->req->st, &st, NULL, hex);
	return r;
}

static int import_oci(struct ctx *c, char hex[DIGEST_HEX_LEN + 1], struct sbx_err *err)
{
	const struct image_source *src = c->req->src;
	_cleanup_close_ int fd = open(src->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR
		           ? sbx_failx(err, ENOENT, "'%s' is not a folder", src->path)
		           : sbx_fail(err, errno, "open '%s'", src->path);
	c->kind = "oci";
	c->layout_fd = fd;
	int r = resolve_manifest(c, src->tag, hex, err);
	return r < 0 ? r : ensure(c, hex, unpack_oci, err);
}

/* oci-archive / docker-archive: the archive is unpacked into a staging
 * folder (its blobs need random access), then read like a layout. */
static int stage(struct ctx *c, int src_fd, int stage_fd, struct sbx_err *err)
{
	struct unpacker u;
	int r = unpacker_init(&u, stage_fd, true, false, c->req->max_bytes, err);
	progress_setup(c, &u, 0);
	if (r >= 0)
		r = stream_blob(c, &u, src_fd, NULL, NULL, NO_SIZE, err);
	unpacker_done(&u);
	return r < 0 ? sbx_wrap(err, "archive") : 0;
}

static int import_archive(struct ctx *c, char hex[DIGEST_HEX_LEN + 1], struct sbx_err *err)
{
	const struct image_source *src = c->req->src;
	bool docker = src->kind == SOURCE_DOCKER_ARCHIVE;
	struct stat st;
	_cleanup_close_ int fd = open_source(src->path, &st, err);
	if (fd < 0)
		return fd;
	c->kind = docker ? "docker-archive" : "oci-archive";
	if (store_source_lookup(c->req->st, &st, src->tag, hex) == 0 && store_has(c->req->st, hex))
		return 0;
	char name[128];
	int sfd = store_mktemp(c->req->st, "stage", name, err);
	if (sfd < 0)
		return sfd;
	c->layout_fd = sfd;
	int r = stage(c, fd, sfd, err);
	if (r >= 0 && docker && (r = resolve_docker(c, hex, err)) >= 0)
		r = ensure(c, hex, unpack_layers, err);
	else if (r >= 0 && !docker && (r = resolve_manifest(c, src->tag, hex, err)) >= 0)
		r = ensure(c, hex, unpack_oci, err);
	store_drop_tmp(c->req->st, name, sfd);
	c->layout_fd = -1;
	if (r >= 0)
		store_source_record(c->req->st, &st, src->tag, hex);
	return r;
}

int import_source(const struct import_req *req, char hex[DIGEST_HEX_LEN + 1], struct sbx_image *ret,
                  struct sbx_err *err)
{
	struct ctx c = {.req = req, .ret = ret, .src_fd = -1, .layout_fd = -1};
	int r;
	switch (req->src->kind) {
	case SOURCE_FILE:
		r = import_tar(&c, hex, err);
		break;
	case SOURCE_OCI:
		r = import_oci(&c, hex, err);
		break;
	case SOURCE_OCI_ARCHIVE:
	case SOURCE_DOCKER_ARCHIVE:
		r = import_archive(&c, hex, err);
		break;
	default:
		r = sbx_failx(err, EINVAL, "not an importable source");
		break;
	}
	oci_manifest_free(&c.manifest);
	oci_config_free(&c.config);
	docker_manifest_free(&c.docker);
	if (r >= 0)
		snprintf(ret->digest, sizeof(ret->digest), "sha256:%s", hex);
	return r;
}
