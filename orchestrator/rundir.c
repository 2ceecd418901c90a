#include "orchestrator/rundir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#define LOCK_NAME ".lock"
#define KEPT_NAME ".kept"

/* A run folder whose lock nobody holds and that was not kept: its runner
 * was killed.  Only folders of this layout are touched. */
static void sweep(const char *base)
{
	_cleanup_closedir_ DIR *d = opendir(base);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_close_ int dfd =
		    openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0 || faccessat(dfd, KEPT_NAME, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			continue;
		_cleanup_close_ int lk = openat(dfd, LOCK_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (lk < 0 || flock(lk, LOCK_EX | LOCK_NB) < 0)
			continue;
		struct sbx_err ignored;
		sbx_rm_rf_at(dirfd(d), de->d_name, &ignored);
	}
}

static int subdir(const char *dir, const char *name, mode_t mode, char **ret, struct sbx_err *err)
{
	if (asprintf(ret, "%s/%s", dir, name) < 0) {
		*ret = NULL;
		return sbx_fail(err, ENOMEM, "run folder");
	}
	if (mkdir(*ret, mode) < 0 || chmod(*ret, mode) < 0) /* exact, whatever the umask */
		return sbx_fail(err, errno, "mkdir '%s'", *ret);
	return 0;
}

int rundir_create(const char *state_dir, const char *name, struct sbx_rundir *ret,
                  struct sbx_err *err)
{
	memset(ret, 0, sizeof(*ret));
	ret->lock_fd = -1;
	_cleanup_free_ char *base = NULL;
	if (asprintf(&base, "%s/run", state_dir) < 0)
		return sbx_fail(err, ENOMEM, "run folder");
	int r = sbx_mkdir_p(base, 0700, err);
	if (r < 0)
		return r;
	sweep(base);
	if (asprintf(&ret->path, "%s/%s-XXXXXX", base, name) < 0) {
		ret->path = NULL;
		return sbx_fail(err, ENOMEM, "run folder");
	}
	if (!mkdtemp(ret->path)) {
		r = sbx_fail(err, errno, "create a run folder in '%s'", base);
		free(ret->path);
		ret->path = NULL;
		return r;
	}
	_cleanup_free_ char *lock = NULL;
	if (asprintf(&lock, "%s/%s", ret->path, LOCK_NAME) < 0)
		return sbx_fail(err, ENOMEM, "run folder");
	ret->lock_fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (ret->lock_fd < 0 || flock(ret->lock_fd, LOCK_EX) < 0)
		return sbx_fail(err, errno, "lock '%s'", lock);
	/* the upper's own mode is that of the sandbox's / (the run folder
	 * above it is the user's alone) */
	if ((r = subdir(ret->path, "upper", 0755, &ret->upper, err)) < 0 ||
	    (r = subdir(ret->path, "work", 0700, &ret->work, err)) < 0)
		return r;
	return 0;
}

void rundir_finish(struct sbx_rundir *rd, bool keep)
{
	if (rd->path) {
		if (keep) {
			_cleanup_free_ char *kept = NULL;
			if (asprintf(&kept, "%s/%s", rd->path, KEPT_NAME) >= 0) {
				int fd = open(kept, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
				if (fd >= 0)
					close(fd);
			}
		} else {
			struct sbx_err ignored;
			sbx_rm_rf_at(AT_FDCWD, rd->path, &ignored);
		}
	}
	if (rd->lock_fd >= 0)
		close(rd->lock_fd);
	free(rd->path);
	free(rd->upper);
	free(rd->work);
	memset(rd, 0, sizeof(*rd));
	rd->lock_fd = -1;
}
