/* The public image API (image.h): sources to stored trees, holds, and the
 * store's housekeeping. */
#include "rootfs/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "rootfs/layout.h"
#include "rootfs/source.h"
#include "rootfs/store.h"

static inline void store_closep(struct store *s)
{
	store_close(s);
}
#define _cleanup_store_ _cleanup_(store_closep)

bool image_err_is_input(const struct sbx_err *err)
{
	switch (err->errnum) {
	case EINVAL:
	case EBADMSG:
	case EFBIG:
	case ENOENT:
	case ENAMETOOLONG:
		return true;
	default:
		return false;
	}
}

static int resolve_dir(const struct image_source *src, const struct image_import_opts *opts,
                       struct sbx_image *ret, struct sbx_err *err)
{
	if (opts->name)
		return sbx_failx(err, EINVAL,
		                 "dir: sources are used in place; they are not imported or named");
	if (!realpath(src->path, ret->path))
		return errno == ENOENT ? sbx_failx(err, ENOENT, "'%s' does not exist", src->path)
		                       : sbx_fail(err, errno, "'%s'", src->path);
	struct stat st;
	if (stat(ret->path, &st) < 0 || !S_ISDIR(st.st_mode))
		return sbx_failx(err, EINVAL, "'%s' is not a folder", src->path);
	ret->in_place = true;
	return 0;
}

static int lookup_file(struct store *st, const struct image_source *src,
                       char hex[DIGEST_HEX_LEN + 1], bool *found, struct sbx_err *err)
{
	struct stat sb;
	if (stat(src->path, &sb) < 0) {
		if (errno != ENOENT)
			return sbx_fail(err, errno, "'%s'", src->path);
		if (src->kind == SOURCE_FILE && src->name[0])
			return sbx_failx(err, ENOENT, "no image named '%s' and no file '%s'",
			                 src->name, src->path);
		return sbx_failx(err, ENOENT, "'%s' does not exist", src->path);
	}
	/* remembered by identity (a stat, not a hash of the file); a miss
	 * is left to the unpack, which hashes anyway */
	*found = S_ISREG(sb.st_mode) && store_source_lookup(st, &sb, src->tag, hex) == 0 &&
	         store_has(st, hex);
	return 0;
}

static int lookup_oci(struct store *st, const struct image_source *src, uint64_t max_bytes,
                      char hex[DIGEST_HEX_LEN + 1], bool *found, struct sbx_err *err)
{
	struct layout l = {.fd = open(src->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC),
	                   .max_bytes = max_bytes};
	if (l.fd < 0)
		return errno == ENOENT || errno == ENOTDIR
		           ? sbx_failx(err, ENOENT, "'%s' is not a folder", src->path)
		           : sbx_fail(err, errno, "open '%s'", src->path);
	int r = layout_resolve_manifest(&l, src->tag, hex, err);
	close(l.fd);
	layout_free(&l);
	*found = r >= 0 && store_has(st, hex);
	return r;
}

/* Is the source in the store already?  Without libarchive: names and
 * digests, sources/ for files, index.json and the manifest for layouts. */
static int lookup(struct store *st, const struct image_source *src, uint64_t max_bytes,
                  char hex[DIGEST_HEX_LEN + 1], bool *found, struct sbx_err *err)
{
	char shrt[20];
	*found = false;
	switch (src->kind) {
	case SOURCE_DIGEST:
		memcpy(hex, src->hex, DIGEST_HEX_LEN + 1);
		if (!(*found = store_has(st, hex)))
			return sbx_failx(err, ENOENT, "image sha256:%s is not in the store", hex);
		return 0;
	case SOURCE_OCI:
		return lookup_oci(st, src, max_bytes, hex, found, err);
	case SOURCE_FILE:
		if (!src->name[0] || store_ref_read(st, src->name, hex) < 0)
			return lookup_file(st, src, hex, found, err);
		digest_short(hex, shrt);
		if (!(*found = store_has(st, hex)))
			return sbx_failx(err, ENOENT, "image '%s' (%s) is not in the store",
			                 src->name, shrt);
		return 0;
	default:
		return lookup_file(st, src, hex, found, err);
	}
}

/* Find or import, then name and hold. */
static int import_in_store(struct store *st, const struct image_source *src, const char *source,
                           const char *base_dir, const struct image_import_opts *opts,
                           struct sbx_image *img, struct sbx_err *err)
{
	uint64_t max = opts->max_bytes ? opts->max_bytes : IMAGE_DEFAULT_MAX_BYTES;
	char hex[DIGEST_HEX_LEN + 1];
	int r;
	/* a remove or prune may take the image between our look and the name
	 * or hold: then look again */
	for (int attempt = 0;; attempt++) {
		bool found;
		if ((r = lookup(st, src, max, hex, &found, err)) < 0)
			return r;
		if (!found) {
			image_unpack_fn unpack = opts->unpack ? opts->unpack : image_unpack_helper;
			if ((r = unpack(st->path, source, base_dir, opts, img, err)) < 0)
				return r;
			memcpy(hex, img->digest + strlen(DIGEST_PREFIX), DIGEST_HEX_LEN + 1);
		}
		if (opts->name && (r = store_ref_write(st, opts->name, hex, err)) < 0)
			return r;
		if (opts->hold)
			r = store_hold(st, hex, &img->hold_fd, err);
		else if (!store_has(st, hex))
			r = sbx_failx(err, ENOENT, "image sha256:%s was removed", hex);
		if (r != -ENOENT || attempt >= 2)
			break;
	}
	if (r < 0)
		return r;
	snprintf(img->digest, sizeof(img->digest), "sha256:%s", hex);
	if ((size_t)snprintf(img->path, sizeof(img->path), "%s/rootfs/%s", st->path, hex) >=
	    sizeof(img->path)) {
		image_release(img->hold_fd);
		return sbx_failx(err, ENAMETOOLONG, "image store path '%s' is too long", st->path);
	}
	return 0;
}

int image_import(const char *store_dir, const char *source, const char *base_dir,
                 const struct image_import_opts *opts, struct sbx_image *ret, struct sbx_err *err)
{
	static const struct image_import_opts defaults = {0};
	opts = opts ? opts : &defaults;
	struct sbx_image img = {.hold_fd = -1};
	struct image_source src;
	int r = source_parse(source, base_dir, &src, err);
	if (r < 0)
		return r;
	if (src.kind == SOURCE_DIR) {
		if ((r = resolve_dir(&src, opts, &img, err)) < 0)
			return r;
		*ret = img;
		return 0;
	}
	if (opts->name && !image_name_valid(opts->name))
		return sbx_failx(err, EINVAL, "'%s' is not a valid image name", opts->name);
	_cleanup_store_ struct store st = {.fd = -1};
	if ((r = store_open(store_dir, &st, err)) < 0)
		return r;
	if ((r = import_in_store(&st, &src, source, base_dir, opts, &img, err)) < 0)
		return r;
	*ret = img;
	return 0;
}

int image_resolve(const char *store_dir, const char *source, const char *base_dir,
                  struct sbx_image *ret, struct sbx_err *err)
{
	return image_import(store_dir, source, base_dir, NULL, ret, err);
}

int image_hold(const char *store_dir, const char *digest, int *ret_fd, struct sbx_err *err)
{
	char hex[DIGEST_HEX_LEN + 1];
	int r = digest_parse(digest, "image", hex, err);
	if (r < 0)
		return sbx_failx(err, EINVAL, "'%s' is not an image digest", digest ? digest : "");
	_cleanup_store_ struct store st = {.fd = -1};
	if ((r = store_open(store_dir, &st, err)) < 0)
		return r;
	return store_hold(&st, hex, ret_fd, err);
}

void image_release(int fd)
{
	if (fd >= 0)
		close(fd);
}

static void read_meta(struct store *st, struct image_info *info, const char *hex)
{
	_cleanup_free_ char *buf = NULL;
	if (store_meta_read(st, hex, &buf) < 0)
		return;
	json_t *j = json_loads(buf, 0, NULL);
	if (!j)
		return;
	json_t *v;
	if (json_is_string(v = json_object_get(j, "source")))
		info->source = strdup(json_string_value(v));
	if (json_is_integer(v = json_object_get(j, "created")))
		info->created = (time_t)json_integer_value(v);
	if (json_is_integer(v = json_object_get(j, "size")))
		info->size = (uint64_t)json_integer_value(v);
	if (json_is_integer(v = json_object_get(j, "layers")))
		info->layers = (unsigned)json_integer_value(v);
	json_decref(j);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int newest_first(const void *a, const void *b)
{
	const struct image_info *x = a, *y = b;
	if (x->created != y->created)
		return x->created < y->created ? 1 : -1;
	return strcmp(x->digest, y->digest);
}

static int fill_info(struct store *st, const char *hex, char **names, char **hexes,
                     struct image_info *info)
{
	snprintf(info->digest, sizeof(info->digest), "sha256:%s", hex);
	if (!(info->names = calloc(1, sizeof(char *))))
		return -ENOMEM;
	for (size_t j = 0; names[j]; j++)
		if (!strcmp(hexes[j], hex) && sbx_strv_push(&info->names, names[j]) < 0)
			return -ENOMEM;
	qsort(info->names, sbx_strv_len(info->names), sizeof(char *), cmp_str);
	read_meta(st, info, hex);
	store_holders(st, hex, &info->holders, &info->n_holders);
	return 0;
}

int image_list(const char *store_dir, struct image_info **ret, size_t *ret_n, struct sbx_err *err)
{
	_cleanup_store_ struct store st = {.fd = -1};
	int r = store_open(store_dir, &st, err);
	if (r < 0)
		return r;
	_cleanup_strv_free_ char **hexes = NULL, **names = NULL, **refhex = NULL;
	if ((r = store_images(&st, &hexes, err)) < 0 ||
	    (r = store_refs(&st, &names, &refhex, err)) < 0)
		return r;
	size_t n = sbx_strv_len(hexes);
	struct image_info *v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return sbx_fail(err, ENOMEM, "list images");
	for (size_t i = 0; i < n; i++)
		if (fill_info(&st, hexes[i], names, refhex, &v[i]) < 0) {
			image_list_free(v, n);
			return sbx_fail(err, ENOMEM, "list images");
		}
	qsort(v, n, sizeof(*v), newest_first);
	*ret = v;
	*ret_n = n;
	return 0;
}

void image_list_free(struct image_info *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		sbx_strv_free(v[i].names);
		free(v[i].source);
		free(v[i].holders);
	}
	free(v);
}

/* sha256:HEX, HEX, or a unique prefix of at least 4 hex digits. */
static int find_by_digest(struct store *st, const char *what, char hex[DIGEST_HEX_LEN + 1],
                          struct sbx_err *err)
{
	const char *p = sbx_str_has_prefix(what, "sha256:") ? what + 7 : what;
	size_t len = strlen(p);
	bool ok = len >= 4 && len <= DIGEST_HEX_LEN;
	for (size_t i = 0; ok && i < len; i++)
		ok = (p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f');
	if (!ok)
		return sbx_failx(err, ENOENT, "no image '%s'", what);
	_cleanup_strv_free_ char **hexes = NULL;
	int r = store_images(st, &hexes, err);
	if (r < 0)
		return r;
	size_t found = 0;
	for (size_t i = 0; hexes[i]; i++)
		if (!strncmp(hexes[i], p, len) && found++ == 0)
			memcpy(hex, hexes[i], DIGEST_HEX_LEN + 1);
	if (found == 0)
		return sbx_failx(err, ENOENT, "no image '%s'", what);
	if (found > 1)
		return sbx_failx(err, EINVAL, "'%s' matches %zu images; give more digits", what,
		                 found);
	return 0;
}

static size_t count_refs(struct store *st, const char *hex)
{
	struct sbx_err ignored;
	_cleanup_strv_free_ char **names = NULL, **hexes = NULL;
	size_t n = 0;
	if (store_refs(st, &names, &hexes, &ignored) < 0)
		return 0;
	for (size_t i = 0; names[i]; i++)
		n += !strcmp(hexes[i], hex);
	return n;
}

int image_remove(const char *store_dir, const char *what, bool *ret_removed, struct sbx_err *err)
{
	_cleanup_store_ struct store st = {.fd = -1};
	int r = store_open(store_dir, &st, err);
	if (r < 0)
		return r;
	char hex[DIGEST_HEX_LEN + 1];
	if (ret_removed)
		*ret_removed = false;
	if (image_name_valid(what) && store_ref_read(&st, what, hex) == 0) {
		/* a name that shares its image only goes itself */
		if (count_refs(&st, hex) > 1 || !store_has(&st, hex))
			return store_ref_remove(&st, what, err);
	} else if ((r = find_by_digest(&st, what, hex, err)) < 0) {
		return r;
	}
	r = store_remove_image(&st, hex, false, err);
	if (r == -ENOENT)
		return store_ref_remove(&st, what, err);
	if (r < 0)
		return r;
	if (ret_removed)
		*ret_removed = true;
	return 0;
}

static uint64_t image_size(struct store *st, const char *hex)
{
	struct image_info info = {0};
	read_meta(st, &info, hex);
	free(info.source);
	return info.size;
}

int image_prune(const char *store_dir, struct image_prune_stats *ret, struct sbx_err *err)
{
	struct image_prune_stats stats = {0};
	_cleanup_store_ struct store st = {.fd = -1};
	int r = store_open(store_dir, &st, err);
	if (r < 0 || (r = store_clean_tmp(&st, NULL, &stats.leftovers, err)) < 0)
		return r;
	_cleanup_strv_free_ char **hexes = NULL;
	if ((r = store_images(&st, &hexes, err)) < 0)
		return r;
	for (size_t i = 0; hexes[i]; i++) {
		uint64_t size = image_size(&st, hexes[i]);
		r = store_remove_image(&st, hexes[i], true, err);
		if (r == -EBUSY || r == -ENOENT || r == 0)
			continue; /* held, gone meanwhile, or named */
		if (r < 0)
			return r;
		stats.images++;
		stats.bytes += size;
	}
	store_prune_orphans(&st);
	if (ret)
		*ret = stats;
	return 0;
}
