#include "rootfs/oci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"

/* jansson's own json_decrefp (json_auto_t) */
#define _cleanup_json_ _cleanup_(json_decrefp)

static const struct {
	const char *type;
	enum oci_media kind;
} media_types[] = {
    {"application/vnd.oci.image.index.v1+json", OCI_MEDIA_INDEX},
    {"application/vnd.docker.distribution.manifest.list.v2+json", OCI_MEDIA_INDEX},
    {"application/vnd.oci.image.manifest.v1+json", OCI_MEDIA_MANIFEST},
    {"application/vnd.docker.distribution.manifest.v2+json", OCI_MEDIA_MANIFEST},
    {"application/vnd.oci.image.config.v1+json", OCI_MEDIA_CONFIG},
    {"application/vnd.docker.container.image.v1+json", OCI_MEDIA_CONFIG},
    {"application/vnd.oci.image.layer.v1.tar", OCI_MEDIA_LAYER},
    {"application/vnd.oci.image.layer.v1.tar+gzip", OCI_MEDIA_LAYER},
    {"application/vnd.oci.image.layer.v1.tar+zstd", OCI_MEDIA_LAYER},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar", OCI_MEDIA_LAYER},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", OCI_MEDIA_LAYER},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", OCI_MEDIA_LAYER},
    {"application/vnd.docker.image.rootfs.diff.tar.gzip", OCI_MEDIA_LAYER},
    {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", OCI_MEDIA_LAYER},
};

enum oci_media oci_media_kind(const char *media_type)
{
	for (size_t i = 0; media_type && i < ELEMENTSOF(media_types); i++)
		if (!strcmp(media_type, media_types[i].type))
			return media_types[i].kind;
	return OCI_MEDIA_UNKNOWN;
}

static int load(const char *json, size_t len, const char *what, json_t **ret, struct sbx_err *err)
{
	json_error_t je;
	json_t *j = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return sbx_failx(err, EBADMSG, "%s: not valid JSON: line %d: %s", what, je.line,
		                 je.text);
	if (!json_is_object(j) && !json_is_array(j)) {
		json_decref(j);
		return sbx_failx(err, EBADMSG, "%s: not a JSON object", what);
	}
	*ret = j;
	return 0;
}

/* An optional string member, copied into buf; wrong type or too long is an
 * error.  Missing leaves buf empty. */
static int get_str(json_t *obj, const char *key, char *buf, size_t size, const char *what,
                   struct sbx_err *err)
{
	buf[0] = '\0';
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return sbx_failx(err, EBADMSG, "%s.%s: not a string", what, key);
	if (json_string_length(v) >= size || strlen(json_string_value(v)) != json_string_length(v))
		return sbx_failx(err, EBADMSG, "%s.%s: too long or not text", what, key);
	memcpy(buf, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int parse_platform(json_t *p, struct oci_platform *ret, const char *what,
                          struct sbx_err *err)
{
	if (!json_is_object(p))
		return sbx_failx(err, EBADMSG, "%s.platform: not an object", what);
	char w[160];
	snprintf(w, sizeof(w), "%s.platform", what);
	int r;
	if ((r = get_str(p, "os", ret->os, sizeof(ret->os), w, err)) < 0 ||
	    (r = get_str(p, "architecture", ret->arch, sizeof(ret->arch), w, err)) < 0 ||
	    (r = get_str(p, "variant", ret->variant, sizeof(ret->variant), w, err)) < 0)
		return r;
	if (!ret->os[0] || !ret->arch[0])
		return sbx_failx(err, EBADMSG, "%s: os and architecture are required", w);
	return 0;
}

static int parse_desc(json_t *d, uint64_t max_size, const char *what, struct oci_desc *ret,
                      struct sbx_err *err)
{
	memset(ret, 0, sizeof(*ret));
	if (!json_is_object(d))
		return sbx_failx(err, EBADMSG, "%s: not an object", what);
	int r = get_str(d, "mediaType", ret->media_type, sizeof(ret->media_type), what, err);
	if (r < 0)
		return r;
	if (!ret->media_type[0])
		return sbx_failx(err, EBADMSG, "%s: mediaType is missing", what);
	json_t *dg = json_object_get(d, "digest");
	char w[160];
	snprintf(w, sizeof(w), "%s.digest", what);
	if ((r = digest_parse(json_is_string(dg) ? json_string_value(dg) : NULL, w, ret->hex,
	                      err)) < 0)
		return r;
	json_t *sz = json_object_get(d, "size");
	if (!json_is_integer(sz) || json_integer_value(sz) < 0)
		return sbx_failx(err, EBADMSG, "%s.size: not a size", what);
	ret->size = (uint64_t)json_integer_value(sz);
	if (ret->size > max_size)
		return sbx_failx(err, EFBIG, "%s.size: %llu is larger than the limit of %llu bytes",
		                 what, (unsigned long long)ret->size, (unsigned long long)max_size);
	json_t *p = json_object_get(d, "platform");
	if (p) {
		if ((r = parse_platform(p, &ret->platform, what, err)) < 0)
			return r;
		ret->has_platform = true;
	}
	json_t *ann = json_object_get(d, "annotations");
	if (ann && !json_is_object(ann))
		return sbx_failx(err, EBADMSG, "%s.annotations: not an object", what);
	if (ann) {
		snprintf(w, sizeof(w), "%s.annotations", what);
		r = get_str(ann, "org.opencontainers.image.ref.name", ret->ref_name,
		            sizeof(ret->ref_name), w, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int check_schema(json_t *j, const char *what, enum oci_media want, struct sbx_err *err)
{
	json_t *sv = json_object_get(j, "schemaVersion");
	if (!json_is_integer(sv) || json_integer_value(sv) != 2)
		return sbx_failx(err, EBADMSG, "%s: schemaVersion is not 2", what);
	json_t *mt = json_object_get(j, "mediaType");
	if (mt && (!json_is_string(mt) || oci_media_kind(json_string_value(mt)) != want))
		return sbx_failx(err, EBADMSG, "%s: unexpected mediaType '%s'", what,
		                 json_is_string(mt) ? json_string_value(mt) : "?");
	return 0;
}

int oci_parse_index(const char *json, size_t len, uint64_t max_size, const char *what,
                    struct oci_index *ret, struct sbx_err *err)
{
	_cleanup_json_ json_t *j = NULL;
	int r = load(json, len, what, &j, err);
	if (r < 0)
		return r;
	if (!json_is_object(j))
		return sbx_failx(err, EBADMSG, "%s: not a JSON object", what);
	if ((r = check_schema(j, what, OCI_MEDIA_INDEX, err)) < 0)
		return r;
	json_t *m = json_object_get(j, "manifests");
	if (!json_is_array(m))
		return sbx_failx(err, EBADMSG, "%s: manifests is not an array", what);
	size_t n = json_array_size(m);
	_cleanup_free_ struct oci_desc *v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return sbx_fail(err, ENOMEM, "%s", what);
	for (size_t i = 0; i < n; i++) {
		char w[160];
		snprintf(w, sizeof(w), "%s: manifests[%zu]", what, i);
		if ((r = parse_desc(json_array_get(m, i), max_size, w, &v[i], err)) < 0)
			return r;
	}
	ret->manifests = TAKE_PTR(v);
	ret->n = n;
	return 0;
}

void oci_index_free(struct oci_index *ix)
{
	free(ix->manifests);
	ix->manifests = NULL;
	ix->n = 0;
}

static int parse_layers(json_t *l, uint64_t max_size, size_t max_layers, const char *what,
                        struct oci_manifest *m, struct sbx_err *err)
{
	if (!json_is_array(l))
		return sbx_failx(err, EBADMSG, "%s: layers is not an array", what);
	size_t n = json_array_size(l);
	if (n > max_layers)
		return sbx_failx(err, EFBIG, "%s: %zu layers, more than the limit of %zu", what, n,
		                 max_layers);
	m->layers = calloc(n ? n : 1, sizeof(*m->layers));
	if (!m->layers)
		return sbx_fail(err, ENOMEM, "%s", what);
	for (size_t i = 0; i < n; i++) {
		char w[160];
		snprintf(w, sizeof(w), "%s: layers[%zu]", what, i);
		int r = parse_desc(json_array_get(l, i), max_size, w, &m->layers[i], err);
		if (r < 0)
			return r;
		if (oci_media_kind(m->layers[i].media_type) != OCI_MEDIA_LAYER)
			return sbx_failx(err, EBADMSG, "%s: unsupported layer media type '%s'", w,
			                 m->layers[i].media_type);
		m->n_layers++;
	}
	return 0;
}

int oci_parse_manifest(const char *json, size_t len, uint64_t max_size, size_t max_layers,
                       const char *what, struct oci_manifest *ret, struct sbx_err *err)
{
	_cleanup_json_ json_t *j = NULL;
	int r = load(json, len, what, &j, err);
	if (r < 0)
		return r;
	if (!json_is_object(j))
		return sbx_failx(err, EBADMSG, "%s: not a JSON object", what);
	if ((r = check_schema(j, what, OCI_MEDIA_MANIFEST, err)) < 0)
		return r;
	struct oci_manifest m = {0};
	char w[160];
	snprintf(w, sizeof(w), "%s: config", what);
	r = parse_desc(json_object_get(j, "config"), max_size, w, &m.config, err);
	if (r >= 0 && oci_media_kind(m.config.media_type) != OCI_MEDIA_CONFIG)
		r = sbx_failx(err, EBADMSG, "%s: media type '%s' is not a container image config",
		              w, m.config.media_type);
	if (r >= 0)
		r = parse_layers(json_object_get(j, "layers"), max_size, max_layers, what, &m, err);
	if (r < 0) {
		oci_manifest_free(&m);
		return r;
	}
	*ret = m;
	return 0;
}

void oci_manifest_free(struct oci_manifest *m)
{
	free(m->layers);
	m->layers = NULL;
	m->n_layers = 0;
}

static int parse_diff_ids(json_t *rootfs, size_t max_layers, const char *what, struct oci_config *c,
                          struct sbx_err *err)
{
	if (!json_is_object(rootfs))
		return sbx_failx(err, EBADMSG, "%s: rootfs is missing", what);
	json_t *t = json_object_get(rootfs, "type");
	if (!json_is_string(t) || strcmp(json_string_value(t), "layers"))
		return sbx_failx(err, EBADMSG, "%s: rootfs.type is not \"layers\"", what);
	json_t *ids = json_object_get(rootfs, "diff_ids");
	if (!json_is_array(ids))
		return sbx_failx(err, EBADMSG, "%s: rootfs.diff_ids is not an array", what);
	size_t n = json_array_size(ids);
	if (n > max_layers)
		return sbx_failx(err, EFBIG, "%s: %zu diff_ids, more than the limit of %zu", what,
		                 n, max_layers);
	c->diff_ids = calloc(n ? n : 1, sizeof(*c->diff_ids));
	if (!c->diff_ids)
		return sbx_fail(err, ENOMEM, "%s", what);
	for (size_t i = 0; i < n; i++) {
		json_t *d = json_array_get(ids, i);
		char w[160];
		snprintf(w, sizeof(w), "%s: rootfs.diff_ids[%zu]", what, i);
		int r = digest_parse(json_is_string(d) ? json_string_value(d) : NULL, w,
		                     c->diff_ids[i], err);
		if (r < 0)
			return r;
		c->n_diff_ids++;
	}
	return 0;
}

int oci_parse_config(const char *json, size_t len, size_t max_layers, const char *what,
                     struct oci_config *ret, struct sbx_err *err)
{
	_cleanup_json_ json_t *j = NULL;
	int r = load(json, len, what, &j, err);
	if (r < 0)
		return r;
	if (!json_is_object(j))
		return sbx_failx(err, EBADMSG, "%s: not a JSON object", what);
	struct oci_config c = {0};
	if ((r = get_str(j, "os", c.platform.os, sizeof(c.platform.os), what, err)) < 0 ||
	    (r = get_str(j, "architecture", c.platform.arch, sizeof(c.platform.arch), what, err)) <
	        0 ||
	    (r = get_str(j, "variant", c.platform.variant, sizeof(c.platform.variant), what, err)) <
	        0)
		return r;
	r = parse_diff_ids(json_object_get(j, "rootfs"), max_layers, what, &c, err);
	json_t *cfg = json_object_get(j, "config");
	if (r >= 0 && cfg && !json_is_null(cfg)) {
		if (!json_is_object(cfg))
			r = sbx_failx(err, EBADMSG, "%s: config is not an object", what);
		else if (!(c.config = json_dumps(cfg, JSON_COMPACT)))
			r = sbx_fail(err, ENOMEM, "%s", what);
	}
	if (r < 0) {
		oci_config_free(&c);
		return r;
	}
	*ret = c;
	return 0;
}

void oci_config_free(struct oci_config *c)
{
	free(c->diff_ids);
	free(c->config);
	memset(c, 0, sizeof(*c));
}

static int str_array(json_t *a, const char *what, bool required, char ***ret, size_t *ret_n,
                     struct sbx_err *err)
{
	if (!a && !required)
		a = json_array();
	else
		json_incref(a);
	_cleanup_json_ json_t *owned = a;
	if (!json_is_array(a))
		return sbx_failx(err, EBADMSG, "manifest.json: %s is not an array", what);
	_cleanup_strv_free_ char **v = calloc(1, sizeof(char *));
	if (!v)
		return sbx_fail(err, ENOMEM, "manifest.json");
	for (size_t i = 0; i < json_array_size(a); i++) {
		json_t *s = json_array_get(a, i);
		if (!json_is_string(s) || !json_string_length(s))
			return sbx_failx(err, EBADMSG, "manifest.json: %s[%zu] is not a string",
			                 what, i);
		if (sbx_strv_push(&v, json_string_value(s)) < 0)
			return sbx_fail(err, ENOMEM, "manifest.json");
	}
	if (ret_n)
		*ret_n = json_array_size(a);
	*ret = TAKE_PTR(v);
	return 0;
}

int docker_parse_manifest(const char *json, size_t len, size_t max_layers,
                          struct docker_manifest *ret, struct sbx_err *err)
{
	_cleanup_json_ json_t *j = NULL;
	int r = load(json, len, "manifest.json", &j, err);
	if (r < 0)
		return r;
	if (!json_is_array(j) || json_array_size(j) == 0)
		return sbx_failx(err, EBADMSG, "manifest.json: not a non-empty array");
	if (json_array_size(j) > 1)
		return sbx_failx(err, EBADMSG,
		                 "manifest.json: the archive holds %zu images; import archives "
		                 "of one image",
		                 json_array_size(j));
	json_t *e = json_array_get(j, 0);
	json_t *cfg = json_object_get(e, "Config");
	if (!json_is_object(e) || !json_is_string(cfg) || !json_string_length(cfg))
		return sbx_failx(err, EBADMSG, "manifest.json: Config is missing");
	struct docker_manifest m = {0};
	r = str_array(json_object_get(e, "Layers"), "Layers", true, &m.layers, &m.n_layers, err);
	if (r >= 0 && m.n_layers > max_layers)
		r = sbx_failx(err, EFBIG, "manifest.json: %zu layers, more than the limit of %zu",
		              m.n_layers, max_layers);
	if (r >= 0)
		r = str_array(json_object_get(e, "RepoTags"), "RepoTags", false, &m.tags, NULL,
		              err);
	if (r >= 0 && !(m.config = strdup(json_string_value(cfg))))
		r = sbx_fail(err, ENOMEM, "manifest.json");
	if (r < 0) {
		docker_manifest_free(&m);
		return r;
	}
	*ret = m;
	return 0;
}

void docker_manifest_free(struct docker_manifest *m)
{
	free(m->config);
	sbx_strv_free(m->layers);
	sbx_strv_free(m->tags);
	memset(m, 0, sizeof(*m));
}

void oci_host_platform(struct oci_platform *ret)
{
	static const struct {
		const char *machine, *arch, *variant;
	} map[] = {
	    {"x86_64", "amd64", ""},    {"aarch64", "arm64", "v8"}, {"armv7l", "arm", "v7"},
	    {"armv6l", "arm", "v6"},    {"i686", "386", ""},        {"i386", "386", ""},
	    {"ppc64le", "ppc64le", ""}, {"s390x", "s390x", ""},     {"riscv64", "riscv64", ""},
	};
	struct utsname u;
	memset(ret, 0, sizeof(*ret));
	snprintf(ret->os, sizeof(ret->os), "linux");
	if (uname(&u) < 0)
		snprintf(u.machine, sizeof(u.machine), "x86_64");
	snprintf(ret->arch, sizeof(ret->arch), "%.31s", u.machine);
	for (size_t i = 0; i < ELEMENTSOF(map); i++)
		if (!strcmp(u.machine, map[i].machine)) {
			snprintf(ret->arch, sizeof(ret->arch), "%s", map[i].arch);
			snprintf(ret->variant, sizeof(ret->variant), "%s", map[i].variant);
		}
}

void oci_platform_str(const struct oci_platform *p, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s%s%s", p->os, p->arch, p->variant[0] ? "/" : "", p->variant);
}

/* arm64's variant is optional ("v8" is the only one); others must match
 * when both sides name one. */
static bool platform_match(const struct oci_platform *want, const struct oci_platform *have)
{
	if (strcmp(want->os, have->os) || strcmp(want->arch, have->arch))
		return false;
	if (!want->variant[0] || !have->variant[0])
		return true;
	return !strcmp(want->variant, have->variant);
}

static void offered_list(const struct oci_desc *c, size_t n, char *buf, size_t size)
{
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!c[i].has_platform || !strcmp(c[i].platform.os, "unknown"))
			continue;
		char p[96];
		oci_platform_str(&c[i].platform, p, sizeof(p));
		size_t len = strlen(buf);
		if (len + strlen(p) + 3 < size)
			snprintf(buf + len, size - len, "%s%s", len ? ", " : "", p);
	}
}

int oci_pick_platform(const struct oci_desc *c, size_t n, const struct oci_platform *want,
                      const char *what, size_t *ret_idx, struct sbx_err *err)
{
	size_t found = n;
	/* an exact variant first, then a platform that leaves it open */
	for (size_t i = 0; i < n && found == n; i++)
		if (c[i].has_platform && platform_match(want, &c[i].platform) &&
		    !strcmp(want->variant, c[i].platform.variant))
			found = i;
	for (size_t i = 0; i < n && found == n; i++)
		if (c[i].has_platform && platform_match(want, &c[i].platform))
			found = i;
	if (found == n && n == 1 && !c[0].has_platform)
		found = 0;
	if (found < n) {
		*ret_idx = found;
		return 0;
	}
	char offered[256], w[96];
	offered_list(c, n, offered, sizeof(offered));
	oci_platform_str(want, w, sizeof(w));
	if (n > 1 && !offered[0])
		return sbx_failx(err, EBADMSG,
		                 "%s: %zu images and no platform to choose by: name one with :TAG",
		                 what, n);
	return sbx_failx(err, ENOENT, "%s: no image for %s (offered: %s)", what, w,
	                 offered[0] ? offered : "none");
}
