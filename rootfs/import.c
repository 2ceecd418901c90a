/* The import of one source into the store in this process: the unpack
 * with libarchive, its helper process, the checks, the publish.  The
 * public entry is image_unpack_here() (image.h). */
#include "rootfs/image.h"

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
#include "rootfs/layout.h"
#include "rootfs/source.h"
#include "rootfs/store.h"
#include "rootfs/oci.h"
#include "rootfs/unpack.h"

struct import_req {
	struct store *st;
	const struct image_source *src;
	const char *source; /* as the user wrote it, for meta */
	const struct image_import_opts *opts;
	uint64_t max_bytes;
	bool rootless;
};

struct ctx {
	const struct import_req *req;
	struct sbx_image *ret;
	const char *kind;
	int src_fd; /* plain tar: the archive */
	char src_hex[DIGEST_HEX_LEN + 1];
	struct layout lay; /* the OCI layout (the user's or staged) or docker staging */
};

/* True when this process cannot chown or mknod freely: euid != 0, or
 * root in a user namespace without the full id map. */
static bool is_rootless(void)
{
	if (geteuid() != 0)
		return true;
	_cleanup_fclose_ FILE *f = fopen("/proc/self/uid_map", "re");
	unsigned long inside, outside, count;
	if (!f || fscanf(f, "%lu %lu %lu", &inside, &outside, &count) != 3)
		return true;
	return !(inside == 0 && outside == 0 && count == 4294967295UL);
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
	bool docker = c->lay.docker.layers != NULL;
	size_t n = docker ? c->lay.docker.n_layers : c->lay.manifest.n_layers;
	if (c->lay.config.n_diff_ids != n)
		return sbx_failx(err, EBADMSG, "config: %zu diff_ids for %zu layers",
		                 c->lay.config.n_diff_ids, n);
	struct unpacker u;
	int r = unpacker_init(&u, tree_fd, c->req->rootless, true, c->req->max_bytes, err);
	progress_setup(c, &u, (unsigned)n);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		char path[PATH_MAX], what[PATH_MAX + 32], shrt[20], named[DIGEST_HEX_LEN + 1];
		const char *hex = NULL;
		uint64_t size = NO_SIZE;
		if (docker) {
			snprintf(path, sizeof(path), "%s", c->lay.docker.layers[i]);
			snprintf(what, sizeof(what), "layer '%s'", path);
			/* newer docker saves name blobs by digest: check it too */
			if (sbx_str_has_prefix(path, "blobs/sha256/") &&
			    layout_name_digest(path, named))
				hex = named;
		} else {
			hex = c->lay.manifest.layers[i].hex;
			size = c->lay.manifest.layers[i].size;
			layout_blob_path(hex, path, sizeof(path));
			digest_short(hex, shrt);
			snprintf(what, sizeof(what), "layer %s", shrt);
		}
		u.layer = (unsigned)i + 1;
		_cleanup_close_ int fd = layout_open_regular(c->lay.fd, path, size, what, err);
		if (fd < 0)
			r = fd;
		else if ((r = stream_blob(c, &u, fd, hex, c->lay.config.diff_ids[i], size, err)) <
		         0)
			sbx_wrap(err, "%s", what);
	}
	if (r >= 0)
		r = unpacker_finish(&u, err);
	collect_stats(c, &u, (unsigned)n);
	unpacker_done(&u);
	return r;
}

static int unpack_oci(struct ctx *c, int tree_fd, struct sbx_err *err)
{
	char path[PATH_MAX];
	layout_blob_path(c->lay.manifest.config.hex, path, sizeof(path));
	int r = layout_read_config(&c->lay, path, c->lay.manifest.config.hex,
	                           c->lay.manifest.config.size, err);
	return r < 0 ? r : unpack_layers(c, tree_fd, err);
}

static char *meta_json(struct ctx *c, const char *hex)
{
	json_t *o = json_pack("{s:s+, s:s, s:s, s:I, s:I, s:I, s:i}", "digest", "sha256:", hex,
	                      "source", c->req->source, "kind", c->kind, "created",
	                      (json_int_t)time(NULL), "size", (json_int_t)c->ret->size, "bytes",
	                      (json_int_t)c->ret->bytes, "layers", (int)c->ret->layers);
	if (!o)
		return NULL;
	if (c->lay.config.config) {
		json_t *cfg = json_loads(c->lay.config.config, 0, NULL);
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
	c->lay.fd = fd;
	int r = layout_resolve_manifest(&c->lay, src->tag, hex, err);
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
	c->lay.fd = sfd;
	int r = stage(c, fd, sfd, err);
	if (r >= 0 && docker && (r = layout_resolve_docker(&c->lay, hex, err)) >= 0)
		r = ensure(c, hex, unpack_layers, err);
	else if (r >= 0 && !docker &&
	         (r = layout_resolve_manifest(&c->lay, src->tag, hex, err)) >= 0)
		r = ensure(c, hex, unpack_oci, err);
	store_drop_tmp(c->req->st, name, sfd);
	c->lay.fd = -1;
	if (r >= 0)
		store_source_record(c->req->st, &st, src->tag, hex);
	return r;
}

static int import_source(const struct import_req *req, char hex[DIGEST_HEX_LEN + 1],
                         struct sbx_image *ret, struct sbx_err *err)
{
	struct ctx c = {.req = req, .ret = ret, .src_fd = -1, .lay = {.fd = -1}};
	c.lay.max_bytes = req->max_bytes;
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
	layout_free(&c.lay);
	return r;
}

static inline void store_closep(struct store *s)
{
	store_close(s);
}

int image_unpack_here(const char *store_dir, const char *source, const char *base_dir,
                      const struct image_import_opts *opts, struct sbx_image *ret,
                      struct sbx_err *err)
{
	struct sbx_image img = {.hold_fd = -1};
	struct image_source src;
	int r = source_parse(source, base_dir, &src, err);
	if (r < 0)
		return r;
	_cleanup_(store_closep) struct store st = {.fd = -1};
	if ((r = store_open(store_dir, &st, err)) < 0)
		return r;
	struct import_req req = {
	    .st = &st,
	    .src = &src,
	    .source = source,
	    .opts = opts,
	    .max_bytes = opts->max_bytes ? opts->max_bytes : IMAGE_DEFAULT_MAX_BYTES,
	    .rootless = is_rootless(),
	};
	char hex[DIGEST_HEX_LEN + 1];
	if ((r = import_source(&req, hex, &img, err)) < 0)
		return r;
	snprintf(img.digest, sizeof(img.digest), "sha256:%s", hex);
	if ((size_t)snprintf(img.path, sizeof(img.path), "%s/rootfs/%s", st.path, hex) >=
	    sizeof(img.path))
		return sbx_failx(err, ENAMETOOLONG, "image store path '%s' is too long", st.path);
	*ret = img;
	return 0;
}
