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
 *
 * Hostile probes (tests/integration/test_hostile.py):
 *   probe peek PID           try to reach another process: ptrace, process_vm_*,
 *                            pidfd_getfd, kcmp, /proc/PID/{mem,environ,root,cwd,fd,...}
 *   probe int80 NR [A1 A2 A3]  an i386 syscall through int 0x80
 *   probe x32 NR             a syscall with the x32 bit set
 *   probe uconnect NAME      AF_UNIX connect (@NAME: abstract)
 *   probe vsock              socket(AF_VSOCK)
 *   probe ipc KEY            SysV shmget/msgget/semget of an existing KEY
 *   probe cgroup1 TYPE OPTS FILE VALUE [FILE VALUE]...
 *                            in a nested user+mount+cgroup namespace, mount TYPE
 *                            (cgroup with OPTS, or cgroup2 with -) and write each
 *                            VALUE to its FILE, in order
 *   probe setfcap PATH       give PATH the file capability cap_setuid+ep
 *   probe termios FD         clear ECHO on FD's terminal
 *   probe stackfilter NAME.. load an allow-all seccomp filter, then try NAMEs
 *   probe fdinfo             every open fd with what it points to
 *   probe inotify N SECONDS  hold up to N inotify instances for SECONDS
 *   probe hold @NAME KEY SECONDS
 *                            listen on the abstract socket NAME and create a SysV
 *                            shared memory segment KEY, for SECONDS
 *
 * File system probes (tests/integration/test_fuse_hostile.py):
 *   probe setxattr PATH NAME VALUE   set an extended attribute (no symlink follow);
 *                            VALUE hex:0a1b... for bytes
 *   probe fsflags PATH HEX   add HEX to PATH's inode flags (FS_IOC_SETFLAGS, chattr)
 *   probe exchange A B       swap two names atomically (renameat2 RENAME_EXCHANGE)
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
#include <linux/filter.h>
#include <linux/fs.h>
#include <linux/kcmp.h>
#include <linux/seccomp.h>
#include <linux/vm_sockets.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <sys/ptrace.h>
#include <termios.h>
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
	case ESRCH:
		return "ESRCH";
	case EAFNOSUPPORT:
		return "EAFNOSUPPORT";
	case EIO:
		return "EIO";
	case ENXIO:
		return "ENXIO";
	case ENODEV:
		return "ENODEV";
	case ENOTDIR:
		return "ENOTDIR";
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
	else if (!strcmp(name, "io_uring_setup")) {
		char params[120];
		memset(params, 0, sizeof(params));
		r = syscall(SYS_io_uring_setup, 1, params);
	} else if (!strcmp(name, "io_uring_enter"))
		r = syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0);
	else if (!strcmp(name, "io_uring_register"))
		r = syscall(SYS_io_uring_register, -1, 0, NULL, 0);
	else if (!strcmp(name, "prctl_set_mm"))
		r = prctl(PR_SET_MM, PR_SET_MM_ARG_START, 0x10000, 0, 0);
	else if (!strcmp(name, "syslog"))
		r = syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	else if (!strcmp(name, "iopl"))
		r = syscall(SYS_iopl, 3);
	else if (!strcmp(name, "ioperm"))
		r = syscall(SYS_ioperm, 0x80, 1, 1);
	else if (!strcmp(name, "modify_ldt")) {
		char buf[16];
		r = syscall(SYS_modify_ldt, 0, buf, sizeof(buf));
	} else if (!strcmp(name, "fanotify_init"))
		r = syscall(SYS_fanotify_init, 0, 0);
	else if (!strcmp(name, "settimeofday"))
		r = syscall(SYS_settimeofday, NULL, NULL);
	else if (!strcmp(name, "clock_settime")) {
		struct timespec ts = {0, 0};
		r = syscall(SYS_clock_settime, 99 /* bad clock: EINVAL if let through */, &ts);
	} else if (!strcmp(name, "clock_adjtime"))
		r = syscall(SYS_clock_adjtime, 99, NULL);
	else if (!strcmp(name, "vhangup"))
		r = syscall(SYS_vhangup);
	else if (!strcmp(name, "lookup_dcookie"))
		r = syscall(212, 0, NULL, 0);
	else if (!strcmp(name, "migrate_pages"))
		r = syscall(SYS_migrate_pages, 0, 0, NULL, NULL);
	else if (!strcmp(name, "move_pages"))
		r = syscall(SYS_move_pages, 0, 0, NULL, NULL, NULL, 0);
	else if (!strcmp(name, "quotactl"))
		r = syscall(SYS_quotactl, 0, NULL, 0, NULL);
	else if (!strcmp(name, "unshare_cgroup"))
		r = unshare(CLONE_NEWCGROUP);
	else if (!strcmp(name, "unshare_ipc"))
		r = unshare(CLONE_NEWIPC);
	else if (!strcmp(name, "unshare_uts"))
		r = unshare(CLONE_NEWUTS);
	else if (!strcmp(name, "unshare_pid"))
		r = unshare(CLONE_NEWPID);
	else if (!strcmp(name, "unshare_time"))
		r = unshare(0x80 /* CLONE_NEWTIME */);
	else if (!strcmp(name, "unshare_user_hi"))
		/* garbage in the upper half must not hide the flag from the filter */
		r = syscall(SYS_unshare, (unsigned long)CLONE_NEWUSER | 0x100000000UL);
	else if (!strncmp(name, "clone_", 6)) {
		unsigned long f = 0;
		if (!strcmp(name, "clone_newns"))
			f = CLONE_NEWNS;
		else if (!strcmp(name, "clone_newnet"))
			f = CLONE_NEWNET;
		else if (!strcmp(name, "clone_newcgroup"))
			f = CLONE_NEWCGROUP;
		else if (!strcmp(name, "clone_newipc"))
			f = CLONE_NEWIPC;
		else if (!strcmp(name, "clone_newuts"))
			f = CLONE_NEWUTS;
		else if (!strcmp(name, "clone_newuser_hi"))
			/* the kernel keeps only the low 32 bits of clone's flags */
			f = CLONE_NEWUSER | 0x100000000UL;
		else {
			fprintf(stderr, "probe: unknown syscall test %s\n", name);
			exit(2);
		}
		r = syscall(SYS_clone, f | SIGCHLD, 0, 0, 0, 0);
		if (r == 0)
			_exit(0);
		if (r > 0)
			waitpid((pid_t)r, NULL, 0), r = 0;
	} else {
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

/* ---- hostile probes ------------------------------------------------- */

static void report(const char *key, long r)
{
	printf("%s=%s\n", key, errname(r < 0 ? errno : 0));
}

/* Everything a process could use to reach into another one. */
static void cmd_peek(pid_t pid)
{
	char path[128], buf[256];
	long r;
	errno = 0;
	r = ptrace(PTRACE_ATTACH, pid, NULL, NULL);
	report("ptrace_attach", r);
	if (r == 0) {
		waitpid(pid, NULL, __WALL);
		ptrace(PTRACE_DETACH, pid, NULL, NULL);
	}
	errno = 0;
	r = ptrace(PTRACE_SEIZE, pid, NULL, NULL);
	report("ptrace_seize", r);
	if (r == 0)
		ptrace(PTRACE_DETACH, pid, NULL, NULL);
	/* any address: the access check comes before the copy */
	static char local[8];
	struct iovec lv = {local, sizeof(local)};
	struct iovec rv = {(void *)local, sizeof(local)};
	errno = 0;
	r = syscall(SYS_process_vm_readv, pid, &lv, 1, &rv, 1, 0);
	printf("process_vm_readv=%s\n", errname(r < 0 ? errno : 0));
	errno = 0;
	r = syscall(SYS_process_vm_writev, pid, &lv, 1, &rv, 1, 0);
	printf("process_vm_writev=%s\n", errname(r < 0 ? errno : 0));
	errno = 0;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	report("pidfd_open", pfd);
	if (pfd >= 0) {
		int got = -1;
		for (int fd = 0; fd < 8 && got < 0; fd++) {
			errno = 0;
			got = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
			if (got < 0 && errno == EBADF)
				continue;
			break;
		}
		report("pidfd_getfd", got);
		close(pfd);
	}
	errno = 0;
	r = syscall(SYS_kcmp, getpid(), pid, KCMP_FILE, 0, 0);
	printf("kcmp=%s\n", errname(r < 0 ? errno : 0));
	static const char *const files[] = {"mem",     "environ", "maps", "auxv",
	                                    "syscall", "stack",   "io",   NULL};
	for (int i = 0; files[i]; i++) {
		snprintf(path, sizeof(path), "/proc/%d/%s", pid, files[i]);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		int e = fd < 0 ? errno : 0;
		if (fd >= 0 && read(fd, buf, sizeof(buf)) < 0)
			e = errno;
		if (fd >= 0)
			close(fd);
		printf("open_%s=%s\n", files[i], errname(e));
	}
	static const char *const links[] = {"root", "cwd", "exe", "fd/0", "ns/mnt", NULL};
	for (int i = 0; links[i]; i++) {
		snprintf(path, sizeof(path), "/proc/%d/%s", pid, links[i]);
		ssize_t n = readlink(path, buf, sizeof(buf) - 1);
		char key[32];
		snprintf(key, sizeof(key), "readlink_%s", links[i]);
		for (char *k = key; *k; k++)
			if (*k == '/')
				*k = '_';
		printf("%s=%s\n", key, errname(n < 0 ? errno : 0));
	}
	snprintf(path, sizeof(path), "/proc/%d/root/", pid);
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	printf("open_root=%s\n", errname(fd < 0 ? errno : 0));
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	printf("list_fd=%s\n", errname(d ? 0 : errno));
	if (d)
		closedir(d);
	snprintf(path, sizeof(path), "/proc/%d/map_files", pid);
	d = opendir(path);
	printf("list_map_files=%s\n", errname(d ? 0 : errno));
	if (d)
		closedir(d);
}

/* An i386 system call from this 64-bit process. */
static void cmd_int80(long nr, long a1, long a2, long a3)
{
	printf("int80=attempt\n");
	fflush(stdout);
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a1), "c"(a2), "d"(a3) : "memory");
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		printf("int80=%s\n", errname((int)-ret));
	} else {
		printf("int80=ok\n");
	}
}

static void cmd_x32(long nr)
{
	printf("x32=attempt\n");
	fflush(stdout);
	errno = 0;
	long r = syscall(0x40000000L | nr, 0, 0, 0);
	printf("x32=%s\n", errname(r < 0 ? errno : 0));
}

static void cmd_uconnect(const char *name)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	socklen_t len;
	if (name[0] == '@') {
		size_t n = strlen(name + 1);
		memcpy(a.sun_path + 1, name + 1, n);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	} else {
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", name);
		len = sizeof(a);
	}
	int r = connect(s, (struct sockaddr *)&a, len);
	printf("uconnect=%s\n", errname(r < 0 ? errno : 0));
}

static void cmd_vsock(void)
{
	errno = 0;
	int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	printf("vsock_stream=%s\n", errname(s < 0 ? errno : 0));
	if (s >= 0) {
		/* which CID this machine has: proof that the socket is live */
		unsigned cid = 0;
		int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) == 0)
			printf("vsock_local_cid=%u\n", cid);
		if (fd >= 0)
			close(fd);
		close(s);
	}
	errno = 0;
	s = socket(AF_VSOCK, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	printf("vsock_dgram=%s\n", errname(s < 0 ? errno : 0));
	if (s >= 0)
		close(s);
}

static void cmd_ipc(long key)
{
	errno = 0;
	int r = shmget((key_t)key, 0, 0);
	printf("shmget=%s\n", errname(r < 0 ? errno : 0));
	errno = 0;
	r = msgget((key_t)key, 0);
	printf("msgget=%s\n", errname(r < 0 ? errno : 0));
	errno = 0;
	r = semget((key_t)key, 0, 0);
	printf("semget=%s\n", errname(r < 0 ? errno : 0));
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	int e = errno;
	close(fd);
	errno = e;
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static void print_file(const char *key, const char *path)
{
	char buf[256] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		printf("%s=ERROR %s\n", key, errname(errno));
		return;
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	printf("%s=%s\n", key, buf);
}

/* What a nested sandbox could do to the cgroup it runs in: its own user,
 * mount and cgroup namespaces (the cgroup namespace rooted where we are),
 * a fresh mount of the hierarchy, and a write to one of its files. */
static void cmd_cgroup1(const char *type, const char *opts, int n, char **pairs)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	errno = 0;
	int r = unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWCGROUP);
	report("unshare", r);
	if (r < 0)
		return;
	char map[64];
	snprintf(map, sizeof(map), "0 %d 1", (int)gid);
	write_file("/proc/self/setgroups", "deny");
	report("gid_map", write_file("/proc/self/gid_map", map));
	snprintf(map, sizeof(map), "0 %d 1", (int)uid);
	report("uid_map", write_file("/proc/self/uid_map", map));
	mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	const char *dir = "/tmp/probe-cgroup";
	mkdir(dir, 0755);
	errno = 0;
	r = mount("none", dir, type, 0, strcmp(opts, "-") ? opts : NULL);
	report("mount", r);
	if (r < 0)
		return;
	for (int i = 0; i + 1 < n; i += 2) {
		char path[256], key[300];
		snprintf(path, sizeof(path), "%s/%s", dir, pairs[i]);
		snprintf(key, sizeof(key), "before_%s", pairs[i]);
		print_file(key, path);
		errno = 0;
		snprintf(key, sizeof(key), "write_%s", pairs[i]);
		report(key, write_file(path, pairs[i + 1]));
		snprintf(key, sizeof(key), "after_%s", pairs[i]);
		print_file(key, path);
	}
}

/* cap_setuid+ep in a version 2 capability xattr (the kernel rewrites it
 * as version 3 with the root of our user namespace as its owner). */
static void cmd_setfcap(const char *path)
{
	struct {
		uint32_t magic_etc;
		struct {
			uint32_t permitted, inheritable;
		} data[2];
	} cap;
	memset(&cap, 0, sizeof(cap));
	cap.magic_etc = 0x02000000 /* VFS_CAP_REVISION_2 */ | 0x000001 /* EFFECTIVE */;
	cap.data[0].permitted = 1u << 7; /* CAP_SETUID */
	errno = 0;
	int r = setxattr(path, "security.capability", &cap, sizeof(cap), 0);
	report("setfcap", r);
}

static void cmd_setxattr(const char *path, const char *name, const char *value)
{
	char buf[512];
	size_t n = strlen(value);
	if (!strncmp(value, "hex:", 4)) {
		n = 0;
		for (const char *h = value + 4; h[0] && h[1] && n < sizeof(buf); h += 2) {
			char byte[3] = {h[0], h[1], 0};
			buf[n++] = (char)strtol(byte, NULL, 16);
		}
		value = buf;
	}
	errno = 0;
	report("setxattr", lsetxattr(path, name, value, n, 0));
}

static void cmd_fsflags(const char *path, const char *hex)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		report("fsflags", -1);
		return;
	}
	int flags = 0;
	long r = ioctl(fd, FS_IOC_GETFLAGS, &flags);
	if (r == 0) {
		flags |= (int)strtol(hex, NULL, 16);
		r = ioctl(fd, FS_IOC_SETFLAGS, &flags);
	}
	report("fsflags", r);
	close(fd);
}

static void cmd_exchange(const char *a, const char *b)
{
	errno = 0;
	report("exchange",
	       syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */));
}

static void cmd_termios(int fd)
{
	struct termios t;
	errno = 0;
	if (tcgetattr(fd, &t) < 0) {
		printf("termios=%s\n", errname(errno));
		return;
	}
	t.c_lflag &= ~(tcflag_t)ECHO;
	errno = 0;
	int r = tcsetattr(fd, TCSANOW, &t);
	printf("termios=%s\n", errname(r < 0 ? errno : 0));
}

static void cmd_stackfilter(int argc, char **argv)
{
	struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
	struct sock_fprog prog = {.len = 1, .filter = allow};
	errno = 0;
	long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
	report("stackfilter", r);
	for (int i = 0; i < argc; i++)
		printf("%s=%s\n", argv[i], errname((int)try_syscall(argv[i])));
}

static void cmd_fdinfo(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
			continue;
		char path[300], target[512];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		printf("fd%s=%s\n", de->d_name, target);
	}
	if (d)
		closedir(d);
}

static void cmd_inotify(int n, int seconds)
{
	int made = 0, e = 0;
	for (; made < n; made++) {
		if (inotify_init1(IN_CLOEXEC) < 0) {
			e = errno;
			break;
		}
	}
	printf("inotify=%d\ninotify_error=%s\nready\n", made, errname(e));
	fflush(stdout);
	sleep((unsigned)seconds);
}

static void cmd_hold(const char *name, long key, int seconds)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t n = strlen(name + 1);
	memcpy(a.sun_path + 1, name + 1, n);
	int r = bind(s, (struct sockaddr *)&a,
	             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n));
	if (r == 0)
		r = listen(s, 8);
	printf("listen=%s\n", errname(r < 0 ? errno : 0));
	int id = shmget((key_t)key, 4096, IPC_CREAT | 0600);
	printf("shmcreate=%s\n", errname(id < 0 ? errno : 0));
	printf("ready\n");
	fflush(stdout);
	sleep((unsigned)seconds);
	if (id >= 0)
		shmctl(id, IPC_RMID, NULL);
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
	else if (!strcmp(c, "peek") && argc > 2)
		cmd_peek(atoi(argv[2]));
	else if (!strcmp(c, "int80") && argc > 2)
		cmd_int80(strtol(argv[2], NULL, 0), argc > 3 ? strtol(argv[3], NULL, 0) : 0,
		          argc > 4 ? strtol(argv[4], NULL, 0) : 0,
		          argc > 5 ? strtol(argv[5], NULL, 0) : 0);
	else if (!strcmp(c, "x32") && argc > 2)
		cmd_x32(strtol(argv[2], NULL, 0));
	else if (!strcmp(c, "uconnect") && argc > 2)
		cmd_uconnect(argv[2]);
	else if (!strcmp(c, "vsock"))
		cmd_vsock();
	else if (!strcmp(c, "ipc") && argc > 2)
		cmd_ipc(strtol(argv[2], NULL, 0));
	else if (!strcmp(c, "cgroup1") && argc > 5)
		cmd_cgroup1(argv[2], argv[3], argc - 4, argv + 4);
	else if (!strcmp(c, "setfcap") && argc > 2)
		cmd_setfcap(argv[2]);
	else if (!strcmp(c, "setxattr") && argc > 4)
		cmd_setxattr(argv[2], argv[3], argv[4]);
	else if (!strcmp(c, "fsflags") && argc > 3)
		cmd_fsflags(argv[2], argv[3]);
	else if (!strcmp(c, "exchange") && argc > 3)
		cmd_exchange(argv[2], argv[3]);
	else if (!strcmp(c, "termios"))
		cmd_termios(argc > 2 ? atoi(argv[2]) : 0);
	else if (!strcmp(c, "stackfilter"))
		cmd_stackfilter(argc - 2, argv + 2);
	else if (!strcmp(c, "fdinfo"))
		cmd_fdinfo();
	else if (!strcmp(c, "hold") && argc > 4 && argv[2][0] == '@')
		cmd_hold(argv[2], strtol(argv[3], NULL, 0), atoi(argv[4]));
	else if (!strcmp(c, "inotify") && argc > 3)
		cmd_inotify(atoi(argv[2]), atoi(argv[3]));
	else {
		fprintf(stderr, "probe: unknown command %s\n", c);
		return 2;
	}
	return 0;
}
