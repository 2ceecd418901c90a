/* Entry path checks, whiteouts, directory modes and removal, against a
 * temporary folder. */
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
#include <unistd.h>

#include "common/util.h"
#include "rootfs/tree.h"

struct fx {
	char dir[64];      /* the temp folder: root/ and outside/ */
	char root[128];    /* the tree */
	char outside[128]; /* next to it: must never change */
	int root_fd;
};

static void mk(const char *base, const char *path, bool dir)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", base, path);
	if (dir) {
		assert_int_equal(mkdir(p, 0755), 0);
	} else {
		FILE *f = fopen(p, "w");
		assert_non_null(f);
		fputs(path, f);
		fclose(f);
	}
}

static bool exists(const char *base, const char *path)
{
	char p[512];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", base, path);
	return lstat(p, &st) == 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/trimo-unit-tree-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
	snprintf(f->outside, sizeof(f->outside), "%s/outside", f->dir);
	assert_int_equal(mkdir(f->root, 0755), 0);
	assert_int_equal(mkdir(f->outside, 0755), 0);
	mk(f->outside, "x", false);
	mk(f->outside, "canary", false);
	f->root_fd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->root_fd >= 0);
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
	assert_false(exists("/tmp", f->dir + 5));
	free(f);
	return 0;
}

static void expect_clean(const char *in, const char *out)
{
	char buf[256];
	struct sbx_err err = {0};
	assert_int_equal(tree_clean_path(in, buf, sizeof(buf), &err), 0);
	assert_string_equal(buf, out);
}

static void expect_escape(const char *in)
{
	char buf[256];
	struct sbx_err err = {0};
	assert_int_equal(tree_clean_path(in, buf, sizeof(buf), &err), -EBADMSG);
	assert_string_equal(err.msg, "path escapes the image root");
}

static void test_clean_path(void **state)
{
	expect_clean("./usr/bin/x", "usr/bin/x");
	expect_clean("usr//bin/./x/", "usr/bin/x");
	expect_clean("./", "");
	expect_clean(".", "");
	expect_clean("a/.../b", "a/.../b");
	expect_clean("..a/b..", "..a/b..");
	expect_escape("../escape");
	expect_escape("/abs");
	expect_escape("a/../../b");
	expect_escape("a/..");
	expect_escape("./../x");
	char small[4];
	struct sbx_err err = {0};
	assert_int_equal(tree_clean_path("abcdef", small, sizeof(small), &err), -EBADMSG);
}

static void test_whiteout_kind(void **state)
{
	assert_int_equal(tree_whiteout_kind("a/b"), TREE_WH_NONE);
	assert_int_equal(tree_whiteout_kind("a/.wh.b"), TREE_WH_FILE);
	assert_int_equal(tree_whiteout_kind(".wh.b"), TREE_WH_FILE);
	assert_int_equal(tree_whiteout_kind("a/.wh..wh..opq"), TREE_WH_OPAQUE);
	assert_int_equal(tree_whiteout_kind("a/.wh..wh.plnk"), TREE_WH_META);
	assert_int_equal(tree_whiteout_kind(".wh.a/b"), TREE_WH_NONE);
	assert_int_equal(tree_whiteout_kind("a/x.wh.b"), TREE_WH_NONE);
}

static void test_whiteout_file(void **state)
{
	struct fx *f = *state;
	struct sbx_err err = {0};
	mk(f->root, "d", true);
	mk(f->root, "d/a", false);
	mk(f->root, "d/sub", true);
	mk(f->root, "d/sub/deep", false);
	mk(f->root, "top", false);
	assert_int_equal(tree_whiteout(f->root_fd, "d/.wh.a", TREE_WH_FILE, NULL, &err), 0);
	assert_false(exists(f->root, "d/a"));
	assert_int_equal(tree_whiteout(f->root_fd, "d/.wh.sub", TREE_WH_FILE, NULL, &err), 0);
	assert_false(exists(f->root, "d/sub"));
	assert_int_equal(tree_whiteout(f->root_fd, ".wh.top", TREE_WH_FILE, NULL, &err), 0);
	assert_false(exists(f->root, "top"));
	/* missing target, missing dir, dir that is a file: nothing to do */
	assert_int_equal(tree_whiteout(f->root_fd, "d/.wh.none", TREE_WH_FILE, NULL, &err), 0);
	assert_int_equal(tree_whiteout(f->root_fd, "no/.wh.x", TREE_WH_FILE, NULL, &err), 0);
	mk(f->root, "file", false);
	assert_int_equal(tree_whiteout(f->root_fd, "file/.wh.x", TREE_WH_FILE, NULL, &err), 0);
	assert_true(exists(f->root, "d"));
}

static void test_whiteout_symlink(void **state)
{
	struct fx *f = *state;
	struct sbx_err err = {0};
	char link[256];
	snprintf(link, sizeof(link), "%s/sl", f->root);
	assert_int_equal(symlink(f->outside, link), 0);
	assert_int_equal(tree_whiteout(f->root_fd, "sl/.wh.canary", TREE_WH_FILE, NULL, &err),
	                 -EBADMSG);
	assert_string_equal(err.msg, "path goes through a symlink");
	assert_true(exists(f->outside, "canary"));
	assert_int_equal(tree_whiteout(f->root_fd, "sl/.wh..wh..opq", TREE_WH_OPAQUE, NULL, &err),
	                 -EBADMSG);
	assert_true(exists(f->outside, "canary"));
	assert_true(exists(f->outside, "x"));
	/* a relative symlink that climbs: RESOLVE_IN_ROOT would keep it in,
	 * RESOLVE_NO_SYMLINKS refuses it anyway */
	snprintf(link, sizeof(link), "%s/up", f->root);
	assert_int_equal(symlink("../outside", link), 0);
	assert_int_equal(tree_whiteout(f->root_fd, "up/.wh.x", TREE_WH_FILE, NULL, &err), -EBADMSG);
	assert_true(exists(f->outside, "x"));
	/* the whiteout of a symlink removes the link, not its target */
	assert_int_equal(tree_whiteout(f->root_fd, ".wh.sl", TREE_WH_FILE, NULL, &err), 0);
	assert_false(exists(f->root, "sl"));
	assert_true(exists(f->outside, "canary"));
}

static void test_whiteout_names(void **state)
{
	struct fx *f = *state;
	struct sbx_err err = {0};
	/* ".wh." + ".." */
	assert_int_equal(tree_whiteout(f->root_fd, "d/.wh...", TREE_WH_FILE, NULL, &err), -EBADMSG);
	assert_string_equal(err.msg, "path escapes the image root");
	assert_int_equal(tree_whiteout(f->root_fd, ".wh...", TREE_WH_FILE, NULL, &err), -EBADMSG);
	assert_string_equal(err.msg, "path escapes the image root");
	assert_int_equal(tree_whiteout(f->root_fd, "d/.wh.", TREE_WH_FILE, NULL, &err), -EBADMSG);
	assert_string_equal(err.msg, "whiteout names nothing");
	assert_int_equal(tree_whiteout(f->root_fd, "d/.wh..", TREE_WH_FILE, NULL, &err), -EBADMSG);
	assert_string_equal(err.msg, "whiteout names nothing");
	assert_true(exists(f->dir, "outside/x"));
	assert_true(exists(f->dir, "root"));
}

static void test_whiteout_keeps_own_layer(void **state)
{
	struct fx *f = *state;
	struct sbx_err err = {0};
	struct pathset keep = {0};
	mk(f->root, "d", true);
	mk(f->root, "d/old", false);
	mk(f->root, "d/new", false);
	mk(f->root, "d/newdir", true);
	mk(f->root, "d/newdir/x", false);
	mk(f->root, "d/olddir", true);
	mk(f->root, "d/olddir/y", false);
	/* this layer wrote d/new and d/newdir/x (and so d/newdir and d) */
	assert_int_equal(pathset_add(&keep, "d/new"), 0);
	assert_int_equal(pathset_add(&keep, "d/newdir/x"), 0);
	assert_true(pathset_has(&keep, "d"));
	assert_true(pathset_has(&keep, "d/newdir"));
	assert_false(pathset_has(&keep, "d/old"));
	assert_int_equal(tree_whiteout(f->root_fd, "d/.wh.new", TREE_WH_FILE, &keep, &err), 0);
	assert_true(exists(f->root, "d/new"));
	assert_int_equal(tree_whiteout(f->root_fd, "d/.wh..wh..opq", TREE_WH_OPAQUE, &keep, &err),
	                 0);
	assert_false(exists(f->root, "d/old"));
	assert_false(exists(f->root, "d/olddir"));
	assert_true(exists(f->root, "d/new"));
	assert_true(exists(f->root, "d/newdir/x"));
	/* opaque at the root */
	mk(f->root, "other", false);
	assert_int_equal(tree_whiteout(f->root_fd, ".wh..wh..opq", TREE_WH_OPAQUE, &keep, &err), 0);
	assert_false(exists(f->root, "other"));
	assert_true(exists(f->root, "d/new"));
	pathset_free(&keep);
}

static void test_pathset(void **state)
{
	struct pathset s = {0};
	char p[64];
	for (int i = 0; i < 5000; i++) {
		snprintf(p, sizeof(p), "dir%d/sub/file%d", i % 50, i);
		assert_int_equal(pathset_add(&s, p), 0);
	}
	assert_true(pathset_has(&s, "dir7/sub/file4007"));
	assert_true(pathset_has(&s, "dir7/sub"));
	assert_true(pathset_has(&s, "dir7"));
	assert_false(pathset_has(&s, "dir7/sub/file4008"));
	assert_false(pathset_has(&s, "dir7/su"));
	assert_int_equal(s.n, 5000 + 50 * 2);
	pathset_clear(&s);
	assert_false(pathset_has(&s, "dir7"));
	pathset_free(&s);
	assert_false(pathset_has(NULL, "x"));
}

static mode_t mode_of(const char *base, const char *path)
{
	char p[512];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", base, path);
	assert_int_equal(lstat(p, &st), 0);
	return st.st_mode & 07777;
}

static void test_dirmodes(void **state)
{
	struct fx *f = *state;
	struct sbx_err err = {0};
	struct dirmodes d = {0};
	mk(f->root, "a", true);
	mk(f->root, "a/b", true);
	mk(f->root, "a/b/c", true);
	mk(f->root, "open", true);
	mk(f->root, "zero", true);
	mk(f->root, "gone", true);
	mk(f->root, "gone/sub", true);
	assert_int_equal(dirmodes_note(&d, "a", 0500), 0);
	assert_int_equal(dirmodes_note(&d, "a/b", 0100), 0);
	assert_int_equal(dirmodes_note(&d, "zero", 0), 0);
	assert_int_equal(dirmodes_note(&d, "a/b/c", 0555), 0);
	assert_int_equal(dirmodes_note(&d, "open", 0755), 0); /* not held */
	assert_int_equal(dirmodes_note(&d, "gone", 0500), 0);
	assert_int_equal(dirmodes_note(&d, "gone/sub", 0500), 0);
	assert_int_equal(dirmodes_note(&d, "missing", 0500), 0);
	assert_int_equal(d.n, 7);
	/* a later layer opened it up again */
	assert_int_equal(dirmodes_note(&d, "a/b/c", 0755), 0);
	assert_int_equal(d.n, 6);
	dirmodes_forget(&d, "gone", false, NULL);
	assert_int_equal(d.n, 5);
	dirmodes_forget(&d, "gone", true, NULL);
	assert_int_equal(d.n, 4);
	assert_int_equal(dirmodes_apply(&d, f->root_fd, &err), 0);
	assert_int_equal(mode_of(f->root, "a"), 0500);
	assert_int_equal(mode_of(f->root, "a/b"), 0100);
	assert_int_equal(mode_of(f->root, "a/b/c"), 0755);
	assert_int_equal(mode_of(f->root, "zero"), 0);
	assert_int_equal(mode_of(f->root, "gone"), 0755);
	dirmodes_free(&d);
}

static void test_rm_locked(void **state)
{
	struct fx *f = *state;
	struct sbx_err err = {0};
	mk(f->root, "t", true);
	mk(f->root, "t/x", true);
	mk(f->root, "t/x/file", false);
	mk(f->root, "t/y", true);
	char p[512];
	snprintf(p, sizeof(p), "%s/t/x/file", f->root);
	chmod(p, 0);
	snprintf(p, sizeof(p), "%s/t/x", f->root);
	chmod(p, 0);
	snprintf(p, sizeof(p), "%s/t/y", f->root);
	chmod(p, 0500);
	snprintf(p, sizeof(p), "%s/t", f->root);
	chmod(p, 0555);
	snprintf(p, sizeof(p), "%s/t/link", f->root);
	assert_int_equal(sbx_rm_rf_at(f->root_fd, "t", &err), 0);
	assert_false(exists(f->root, "t"));
	assert_int_equal(sbx_rm_rf_at(f->root_fd, "t", &err), 0); /* missing is fine */
}

static void test_open_dir(void **state)
{
	struct fx *f = *state;
	mk(f->root, "d", true);
	int fd = tree_open_dir(f->root_fd, "d");
	assert_true(fd >= 0);
	close(fd);
	fd = tree_open_dir(f->root_fd, "");
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(tree_open_dir(f->root_fd, "none"), -ENOENT);
	char link[256];
	snprintf(link, sizeof(link), "%s/sl", f->root);
	assert_int_equal(symlink("d", link), 0);
	assert_int_equal(tree_open_dir(f->root_fd, "sl"), -ELOOP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_clean_path),
	    cmocka_unit_test(test_whiteout_kind),
	    cmocka_unit_test_setup_teardown(test_whiteout_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_whiteout_symlink, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_whiteout_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_whiteout_keeps_own_layer, setup, teardown),
	    cmocka_unit_test(test_pathset),
	    cmocka_unit_test_setup_teardown(test_dirmodes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rm_locked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_dir, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
