/* Small pieces the helper's commands share. */
#include "orchestrator/git2/git2.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

int gh_fail(struct sbx_err *err, int code, const char *fmt, ...)
{
	char what[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	const git_error *e = git_error_last();
	if (e && e->message && e->message[0])
		return sbx_failx(err, code, "%s: %s", what, e->message);
	return sbx_failx(err, code, "%s", what);
}

int gh_open_host(const char *path, git_repository **ret, struct sbx_err *err)
{
	if (git_repository_open_ext(ret, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0)
		return gh_fail(err, EINVAL, "host repository '%s'", path);
	return 0;
}

int gh_base_branch(git_repository *repo, const char *base, char **ret, struct sbx_err *err)
{
	if (base && *base) {
		*ret = strdup(base);
		return *ret ? 0 : sbx_fail(err, ENOMEM, "base");
	}
	_cleanup_git_reference_ git_reference *head = NULL;
	if (git_reference_lookup(&head, repo, "HEAD") < 0)
		return gh_fail(err, EINVAL, "the host repository's HEAD");
	const char *target = git_reference_symbolic_target(head);
	if (!target || strncmp(target, "refs/heads/", 11) != 0)
		return sbx_failx(err, EINVAL,
		                 "the host repository's HEAD is not on a branch: set [repo] base");
	*ret = strdup(target + 11);
	return *ret ? 0 : sbx_fail(err, ENOMEM, "base");
}

int gh_branch_tip(git_repository *repo, const char *name, git_oid *ret, struct sbx_err *err)
{
	char full[512];
	if ((size_t)snprintf(full, sizeof(full), "refs/heads/%s", name) >= sizeof(full))
		return sbx_failx(err, ENAMETOOLONG, "branch '%s': name too long", name);
	_cleanup_git_reference_ git_reference *ref = NULL;
	int r = git_reference_lookup(&ref, repo, full);
	if (r == GIT_ENOTFOUND)
		return sbx_failx(err, ENOENT, "branch '%s' does not exist in the host repository",
		                 name);
	if (r < 0)
		return gh_fail(err, EIO, "branch '%s'", name);
	_cleanup_git_object_ git_object *obj = NULL;
	if (git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) < 0)
		return gh_fail(err, EINVAL, "branch '%s'", name);
	*ret = *git_object_id(obj);
	return 0;
}

/* ---- the record of push attempts (for inspect) --------------------------- */

static json_t *attempt(const char *refs, bool ok, const char *msg)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	char stamp[32];
	struct tm tm;
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_pack("{s:s, s:s, s:b, s:s}", "time", stamp, "refs", refs, "ok", ok, "message",
	                 msg);
}

/* git.json: {"sandbox": {last attempt}, "remote": {...}, "sandbox_count": N,
 * "remote_count": N}, written through a temporary name and renamed, under
 * an flock of git.json.lock: the supervisor's receiver and a `trimo-sbx
 * push` may write at once. */
void gh_record(const struct gh_opts *o, const char *kind, const char *refs, bool ok,
               const char *msg)
{
	if (!o->record)
		return;
	char lock[4096];
	if ((size_t)snprintf(lock, sizeof(lock), "%s.lock", o->record) >= sizeof(lock))
		return;
	_cleanup_close_ int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0)
		return;
	struct sbx_err ignored;
	_cleanup_free_ char *old = NULL;
	json_t *root = NULL;
	if (sbx_read_file(AT_FDCWD, o->record, 1 << 20, &old, NULL, &ignored) >= 0)
		root = json_loads(old, 0, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		root = json_object();
	}
	char count[64];
	snprintf(count, sizeof(count), "%s_count", kind);
	json_int_t n = json_integer_value(json_object_get(root, count));
	json_object_set_new(root, kind, attempt(refs, ok, msg));
	json_object_set_new(root, count, json_integer(n + 1));
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(root);
	if (text)
		sbx_write_file_atomic(AT_FDCWD, o->record, text, strlen(text), 0600, &ignored);
	free(text);
}
