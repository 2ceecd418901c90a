/* The host repository's branch to its own remote, with the host user's
 * own git: their ssh-agent and ~/.ssh/config, their credential helpers
 * (`git credential fill` through git itself), their insteadOf and proxy
 * settings, exactly as their own `git push` would.  Nothing of it reaches
 * a sandbox.  Never a prompt: no terminal, GIT_TERMINAL_PROMPT=0, and a
 * time limit. */
#include "orchestrator/git2/git2.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "orchestrator/push_proto.h"

#define OUT_MAX 65536

/* Variables that would point the host's git somewhere else than the
 * repository we name. */
static const char *const unset_vars[] = {
    "GIT_DIR",        "GIT_WORK_TREE",           "GIT_INDEX_FILE",
    "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",  "GIT_CEILING_DIRECTORIES", NULL,
};

static void child(const char *repo, char **argv, int out)
{
	for (size_t i = 0; unset_vars[i]; i++)
		unsetenv(unset_vars[i]);
	setenv("GIT_TERMINAL_PROMPT", "0", 1);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 ||
	    chdir(repo) < 0)
		_exit(127);
	/* no terminal to prompt on, even for ssh */
	setsid();
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execvp("git", argv);
	_exit(127);
}

/* Read the child's output until EOF or the deadline. */
static size_t collect(int fd, char *buf, size_t size, time_t deadline, bool *ret_timeout)
{
	size_t len = 0;
	*ret_timeout = false;
	for (;;) {
		time_t left = deadline - time(NULL);
		if (left <= 0) {
			*ret_timeout = true;
			break;
		}
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int n = poll(&p, 1, (int)(left * 1000));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*ret_timeout = n == 0;
			break;
		}
		char tmp[4096];
		ssize_t k = read(fd, tmp, sizeof(tmp));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		size_t take = (size_t)k < size - 1 - len ? (size_t)k : size - 1 - len;
		memcpy(buf + len, tmp, take);
		len += take;
	}
	buf[len] = '\0';
	return len;
}

/* The line that says why: the first "! ..." of --porcelain, else the last
 * "fatal:"/"error:" line, else the last line. */
static void reason(const char *out, char *why, size_t size)
{
	const char *best = NULL, *last = NULL;
	for (const char *l = out; *l;) {
		size_t n = strcspn(l, "\n");
		if (n > 0) {
			last = l;
			bool bang = *l == '!';
			bool said = !strncmp(l, "fatal:", 6) || !strncmp(l, "error:", 6);
			if ((bang || said) && (!best || *best != '!'))
				best = l;
		}
		l += n;
		if (*l)
			l++;
	}
	const char *l = best ? best : last;
	if (!l) {
		snprintf(why, size, "no output");
		return;
	}
	snprintf(why, size, "%.*s", (int)strcspn(l, "\n"), l);
	for (char *c = why; *c; c++)
		if ((unsigned char)*c < 0x20)
			*c = ' ';
}

int gh_push_remote(const char *repo, const char *remote, const char *const *refs, size_t n,
                   unsigned timeout_s, struct sbx_err *err)
{
	char *argv[8 + PUSH_MAX_UPDATES];
	char specs[PUSH_MAX_UPDATES][600];
	size_t a = 0;
	argv[a++] = "git";
	argv[a++] = "push";
	argv[a++] = "--porcelain";
	argv[a++] = "--";
	argv[a++] = (char *)remote;
	for (size_t i = 0; i < n && i < PUSH_MAX_UPDATES; i++) {
		snprintf(specs[i], sizeof(specs[i]), "%s:%s", refs[i], refs[i]);
		argv[a++] = specs[i];
	}
	argv[a] = NULL;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return sbx_fail(err, errno, "push to %s: pipe", remote);
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return sbx_fail(err, errno, "push to %s: fork", remote);
	}
	if (pid == 0)
		child(repo, argv, p[1]);
	close(p[1]);
	static char out[OUT_MAX];
	bool timeout;
	collect(p[0], out, sizeof(out), time(NULL) + (timeout_s ? timeout_s : GH_DEFAULT_TIMEOUT_S),
	        &timeout);
	close(p[0]);
	if (timeout) {
		kill(-pid, SIGKILL); /* git and its ssh, in their own session */
		kill(pid, SIGKILL);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timeout)
		return sbx_failx(err, ETIMEDOUT, "git push to %s: no answer after %us", remote,
		                 timeout_s ? timeout_s : GH_DEFAULT_TIMEOUT_S);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char why[400];
	reason(out, why, sizeof(why));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && !strcmp(why, "no output"))
		return sbx_failx(err, ENOENT, "git push to %s: cannot run git on the host", remote);
	return sbx_failx(err, EIO, "%s", why);
}

/* `trimo-sbx-git push-remote`: the task branch (and nothing else). */
int gh_push_remote_cmd(const struct gh_opts *o, struct sbx_err *err)
{
	_cleanup_git_repo_ git_repository *repo = NULL;
	git_oid tip;
	int r = gh_open_host(o->repo, &repo, err);
	if (r >= 0)
		r = gh_branch_tip(repo, o->branch, &tip, err);
	if (r < 0)
		return r;
	char ref[600], hex[GIT_OID_HEXSZ + 1];
	snprintf(ref, sizeof(ref), "refs/heads/%s", o->branch);
	git_oid_tostr(hex, sizeof(hex), &tip);
	const char *refs[] = {ref};
	const char *remote = o->remote ? o->remote : "origin";
	r = gh_push_remote(o->repo, remote, refs, 1, o->timeout_s, err);
	gh_record(o, "remote", ref, r >= 0, r >= 0 ? "pushed" : err->msg);
	if (r < 0)
		return sbx_wrap(err, "push %s to %s", o->branch, remote);
	printf("pushed %s (%.7s) to %s\n", o->branch, hex, remote);
	return 0;
}
