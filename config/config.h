/* config: task.ini and the user config, parsed with inih into validated
 * structs that nothing mutates afterwards.
 *
 * Nothing here has a side effect: the only I/O is reading the config files
 * themselves (and a task's prompt_file).  Every function that can fail
 * returns 0 or -errno and fills the caller's struct sbx_err with one line:
 *
 *   task.ini:7: [limits] memroy: unknown key (did you mean memory?)
 *   task.ini:9: [limits] memory: '2X' is not a size (use a number with K, M or G)
 *   task.ini: [task] command: required key missing
 *   --set: [network] mode: 'bridge' is not accepted (none, nat or host)
 *
 * The file name in a message is the path as the caller gave it; errnum is
 * EINVAL for bad content, the errno of the failed read otherwise.
 *
 * The format (docs/task-ini.md has the user's reference):
 *   - `[section]` headers, `key = value` lines (`key: value` works too),
 *     comments on lines starting with `;` or `#`, and a `;` that follows a
 *     space or tab starts a comment anywhere (`a;b` stays intact).
 *   - Lines of any length.  An indented line continues the previous key:
 *     for `command` and `prompt` the lines join with "\n" (a first empty
 *     line is dropped); for list keys each line adds items; any other key
 *     refuses a continuation.  Blank lines inside a value are dropped.
 *   - Unknown sections and keys are errors, with the nearest valid name
 *     suggested.  A key given twice is an error, except list keys
 *     (env, pass_env, protected, publish, allow), which accumulate.
 *   - An empty value means "the default" for a scalar key and clears what
 *     came before for a list key (`env =`).
 *   - Relative paths are relative to the folder of the file that names
 *     them (task.ini: the task file; the user config: its own folder),
 *     lexically normalised ("." and "//" removed, ".." kept as written).
 */
#ifndef SBX_CONFIG_CONFIG_H
#define SBX_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/cleanup.h"
#include "common/err.h"

/* Largest task.ini or user config file read. */
#define SBX_CONFIG_FILE_MAX (1024 * 1024)
/* Largest prompt (inline or prompt_file), in bytes.  The prompt reaches the
 * agent as $TRIMO_PROMPT, and the kernel refuses an execve() whose single
 * environment string exceeds MAX_ARG_STRLEN (128 KiB with "TRIMO_PROMPT=");
 * 127 KiB keeps a margin. */
#define SBX_PROMPT_MAX (127 * 1024)
#define SBX_NAME_MAX   40 /* [task] name */

#define SBX_DEFAULT_WORKDIR     "/workspace"
#define SBX_DEFAULT_BRANCH      "trimo/{name}"
#define SBX_DEFAULT_PROTECTED   "main master release/*"
#define SBX_DEFAULT_REMOTE      "origin"
#define SBX_DEFAULT_PIDS        4096
#define SBX_MAX_CPUS            1024
#define SBX_MIN_MEMORY          (1024 * 1024) /* memory and default_memory */
#define SBX_MIN_AUTO_COMMIT     10            /* seconds between auto-commits */
#define SBX_DEFAULT_MEM_RESERVE (1ULL << 30)  /* [orchestrator] memory_reserve */
#define SBX_DEFAULT_MEMORY      (2ULL << 30)  /* [orchestrator] default_memory */
#define SBX_MEMORY_SWAP_MAX     UINT64_MAX    /* memory_swap = max */

/* ---- [limits]: in task.ini and, as defaults, in the user config ------ */

enum sbx_oom_kill {
	SBX_OOM_KILL_PROCESS, /* the kernel kills the biggest process (memory.oom.group=0) */
	SBX_OOM_KILL_GROUP,   /* the whole sandbox dies together */
};

/* Bits of struct sbx_limits.set: which fields carry a value. */
#define SBX_LIMIT_ENABLED     (1u << 0)
#define SBX_LIMIT_MEMORY      (1u << 1)
#define SBX_LIMIT_MEMORY_SWAP (1u << 2)
#define SBX_LIMIT_CPUS        (1u << 3)
#define SBX_LIMIT_PIDS        (1u << 4)
#define SBX_LIMIT_OOM_KILL    (1u << 5)

struct sbx_limits {
	unsigned set;         /* SBX_LIMIT_* of the fields below that were given */
	bool enabled;         /* `enabled = no`: run without any cap (the CLI's --no-limits) */
	uint64_t memory;      /* bytes, memory.max */
	uint64_t memory_swap; /* bytes of swap beyond memory (memory.swap.max); 0 = none,
	                       * SBX_MEMORY_SWAP_MAX = unlimited; on cgroup v1 the
	                       * memsw limit is memory + memory_swap */
	uint32_t millicpus;   /* 1500 = 1.5 CPUs (cpu.max quota = millicpus * period / 1000) */
	uint64_t pids;        /* pids.max */
	enum sbx_oom_kill oom_kill;
};

/* The limits a task runs with: each field from the task if it set it, else
 * from the user config's [limits], else the built-in default: enabled,
 * memory_swap 0, pids SBX_DEFAULT_PIDS, oom_kill process; memory and cpus
 * have no built-in value (their bit stays clear: no cap).  When
 * ret->enabled is false no cap applies, whatever the other fields say.
 * Either input may be NULL. */
void config_merge_limits(const struct sbx_limits *task, const struct sbx_limits *user,
                         struct sbx_limits *ret);

/* Parse one limit given on the command line (`run --memory 2G`): key is a
 * [limits] key name ("memory", "memory_swap", "cpus", "pids", "oom_kill",
 * "enabled"), what names the option in the error ("--memory: '2X' is not a
 * size (...)").  Validated exactly as in task.ini; sets the field and its
 * bit in *limits.  An empty value clears the field. */
int config_parse_limit(struct sbx_limits *limits, const char *key, const char *value,
                       const char *what, struct sbx_err *err);

/* ---- task.ini --------------------------------------------------------- */

struct sbx_cfg_task {
	const char *name;            /* [a-z0-9-], 1..SBX_NAME_MAX, starts with [a-z0-9];
	                              * absent: derived from the file name (see name_derived) */
	bool name_derived;           /* name came from the file name: basename without
	                              * ".ini", lowercased, other characters turned into '-',
	                              * runs of '-' squeezed, '-' trimmed at both ends, cut at
	                              * SBX_NAME_MAX */
	const char *command;         /* for /bin/sh -c; never NULL */
	const char *prompt;          /* text of prompt or of prompt_file; NULL = none */
	const char *prompt_file;     /* absolute path the prompt was read from, or NULL */
	const char *const *env;      /* "K=V", each K once (the last assignment wins, at the
	                              * place of the first), NULL-terminated, never NULL */
	const char *const *pass_env; /* names, each once; NULL-terminated, never NULL.
	                              * An env entry of the same name wins. */
	uint64_t timeout;            /* seconds; 0 = none */
	const char *workdir;         /* absolute, inside the sandbox; SBX_DEFAULT_WORKDIR */
	const char *hostname;        /* NULL = the runtime's choice */
};

enum sbx_image_kind {
	SBX_IMAGE_TAR,            /* a tar file, any compression (path, or tar:PATH) */
	SBX_IMAGE_OCI,            /* oci:DIR[:TAG]  an OCI image layout folder */
	SBX_IMAGE_OCI_ARCHIVE,    /* oci-archive:FILE[:TAG]  the same, as a tar */
	SBX_IMAGE_DOCKER_ARCHIVE, /* docker-archive:FILE  (docker save) */
	SBX_IMAGE_DIR,            /* dir:PATH  a root filesystem folder */
	SBX_IMAGE_NAME,           /* NAME[:TAG]  an image already in the store */
};

struct sbx_cfg_image {
	enum sbx_image_kind kind;
	const char *source; /* normalised: the prefix as written, the path made
	                     * absolute, ":TAG" kept ("oci:/abs/dir:v1"); the name for
	                     * SBX_IMAGE_NAME */
	const char *path;   /* absolute; NULL for SBX_IMAGE_NAME */
	const char *ref;    /* TAG of oci/oci-archive (NULL = none), or the NAME[:TAG] */
};

enum sbx_push_mode {
	SBX_PUSH_MANUAL,  /* only `trimo-sbx push ID` (the default) */
	SBX_PUSH_ON_EXIT, /* after each run */
	SBX_PUSH_AUTO,    /* after each commit that reaches the host */
};

enum sbx_auto_commit {
	SBX_AUTO_COMMIT_OFF,      /* the default */
	SBX_AUTO_COMMIT_EXIT,     /* after each run */
	SBX_AUTO_COMMIT_INTERVAL, /* every auto_commit_interval seconds, and after each run */
};

struct sbx_cfg_repo {
	bool enabled;       /* a [repo] section (or a --set repo.*) was given; without
	                     * it the workspace is an empty folder and the other
	                     * fields hold their defaults */
	const char *path;   /* absolute host repository; default: the task file's folder */
	const char *base;   /* branch to start from; NULL = the repository's current branch */
	const char *branch; /* {name} expanded; default "trimo/<name>"; a valid git branch
	                     * name that matches no protected pattern */
	enum sbx_push_mode push;
	enum sbx_auto_commit auto_commit;
	uint64_t auto_commit_interval;         /* seconds, with SBX_AUTO_COMMIT_INTERVAL */
	const char *const *protected_branches; /* fnmatch(3) patterns, flags 0 (so '*'
	                                        * also matches '/'); NULL-terminated */
	const char *remote; /* the host repository's remote to push to; "origin" */
	bool push_tags;
	const char *author;      /* "Name <email>" for auto-commits, or NULL */
	const char *author_name; /* its two parts, or NULL */
	const char *author_email;
};

enum sbx_net_mode {
	SBX_NET_NONE, /* own namespace, loopback only (the default) */
	SBX_NET_NAT,  /* own namespace, outbound through pasta or slirp4netns */
	SBX_NET_HOST, /* the host's namespace */
};

struct sbx_publish {
	int family;    /* AF_INET or AF_INET6 */
	char addr[46]; /* host address as text (inet_ntop form); "127.0.0.1" unless given */
	uint16_t host_port;
	uint16_t port; /* inside the sandbox */
	bool udp;      /* else tcp */
};

enum sbx_allow_kind {
	SBX_ALLOW_NAME,   /* exactly this host name */
	SBX_ALLOW_SUFFIX, /* "*.example.com": any name ending in ".example.com" (not the
	                   * bare example.com) */
	SBX_ALLOW_IP,     /* an IP literal (v6 without brackets, inet_ntop form) */
};

struct sbx_allow {
	enum sbx_allow_kind kind;
	const char *host; /* lowercase; "*.example.com" for a suffix */
	uint16_t port;
};

struct sbx_cfg_network {
	enum sbx_net_mode mode;
	const struct sbx_publish *publish; /* needs mode nat */
	size_t n_publish;
	const struct sbx_allow *allow; /* egress allowlist; not with mode host */
	size_t n_allow;
	bool allow_host_loopback; /* needs mode nat */
};

struct sbx_task_config {
	const char *file; /* the path as the caller gave it (used in messages) */
	const char *path; /* absolute, lexically normalised */
	const char *dir;  /* its folder: the base of relative paths */
	struct sbx_cfg_task task;
	struct sbx_cfg_image image;
	struct sbx_cfg_repo repo;
	struct sbx_limits limits; /* as the task wrote them; see config_merge_limits() */
	struct sbx_cfg_network network;
};

/* Parse the task file at path, then apply sets: a NULL-terminated list (or
 * NULL) of "section.key=value" overrides from the command line, validated
 * exactly like the file's lines.  An override replaces the file's value of a
 * scalar key (and `prompt` and `prompt_file` replace each other); for a list
 * key it adds to the file's list (an empty value clears it first).  The
 * same scalar key twice in sets is an error.  Relative paths in sets are
 * relative to the task file's folder, like the file's own.
 *
 * Reads path (at most SBX_CONFIG_FILE_MAX bytes) and prompt_file (at most
 * SBX_PROMPT_MAX); calls getcwd() when path is relative.  On success
 * *ret is the config, freed with config_free_task(). */
int config_parse_task(const char *path, char *const *sets, const struct sbx_task_config **ret,
                      struct sbx_err *err);

void config_free_task(const struct sbx_task_config *cfg);

static inline void config_free_taskp(const struct sbx_task_config **cfg)
{
	config_free_task(*cfg);
}
#define _cleanup_task_config_ _cleanup_(config_free_taskp)

/* Every task.ini key as "section.key", NULL-terminated (for help and
 * shell completion). */
const char *const *config_task_keys(void);

/* The reference of every task.ini key, as printed by `trimo-sbx help
 * task.ini` (docs/task-ini.md holds the same text). */
const char *config_help_task_ini(void);

/* The reference of the user config (`trimo-sbx help config`). */
const char *config_help_user_config(void);

/* ---- the user config -------------------------------------------------- */

/* What the user config depends on, passed in so that tests need no real
 * environment.  Empty strings count as unset. */
struct sbx_config_env {
	uid_t euid;                  /* 0: root paths */
	const char *home;            /* $HOME */
	const char *xdg_config_home; /* each used only when absolute, as the XDG spec says */
	const char *xdg_state_home;
	const char *xdg_data_home;
	const char *config_file; /* $TRIMO_SBX_CONFIG */
	long online_cpus;        /* default max_parallel; < 1 counts as 1 */
};

/* Fill env from this process: geteuid(), getenv() of HOME, XDG_CONFIG_HOME,
 * XDG_STATE_HOME, XDG_DATA_HOME and TRIMO_SBX_CONFIG, and
 * sysconf(_SC_NPROCESSORS_ONLN).  The strings point into the environment. */
void config_env_from_process(struct sbx_config_env *env);

struct sbx_cfg_orchestrator {
	uint64_t max_parallel;     /* tasks running at once; default: online CPUs */
	uint64_t memory_reserve;   /* bytes kept free for the host; default 1G */
	uint64_t default_memory;   /* bytes a task without a memory cap counts as; default 2G */
	uint32_t max_cpu_pressure; /* PSI cpu some avg10 limit in 1/100 %; 0 = off (default) */
};

/* [storage] overlay: how a sandbox's copy-on-write root is mounted */
enum sbx_cfg_overlay {
	SBX_CFG_OVERLAY_AUTO = 0, /* the kernel's overlayfs, fuse-overlayfs where refused */
	SBX_CFG_OVERLAY_KERNEL,
	SBX_CFG_OVERLAY_FUSE,
};

struct sbx_cfg_storage {
	const char *state_dir; /* absolute, never NULL */
	const char *image_dir; /* absolute, never NULL */
	int overlay;           /* enum sbx_cfg_overlay */
};

struct sbx_cfg_cgroups {
	const char *parent; /* cgroup path from the hierarchy's root ("/trimo.slice"),
	                     * or below this process's own cgroup ("./trimo"),
	                     * normalised; NULL = chosen automatically */
};

struct sbx_user_config {
	const char *path; /* absolute path of the file read, or NULL (no file) */
	struct sbx_cfg_orchestrator orchestrator;
	struct sbx_cfg_storage storage;
	struct sbx_cfg_cgroups cgroups;
	struct sbx_limits limits; /* task defaults; see config_merge_limits() */
};

/* Where the user config is: $TRIMO_SBX_CONFIG when set (then it must
 * exist: *ret_required = true); else as root /etc/trimo-sbx/config.ini;
 * else $XDG_CONFIG_HOME/trimo-sbx/config.ini, $XDG_CONFIG_HOME defaulting
 * to $HOME/.config.  *ret is malloc'ed; NULL when there is no place to look
 * (not root, no HOME, no XDG_CONFIG_HOME). */
int config_user_path(const struct sbx_config_env *env, char **ret, bool *ret_required,
                     struct sbx_err *err);

/* Parse the user config at path (NULL: no file, defaults only) and resolve
 * every default:
 *   state_dir  root: /var/lib/trimo-sbx, else $XDG_STATE_HOME/trimo-sbx
 *              ($HOME/.local/state/trimo-sbx)
 *   image_dir  root: /var/lib/trimo-sbx/images, else
 *              $XDG_DATA_HOME/trimo-sbx/images ($HOME/.local/share/...)
 *   max_parallel env->online_cpus; memory_reserve 1G; default_memory 2G.
 * A file that does not exist is an error unless missing_ok, when it counts
 * as no file.  On success *ret is freed with config_free_user(). */
int config_parse_user(const char *path, bool missing_ok, const struct sbx_config_env *env,
                      const struct sbx_user_config **ret, struct sbx_err *err);

/* config_user_path() then config_parse_user(): the user config as the CLI
 * sees it. */
int config_load_user(const struct sbx_config_env *env, const struct sbx_user_config **ret,
                     struct sbx_err *err);

void config_free_user(const struct sbx_user_config *cfg);

/* Every user config key as "section.key", NULL-terminated. */
const char *const *config_user_keys(void);

static inline void config_free_userp(const struct sbx_user_config **cfg)
{
	config_free_user(*cfg);
}
#define _cleanup_user_config_ _cleanup_(config_free_userp)

#endif
