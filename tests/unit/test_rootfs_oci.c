/* OCI / docker JSON parsing, platform selection, digests, source strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rootfs/digest.h"
#include "rootfs/image.h"
#include "rootfs/oci.h"
#include "rootfs/source.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HEX_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

#define MAX (1ULL << 30)

static int parse_index(const char *json, struct oci_index *ix, struct sbx_err *err)
{
	return oci_parse_index(json, strlen(json), MAX, "index.json", ix, err);
}

static void test_digest(void **state)
{
	/* sha256("abc"), FIPS 180-2 */
	struct digest_ctx c;
	char hex[65];
	digest_init(&c);
	digest_update(&c, "a", 1);
	digest_update(&c, "bc", 2);
	digest_final_hex(&c, hex);
	assert_string_equal(hex,
	                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	struct sbx_err err = {0};
	assert_int_equal(digest_parse("sha256:" HEX_A, "x", hex, &err), 0);
	assert_string_equal(hex, HEX_A);
	assert_int_equal(digest_parse("sha512:" HEX_A, "layers[0].digest", hex, &err), -EBADMSG);
	assert_string_equal(err.msg,
	                    "layers[0].digest: unsupported digest algorithm in 'sha512:" HEX_A "'");
	assert_int_equal(digest_parse("sha256:" HEX_A "0", "d", hex, &err), -EBADMSG);
	assert_int_equal(
	    digest_parse("sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	                 "AAAAAAAAAA",
	                 "d", hex, &err),
	    -EBADMSG);
	assert_int_equal(digest_parse(NULL, "d", hex, &err), -EBADMSG);
	char s[20];
	digest_short(HEX_A, s);
	assert_string_equal(s, "sha256:aaaaaaaaaaaa");
}

static void test_digest_fd(void **state)
{
	char path[] = "/tmp/trimo-unit-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, "abc", 3), 3);
	lseek(fd, 0, SEEK_SET);
	char hex[65];
	uint64_t size;
	struct sbx_err err = {0};
	assert_int_equal(digest_fd(fd, 100, hex, &size, &err), 0);
	assert_int_equal(size, 3);
	assert_string_equal(hex,
	                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	lseek(fd, 0, SEEK_SET);
	assert_int_equal(digest_fd(fd, 2, hex, &size, &err), -EFBIG);
	close(fd);
}

static void test_index(void **state)
{
	struct sbx_err err = {0};
	struct oci_index ix;
	const char *json =
	    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+"
	    "json\",\"manifests\":[{\"mediaType\":\"application/"
	    "vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:" HEX_A
	    "\",\"size\":123,\"platform\":{\"architecture\":\"arm\",\"os\":"
	    "\"linux\",\"variant\":\"v7\"},\"annotations\":{\"org.opencontainers."
	    "image.ref.name\":\"latest\"}},{\"mediaType\":\"application/"
	    "vnd.oci.image.index.v1+json\",\"digest\":\"sha256:" HEX_B "\",\"size\":7}]}";
	assert_int_equal(parse_index(json, &ix, &err), 0);
	assert_int_equal(ix.n, 2);
	assert_string_equal(ix.manifests[0].hex, HEX_A);
	assert_int_equal(ix.manifests[0].size, 123);
	assert_true(ix.manifests[0].has_platform);
	assert_string_equal(ix.manifests[0].platform.arch, "arm");
	assert_string_equal(ix.manifests[0].platform.variant, "v7");
	assert_string_equal(ix.manifests[0].ref_name, "latest");
	assert_int_equal(oci_media_kind(ix.manifests[0].media_type), OCI_MEDIA_MANIFEST);
	assert_int_equal(oci_media_kind(ix.manifests[1].media_type), OCI_MEDIA_INDEX);
	assert_false(ix.manifests[1].has_platform);
	oci_index_free(&ix);
}

static void expect_index_error(const char *json, int errnum, const char *msg)
{
	struct sbx_err err = {0};
	struct oci_index ix = {0};
	assert_int_equal(parse_index(json, &ix, &err), -errnum);
	assert_string_equal(err.msg, msg);
}

static void test_index_errors(void **state)
{
	expect_index_error("not json", EBADMSG,
	                   "index.json: not valid JSON: line 1: '[' or '{' expected near 'not'");
	expect_index_error("[]", EBADMSG, "index.json: not a JSON object");
	expect_index_error("{\"schemaVersion\":1,\"manifests\":[]}", EBADMSG,
	                   "index.json: schemaVersion is not 2");
	expect_index_error("{\"schemaVersion\":2}", EBADMSG,
	                   "index.json: manifests is not an array");
	expect_index_error("{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:" HEX_A
	                   "\",\"size\":1}]}",
	                   EBADMSG, "index.json: manifests[0]: mediaType is missing");
	expect_index_error("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":"
	                   "\"sha256:" HEX_A "\",\"size\":-1}]}",
	                   EBADMSG, "index.json: manifests[0].size: not a size");
	expect_index_error("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":"
	                   "\"sha256:" HEX_A "\",\"size\":2000000000000}]}",
	                   EFBIG,
	                   "index.json: manifests[0].size: 2000000000000 is larger than the "
	                   "limit of 1073741824 bytes");
	expect_index_error("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":"
	                   "\"md5:abc\",\"size\":1}]}",
	                   EBADMSG,
	                   "index.json: manifests[0].digest: unsupported digest algorithm in "
	                   "'md5:abc'");
	expect_index_error("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":"
	                   "\"sha256:" HEX_A "\",\"size\":1,\"platform\":{\"os\":\"linux\"}}]}",
	                   EBADMSG,
	                   "index.json: manifests[0].platform: os and architecture are required");
	expect_index_error("{\"schemaVersion\":2,\"schemaVersion\":2,\"manifests\":[]}", EBADMSG,
	                   "index.json: not valid JSON: line 1: duplicate object key near "
	                   "'\"schemaVersion\"'");
}

#define MANIFEST_HEAD                                                                              \
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","       \
	"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"       \
	"\"sha256:" HEX_A "\",\"size\":10},"

static void test_manifest(void **state)
{
	struct sbx_err err = {0};
	struct oci_manifest m;
	const char *json = MANIFEST_HEAD
	    "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
	    "\"digest\":\"sha256:" HEX_B "\",\"size\":20},{\"mediaType\":\"application/"
	    "vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"sha256:" HEX_C "\",\"size\":30},"
	    "{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":"
	    "\"sha256:" HEX_A "\",\"size\":0}]}";
	assert_int_equal(oci_parse_manifest(json, strlen(json), MAX, 10, "manifest", &m, &err), 0);
	assert_string_equal(m.config.hex, HEX_A);
	assert_int_equal(m.n_layers, 3);
	assert_string_equal(m.layers[1].hex, HEX_C);
	assert_int_equal(m.layers[1].size, 30);
	oci_manifest_free(&m);

	assert_int_equal(oci_parse_manifest(json, strlen(json), MAX, 2, "manifest", &m, &err),
	                 -EFBIG);
	assert_string_equal(err.msg, "manifest: 3 layers, more than the limit of 2");

	json = MANIFEST_HEAD "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+"
	                     "gzip+encrypted\",\"digest\":\"sha256:" HEX_B "\",\"size\":1}]}";
	assert_int_equal(
	    oci_parse_manifest(json, strlen(json), MAX, 10, "manifest sha256:x", &m, &err),
	    -EBADMSG);
	assert_string_equal(err.msg, "manifest sha256:x: layers[0]: unsupported layer media type "
	                             "'application/vnd.oci.image.layer.v1.tar+gzip+encrypted'");

	json = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.cncf.helm.config."
	       "v1+json\",\"digest\":\"sha256:" HEX_A "\",\"size\":1},\"layers\":[]}";
	assert_int_equal(oci_parse_manifest(json, strlen(json), MAX, 10, "manifest", &m, &err),
	                 -EBADMSG);
	assert_string_equal(err.msg,
	                    "manifest: config: media type "
	                    "'application/vnd.cncf.helm.config.v1+json' is not a container "
	                    "image config");

	json = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\"}";
	assert_int_equal(oci_parse_manifest(json, strlen(json), MAX, 10, "manifest", &m, &err),
	                 -EBADMSG);
	assert_string_equal(err.msg, "manifest: unexpected mediaType "
	                             "'application/vnd.oci.image.index.v1+json'");
}

static void test_config(void **state)
{
	struct sbx_err err = {0};
	struct oci_config c;
	const char *json = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":["
	                   "\"A=1\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:" HEX_A
	                   "\",\"sha256:" HEX_B "\"]}}";
	assert_int_equal(oci_parse_config(json, strlen(json), 10, "config", &c, &err), 0);
	assert_int_equal(c.n_diff_ids, 2);
	assert_string_equal(c.diff_ids[1], HEX_B);
	assert_string_equal(c.platform.arch, "amd64");
	assert_string_equal(c.config, "{\"Env\":[\"A=1\"]}");
	oci_config_free(&c);

	json = "{\"rootfs\":{\"type\":\"tarballs\",\"diff_ids\":[]}}";
	assert_int_equal(oci_parse_config(json, strlen(json), 10, "config", &c, &err), -EBADMSG);
	assert_string_equal(err.msg, "config: rootfs.type is not \"layers\"");
	json = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:" HEX_A "\", 5]}}";
	assert_int_equal(oci_parse_config(json, strlen(json), 10, "config", &c, &err), -EBADMSG);
	assert_string_equal(err.msg, "config: rootfs.diff_ids[1]: no digest");
	json = "{\"os\":7,\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
	assert_int_equal(oci_parse_config(json, strlen(json), 10, "config", &c, &err), -EBADMSG);
	assert_string_equal(err.msg, "config.os: not a string");
}

static void test_docker_manifest(void **state)
{
	struct sbx_err err = {0};
	struct docker_manifest m;
	const char *json = "[{\"Config\":\"" HEX_A ".json\",\"RepoTags\":[\"a:latest\"],"
	                   "\"Layers\":[\"1/layer.tar\",\"2/layer.tar\"]}]";
	assert_int_equal(docker_parse_manifest(json, strlen(json), 10, &m, &err), 0);
	assert_string_equal(m.config, HEX_A ".json");
	assert_int_equal(m.n_layers, 2);
	assert_string_equal(m.layers[1], "2/layer.tar");
	assert_string_equal(m.tags[0], "a:latest");
	docker_manifest_free(&m);
	json = "[{\"Config\":\"a\",\"Layers\":[]},{\"Config\":\"b\",\"Layers\":[]}]";
	assert_int_equal(docker_parse_manifest(json, strlen(json), 10, &m, &err), -EBADMSG);
	assert_string_equal(
	    err.msg, "manifest.json: the archive holds 2 images; import archives of one image");
	json = "[{\"Layers\":[]}]";
	assert_int_equal(docker_parse_manifest(json, strlen(json), 10, &m, &err), -EBADMSG);
	assert_string_equal(err.msg, "manifest.json: Config is missing");
	json = "[{\"Config\":\"c\",\"Layers\":[\"a\", 3]}]";
	assert_int_equal(docker_parse_manifest(json, strlen(json), 10, &m, &err), -EBADMSG);
	assert_string_equal(err.msg, "manifest.json: Layers[1] is not a string");
}

static struct oci_desc plat(const char *os, const char *arch, const char *variant)
{
	struct oci_desc d = {.has_platform = true};
	snprintf(d.platform.os, sizeof(d.platform.os), "%s", os);
	snprintf(d.platform.arch, sizeof(d.platform.arch), "%s", arch);
	snprintf(d.platform.variant, sizeof(d.platform.variant), "%s", variant);
	return d;
}

static void test_platform(void **state)
{
	struct sbx_err err = {0};
	struct oci_platform amd64 = {.os = "linux", .arch = "amd64"},
	                    arm64 = {.os = "linux", .arch = "arm64", .variant = "v8"},
	                    armv7 = {.os = "linux", .arch = "arm", .variant = "v7"};
	struct oci_desc c[] = {plat("unknown", "unknown", ""), plat("linux", "arm", "v6"),
	                       plat("linux", "arm", "v7"),     plat("linux", "arm64", ""),
	                       plat("linux", "amd64", ""),     plat("windows", "amd64", "")};
	size_t idx;
	assert_int_equal(oci_pick_platform(c, 6, &amd64, "x", &idx, &err), 0);
	assert_int_equal(idx, 4);
	assert_int_equal(oci_pick_platform(c, 6, &arm64, "x", &idx, &err), 0);
	assert_int_equal(idx, 3); /* arm64 without a variant is v8 */
	assert_int_equal(oci_pick_platform(c, 6, &armv7, "x", &idx, &err), 0);
	assert_int_equal(idx, 2);
	struct oci_platform s390 = {.os = "linux", .arch = "s390x"};
	assert_int_equal(oci_pick_platform(c, 6, &s390, "index.json", &idx, &err), -ENOENT);
	assert_string_equal(err.msg, "index.json: no image for linux/s390x (offered: linux/arm/v6, "
	                             "linux/arm/v7, linux/arm64, linux/amd64, windows/amd64)");
	/* one manifest without a platform is taken; two are ambiguous */
	struct oci_desc none[2];
	memset(none, 0, sizeof(none));
	assert_int_equal(oci_pick_platform(none, 1, &amd64, "x", &idx, &err), 0);
	assert_int_equal(idx, 0);
	assert_int_equal(oci_pick_platform(none, 2, &amd64, "x", &idx, &err), -EBADMSG);
	assert_string_equal(err.msg,
	                    "x: 2 images and no platform to choose by: name one with :TAG");
	/* an attestation (unknown/unknown) never matches, even alone */
	assert_int_equal(oci_pick_platform(c, 1, &amd64, "x", &idx, &err), -ENOENT);

	struct oci_platform host;
	oci_host_platform(&host);
	assert_string_equal(host.os, "linux");
	assert_true(host.arch[0] != '\0');
}

static void test_source(void **state)
{
	struct sbx_err err = {0};
	struct image_source s;
	assert_int_equal(source_parse("images/a.tar.zst", "/base", &s, &err), 0);
	assert_int_equal(s.kind, SOURCE_FILE);
	assert_string_equal(s.path, "/base/images/a.tar.zst");
	assert_string_equal(s.name, ""); /* has a '/': never a name */
	assert_int_equal(source_parse("agent:v2", "/base", &s, &err), 0);
	assert_int_equal(s.kind, SOURCE_FILE);
	assert_string_equal(s.name, "agent:v2");
	assert_int_equal(source_parse("oci:/nonexistent/layout:v1", NULL, &s, &err), 0);
	assert_int_equal(s.kind, SOURCE_OCI);
	assert_string_equal(s.path, "/nonexistent/layout");
	assert_string_equal(s.tag, "v1");
	assert_int_equal(source_parse("oci:/tmp", NULL, &s, &err), 0);
	assert_string_equal(s.path, "/tmp");
	assert_string_equal(s.tag, "");
	assert_int_equal(source_parse("oci-archive:x.tar:t", "/b", &s, &err), 0);
	assert_int_equal(s.kind, SOURCE_OCI_ARCHIVE);
	assert_string_equal(s.path, "/b/x.tar");
	assert_string_equal(s.tag, "t");
	assert_int_equal(source_parse("docker-archive:/x/y.tar", NULL, &s, &err), 0);
	assert_int_equal(s.kind, SOURCE_DOCKER_ARCHIVE);
	assert_int_equal(source_parse("dir:rootfs", "/b", &s, &err), 0);
	assert_int_equal(s.kind, SOURCE_DIR);
	assert_string_equal(s.path, "/b/rootfs");
	assert_int_equal(source_parse("sha256:" HEX_A, NULL, &s, &err), 0);
	assert_int_equal(s.kind, SOURCE_DIGEST);
	assert_string_equal(s.hex, HEX_A);
	assert_int_equal(source_parse("sha256:abc", NULL, &s, &err), -EINVAL);
	assert_int_equal(source_parse("", NULL, &s, &err), -EINVAL);
	assert_string_equal(err.msg, "empty image source");
	assert_int_equal(source_parse("docker://debian:12", NULL, &s, &err), -EINVAL);
	assert_string_equal(err.msg, "'docker://debian:12': the docker transport is not supported; "
	                             "copy the image into an OCI layout first (skopeo copy ... "
	                             "oci:DIR)");
}

static void test_names(void **state)
{
	assert_true(image_name_valid("agent"));
	assert_true(image_name_valid("agent:v1.2"));
	assert_true(image_name_valid("A_b-c@d+e"));
	assert_false(image_name_valid(""));
	assert_false(image_name_valid("-x"));
	assert_false(image_name_valid("a/b"));
	assert_false(image_name_valid(".."));
	assert_false(image_name_valid("sha256:abc"));
	assert_false(image_name_valid("oci:x"));
	assert_false(image_name_valid("dir:x"));
	assert_false(image_name_valid("a b"));
	char longname[200];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_false(image_name_valid(longname));
}

static void test_err_is_input(void **state)
{
	struct sbx_err err = {0};
	sbx_failx(&err, EBADMSG, "x");
	assert_true(image_err_is_input(&err));
	sbx_failx(&err, ENOENT, "x");
	assert_true(image_err_is_input(&err));
	sbx_failx(&err, ENOSPC, "x");
	assert_false(image_err_is_input(&err));
	sbx_failx(&err, EBUSY, "x");
	assert_false(image_err_is_input(&err));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_digest),          cmocka_unit_test(test_digest_fd),
	    cmocka_unit_test(test_index),           cmocka_unit_test(test_index_errors),
	    cmocka_unit_test(test_manifest),        cmocka_unit_test(test_config),
	    cmocka_unit_test(test_docker_manifest), cmocka_unit_test(test_platform),
	    cmocka_unit_test(test_source),          cmocka_unit_test(test_names),
	    cmocka_unit_test(test_err_is_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
