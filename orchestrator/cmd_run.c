/* trimo-sbx run [OPTIONS] IMAGE [--] COMMAND [ARG...] */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "config/config.h"
#include "orchestrator/cli.h"
#include "orchestrator/limits.h"
#include "orchestrator/rundir.h"
#include "rootfs/image.h"
#include "runtime/network.h"
#include "runtime/run.h"
#include "sandbox/caps.h"
#include "sandbox/mount.h"

static const char run_usage[] =
    "usage: trimo-sbx run [OPTIONS] IMAGE [--] COMMAND [ARG...]\n"
    "\n"
    "Run COMMAND in a new sandbox from IMAGE, in the foreground; exits with\n"
    "COMMAND's exit code (125: trimo-sbx failed, 126: not executable, 127: not found).\n"
    "\n"
    "IMAGE:\n"
    "  dir:PATH                 a root file system folder, used in place (read-only)\n"
    "  FILE.tar[.gz|.zst|.xz|.bz2], oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE,\n"
    "  NAME (from image import --name), sha256:DIGEST\n"
    "                           imported once into the image store; the sandbox gets\n"
    "                           a private writable layer on top, removed at the end\n"
    "\n"
    "Options:\n"
    "  --name NAME              the sandbox's name (default: run-XXXX)\n"
    "  --hostname NAME          host name inside (default: the name)\n"
    "  -w, --workdir DIR        working directory inside (created if missing)\n"
    "  -e, --env K=V | K        set a variable (K alone: take the caller's value)\n"
    "  --bind SRC:DST[:ro]      bind a host path (repeatable; nosuid, nodev)\n"
    "  --rw                     dir: write the rootfs in place (default: read-only)\n"
    "  --read-only              a stored image without a writable layer\n"
    "  --keep                   keep the writable layer (its folder is printed)\n"
    "  -t, --tty                give the command its own pseudo-terminal\n"
    "  --cap-add CAP, --cap-drop CAP\n"
    "                           change the capabilities kept (ALL for every one)\n"
    "  --security-opt seccomp=unconfined|FILE\n"
    "                           no seccomp filter, or a Docker/OCI JSON profile\n"
    "  --nested                 allow a sandbox inside (user namespaces, mounts,\n"
    "                           unmasked /proc) and nothing more\n"
    "  --ulimit NAME=SOFT[:HARD]\n"
    "                           a resource limit (nofile, nproc, core, as, ...)\n"
    "  --network none|nat|host  none: loopback only (default); nat: outbound through\n"
    "                           pasta/slirp4netns; host: the host's network (debugging)\n"
    "  --publish [IP:]HOSTPORT:PORT[/udp]\n"
    "                           forward a host port (127.0.0.1 by default) inside (nat)\n"
    "  --allow-host-loopback    nat: reach the host's 127.0.0.1 at the gateway address\n"
    "  --allow HOST:PORT        egress only through a proxy, to these (repeatable;\n"
    "                           *.domain:PORT for subdomains)\n"
    "\n"
    "Resource caps (a cgroup per sandbox; defaults from the user config's [limits]):\n"
    "  --memory SIZE            memory cap (K, M, G); no swap unless --memory-swap\n"
    "  --memory-swap SIZE       swap allowed on top of --memory (or max)\n"
    "  --cpus N                 CPU share, e.g. 1.5\n"
    "  --pids N                 process cap (default 4096)\n"
    "  --oom-kill process|group the OOM killer takes the biggest process (default)\n"
    "                           or the whole sandbox\n"
    "  --no-limits              no cgroup at all (warns at every start)\n"
    "  --stats                  print peak memory, CPU time, OOM kills at the end\n";

struct run_opts {
	struct sbx_spec spec;
	struct sbx_image img;     /* a stored image, held while the sandbox runs */
	struct sbx_rundir rundir; /* its private writable layer */
	bool keep, read_only;
	bool image_runtime_error; /* exit 125, not 2 */
	struct sbx_limits limits; /* what the command line set */
	bool stats;
	char *name;
	char **env;
	char **cap_add, **cap_drop;
	struct sbx_bind *binds;
	size_t n_binds;
	char *image;
	bool help;
	struct sbx_net_opts net;
	struct sbx_publish *publish;
	char **allow;
};

static void run_opts_free(struct run_opts *o)
{
	rundir_finish(&o->rundir, o->keep);
	image_release(o->img.hold_fd);
	free(o->name);
	sbx_strv_free(o->env);
	sbx_strv_free(o->cap_add);
	sbx_strv_free(o->cap_drop);
	for (size_t i = 0; i < o->n_binds; i++) {
		free((char *)o->binds[i].src);
		free((char *)o->binds[i].dst);
	}
	free(o->binds);
	free(o->publish);
	sbx_strv_free(o->allow);
}

static bool valid_env_name(const char *s, size_t n)
{
	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return false;
	return true;
}

static bool valid_hostname(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

static int parse_bind(struct run_opts *o, const char *arg, struct sbx_err *err)
{
	_cleanup_free_ char *copy = strdup(arg);
	if (!copy)
		return sbx_fail(err, ENOMEM, "--bind");
	bool ro = false;
	char *colon1 = strchr(copy, ':');
	if (!colon1 || colon1 == copy)
		return sbx_failx(err, EINVAL, "--bind '%s': use SRC:DST[:ro]", arg);
	*colon1 = '\0';
	char *dst = colon1 + 1;
	char *colon2 = strchr(dst, ':');
	if (colon2) {
		*colon2 = '\0';
		if (!strcmp(colon2 + 1, "ro"))
			ro = true;
		else if (strcmp(colon2 + 1, "rw"))
			return sbx_failx(err, EINVAL, "--bind '%s': unknown option '%s' (ro or rw)",
			                 arg, colon2 + 1);
	}
	if (!mount_path_ok(dst))
		return sbx_failx(err, EINVAL,
		                 "--bind '%s': the destination must be an absolute path without "
		                 "'.' or '..', not /",
		                 arg);
	struct sbx_bind *nb = realloc(o->binds, (o->n_binds + 1) * sizeof(*nb));
	if (!nb)
		return sbx_fail(err, ENOMEM, "--bind");
	o->binds = nb;
	nb[o->n_binds] = (struct sbx_bind){.src = strdup(copy), .dst = strdup(dst), .ro = ro};
	if (!nb[o->n_binds].src || !nb[o->n_binds].dst)
		return sbx_fail(err, ENOMEM, "--bind");
	o->n_binds++;
	return 0;
}

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
    {"as", RLIMIT_AS},
    {"core", RLIMIT_CORE},
    {"cpu", RLIMIT_CPU},
    {"data", RLIMIT_DATA},
    {"fsize", RLIMIT_FSIZE},
    {"locks", RLIMIT_LOCKS},
    {"memlock", RLIMIT_MEMLOCK},
    {"msgqueue", RLIMIT_MSGQUEUE},
    {"nice", RLIMIT_NICE},
    {"nofile", RLIMIT_NOFILE},
    {"nproc", RLIMIT_NPROC},
    {"rss", RLIMIT_RSS},
    {"rtprio", RLIMIT_RTPRIO},
    {"rttime", RLIMIT_RTTIME},
    {"sigpending", RLIMIT_SIGPENDING},
    {"stack", RLIMIT_STACK},
    {NULL, 0},
};

static int parse_rlim_value(const char *s, const char *arg, rlim_t *ret, struct sbx_err *err)
{
	if (!strcmp(s, "unlimited") || !strcmp(s, "-1")) {
		*ret = RLIM_INFINITY;
		return 0;
	}
	uint64_t v;
	if (sbx_parse_u64(s, "--ulimit", 0, UINT64_MAX - 1, &v, err) < 0)
		return sbx_failx(err, EINVAL, "--ulimit '%s': '%s' is not a number or unlimited",
		                 arg, s);
	*ret = (rlim_t)v;
	return 0;
}

static struct sbx_rlimit *find_rlimit(struct sbx_spec *spec, int resource)
{
	for (size_t i = 0; i < spec->n_rlimits; i++)
		if (spec->rlimits[i].resource == resource)
			return &spec->rlimits[i];
	if (spec->n_rlimits == SBX_MAX_RLIMITS)
		return NULL;
	struct sbx_rlimit *l = &spec->rlimits[spec->n_rlimits++];
	l->resource = resource;
	return l;
}

static int parse_ulimit(struct sbx_spec *spec, const char *arg, struct sbx_err *err)
{
	const char *eq = strchr(arg, '=');
	if (!eq)
		return sbx_failx(err, EINVAL, "--ulimit '%s': use NAME=SOFT[:HARD]", arg);
	size_t k;
	for (k = 0; rlimit_names[k].name; k++)
		if (strlen(rlimit_names[k].name) == (size_t)(eq - arg) &&
		    !strncmp(rlimit_names[k].name, arg, (size_t)(eq - arg)))
			break;
	if (!rlimit_names[k].name)
		return sbx_failx(err, EINVAL, "--ulimit '%s': unknown limit name", arg);
	char soft[64], hard[64];
	const char *colon = strchr(eq + 1, ':');
	size_t sl = colon ? (size_t)(colon - eq - 1) : strlen(eq + 1);
	if (sl >= sizeof(soft) || (colon && strlen(colon + 1) >= sizeof(hard)))
		return sbx_failx(err, EINVAL, "--ulimit '%s': value too long", arg);
	memcpy(soft, eq + 1, sl);
	soft[sl] = '\0';
	snprintf(hard, sizeof(hard), "%s", colon ? colon + 1 : soft);
	struct rlimit lim;
	if (parse_rlim_value(soft, arg, &lim.rlim_cur, err) < 0 ||
	    parse_rlim_value(hard, arg, &lim.rlim_max, err) < 0)
		return -EINVAL;
	if (lim.rlim_cur > lim.rlim_max)
		return sbx_failx(err, EINVAL, "--ulimit '%s': the soft limit exceeds the hard one",
		                 arg);
	struct sbx_rlimit *l = find_rlimit(spec, rlimit_names[k].resource);
	if (!l)
		return sbx_failx(err, E2BIG, "--ulimit: too many limits");
	l->lim = lim;
	return 0;
}

static int parse_security_opt(struct sbx_spec *spec, const char *arg, struct sbx_err *err)
{
	if (strncmp(arg, "seccomp=", 8) != 0)
		return sbx_failx(err, EINVAL,
		                 "--security-opt '%s': only seccomp=unconfined|FILE "
		                 "is supported",
		                 arg);
	const char *v = arg + 8;
	if (!strcmp(v, "unconfined")) {
		spec->seccomp = SBX_SECCOMP_UNCONFINED;
	} else if (*v) {
		spec->seccomp = SBX_SECCOMP_FILE;
		spec->seccomp_file = v;
	} else {
		return sbx_failx(err, EINVAL, "--security-opt '%s': name a profile file", arg);
	}
	return 0;
}

enum {
	OPT_NAME = 256,
	OPT_HOSTNAME,
	OPT_BIND,
	OPT_RW,
	OPT_CAP_ADD,
	OPT_CAP_DROP,
	OPT_SECURITY,
	OPT_NESTED,
	OPT_ULIMIT,
	OPT_MEMORY,
	OPT_MEMORY_SWAP,
	OPT_CPUS,
	OPT_PIDS,
	OPT_OOM_KILL,
	OPT_NO_LIMITS,
	OPT_STATS,
	OPT_KEEP,
	OPT_READ_ONLY,
	OPT_NETWORK,
	OPT_PUBLISH,
	OPT_ALLOW,
	OPT_ALLOW_HOST_LOOPBACK,
};

static const struct option run_options[] = {
    {"name", required_argument, NULL, OPT_NAME},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"workdir", required_argument, NULL, 'w'},
    {"env", required_argument, NULL, 'e'},
    {"bind", required_argument, NULL, OPT_BIND},
    {"rw", no_argument, NULL, OPT_RW},
    {"tty", no_argument, NULL, 't'},
    {"cap-add", required_argument, NULL, OPT_CAP_ADD},
    {"cap-drop", required_argument, NULL, OPT_CAP_DROP},
    {"security-opt", required_argument, NULL, OPT_SECURITY},
    {"nested", no_argument, NULL, OPT_NESTED},
    {"ulimit", required_argument, NULL, OPT_ULIMIT},
    {"network", required_argument, NULL, OPT_NETWORK},
    {"publish", required_argument, NULL, OPT_PUBLISH},
    {"allow", required_argument, NULL, OPT_ALLOW},
    {"allow-host-loopback", no_argument, NULL, OPT_ALLOW_HOST_LOOPBACK},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"memory-swap", required_argument, NULL, OPT_MEMORY_SWAP},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"pids", required_argument, NULL, OPT_PIDS},
    {"oom-kill", required_argument, NULL, OPT_OOM_KILL},
    {"no-limits", no_argument, NULL, OPT_NO_LIMITS},
    {"stats", no_argument, NULL, OPT_STATS},
    {"keep", no_argument, NULL, OPT_KEEP},
    {"read-only", no_argument, NULL, OPT_READ_ONLY},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int push(char ***v, const char *s, struct sbx_err *err)
{
	return sbx_strv_push(v, s) < 0 ? sbx_fail(err, ENOMEM, "options") : 0;
}

static int parse_one(struct run_opts *o, int c, const char *arg, struct sbx_err *err)
{
	struct sbx_spec *spec = &o->spec;
	switch (c) {
	case OPT_NAME:
		if (!valid_hostname(arg))
			return sbx_failx(err, EINVAL, "--name '%s': use letters, digits, '-', '.'",
			                 arg);
		free(o->name);
		o->name = strdup(arg);
		return o->name ? 0 : -ENOMEM;
	case OPT_HOSTNAME:
		if (!valid_hostname(arg))
			return sbx_failx(err, EINVAL,
			                 "--hostname '%s': use up to 63 letters, digits, '-', '.'",
			                 arg);
		spec->hostname = arg;
		return 0;
	case 'w':
		if (strcmp(arg, "/") && !mount_path_ok(arg))
			return sbx_failx(
			    err, EINVAL,
			    "--workdir '%s': must be an absolute path without '.' or '..'", arg);
		spec->workdir = arg;
		return 0;
	case 'e':
		return push(&o->env, arg, err);
	case OPT_BIND:
		return parse_bind(o, arg, err);
	case OPT_RW:
		spec->rootfs_rw = true;
		return 0;
	case 't':
		spec->tty = true;
		return 0;
	case OPT_CAP_ADD:
		return push(&o->cap_add, arg, err);
	case OPT_CAP_DROP:
		return push(&o->cap_drop, arg, err);
	case OPT_SECURITY:
		return parse_security_opt(spec, arg, err);
	case OPT_NESTED:
		spec->nested = true;
		return 0;
	case OPT_ULIMIT:
		return parse_ulimit(spec, arg, err);
	case OPT_NETWORK:
		return net_parse_mode(arg, "--network", &o->net.mode, err);
	case OPT_PUBLISH: {
		struct sbx_publish *np = realloc(o->publish, (o->net.n_publish + 1) * sizeof(*np));
		if (!np)
			return sbx_fail(err, ENOMEM, "--publish");
		o->publish = np;
		return net_parse_publish(arg, "--publish", &np[o->net.n_publish++], err);
	}
	case OPT_ALLOW:
		if (net_check_allow_rule(arg, "--allow", err) < 0)
			return -EINVAL;
		return push(&o->allow, arg, err);
	case OPT_ALLOW_HOST_LOOPBACK:
		o->net.allow_host_loopback = true;
		return 0;
	case OPT_MEMORY:
		return config_parse_limit(&o->limits, "memory", arg, "--memory", err);
	case OPT_MEMORY_SWAP:
		return config_parse_limit(&o->limits, "memory_swap", arg, "--memory-swap", err);
	case OPT_CPUS:
		return config_parse_limit(&o->limits, "cpus", arg, "--cpus", err);
	case OPT_PIDS:
		return config_parse_limit(&o->limits, "pids", arg, "--pids", err);
	case OPT_OOM_KILL:
		return config_parse_limit(&o->limits, "oom_kill", arg, "--oom-kill", err);
	case OPT_NO_LIMITS:
		return config_parse_limit(&o->limits, "enabled", "no", "--no-limits", err);
	case OPT_STATS:
		o->stats = true;
		return 0;
	case OPT_KEEP:
		o->keep = true;
		return 0;
	case OPT_READ_ONLY:
		o->read_only = true;
		return 0;
	case 'h':
		o->help = true;
		return 0;
	default:
		return sbx_failx(err, EINVAL, "unknown option (see trimo-sbx run --help)");
	}
}

/* The clean environment: PATH, HOME, TERM with a tty, HOSTNAME, and what
 * was asked for with --env (K alone takes the caller's value, if any). */
static int build_env(struct run_opts *o, char ***ret, struct sbx_err *err)
{
	_cleanup_strv_free_ char **env = NULL;
	char buf[512];
	int r =
	    push(&env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", err);
	if (r >= 0)
		r = push(&env, "HOME=/root", err);
	if (r >= 0 && o->spec.tty) {
		const char *term = getenv("TERM");
		snprintf(buf, sizeof(buf), "TERM=%s", term && *term ? term : "xterm");
		r = push(&env, buf, err);
	}
	if (r >= 0) {
		snprintf(buf, sizeof(buf), "HOSTNAME=%s",
		         o->spec.hostname ? o->spec.hostname : o->spec.name);
		r = push(&env, buf, err);
	}
	for (size_t i = 0; r >= 0 && o->env && o->env[i]; i++) {
		const char *e = o->env[i];
		const char *eq = strchr(e, '=');
		size_t n = eq ? (size_t)(eq - e) : strlen(e);
		if (!valid_env_name(e, n))
			return sbx_failx(err, EINVAL, "--env '%s': not a variable name", e);
		/* a later value replaces an earlier one */
		for (size_t j = 0; env[j]; j++) {
			if (!strncmp(env[j], e, n) && env[j][n] == '=') {
				free(env[j]);
				for (size_t k = j; env[k]; k++)
					env[k] = env[k + 1];
				break;
			}
		}
		if (eq) {
			r = push(&env, e, err);
		} else if (getenv(e)) {
			snprintf(buf, sizeof(buf), "%s=", e);
			_cleanup_free_ char *kv = NULL;
			if (asprintf(&kv, "%s=%s", e, getenv(e)) < 0)
				return sbx_fail(err, ENOMEM, "--env");
			r = push(&env, kv, err);
		}
	}
	if (r < 0)
		return r;
	*ret = TAKE_PTR(env);
	return 0;
}

/* Podman's default: as many open files as the hard limit allows. */
static void default_rlimits(struct sbx_spec *spec)
{
	struct rlimit cur;
	if (getrlimit(RLIMIT_NOFILE, &cur) == 0) {
		for (size_t i = 0; i < spec->n_rlimits; i++)
			if (spec->rlimits[i].resource == RLIMIT_NOFILE)
				return;
		struct sbx_rlimit *l = find_rlimit(spec, RLIMIT_NOFILE);
		if (l)
			l->lim = (struct rlimit){cur.rlim_max, cur.rlim_max};
	}
}

static int parse_args(struct run_opts *o, int argc, char **argv, struct sbx_err *err)
{
	opterr = 0;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "+w:e:th", run_options, NULL)) != -1) {
		if (c == '?' || c == ':') {
			const char *bad = argv[optind - 1];
			if (optopt && c == ':')
				return sbx_failx(err, EINVAL, "option '%s' needs a value", bad);
			return sbx_failx(err, EINVAL,
			                 "unknown option '%s' (see trimo-sbx run --help)", bad);
		}
		int r = parse_one(o, c, optarg, err);
		if (r < 0)
			return r;
		if (o->help)
			return 0;
	}
	if (optind >= argc)
		return sbx_failx(err, EINVAL, "missing IMAGE (see trimo-sbx run --help)");
	o->image = argv[optind++];
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (optind >= argc)
		return sbx_failx(err, EINVAL, "missing COMMAND (see trimo-sbx run --help)");
	o->spec.argv = argv + optind;
	return 0;
}

/* dir:PATH is used in place (read-only unless --rw); anything else comes
 * from the image store (imported once) and gets a private writable layer
 * in the state folder, gone when the run ends unless --keep. */
static int resolve_image(struct run_opts *o, const struct sbx_user_config *ucfg,
                         struct sbx_err *err)
{
	if (!strncmp(o->image, "dir:", 4)) {
		if (!o->image[4])
			return sbx_failx(err, EINVAL, "image 'dir:': name a folder");
		o->spec.lower = o->image + 4;
		return 0;
	}
	if (o->spec.rootfs_rw)
		return sbx_failx(err, EINVAL,
		                 "--rw writes a dir: image in place; '%s' gets a writable layer of "
		                 "its own (--read-only for none)",
		                 o->image);
	struct image_import_opts iopts = {.hold = true};
	int r = image_import(ucfg->storage.image_dir, o->image, NULL, &iopts, &o->img, err);
	if (r < 0) {
		o->image_runtime_error = !image_err_is_input(err);
		return sbx_wrap(err, "image '%s'", o->image);
	}
	o->spec.lower = o->img.path;
	o->spec.overlay = (enum sbx_overlay_mode)ucfg->storage.overlay; /* see limits.c */
	r = rundir_create(ucfg->storage.state_dir, o->name, &o->rundir, err);
	if (r < 0) {
		o->image_runtime_error = true;
		return r;
	}
	o->spec.upper = o->rundir.upper;
	o->spec.work = o->rundir.work;
	o->spec.keep_root_rw = !o->read_only;
	return 0;
}

static int build_spec(struct run_opts *o, struct sbx_err *err)
{
	struct sbx_spec *spec = &o->spec;
	if (!o->name) {
		uint16_t rnd = 0;
		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			rnd = (uint16_t)getpid();
		if (asprintf(&o->name, "run-%04x", rnd) < 0)
			return sbx_fail(err, ENOMEM, "name");
	}
	spec->name = o->name;
	/* A nested sandbox needs an unmasked, writable /proc; as root the
	 * sandbox's uid 0 is the host's, and /proc/sys would be the host's
	 * kernel settings. */
	if (spec->nested && geteuid() == 0)
		return sbx_failx(err, EPERM,
		                 "--nested is refused as root: the sandbox's uid 0 would be the "
		                 "host's root with a writable /proc/sys; run it as an unprivileged "
		                 "user");
	int r = caps_compute(caps_default(), o->cap_add, o->cap_drop, &spec->caps, err);
	if (r < 0)
		return r;
	spec->binds = o->binds;
	spec->n_binds = o->n_binds;
	default_rlimits(spec);
	return 0;
}

static void print_stats(const struct run_opts *o, const struct sbx_run_result *res)
{
	char peak[32], cap[32], cpu[32] = "?";
	if (!res->has_stats) {
		fprintf(stderr, "trimo-sbx: %s: wall %.1fs (no cgroup: no accounting)\n", o->name,
		        res->wall_ms / 1000.0);
		return;
	}
	const struct sbx_cgroup_stats *s = &res->stats;
	cgroup_format_size(s->memory_peak, peak, sizeof(peak));
	cgroup_format_size(res->memory_max, cap, sizeof(cap));
	if (s->cpu_usec != SBX_STAT_UNKNOWN)
		snprintf(cpu, sizeof(cpu), "%.2fs", s->cpu_usec / 1e6);
	fprintf(stderr,
	        "trimo-sbx: %s: wall %.2fs, cpu %s, memory peak %s of %s, oom kills %llu, "
	        "pids peak %llu, cpu throttled %llu times\n",
	        o->name, res->wall_ms / 1000.0, cpu,
	        s->memory_peak == SBX_STAT_UNKNOWN ? "?" : peak,
	        res->memory_max == SBX_LIMIT_MAX ? "unlimited" : cap,
	        (unsigned long long)(s->oom_kills == SBX_STAT_UNKNOWN ? 0 : s->oom_kills),
	        (unsigned long long)(s->pids_peak == SBX_STAT_UNKNOWN ? 0 : s->pids_peak),
	        (unsigned long long)(s->nr_throttled == SBX_STAT_UNKNOWN ? 0 : s->nr_throttled));
}

/* What happened, in one line each, for the user on stderr. */
static void report_end(const struct run_opts *o, const struct sbx_run_result *res)
{
	if (res->exec_failed)
		cli_report(res->exit_code, &res->exec_err);
	if (res->oom_killed) {
		char cap[32], peak[32] = "?";
		cgroup_format_size(res->memory_max, cap, sizeof(cap));
		if (res->stats.memory_peak != SBX_STAT_UNKNOWN)
			cgroup_format_size(res->stats.memory_peak, peak, sizeof(peak));
		cli_error(res->exit_code, "%s: killed by the OOM killer (memory cap %s, peak %s)",
		          o->name, res->memory_max == SBX_LIMIT_MAX ? "none" : cap, peak);
	}
	if (o->stats)
		print_stats(o, res);
}

/* After READY, before START: the namespaces exist, nothing runs inside. */
static int attach_net(void *data, const struct sbx_run_info *info, struct sbx_err *err)
{
	return net_attach(data, info->pid, err);
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o;
	memset(&o, 0, sizeof(o));
	o.img.hold_fd = -1;
	o.rundir.lock_fd = -1;
	struct sbx_err err = {0};
	int code;
	_cleanup_strv_free_ char **env = NULL;
	_cleanup_user_config_ const struct sbx_user_config *ucfg = NULL;
	struct sbx_config_env cenv;
	config_env_from_process(&cenv);
	if (parse_args(&o, argc, argv, &err) < 0 || (!o.help && build_spec(&o, &err) < 0) ||
	    (!o.help && build_env(&o, &env, &err) < 0)) {
		code = cli_error(EXIT_USAGE, "run: %s", err.msg);
		goto out;
	}
	if (o.help) {
		fputs(run_usage, stdout);
		code = EXIT_OK;
		goto out;
	}
	if (config_load_user(&cenv, &ucfg, &err) < 0) {
		code = cli_report(EXIT_USAGE, &err);
		goto out;
	}
	if (resolve_image(&o, ucfg, &err) < 0) {
		code = cli_report(o.image_runtime_error ? EXIT_RUNTIME : EXIT_USAGE, &err);
		goto out;
	}
	struct sbx_limits eff;
	config_merge_limits(&o.limits, &ucfg->limits, &eff);
	if ((o.limits.set & SBX_LIMIT_MEMORY_SWAP) && !(eff.set & SBX_LIMIT_MEMORY)) {
		code = cli_error(EXIT_USAGE, "run: --memory-swap needs --memory");
		goto out;
	}
	struct sbx_cgroup_limits cgl;
	limits_to_cgroup(&eff, &cgl);
	if (cgl.unlimited)
		cli_warn("%s runs without resource limits (no memory, CPU or pids cap)", o.name);
	struct sbx_net net;
	net_init(&net);
	o.net.publish = o.publish;
	o.net.allow = o.allow;
	o.net.log_fd = STDERR_FILENO; /* "egress refused: ..." lines */
	if (net_prepare(&net, &o.net, &err) < 0 || net_env_push(&net, &env, &err) < 0) {
		net_release(&net);
		code = cli_error(EXIT_USAGE, "run: %s", err.msg);
		goto out;
	}
	o.spec.host_network = !net_wants_netns(&net);
	if (o.spec.host_network)
		cli_warn("%s", net_host_warning());
	o.spec.envp = env;
	struct sbx_run_opts ropts = {
	    .limits = &cgl,
	    .cgroup_parent = ucfg->cgroups.parent,
	    .data = &net,
	    .before_start = attach_net,
	    .watch_fd = -1,
	};
	fflush(stdout);
	struct sbx_run_result res;
	int rr = run_sandbox(&o.spec, &ropts, &res, &err);
	net_release(&net); /* ends pasta/slirp4netns and the proxy */
	if (rr < 0) {
		code = cli_report(res.bad_input ? EXIT_USAGE : EXIT_RUNTIME, &err);
		goto out;
	}
	if (res.warning[0])
		cli_warn("%s", res.warning);
	report_end(&o, &res);
	if (o.keep && o.rundir.path)
		fprintf(stderr, "trimo-sbx: %s: kept its writable layer in %s\n", o.name,
		        o.rundir.upper);
	code = res.exit_code;
out:
	run_opts_free(&o);
	return code;
}
