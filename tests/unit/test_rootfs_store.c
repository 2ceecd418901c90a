/* The public image API (rootfs/image.h) on a temporary store: what the
 * runner calls (image_resolve, image_import with hold) and what the CLI
 * calls (list, remove, prune). */
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
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/util.h"
#include "rootfs/digest.h"
#include "rootfs/image.h"
#include "rootfs/tree.h"

struct fx {
	char dir[64];
	char store[128], tar[128], folder[128];
	char digest[IMAGE_DIGEST_MAX];
};

static void write_tar(const char *path, const char *content)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_gzip(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "./etc");
	archive_entry_set_filetype(e, AE_IFDIR);
	archive_entry_set_perm(e, 0755);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	archive_entry_clear(e);
	archive_entry_set_pathname(e, "./etc/hostname");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)strlen(content));
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	assert_int_equal(archive_write_data(a, content, strlen(content)),
	                 (la_ssize_t)strlen(content));
	archive_entry_free(e);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

/* In this process: the tests are the helper's peers, not its users. */
static int resolve(const char *store, const char *source, const char *base, struct sbx_image *img,
                   struct sbx_err *err)
{
	struct image_import_opts o = {.unpack = image_unpack_here};
	return image_import(store, source, base, &o, img, err);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/trimo-unit-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->store, sizeof(f->store), "%s/store", f->dir);
	snprintf(f->tar, sizeof(f->tar), "%s/image.tar.gz", f->dir);
	snprintf(f->folder, sizeof(f->folder), "%s/folder", f->dir);
	assert_int_equal(mkdir(f->folder, 0755), 0);
	write_tar(f->tar, "box\n");
	int fd = open(f->tar, O_RDONLY);
	char hex[65];
	struct sbx_err err;
	assert_int_equal(digest_fd(fd, 1 << 20, hex, NULL, &err), 0);
	close(fd);
	snprintf(f->digest, sizeof(f->digest), "sha256:%s", hex);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	struct sbx_err err;
	int dfd = open("/tmp", O_RDONLY | O_DIRECTORY);
	assert_int_equal(sbx_rm_rf_at(dfd, f->dir + 5, &err), 0);
	close(dfd);
	free(f);
	return 0;
}

static void test_resolve(void **state)
{
	struct fx *f = *state;
	struct sbx_image img;
	struct sbx_err err = {0};
	char cwd[256], now[256];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	/* relative to base_dir */
	assert_int_equal(resolve(f->store, "image.tar.gz", f->dir, &img, &err), 0);
	assert_string_equal(img.digest, f->digest);
	assert_true(img.imported);
	assert_false(img.in_place);
	assert_int_equal(img.hold_fd, -1);
	char want[PATH_MAX];
	snprintf(want, sizeof(want), "%s/rootfs/%s", f->store, f->digest + 7);
	assert_string_equal(img.path, want);
	char host[PATH_MAX + 16];
	snprintf(host, sizeof(host), "%s/etc/hostname", img.path);
	assert_int_equal(access(host, R_OK), 0);
	assert_non_null(getcwd(now, sizeof(now)));
	assert_string_equal(now, cwd);
	/* again: reused, by path, by digest */
	assert_int_equal(resolve(f->store, f->tar, NULL, &img, &err), 0);
	assert_false(img.imported);
	assert_int_equal(resolve(f->store, f->digest, NULL, &img, &err), 0);
	assert_string_equal(img.path, want);
	/* dir: is used in place */
	assert_int_equal(resolve(f->store, "dir:folder", f->dir, &img, &err), 0);
	assert_true(img.in_place);
	assert_string_equal(img.path, f->folder);
	assert_string_equal(img.digest, "");
	/* what is not there */
	assert_int_equal(resolve(f->store,
	                         "sha256:00000000000000000000000000000000000000"
	                         "00000000000000000000000000",
	                         NULL, &img, &err),
	                 -ENOENT);
	assert_true(image_err_is_input(&err));
	assert_int_equal(resolve(f->store, "nosuch", f->dir, &img, &err), -ENOENT);
	char msg[256];
	snprintf(msg, sizeof(msg), "no image named 'nosuch' and no file '%s/nosuch'", f->dir);
	assert_string_equal(err.msg, msg);
}

static void test_names(void **state)
{
	struct fx *f = *state;
	struct sbx_image img;
	struct sbx_err err = {0};
	struct image_import_opts o = {.name = "box", .unpack = image_unpack_here};
	assert_int_equal(image_import(f->store, f->tar, NULL, &o, &img, &err), 0);
	assert_int_equal(resolve(f->store, "box", "/nonexistent", &img, &err), 0);
	assert_string_equal(img.digest, f->digest);
	o.name = "bad/name";
	assert_int_equal(image_import(f->store, f->tar, NULL, &o, &img, &err), -EINVAL);
	assert_string_equal(err.msg, "'bad/name' is not a valid image name");
	struct image_info *v;
	size_t n;
	assert_int_equal(image_list(f->store, &v, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].digest, f->digest);
	assert_string_equal(v[0].names[0], "box");
	assert_null(v[0].names[1]);
	assert_int_equal(v[0].size, 4);
	assert_int_equal(v[0].layers, 1);
	assert_true(v[0].created > 0);
	assert_string_equal(v[0].source, f->tar);
	assert_int_equal(v[0].n_holders, 0);
	image_list_free(v, n);
}

static void test_hold(void **state)
{
	struct fx *f = *state;
	struct sbx_image img;
	struct sbx_err err = {0};
	struct image_import_opts o = {.hold = true, .unpack = image_unpack_here};
	assert_int_equal(image_import(f->store, f->tar, NULL, &o, &img, &err), 0);
	assert_true(img.hold_fd >= 0);
	int again;
	assert_int_equal(image_hold(f->store, f->digest, &again, &err), 0);
	bool removed = true;
	assert_int_equal(image_remove(f->store, f->digest, &removed, &err), -EBUSY);
	assert_false(removed);
	char msg[128];
	snprintf(msg, sizeof(msg), "image sha256:%.12s is in use by pid %d, %d", f->digest + 7,
	         (int)getpid(), (int)getpid());
	assert_string_equal(err.msg, msg);
	assert_false(image_err_is_input(&err));
	struct image_prune_stats ps;
	assert_int_equal(image_prune(f->store, &ps, &err), 0);
	assert_int_equal(ps.images, 0); /* unnamed, but held */
	struct image_info *v;
	size_t n;
	assert_int_equal(image_list(f->store, &v, &n, &err), 0);
	assert_int_equal(v[0].n_holders, 2);
	image_list_free(v, n);
	image_release(img.hold_fd);
	image_release(again);
	assert_int_equal(image_remove(f->store, f->digest, &removed, &err), 0);
	assert_true(removed);
	assert_int_equal(image_hold(f->store, f->digest, &again, &err), -ENOENT);
	image_release(-1);
}

static void test_prune_leftovers(void **state)
{
	struct fx *f = *state;
	struct sbx_image img;
	struct sbx_err err = {0};
	assert_int_equal(resolve(f->store, f->tar, NULL, &img, &err), 0);
	char dead[256], alive[256];
	snprintf(dead, sizeof(dead), "%s/tmp/%s.dead", f->store, f->digest + 7);
	snprintf(alive, sizeof(alive), "%s/tmp/stage.alive", f->store);
	assert_int_equal(mkdir(dead, 0700), 0);
	assert_int_equal(mkdir(alive, 0700), 0);
	int fd = open(alive, O_RDONLY | O_DIRECTORY);
	assert_int_equal(flock(fd, LOCK_EX), 0); /* an import in progress */
	struct image_prune_stats ps;
	assert_int_equal(image_prune(f->store, &ps, &err), 0);
	assert_int_equal(ps.leftovers, 1);
	assert_int_equal(ps.images, 1);
	assert_int_equal(ps.bytes, 4);
	assert_int_equal(access(dead, F_OK), -1);
	assert_int_equal(access(alive, F_OK), 0);
	close(fd);
	assert_int_equal(image_prune(f->store, &ps, &err), 0);
	assert_int_equal(ps.leftovers, 1);
	assert_int_equal(access(alive, F_OK), -1);
}

/* A stale or forged sources/ entry names the wrong digest for a file: the
 * unpack hashes the stream again and refuses to publish under it. */
static void test_stale_source_entry(void **state)
{
	struct fx *f = *state;
	struct sbx_image img;
	struct sbx_err err = {0};
	assert_int_equal(resolve(f->store, f->tar, NULL, &img, &err), 0);
	assert_int_equal(image_remove(f->store, f->digest, NULL, &err), 0);
	struct stat st;
	assert_int_equal(stat(f->tar, &st), 0);
	char entry[256], buf[256];
	snprintf(entry, sizeof(entry), "%s/sources/%llx-%llu", f->store,
	         (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	FILE *fp = fopen(entry, "r");
	assert_non_null(fp);
	assert_non_null(fgets(buf, sizeof(buf), fp));
	fclose(fp);
	char *hex = strstr(buf, f->digest + 7);
	assert_non_null(hex);
	memset(hex, 'e', 64);
	fp = fopen(entry, "w");
	fputs(buf, fp);
	fclose(fp);
	assert_int_equal(resolve(f->store, f->tar, NULL, &img, &err), -EBADMSG);
	assert_string_equal(err.msg, "the file changed while it was imported");
	struct image_info *v;
	size_t n;
	assert_int_equal(image_list(f->store, &v, &n, &err), 0);
	assert_int_equal(n, 0);
	image_list_free(v, n);
}

/* The default: the unpack runs in the helper program (bin/trimo-sbx-image,
 * which the Makefile builds before the unit tests), and its answer (or
 * error) comes back whole. */
static void test_helper(void **state)
{
	struct fx *f = *state;
	char helper[PATH_MAX + 32];
	snprintf(helper, sizeof(helper), "%s/trimo-sbx-image", TEST_BIN_DIR);
	if (access(helper, X_OK) < 0) {
		print_message("skipped: %s is not built (run the tests with make unit)\n", helper);
		skip();
	}
	struct sbx_image img;
	struct sbx_err err = {0};
	setenv("TRIMO_SBX_IMAGE_HELPER", "/nonexistent/helper", 1);
	assert_int_equal(image_resolve(f->store, f->tar, NULL, &img, &err), -EIO);
	assert_false(image_err_is_input(&err));
	assert_string_equal(err.msg, "run the image helper '/nonexistent/helper': No such file or "
	                             "directory");
	setenv("TRIMO_SBX_IMAGE_HELPER", helper, 1);
	assert_int_equal(image_resolve(f->store, "image.tar.gz", f->dir, &img, &err), 0);
	assert_string_equal(img.digest, f->digest);
	assert_true(img.imported);
	assert_int_equal(img.size, 4);
	assert_int_equal(img.layers, 1);
	/* again: found without the helper (it is gone now, and not needed) */
	setenv("TRIMO_SBX_IMAGE_HELPER", "/nonexistent/helper", 1);
	assert_int_equal(image_resolve(f->store, f->tar, NULL, &img, &err), 0);
	assert_false(img.imported);
	/* an error from the helper keeps its text and its errno */
	setenv("TRIMO_SBX_IMAGE_HELPER", helper, 1);
	char bad[PATH_MAX];
	snprintf(bad, sizeof(bad), "%s/bad.tar", f->dir);
	FILE *fp = fopen(bad, "w");
	fputs("this is not a tar archive at all", fp);
	fclose(fp);
	assert_int_equal(image_resolve(f->store, bad, NULL, &img, &err), -EBADMSG);
	assert_true(image_err_is_input(&err));
	assert_true(strncmp(err.msg, "not a tar archive: ", 19) == 0);
	unsetenv("TRIMO_SBX_IMAGE_HELPER");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hold, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prune_leftovers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_source_entry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_helper, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
