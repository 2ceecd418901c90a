/* probe: a static test program for the integration tests (crun's
 * tests/init.c is the model).  It runs inside sandboxes and reports what
 * it sees as key=value lines, or tries what a sandbox must refuse.
 *
 *   probe status             ids, capabilities, NoNewPrivs, Seccomp, ...
 *   probe pids | ifaces | fds | env | mounts | hostname
 *   probe syscall NAME...    try refused syscalls: NAME=ok or NAME=ERRNO
 *   probe tiocsti [FD]       TIOCSTI on FD (default 0), plain and with high bits
 *   probe exit N | kill SIG  exit with N, or kill itself with SIG
 *   probe signals SECONDS    print each signal received, for SECONDS
 *   probe orphans N          leave N zombie orphans for init to reap, list zombies
 *   probe sleep SECONDS
 *   probe memhog MB [STEP]   allocate and touch MB megabytes (RLIMIT_AS set by caller)
 *   probe forkbomb N         fork up to N sleeping children, report how many
 *   probe spin SECONDS       burn CPU
 *   probe write PATH [TEXT]  create PATH; reports ok or errno
 *   probe connect HOST PORT  TCP connect; reports ok or errno
 */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void print_status_lines(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f) {
		printf("status=%s\n", strerror(errno));
		return;
	}
	char line[512];
	static const char *keys[] = {
	    "Uid:",    "Gid:",    "Groups:",     "CapInh:",  "CapPrm:", "CapEff:",
	    "CapBnd:", "CapAmb:", "NoNewPrivs:", "Seccomp:", "NSpid:",  NULL};
	while (fgets(line, sizeof(line), f)) {
		for (int i = 0; keys[i]; i++) {
			size_t n = strlen(keys[i]);
			if (strncmp(line, keys[i], n))
				continue;
			char *v = line + n;
			while (*v == ' ' || *v == '\t')
				v++;
			v[strcspn(v, "\n")] = 0;
			for (char *p = v; *p; p++)
				if (*p == '\t')
					*p = ' ';
			printf("%.*s=%s\n", (int)n - 1, keys[i], v);
		}
	}
	fclose(f);
}

static void cmd_status(void)
{
	printf("pid=%d\nppid=%d\nuid=%d\ngid=%d\neuid=%d\n", getpid(), getppid(), getuid(),
	       getgid(), geteuid());
	char host[256] = "";
	gethostname(host, sizeof(host));
	printf("hostname=%s\n", host);
	printf("dumpable=%d\n", prctl(PR_GET_DUMPABLE));
	printf("sid=%d\npgid=%d\n", getsid(0), getpgid(0));
	int tty = open("/dev/tty", O_RDWR | O_NOCTTY);
	printf("ctty=%s\n", tty >= 0 ? "yes" : strerror(errno));
	if (tty >= 0)
		close(tty);
	print_status_lines();
	FILE *f = fopen("/proc/self/uid_map", "r");
	char line[256];
	if (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		printf("uid_map=%s\n", line);
	}
	if (f)
		fclose(f);
	f = fopen("/proc/self/gid_map", "r");
	if (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		printf("gid_map=%s\n", line);
	}
	if (f)
		fclose(f);
	f = fopen("/proc/self/setgroups", "r");
	if (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		printf("setgroups=%s\n", line);
	}
	if (f)
		fclose(f);
}

static void list_dir(const char *key, const char *path, int numeric_only)
{
	DIR *d = opendir(path);
	if (!d) {
		printf("%s=ERROR %s\n", key, strerror(errno));
		return;
	}
	struct dirent *de;
	printf("%s=", key);
	int first = 1;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (numeric_only && (de->d_name[0] < '0' || de->d_name[0] > '9'))
			continue;
		if (numeric_only == 2 && atoi(de->d_name) == dirfd(d))
			continue;
		printf("%s%s", first ? "" : " ", de->d_name);
		first = 0;
	}
	printf("\n");
	closedir(d);
}

static void cmd_ifaces(void)
{
	FILE *f = fopen("/proc/net/dev", "r");
	char line[512];
	printf("ifaces=");
	int first = 1, n = 0;
	while (f && fgets(line, sizeof(line), f)) {
		if (n++ < 2)
			continue;
		char *c = strchr(line, ':');
		if (!c)
			continue;
		*c = 0;
		char *name = line;
		while (*name == ' ')
			name++;
		printf("%s%s", first ? "" : " ", name);
		first = 0;
	}
	printf("\n");
	if (f)
		fclose(f);
}

static const char *errname(int e)
{
	switch (e) {
	case 0:
		return "ok";
	case EPERM:
		return "EPERM";
	case ENOSYS:
		return "ENOSYS";
	case EACCES:
		return "EACCES";
	case EINVAL:
		return "EINVAL";
	case ENOENT:
		return "ENOENT";
	case EBADF:
		return "EBADF";
	case EFAULT:
		return "EFAULT";
	case ENOTTY:
		return "ENOTTY";
	case EROFS:
		return "EROFS";
	case EEXIST:
		return "EEXIST";
	case ECONNREFUSED:
		return "ECONNREFUSED";
	case ENETUNREACH:
		return "ENETUNREACH";
	case EOPNOTSUPP:
		return "EOPNOTSUPP";
	case EAGAIN:
		return "EAGAIN";
	case ENOMEM:
		return "ENOMEM";
	case EBUSY:
		return "EBUSY";
	default: {
		static char buf[32];
		snprintf(buf, sizeof(buf), "E%d", e);
		return buf;
	}
	}
}

/* Each syscall with arguments that would succeed or fail harmlessly if the
 * filter let it through: the test asserts EPERM/ENOSYS from the filter,
 * and `ok`-or-another-errno with seccomp=unconfined. */
static long try_syscall(const char *name)
{
	errno = 0;
	long r = -1;
	if (!strcmp(name, "mount"))
		r = mount("none", "/tmp", "tmpfs", 0, NULL);
	else if (!strcmp(name, "umount2"))
		r = umount2("/tmp", MNT_DETACH);
	else if (!strcmp(name, "pivot_root"))
		r = syscall(SYS_pivot_root, "/nonexistent", "/nonexistent");
	else if (!strcmp(name, "move_mount"))
		r = syscall(SYS_move_mount, -1, "", -1, "", 0);
	else if (!strcmp(name, "open_tree"))
		r = syscall(SYS_open_tree, AT_FDCWD, "/tmp", 1 /* OPEN_TREE_CLONE */);
	else if (!strcmp(name, "fsopen"))
		r = syscall(SYS_fsopen, "tmpfs", 0);
	else if (!strcmp(name, "fsmount"))
		r = syscall(SYS_fsmount, -1, 0, 0);
	else if (!strcmp(name, "fspick"))
		r = syscall(SYS_fspick, AT_FDCWD, "/", 0);
	else if (!strcmp(name, "fsconfig"))
		r = syscall(SYS_fsconfig, -1, 0, NULL, NULL, 0);
	else if (!strcmp(name, "mount_setattr"))
		r = syscall(SYS_mount_setattr, -1, "", 0, NULL, 0);
	else if (!strcmp(name, "unshare_user"))
		r = unshare(CLONE_NEWUSER);
	else if (!strcmp(name, "unshare_mount"))
		r = unshare(CLONE_NEWNS);
	else if (!strcmp(name, "unshare_net"))
		r = unshare(CLONE_NEWNET);
	else if (!strcmp(name, "clone_newuser")) {
		r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
		if (r == 0)
			_exit(0);
		if (r > 0)
			waitpid((pid_t)r, NULL, 0), r = 0;
	} else if (!strcmp(name, "clone_newpid")) {
		r = syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
		if (r == 0)
			_exit(0);
		if (r > 0)
			waitpid((pid_t)r, NULL, 0), r = 0;
	} else if (!strcmp(name, "clone3")) {
		struct clone_args a;
		memset(&a, 0, sizeof(a));
		a.exit_signal = SIGCHLD;
		r = syscall(SYS_clone3, &a, sizeof(a));
		if (r == 0)
			_exit(0);
		if (r > 0)
			waitpid((pid_t)r, NULL, 0), r = 0;
	} else if (!strcmp(name, "setns"))
		r = syscall(SYS_setns, -1, 0);
	else if (!strcmp(name, "keyctl"))
		r = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0);
	else if (!strcmp(name, "add_key"))
		r = syscall(SYS_add_key, "user", "probe", "x", 1, -3);
	else if (!strcmp(name, "request_key"))
		r = syscall(SYS_request_key, "user", "probe", NULL, 0);
	else if (!strcmp(name, "bpf"))
		r = syscall(SYS_bpf, 0, NULL, 0);
	else if (!strcmp(name, "perf_event_open"))
		r = syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
	else if (!strcmp(name, "kexec_load"))
		r = syscall(SYS_kexec_load, 0, 0, NULL, 0);
	else if (!strcmp(name, "kexec_file_load"))
		r = syscall(SYS_kexec_file_load, -1, -1, 0, NULL, 0);
	else if (!strcmp(name, "init_module"))
		r = syscall(SYS_init_module, NULL, 0, "");
	else if (!strcmp(name, "finit_module"))
		r = syscall(SYS_finit_module, -1, "", 0);
	else if (!strcmp(name, "delete_module"))
		r = syscall(SYS_delete_module, "probe_nonexistent", 0);
	else if (!strcmp(name, "open_by_handle_at"))
		r = syscall(SYS_open_by_handle_at, -1, NULL, 0);
	else if (!strcmp(name, "reboot"))
		r = syscall(SYS_reboot, 0, 0, 0, NULL); /* bad magic: EINVAL if let through */
	else if (!strcmp(name, "swapon"))
		r = syscall(SYS_swapon, "/nonexistent", 0);
	else if (!strcmp(name, "swapoff"))
		r = syscall(SYS_swapoff, "/nonexistent");
	else if (!strcmp(name, "userfaultfd"))
		r = syscall(SYS_userfaultfd, O_CLOEXEC);
	else if (!strcmp(name, "personality"))
		r = syscall(SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */);
	else if (!strcmp(name, "personality_query"))
		r = syscall(SYS_personality, 0xffffffff);
	else if (!strcmp(name, "acct"))
		r = syscall(SYS_acct, NULL);
	else if (!strcmp(name, "syscall_500"))
		r = syscall(500, 0, 0, 0);
	else {
		fprintf(stderr, "probe: unknown syscall test %s\n", name);
		exit(2);
	}
	return r < 0 ? errno : 0;
}

static void cmd_tiocsti(int fd)
{
	char c = '#';
	errno = 0;
	int r = ioctl(fd, TIOCSTI, &c);
	printf("tiocsti=%s\n", errname(r < 0 ? errno : 0));
	/* the same command with garbage in the upper 32 bits: the kernel
	 * truncates it to TIOCSTI, so the filter must compare the low bits */
	errno = 0;
	r = (int)syscall(SYS_ioctl, fd, (unsigned long)TIOCSTI | 0x100000000UL, &c);
	printf("tiocsti_high=%s\n", errname(r < 0 ? errno : 0));
	errno = 0;
	char arg[2] = {0, 0};
	r = ioctl(fd, TIOCLINUX, arg);
	printf("tioclinux=%s\n", errname(r < 0 ? errno : 0));
}

static volatile sig_atomic_t got[65];

static void on_sig(int s)
{
	got[s]++;
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "signal=%d\n", s);
	if (write(1, buf, (size_t)n) < 0)
		_exit(3);
}

static void cmd_signals(int seconds)
{
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_sig);
	printf("ready\n");
	fflush(stdout);
	time_t end = time(NULL) + seconds;
	while (time(NULL) < end) {
		if (got[SIGTERM])
			exit(42);
		usleep(20000);
	}
}

static void cmd_orphans(int n)
{
	for (int i = 0; i < n; i++) {
		pid_t p = fork();
		if (p == 0) {
			if (fork() == 0)
				_exit(0); /* grandchild: an orphan once its parent is gone */
			_exit(0);
		}
		waitpid(p, NULL, 0);
	}
	usleep(300000);
	/* zombies left in our pid namespace (init must have reaped them) */
	int zombies = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char path[300], buf[256];
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		FILE *f = fopen(path, "r");
		if (f && fgets(buf, sizeof(buf), f)) {
			char *rp = strrchr(buf, ')');
			if (rp && rp[2] == 'Z')
				zombies++;
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	printf("zombies=%d\n", zombies);
}

static void cmd_memhog(long mb)
{
	size_t step = 1 << 20;
	for (long i = 0; i < mb; i++) {
		char *p =
		    mmap(NULL, step, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			printf("memhog=failed after %ld MB: %s\n", i, strerror(errno));
			exit(3);
		}
		memset(p, 1, step);
	}
	printf("memhog=done %ld MB\n", mb);
}

static void cmd_forkbomb(int n)
{
	int made = 0;
	for (int i = 0; i < n; i++) {
		pid_t p = fork();
		if (p == 0) {
			sleep(30);
			_exit(0);
		}
		if (p < 0) {
			printf("fork_error=%s\n", errname(errno));
			break;
		}
		made++;
	}
	printf("forked=%d\n", made);
	fflush(stdout);
}

static void cmd_spin(int seconds)
{
	time_t end = time(NULL) + seconds;
	volatile unsigned long x = 0;
	while (time(NULL) < end)
		for (int i = 0; i < 1000000; i++)
			x++;
	printf("spun=%d\n", seconds);
}

static void cmd_connect(const char *host, int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, host, &a.sin_addr);
	int r = connect(s, (struct sockaddr *)&a, sizeof(a));
	printf("connect=%s\n", errname(r < 0 ? errno : 0));
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: probe COMMAND [ARGS]\n");
		return 2;
	}
	const char *c = argv[1];
	if (!strcmp(c, "status"))
		cmd_status();
	else if (!strcmp(c, "pids"))
		list_dir("pids", "/proc", 1);
	else if (!strcmp(c, "fds"))
		list_dir("fds", "/proc/self/fd", 2);
	else if (!strcmp(c, "ifaces"))
		cmd_ifaces();
	else if (!strcmp(c, "env"))
		for (char **e = environ; *e; e++)
			printf("%s\n", *e);
	else if (!strcmp(c, "hostname")) {
		char h[256] = "";
		gethostname(h, sizeof(h));
		printf("hostname=%s\n", h);
	} else if (!strcmp(c, "mounts")) {
		FILE *f = fopen("/proc/self/mountinfo", "r");
		char line[1024];
		while (f && fgets(line, sizeof(line), f))
			fputs(line, stdout);
	} else if (!strcmp(c, "syscall")) {
		for (int i = 2; i < argc; i++)
			printf("%s=%s\n", argv[i], errname((int)try_syscall(argv[i])));
	} else if (!strcmp(c, "tiocsti"))
		cmd_tiocsti(argc > 2 ? atoi(argv[2]) : 0);
	else if (!strcmp(c, "exit"))
		return argc > 2 ? atoi(argv[2]) : 0;
	else if (!strcmp(c, "kill")) {
		signal(atoi(argv[2]), SIG_DFL);
		kill(getpid(), atoi(argv[2]));
		pause();
	} else if (!strcmp(c, "signals"))
		cmd_signals(argc > 2 ? atoi(argv[2]) : 10);
	else if (!strcmp(c, "orphans"))
		cmd_orphans(argc > 2 ? atoi(argv[2]) : 5);
	else if (!strcmp(c, "sleep"))
		sleep(argc > 2 ? (unsigned)atoi(argv[2]) : 1);
	else if (!strcmp(c, "memhog"))
		cmd_memhog(argc > 2 ? atol(argv[2]) : 64);
	else if (!strcmp(c, "forkbomb"))
		cmd_forkbomb(argc > 2 ? atoi(argv[2]) : 100);
	else if (!strcmp(c, "spin"))
		cmd_spin(argc > 2 ? atoi(argv[2]) : 1);
	else if (!strcmp(c, "write")) {
		int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = fd < 0 ? errno : 0;
		if (fd >= 0 && argc > 3 && write(fd, argv[3], strlen(argv[3])) < 0)
			e = errno;
		printf("write=%s\n", errname(e));
	} else if (!strcmp(c, "connect"))
		cmd_connect(argv[2], atoi(argv[3]));
	else {
		fprintf(stderr, "probe: unknown command %s\n", c);
		return 2;
	}
	return 0;
}
