/* git-remote-trimo: git's remote helper for `trimo::` URLs, inside the
 * sandbox.  Static, libc only, so it runs on any image that has git.
 *
 * git runs it as `git-remote-trimo REMOTE URL` with the repository in
 * GIT_DIR and talks to it on stdin/stdout (gitremote-helpers(7)):
 *
 *   capabilities          -> push, fetch, option
 *   list [for-push]       -> the host's tips of the task branch and its base
 *   option dry-run true   -> ok (the host decides and verifies, writes nothing)
 *   option <other>        -> unsupported (never silently ignored)
 *   push [+]SRC:DST ...   -> a batch ending with a blank line; each SRC is
 *                            resolved with `git rev-parse`, a pack of the new
 *                            objects made with `git pack-objects --revs`, and
 *                            both sent over /run/trimo/push.sock; answered
 *                            with `ok DST` or `error DST <reason>`
 *   fetch ...             -> refused with a message (the host sends nothing)
 *
 * It decides nothing: the host checks every update and every object.  The
 * socket speaks orchestrator/push_proto.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "orchestrator/push_proto.h"

#define PUSH_SOCKET "/run/trimo/push.sock"
#define LINE_MAX_   8192

static const char prog[] = "git-remote-trimo";

static struct {
	char oid[PUSH_OID_HEX + 1];
	char ref[PUSH_REF_MAX + 1];
} tips[PUSH_MAX_ENTRIES];
static unsigned n_tips;
static bool dry_run;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(128);
}

/* ---- running the image's git ------------------------------------------ */

/* Run git with argv; stdin from in_fd (or /dev/null), stdout to out_fd (or
 * inherited stderr when -1, so nothing reaches git's protocol stream).
 * Returns the exit code, or -1 when it could not run. */
static int run_git(char *const argv[], int in_fd, int out_fd)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (dup2(in_fd >= 0 ? in_fd : null, 0) < 0 || dup2(out_fd >= 0 ? out_fd : 2, 1) < 0)
			_exit(127);
		execvp("git", argv);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* `git rev-parse --verify -q SPEC` into oid; false when it names nothing. */
static bool resolve(const char *spec, char oid[PUSH_OID_HEX + 1])
{
	int fd = memfd_create("rev-parse", MFD_CLOEXEC);
	if (fd < 0)
		return false;
	char *argv[] = {"git", "rev-parse", "--verify", "-q", (char *)spec, NULL};
	int rc = run_git(argv, -1, fd);
	char buf[128] = "";
	ssize_t n = rc == 0 ? pread(fd, buf, sizeof(buf) - 1, 0) : -1;
	close(fd);
	if (n < PUSH_OID_HEX)
		return false;
	buf[PUSH_OID_HEX] = '\0';
	if (!push_oid_valid(buf))
		return false;
	memcpy(oid, buf, PUSH_OID_HEX + 1);
	return true;
}

static bool have_object(const char *oid)
{
	char *argv[] = {"git", "cat-file", "-e", (char *)oid, NULL};
	return run_git(argv, -1, -1) == 0;
}

/* ---- the socket --------------------------------------------------------- */

static int connect_host(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", PUSH_SOCKET);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("cannot reach the host at %s (%s): pushes work only inside a trimo-sbx task "
		    "whose host side is running",
		    PUSH_SOCKET, strerror(errno));
	return fd;
}

static bool write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Send the request (and the pack in pack_fd, pack_len bytes), then read
 * the answer.  A host that refuses early may close before it has read the
 * whole pack: the answer is what counts, not the failed write. */
static void exchange(const struct push_request *req, int pack_fd, struct push_answer *ans)
{
	static uint8_t buf[PUSH_ANS_MAX > PUSH_REQ_HDR_MAX ? PUSH_ANS_MAX : PUSH_REQ_HDR_MAX];
	size_t n = push_request_encode(req, buf, sizeof(buf));
	if (n == 0)
		die("cannot encode the request (a ref name the host would refuse?)");
	int fd = connect_host();
	bool sent = write_all(fd, buf, n);
	for (uint64_t off = 0; sent && off < req->pack_len;) {
		char chunk[65536];
		ssize_t k = pread(pack_fd, chunk, sizeof(chunk), (off_t)off);
		if (k <= 0)
			die("read the pack: %s", k < 0 ? strerror(errno) : "short");
		sent = write_all(fd, chunk, (size_t)k);
		off += (uint64_t)k;
	}
	shutdown(fd, SHUT_WR);
	size_t have = 0;
	for (;;) {
		size_t used;
		const char *why = "the host closed the connection early";
		int r = push_answer_decode(buf, have, ans, &used, &why);
		if (r == 1)
			break;
		if (r < 0)
			die("bad answer from the host: %s", why);
		ssize_t k = have < sizeof(buf) ? read(fd, buf + have, sizeof(buf) - have) : 0;
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			die("no answer from the host: %s", k < 0 ? strerror(errno) : why);
		have += (size_t)k;
	}
	close(fd);
}

/* ---- commands ----------------------------------------------------------- */

static void cmd_list(void)
{
	struct push_request req = {.kind = PUSH_KIND_LIST};
	struct push_answer ans;
	exchange(&req, -1, &ans);
	if (ans.status != 0)
		die("the host cannot list its branches: %s", ans.msg);
	n_tips = 0;
	for (unsigned i = 0; i < ans.n && n_tips < PUSH_MAX_ENTRIES; i++) {
		if (!ans.e[i].ok || push_oid_is_zero(ans.e[i].oid))
			continue;
		memcpy(tips[n_tips].oid, ans.e[i].oid, sizeof(tips[0].oid));
		memcpy(tips[n_tips].ref, ans.e[i].ref, sizeof(tips[0].ref));
		printf("%s %s\n", tips[n_tips].oid, tips[n_tips].ref);
		n_tips++;
	}
	printf("\n");
	fflush(stdout);
}

static void cmd_option(const char *rest)
{
	if (!strcmp(rest, "dry-run true") || !strcmp(rest, "dry-run false")) {
		dry_run = !strcmp(rest, "dry-run true");
		printf("ok\n");
	} else if (!strncmp(rest, "verbosity ", 10) || !strncmp(rest, "progress ", 9)) {
		printf("ok\n"); /* how much we print, nothing the host does */
	} else {
		printf("unsupported\n");
	}
	fflush(stdout);
}

static const char *tip_of(const char *ref)
{
	for (unsigned i = 0; i < n_tips; i++)
		if (!strcmp(tips[i].ref, ref))
			return tips[i].oid;
	return push_zero_oid;
}

/* "[+]SRC:DST" into an update; false (with a reason) when it cannot be. */
static bool parse_spec(const char *spec, struct push_update *u, char *why, size_t size)
{
	memset(u, 0, sizeof(*u));
	if (*spec == '+') {
		u->force = true;
		spec++;
	}
	const char *colon = strchr(spec, ':');
	const char *dst = colon ? colon + 1 : spec;
	if (strlen(dst) > PUSH_REF_MAX || !*dst) {
		snprintf(why, size, "bad destination");
		snprintf(u->ref, sizeof(u->ref), "%.*s", PUSH_REF_MAX, *dst ? dst : "?");
		return false;
	}
	snprintf(u->ref, sizeof(u->ref), "%s", dst);
	memcpy(u->old_oid, tip_of(dst), sizeof(u->old_oid));
	char src[LINE_MAX_];
	snprintf(src, sizeof(src), "%.*s", colon ? (int)(colon - spec) : (int)strlen(spec), spec);
	if (!*src) {
		memcpy(u->new_oid, push_zero_oid, sizeof(u->new_oid));
		return true;
	}
	if (!resolve(src, u->new_oid)) {
		snprintf(why, size, "cannot resolve '%.200s' in this repository", src);
		return false;
	}
	return true;
}

/* A pack of every new object: the new ids, minus what the host's
 * advertised tips reach (those we have).  Returns a memfd with the pack,
 * its length in *ret_len. */
static int make_pack(const struct push_request *req, uint64_t *ret_len)
{
	int in = memfd_create("revs", MFD_CLOEXEC);
	int out = memfd_create("pack", MFD_CLOEXEC);
	if (in < 0 || out < 0)
		die("memfd: %s", strerror(errno));
	FILE *f = fdopen(dup(in), "w");
	if (!f)
		die("memfd: %s", strerror(errno));
	for (unsigned i = 0; i < req->n; i++)
		if (!push_oid_is_zero(req->u[i].new_oid))
			fprintf(f, "%s\n", req->u[i].new_oid);
	for (unsigned i = 0; i < n_tips; i++)
		if (have_object(tips[i].oid))
			fprintf(f, "^%s\n", tips[i].oid);
	if (fclose(f) != 0 || lseek(in, 0, SEEK_SET) < 0)
		die("memfd: %s", strerror(errno));
	char *argv[] = {"git", "pack-objects", "--revs", "--stdout", "-q", NULL};
	int rc = run_git(argv, in, out);
	close(in);
	if (rc != 0)
		die("git pack-objects failed (exit %d)", rc);
	struct stat st;
	if (fstat(out, &st) < 0)
		die("memfd: %s", strerror(errno));
	*ret_len = (uint64_t)st.st_size;
	return out;
}

/* Answer git for one batch of push lines. */
static void cmd_push(char specs[][LINE_MAX_], unsigned n)
{
	struct push_request req = {.kind = PUSH_KIND_PUSH,
	                           .flags = dry_run ? PUSH_FLAG_DRY_RUN : 0};
	char why[PUSH_MSG_MAX + 1] = "";
	bool any_new = false, failed = false;
	for (unsigned i = 0; i < n; i++) {
		if (!parse_spec(specs[i], &req.u[i], why, sizeof(why))) {
			failed = true;
			break;
		}
		any_new |= !push_oid_is_zero(req.u[i].new_oid);
	}
	req.n = (uint8_t)n;
	struct push_answer ans = {.status = 1};
	int pack_fd = -1;
	if (!failed) {
		if (any_new)
			pack_fd = make_pack(&req, &req.pack_len);
		exchange(&req, pack_fd, &ans);
		if (pack_fd >= 0)
			close(pack_fd);
		snprintf(why, sizeof(why), "%s", ans.msg);
	}
	if (ans.status == 0 && ans.msg[0])
		fprintf(stderr, "trimo-sbx: %s\n", ans.msg);
	for (unsigned i = 0; i < n; i++) {
		const struct push_entry *e = ans.status == 0 && i < ans.n ? &ans.e[i] : NULL;
		if (e && e->ok) {
			if (e->msg[0])
				fprintf(stderr, "trimo-sbx: %s\n", e->msg);
			printf("ok %s\n", req.u[i].ref);
		} else {
			printf("error %s %s\n", req.u[i].ref,
			       e        ? e->msg
			       : why[0] ? why
			                : "refused by the host");
		}
	}
	printf("\n");
	fflush(stdout);
}

static bool read_line(char *buf, size_t size)
{
	if (!fgets(buf, (int)size, stdin))
		return false;
	size_t n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (n == size - 1)
		die("a command line from git is too long");
	return true;
}

int main(int argc, char **argv)
{
	static char batch[PUSH_MAX_UPDATES][LINE_MAX_];
	char line[LINE_MAX_];
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		die("run by git for trimo:: remotes, not by hand");
	while (read_line(line, sizeof(line))) {
		if (!strcmp(line, "capabilities")) {
			printf("push\nfetch\noption\n\n");
			fflush(stdout);
		} else if (!strcmp(line, "list") || !strcmp(line, "list for-push")) {
			cmd_list();
		} else if (!strncmp(line, "option ", 7)) {
			cmd_option(line + 7);
		} else if (!strncmp(line, "push ", 5)) {
			unsigned n = 0;
			do {
				if (strncmp(line, "push ", 5) != 0)
					die("unexpected '%s' in a push batch", line);
				if (n == PUSH_MAX_UPDATES)
					die("more than %d refs in one push", PUSH_MAX_UPDATES);
				snprintf(batch[n++], LINE_MAX_, "%s", line + 5);
			} while (read_line(line, sizeof(line)) && line[0]);
			cmd_push(batch, n);
		} else if (!strncmp(line, "fetch ", 6)) {
			die("fetching is not supported: trimo-sbx sends nothing into the sandbox; "
			    "the task branch on the host moves only by your own pushes, and "
			    "origin's other branches stay as they were at launch");
		} else if (!line[0]) {
			return 0;
		} else {
			die("unknown command '%s'", line);
		}
	}
	return 0;
}
