#include "orchestrator/state_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "orchestrator/task.h"

int state_dir_open(const char *root, bool create, struct sbx_state_dir *ret, struct sbx_err *err)
{
	struct sbx_state_dir sd = {.root_fd = -1, .tasks_fd = -1};
	if (create) {
		int r = sbx_mkdir_p(root, 0700, err);
		if (r < 0)
			return sbx_wrap(err, "state folder");
		if (mkdirat(AT_FDCWD, root, 0700) < 0 && errno != EEXIST)
			return sbx_fail(err, errno, "state folder '%s'", root);
	}
	sd.root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (sd.root_fd < 0)
		return sbx_fail(err, errno, "state folder '%s'", root);
	if (create && mkdirat(sd.root_fd, "tasks", 0700) < 0 && errno != EEXIST) {
		int e = errno;
		close(sd.root_fd);
		return sbx_fail(err, e, "state folder '%s/tasks'", root);
	}
	sd.tasks_fd = openat(sd.root_fd, "tasks", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sd.tasks_fd < 0 && !(errno == ENOENT && !create)) {
		int e = errno;
		close(sd.root_fd);
		return sbx_fail(err, e, "state folder '%s/tasks'", root);
	}
	sd.root = strdup(root);
	if (!sd.root) {
		state_dir_close(&sd);
		return sbx_fail(err, ENOMEM, "state folder");
	}
	*ret = sd;
	return 0;
}

void state_dir_close(struct sbx_state_dir *sd)
{
	free(sd->root);
	sd->root = NULL;
	if (sd->root_fd >= 0)
		close(sd->root_fd);
	if (sd->tasks_fd >= 0)
		close(sd->tasks_fd);
	sd->root_fd = sd->tasks_fd = -1;
}

int state_dir_open_task(const struct sbx_state_dir *sd, const char *id, struct sbx_err *err)
{
	if (!task_id_valid(id))
		return sbx_failx(err, ENOENT, "no such task '%s'", id);
	int fd =
	    sd->tasks_fd < 0 ? -1 : openat(sd->tasks_fd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sbx_fail(err, sd->tasks_fd < 0 ? ENOENT : errno, "task '%s'", id);
	return fd;
}

static bool name_matches(const char *id, const char *name)
{
	size_t n = strlen(name), m = strlen(id);
	return m == n + 5 && !strncmp(id, name, n) && id[n] == '-';
}

int state_dir_find(const struct sbx_state_dir *sd, const char *arg, char ret[STATE_ID_MAX],
                   struct sbx_err *err)
{
	if (sd->tasks_fd < 0 || !*arg)
		return sbx_failx(err, ENOENT, "no such task '%s'", arg);
	if (task_id_valid(arg) && faccessat(sd->tasks_fd, arg, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		snprintf(ret, STATE_ID_MAX, "%s", arg);
		return 0;
	}
	int dfd = openat(sd->tasks_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d)
		return sbx_fail(err, errno, "list tasks");
	unsigned by_prefix = 0, by_name = 0;
	char prefix_id[STATE_ID_MAX] = "", name_id[STATE_ID_MAX] = "";
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!task_id_valid(de->d_name))
			continue;
		if (sbx_str_has_prefix(de->d_name, arg)) {
			by_prefix++;
			snprintf(prefix_id, sizeof(prefix_id), "%.*s", STATE_ID_MAX - 1,
			         de->d_name);
		}
		if (name_matches(de->d_name, arg)) {
			by_name++;
			snprintf(name_id, sizeof(name_id), "%.*s", STATE_ID_MAX - 1, de->d_name);
		}
	}
	if (by_name == 1 || (by_name == 0 && by_prefix == 1)) {
		snprintf(ret, STATE_ID_MAX, "%s", by_name ? name_id : prefix_id);
		return 0;
	}
	if (by_name > 1 || by_prefix > 1)
		return sbx_failx(err, EINVAL, "'%s' matches %u tasks: give the whole id", arg,
		                 by_name > 1 ? by_name : by_prefix);
	return sbx_failx(err, ENOENT, "no such task '%s'", arg);
}

static int cmp_state(const void *a, const void *b)
{
	const struct sbx_task_state *x = a, *y = b;
	if (x->created_ms != y->created_ms)
		return x->created_ms < y->created_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

int state_dir_list(const struct sbx_state_dir *sd, struct sbx_task_state **ret, size_t *ret_n,
                   struct sbx_err *err)
{
	*ret = NULL;
	*ret_n = 0;
	if (sd->tasks_fd < 0)
		return 0;
	int dfd = openat(sd->tasks_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d)
		return sbx_fail(err, errno, "list tasks");
	_cleanup_free_ struct sbx_task_state *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!task_id_valid(de->d_name))
			continue;
		_cleanup_close_ int tfd =
		    openat(sd->tasks_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (tfd < 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			struct sbx_task_state *nv = realloc(v, cap * sizeof(*nv));
			if (!nv)
				return sbx_fail(err, ENOMEM, "list tasks");
			v = nv;
		}
		struct sbx_err ignored;
		if (state_read(tfd, &v[n], &ignored) == 0 && !strcmp(v[n].id, de->d_name))
			n++;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_state);
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

void state_dir_notify(const struct sbx_state_dir *sd)
{
	int fd =
	    openat(sd->root_fd, STATE_DIR_EVENT, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0) {
		(void)!write(fd, "1", 1);
		close(fd);
	}
}
