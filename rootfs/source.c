#include "rootfs/source.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

bool image_name_valid(const char *name)
{
	static const char *const reserved[] = {
	    "oci:", "oci-archive:", "docker-archive:", "dir:", "sha256:"};
	size_t n = strlen(name);
	if (n == 0 || n >= IMAGE_NAME_MAX)
		return false;
	if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
	      (name[0] >= '0' && name[0] <= '9')))
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._:@+-", *p)))
			return false;
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (sbx_str_has_prefix(name, reserved[i]))
			return false;
	return true;
}

static int join(const char *base_dir, const char *path, char *out, struct sbx_err *err)
{
	if (!path[0])
		return sbx_failx(err, EINVAL, "empty path");
	int n;
	if (path[0] == '/') {
		n = snprintf(out, PATH_MAX, "%s", path);
	} else {
		char cwd[PATH_MAX];
		if (!base_dir) {
			if (!getcwd(cwd, sizeof(cwd)))
				return sbx_fail(err, errno, "getcwd");
			base_dir = cwd;
		}
		n = snprintf(out, PATH_MAX, "%s/%s", base_dir, path);
	}
	if (n < 0 || n >= PATH_MAX)
		return sbx_failx(err, ENAMETOOLONG, "'%s': path is too long", path);
	return 0;
}

/* "PATH[:TAG]": PATH as a whole when it exists, else split at the last
 * colon (a tag has no '/'). */
static int split_tag(const char *rest, const char *base_dir, struct image_source *ret,
                     struct sbx_err *err)
{
	int r = join(base_dir, rest, ret->path, err);
	if (r < 0)
		return r;
	struct stat st;
	const char *colon = strrchr(rest, ':');
	if (stat(ret->path, &st) == 0 || !colon || strchr(colon, '/'))
		return 0;
	size_t tlen = strlen(colon + 1);
	if (tlen == 0 || tlen >= sizeof(ret->tag))
		return sbx_failx(err, EINVAL, "'%s': bad tag", rest);
	memcpy(ret->tag, colon + 1, tlen + 1);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%.*s", (int)(colon - rest), rest);
	return join(base_dir, path, ret->path, err);
}

int source_parse(const char *source, const char *base_dir, struct image_source *ret,
                 struct sbx_err *err)
{
	memset(ret, 0, sizeof(*ret));
	if (!source || !source[0])
		return sbx_failx(err, EINVAL, "empty image source");
	if (sbx_str_has_prefix(source, "oci:")) {
		ret->kind = SOURCE_OCI;
		return split_tag(source + 4, base_dir, ret, err);
	}
	if (sbx_str_has_prefix(source, "oci-archive:")) {
		ret->kind = SOURCE_OCI_ARCHIVE;
		return split_tag(source + 12, base_dir, ret, err);
	}
	if (sbx_str_has_prefix(source, "docker-archive:")) {
		ret->kind = SOURCE_DOCKER_ARCHIVE;
		return join(base_dir, source + 15, ret->path, err);
	}
	if (sbx_str_has_prefix(source, "dir:")) {
		ret->kind = SOURCE_DIR;
		return join(base_dir, source + 4, ret->path, err);
	}
	if (sbx_str_has_prefix(source, "sha256:")) {
		ret->kind = SOURCE_DIGEST;
		return digest_parse(source, "image", ret->hex, err) < 0
		           ? sbx_failx(err, EINVAL, "'%s' is not a sha256 digest", source)
		           : 0;
	}
	const char *t = strstr(source, "://");
	if (t && t - source < 24 && !memchr(source, '/', (size_t)(t - source))) {
		char transport[24];
		snprintf(transport, sizeof(transport), "%.*s", (int)(t - source), source);
		return sbx_failx(err, EINVAL,
		                 "'%s': the %s transport is not supported; copy the image into an "
		                 "OCI layout first (skopeo copy ... oci:DIR)",
		                 source, transport);
	}
	ret->kind = SOURCE_FILE;
	if (!strchr(source, '/') && image_name_valid(source))
		snprintf(ret->name, sizeof(ret->name), "%s", source);
	return join(base_dir, source, ret->path, err);
}
