/* image_unpack_helper(): the unpack in a helper program, so that the
 * process that resolves images (every `run`) never loads libarchive and
 * the libraries it drags in (libxml2, ICU, libstdc++: ~2 ms more on every
 * start, measured on the CI machine).  The helper is
 * `IMAGE_HELPER image import --json ...`; its stderr is ours (the progress
 * line), its stdout one JSON object. */
#include "rootfs/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"

extern char **environ;

#define MAX_ANSWER (64U << 10)

static int read_answer(int fd, char *buf, size_t size)
{
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (len += (size_t)n) + 1 >= size)
			break;
	}
	buf[len] = '\0';
	return (int)len;
}

static unsigned json_uint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) && json_integer_value(v) > 0 ? (unsigned)json_integer_value(v)
	                                                       : 0;
}

/* {"digest":..,"imported":..,...} or {"error":..,"errno":..} */
static int parse_answer(const char *answer, int status, const char *helper, struct sbx_image *ret,
                        struct sbx_err *err)
{
	json_t *o = json_loads(answer, 0, NULL);
	json_t *msg = json_object_get(o, "error"), *dg = json_object_get(o, "digest");
	int r = 0;
	if (json_is_string(msg)) {
		int e = (int)json_uint(o, "errno");
		r = sbx_failx(err, e ? e : EIO, "%s", json_string_value(msg));
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) || !json_is_string(dg) ||
	           json_string_length(dg) >= sizeof(ret->digest)) {
		r = sbx_failx(err, EIO, "image helper '%s' failed (status %d)", helper, status);
	} else {
		snprintf(ret->digest, sizeof(ret->digest), "%s", json_string_value(dg));
		ret->imported = json_is_true(json_object_get(o, "imported"));
		ret->bytes = (uint64_t)json_integer_value(json_object_get(o, "bytes"));
		ret->size = (uint64_t)json_integer_value(json_object_get(o, "size"));
		ret->layers = json_uint(o, "layers");
		ret->skipped_devices = json_uint(o, "skipped_devices");
		ret->skipped_xattrs = json_uint(o, "skipped_xattrs");
		ret->warnings = json_uint(o, "warnings");
		json_t *w = json_object_get(o, "first_warning");
		snprintf(ret->first_warning, sizeof(ret->first_warning), "%s",
		         json_is_string(w) ? json_string_value(w) : "");
	}
	json_decref(o);
	return r;
}

int image_unpack_helper(const char *store_dir, const char *source, const char *base_dir,
                        const struct image_import_opts *opts, struct sbx_image *ret,
                        struct sbx_err *err)
{
	char path[PATH_MAX], max[32];
	int r = sbx_helper_path(IMAGE_HELPER, "TRIMO_SBX_IMAGE_HELPER", path, sizeof(path));
	/* a missing helper is the installation's trouble, not the source's */
	if (r < 0)
		return sbx_failx(err, EIO, "find the image helper %s: %s", IMAGE_HELPER,
		                 sbx_strerror(-r));
	snprintf(max, sizeof(max), "%llu",
	         (unsigned long long)(opts->max_bytes ? opts->max_bytes : IMAGE_DEFAULT_MAX_BYTES));
	char *argv[] = {path,          "image",
	                "import",      "--json",
	                "--store",     (char *)store_dir,
	                "--max-bytes", max,
	                "--base-dir",  (char *)(base_dir ? base_dir : "."),
	                "--",          (char *)source,
	                NULL};
	int out[2];
	if (pipe2(out, O_CLOEXEC) < 0)
		return sbx_fail(err, errno, "image helper: pipe");
	pid_t pid;
	r = sbx_spawn(path, argv, STDIN_FILENO, out[1], -1, -1, &pid);
	close(out[1]);
	_cleanup_close_ int rd = out[0];
	if (r < 0)
		return sbx_failx(err, EIO, "run the image helper '%s': %s", path, sbx_strerror(-r));
	_cleanup_free_ char *answer = malloc(MAX_ANSWER);
	if (answer)
		read_answer(rd, answer, MAX_ANSWER);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!answer)
		return sbx_fail(err, ENOMEM, "image helper");
	struct sbx_image img = {.hold_fd = -1};
	if ((r = parse_answer(answer, status, path, &img, err)) < 0)
		return r;
	*ret = img;
	return 0;
}
