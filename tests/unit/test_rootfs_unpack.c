/* The unpacker and the decompressor helper on tars written here with
 * libarchive, into a temporary folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/util.h"
#include "rootfs/decomp.h"
#include "rootfs/digest.h"
#include "rootfs/tree.h"
#include "rootfs/unpack.h"

/* positional entry tables: unset fields are meant to be zero */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct ent {
	const char *name;
	mode_t type; /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR; 0 ends the list */
	mode_t perm;
	const char *data; /* content, or link target */
	const char *xattr_name, *xattr_value;
	const char *hardlink;
};

struct fx {
	char dir[64];
	char root[128], outside[128], tar[128];
	int root_fd;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/trimo-unit-unpack-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
	snprintf(f->outside, sizeof(f->outside), "%s/outside", f->dir);
	snprintf(f->tar, sizeof(f->tar), "%s/layer.tar", f->dir);
	assert_int_equal(mkdir(f->root, 0755), 0);
	assert_int_equal(mkdir(f->outside, 0755), 0);
	f->root_fd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	struct sbx_err err;
	close(f->root_fd);
	int dfd = open("/tmp", O_RDONLY | O_DIRECTORY);
	assert_int_equal(sbx_rm_rf_at(dfd, f->dir + 5, &err), 0);
	close(dfd);
	free(f);
	return 0;
}

static void write_tar(const char *path, const struct ent *e, int filter)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (filter == ARCHIVE_FILTER_GZIP)
		archive_write_add_filter_gzip(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (; e->type; e++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, e->name);
		archive_entry_set_filetype(ae, e->type);
		archive_entry_set_perm(ae, e->perm ? e->perm : 0644);
		archive_entry_set_mtime(ae, 1700000000, 0);
		size_t len = 0;
		if (e->type == AE_IFLNK)
			archive_entry_set_symlink(ae, e->data);
		else if (e->type == AE_IFCHR)
			archive_entry_set_rdev(ae, 0x0103);
		else if (e->hardlink)
			archive_entry_set_hardlink(ae, e->hardlink);
		else if (e->type == AE_IFREG && e->data)
			len = strlen(e->data);
		archive_entry_set_size(ae, (la_int64_t)len);
		if (e->xattr_name)
			archive_entry_xattr_add_entry(ae, e->xattr_name, e->xattr_value,
			                              strlen(e->xattr_value));
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (len)
			assert_int_equal(archive_write_data(a, e->data, len), (la_ssize_t)len);
		archive_entry_free(ae);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

/* One tar through the helper into the unpacker, as import.c does. */
static int feed(struct unpacker *u, const char *tar, struct decomp_result *res, struct sbx_err *err)
{
	int fd = open(tar, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct decomp d = {0, -1, -1};
	int r = decomp_start(fd, 1 << 30, DECOMP_HASH_BLOB | DECOMP_HASH_DIFF, &d, err);
	assert_int_equal(r, 0);
	r = unpacker_layer(u, d.data_fd, err);
	struct sbx_err ferr;
	int fr = decomp_finish(&d, r >= 0, res, &ferr);
	close(fd);
	if (r >= 0 && fr == 0 && res->err.errnum) {
		*err = res->err;
		return -res->err.errnum;
	}
	return r;
}

static bool exists(const char *base, const char *path)
{
	char p[512];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", base, path);
	return lstat(p, &st) == 0;
}

static mode_t mode_of(const char *base, const char *path)
{
	char p[512];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", base, path);
	assert_int_equal(lstat(p, &st), 0);
	return st.st_mode & 07777;
}

static void test_symlink_refused(void **state)
{
	struct fx *f = *state;
	const struct ent e[] = {
	    {"sl", AE_IFLNK, 0777, f->outside},
	    {"sl/pwned", AE_IFREG, 0644, "x"},
	    {0},
	};
	write_tar(f->tar, e, ARCHIVE_FILTER_NONE);
	struct unpacker u;
	struct sbx_err err = {0};
	struct decomp_result res;
	char cwd[256];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(unpacker_init(&u, f->root_fd, false, false, 1 << 30, &err), 0);
	assert_int_equal(feed(&u, f->tar, &res, &err), -EBADMSG);
	assert_string_equal(err.msg, "entry 'sl/pwned': path goes through a symlink");
	unpacker_done(&u);
	assert_false(exists(f->outside, "pwned"));
	char now[256];
	assert_non_null(getcwd(now, sizeof(now)));
	assert_string_equal(now, cwd); /* the working directory is back */
}

static void test_escapes(void **state)
{
	struct fx *f = *state;
	const struct {
		struct ent e[2];
		const char *msg;
	} cases[] = {
	    {{{"../x", AE_IFREG, 0644, "x"}}, "entry '../x': path escapes the image root"},
	    {{{"/x", AE_IFREG, 0644, "x"}}, "entry '/x': path escapes the image root"},
	    {{{"h", AE_IFREG, 0644, NULL, NULL, NULL, "../outside/x"}},
	     "entry 'h': hardlink to '../outside/x': path escapes the image root"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_tar(f->tar, cases[i].e, ARCHIVE_FILTER_NONE);
		struct unpacker u;
		struct sbx_err err = {0};
		struct decomp_result res;
		assert_int_equal(unpacker_init(&u, f->root_fd, false, false, 1 << 30, &err), 0);
		assert_int_equal(feed(&u, f->tar, &res, &err), -EBADMSG);
		assert_string_equal(err.msg, cases[i].msg);
		unpacker_done(&u);
		assert_false(exists(f->dir, "x"));
	}
}

static void test_secure_flags(void **state)
{
	/* our own checks run first, but libarchive's stay on behind them */
	int flags = unpack_disk_flags(true);
	assert_true(flags & ARCHIVE_EXTRACT_SECURE_SYMLINKS);
	assert_true(flags & ARCHIVE_EXTRACT_SECURE_NODOTDOT);
	assert_true(flags & ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
	assert_false(flags & ARCHIVE_EXTRACT_OWNER);
	assert_true(unpack_disk_flags(false) & ARCHIVE_EXTRACT_OWNER);
	assert_true(unpack_disk_flags(false) & ARCHIVE_EXTRACT_SECURE_SYMLINKS);
}

static void test_layers(void **state)
{
	struct fx *f = *state;
	const struct ent l1[] = {
	    {"d", AE_IFDIR, 0500},
	    {"d/a", AE_IFREG, 0644, "a"},
	    {"d/b", AE_IFREG, 0644, "b"},
	    {"o", AE_IFDIR, 0755},
	    {"o/x", AE_IFREG, 0644, "x"},
	    {"dev", AE_IFDIR, 0755},
	    {"dev/null", AE_IFCHR, 0666},
	    {"f", AE_IFREG, 0644, "f", "security.test", "s"},
	    {"g", AE_IFREG, 0644, "g", "user.overlay.opaque", "y"},
	    {0},
	};
	const struct ent l2[] = {
	    {"d/.wh.a", AE_IFREG},        {"d/c", AE_IFREG, 0644, "c"}, {"o", AE_IFDIR, 0755},
	    {"o/.wh..wh..opq", AE_IFREG}, {"o/y", AE_IFREG, 0644, "y"}, {0},
	};
	struct unpacker u;
	struct sbx_err err = {0};
	struct decomp_result res;
	/* rootless even when the test runs as root: the caller decides */
	assert_int_equal(unpacker_init(&u, f->root_fd, true, true, 1 << 30, &err), 0);
	write_tar(f->tar, l1, ARCHIVE_FILTER_GZIP);
	assert_int_equal(feed(&u, f->tar, &res, &err), 0);
	assert_int_equal(mode_of(f->root, "d"), 0700); /* held back */
	write_tar(f->tar, l2, ARCHIVE_FILTER_NONE);
	assert_int_equal(feed(&u, f->tar, &res, &err), 0);
	assert_int_equal(unpacker_finish(&u, &err), 0);
	unpacker_done(&u);
	assert_false(exists(f->root, "d/a"));
	assert_true(exists(f->root, "d/b"));
	assert_true(exists(f->root, "d/c"));
	assert_false(exists(f->root, "d/.wh.a"));
	assert_false(exists(f->root, "o/x"));
	assert_true(exists(f->root, "o/y"));
	assert_false(exists(f->root, "o/.wh..wh..opq"));
	assert_int_equal(mode_of(f->root, "d"), 0500);
	assert_false(exists(f->root, "dev/null"));
	assert_int_equal(u.skipped_devices, 1);
	assert_int_equal(u.skipped_xattrs, 2);
	char p[256], v[8];
	snprintf(p, sizeof(p), "%s/g", f->root);
	assert_true(getxattr(p, "user.overlay.opaque", v, sizeof(v)) < 0);
}

static void test_limits_and_garbage(void **state)
{
	struct fx *f = *state;
	const struct ent big[] = {{"big", AE_IFREG, 0644, "0123456789"}, {0}};
	write_tar(f->tar, big, ARCHIVE_FILTER_NONE);
	struct unpacker u;
	struct sbx_err err = {0};
	struct decomp_result res;
	assert_int_equal(unpacker_init(&u, f->root_fd, true, false, 5, &err), 0);
	assert_int_equal(feed(&u, f->tar, &res, &err), -EFBIG);
	assert_string_equal(err.msg, "entry 'big': size 10 exceeds the image size limit (5 bytes)");
	unpacker_done(&u);

	const struct ent none[] = {{0}};
	write_tar(f->tar, none, ARCHIVE_FILTER_NONE);
	assert_int_equal(unpacker_init(&u, f->root_fd, true, false, 1 << 20, &err), 0);
	assert_int_equal(feed(&u, f->tar, &res, &err), -EBADMSG);
	assert_string_equal(err.msg, "the archive has no entries");
	unpacker_done(&u);

	FILE *fp = fopen(f->tar, "w");
	for (int i = 0; i < 4096; i++)
		fputc("garbage"[i % 7], fp);
	fclose(fp);
	assert_int_equal(unpacker_init(&u, f->root_fd, true, false, 1 << 20, &err), 0);
	assert_int_equal(feed(&u, f->tar, &res, &err), -EBADMSG);
	assert_true(strncmp(err.msg, "not a tar archive: ", 19) == 0);
	unpacker_done(&u);
}

static void test_decomp(void **state)
{
	struct fx *f = *state;
	const struct ent e[] = {{"file", AE_IFREG, 0644, "hello"}, {0}};
	char plain[160];
	snprintf(plain, sizeof(plain), "%s/plain.tar", f->dir);
	write_tar(plain, e, ARCHIVE_FILTER_NONE);
	write_tar(f->tar, e, ARCHIVE_FILTER_GZIP);
	struct sbx_err err = {0};
	char want_blob[65], want_diff[65];
	int fd = open(f->tar, O_RDONLY);
	assert_int_equal(digest_fd(fd, 1 << 20, want_blob, NULL, &err), 0);
	close(fd);
	fd = open(plain, O_RDONLY);
	assert_int_equal(digest_fd(fd, 1 << 20, want_diff, NULL, &err), 0);
	close(fd);

	struct unpacker u;
	struct decomp_result res;
	assert_int_equal(unpacker_init(&u, f->root_fd, true, false, 1 << 20, &err), 0);
	assert_int_equal(feed(&u, f->tar, &res, &err), 0);
	unpacker_done(&u);
	assert_int_equal(res.err.errnum, 0);
	assert_string_equal(res.blob_hex, want_blob);
	assert_string_equal(res.diff_hex, want_diff);

	/* truncated gzip: the helper names the cause */
	struct stat st;
	assert_int_equal(stat(f->tar, &st), 0);
	assert_int_equal(truncate(f->tar, st.st_size / 2), 0);
	assert_int_equal(unpacker_init(&u, f->root_fd, true, false, 1 << 20, &err), 0);
	fd = open(f->tar, O_RDONLY);
	struct decomp d = {0, -1, -1};
	assert_int_equal(decomp_start(fd, 1 << 20, 0, &d, &err), 0);
	int r = unpacker_layer(&u, d.data_fd, &err);
	assert_true(r < 0);
	assert_int_equal(decomp_finish(&d, false, &res, &err), 0);
	assert_int_equal(res.err.errnum, EBADMSG);
	assert_string_equal(res.err.msg, "truncated gzip input");
	close(fd);
	unpacker_done(&u);

	/* a stream larger than allowed */
	fd = open(plain, O_RDONLY);
	assert_int_equal(decomp_start(fd, 100, 0, &d, &err), 0);
	assert_int_equal(decomp_finish(&d, true, &res, &err), 0);
	assert_int_equal(res.err.errnum, EFBIG);
	assert_string_equal(res.err.msg, "uncompressed data is larger than the limit of 100 bytes");
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_symlink_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_escapes, setup, teardown),
	    cmocka_unit_test(test_secure_flags),
	    cmocka_unit_test_setup_teardown(test_layers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limits_and_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_decomp, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
