/* The user config: where it is, its keys, and the defaults it resolves. */
#include "config/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#define ROOT_CONFIG "/etc/trimo-sbx/config.ini"
#define ROOT_STATE  "/var/lib/trimo-sbx"
#define ROOT_IMAGES "/var/lib/trimo-sbx/images"

static int set_cpu_pressure(struct cfg_parser *p, const struct cfg_key *k, void *field,
                            const char *value)
{
	uint32_t *v = field;
	if (!*value || !strcmp(value, "off")) {
		*v = 0;
		return 0;
	}
	if (cfg_parse_percent(value, v) < 0)
		return cfg_fail(p,
		                "'%s' is not accepted (off, or a percentage above 0 and at most "
		                "100, e.g. 80 or 12.5%%)",
		                value);
	return 0;
}

/* "/a/b": from the cgroup hierarchy's root; "./a/b": below the caller's
 * own cgroup (of each controller, on cgroup v1). */
static int set_cgroup_parent(struct cfg_parser *p, const struct cfg_key *k, void *field,
                             const char *value)
{
	const char **parent = field;
	bool relative = sbx_str_has_prefix(value, "./");
	const char *rest = relative ? value + 2 : value;
	bool bad = !relative && value[0] != '/';
	for (const char *c = rest; *c && !bad; c += strcspn(c, "/")) {
		c += strspn(c, "/");
		size_t n = strcspn(c, "/");
		bad = (n == 1 && c[0] == '.') || (n == 2 && !strncmp(c, "..", 2));
	}
	if (relative && !rest[strspn(rest, "/")])
		bad = true;
	if (*value && sbx_str_has_prefix(value, "/sys/fs/cgroup"))
		return cfg_fail(p,
		                "'%s' is not accepted (a path from the cgroup hierarchy's root, "
		                "e.g. /trimo.slice, without /sys/fs/cgroup)",
		                value);
	if (*value && bad)
		return cfg_fail(p,
		                "'%s' is not accepted (a path from the cgroup hierarchy's root, "
		                "e.g. /trimo.slice, or below this process's own cgroup, e.g. "
		                "./trimo; without '.' or '..')",
		                value);
	char *norm = NULL;
	if (*value && relative) {
		char *joined = cfg_path_join("/", rest);
		if (joined && asprintf(&norm, ".%s", joined) < 0)
			norm = NULL;
		free(joined);
	} else if (*value) {
		norm = cfg_path_join("/", value);
	}
	if (*value && !norm)
		return sbx_fail(p->err, ENOMEM, "%s", cfg_where(p));
	free((void *)*parent);
	*parent = norm;
	return 0;
}

#define ORCH(f) offsetof(struct sbx_cfg_orchestrator, f)

static const struct cfg_key orchestrator_keys[] = {
    {.name = "max_parallel", .type = CFG_U64, .offset = ORCH(max_parallel), .min = 1, .max = 4096},
    {.name = "memory_reserve",
     .type = CFG_SIZE,
     .offset = ORCH(memory_reserve),
     .def = SBX_DEFAULT_MEM_RESERVE},
    {.name = "default_memory",
     .type = CFG_SIZE,
     .offset = ORCH(default_memory),
     .def = SBX_DEFAULT_MEMORY,
     .min = SBX_MIN_MEMORY,
     .accepted = "at least 1M"},
    {.name = "max_cpu_pressure",
     .type = CFG_CUSTOM,
     .offset = ORCH(max_cpu_pressure),
     .set = set_cpu_pressure},
};

static const char *const overlay_choices[] = {"auto", "kernel", "fuse", NULL};

static const struct cfg_key storage_keys[] = {
    {.name = "state_dir", .type = CFG_PATH, .offset = offsetof(struct sbx_cfg_storage, state_dir)},
    {.name = "image_dir", .type = CFG_PATH, .offset = offsetof(struct sbx_cfg_storage, image_dir)},
    {.name = "overlay",
     .type = CFG_ENUM,
     .offset = offsetof(struct sbx_cfg_storage, overlay),
     .choices = overlay_choices},
};

static const struct cfg_key cgroups_keys[] = {
    {.name = "parent",
     .type = CFG_CUSTOM,
     .offset = offsetof(struct sbx_cfg_cgroups, parent),
     .set = set_cgroup_parent},
};

#define SECTION(n, keys, member, mask)                                                             \
	{                                                                                          \
		n, keys, ELEMENTSOF(keys), offsetof(struct sbx_user_config, member), mask          \
	}

static const struct cfg_section user_sections[] = {
    SECTION("orchestrator", orchestrator_keys, orchestrator, false),
    SECTION("storage", storage_keys, storage, false),
    SECTION("cgroups", cgroups_keys, cgroups, false),
    {"limits", cfg_limits_keys, CFG_LIMITS_N_KEYS, offsetof(struct sbx_user_config, limits), true},
};

const char *const *config_user_keys(void)
{
	static char names[32][48];
	static const char *list[33];
	return cfg_key_names(user_sections, ELEMENTSOF(user_sections), names, list, 32);
}

static bool is_set(const char *s)
{
	return s && *s;
}

static bool is_absolute(const char *s)
{
	return s && s[0] == '/';
}

void config_env_from_process(struct sbx_config_env *env)
{
	*env = (struct sbx_config_env){
	    .euid = geteuid(),
	    .home = getenv("HOME"),
	    .xdg_config_home = getenv("XDG_CONFIG_HOME"),
	    .xdg_state_home = getenv("XDG_STATE_HOME"),
	    .xdg_data_home = getenv("XDG_DATA_HOME"),
	    .config_file = getenv("TRIMO_SBX_CONFIG"),
	    .online_cpus = sysconf(_SC_NPROCESSORS_ONLN),
	};
}

/* root_path as root; else $xdg/leaf, else $HOME/home_rel/leaf. */
static char *user_dir(const struct sbx_config_env *env, const char *xdg, const char *home_rel,
                      const char *leaf, const char *root_path)
{
	char *s = NULL;
	if (env->euid == 0)
		return strdup(root_path);
	if (is_absolute(xdg))
		return asprintf(&s, "%s/%s", xdg, leaf) < 0 ? NULL : s;
	if (is_absolute(env->home))
		return asprintf(&s, "%s/%s/%s", env->home, home_rel, leaf) < 0 ? NULL : s;
	errno = ENOENT;
	return NULL;
}

int config_user_path(const struct sbx_config_env *env, char **ret, bool *ret_required,
                     struct sbx_err *err)
{
	char *path = NULL;
	bool required = is_set(env->config_file);
	errno = 0;
	if (required) {
		path = strdup(env->config_file); /* as given: messages name it so */
	} else {
		_cleanup_free_ char *raw = user_dir(env, env->xdg_config_home, ".config",
		                                    "trimo-sbx/config.ini", ROOT_CONFIG);
		if (raw)
			path = cfg_path_join("/", raw); /* drops the "//" of HOME=/ */
		else if (errno != ENOMEM)
			errno = 0; /* nowhere to look: not an error */
	}
	if (!path && (required || errno == ENOMEM))
		return sbx_fail(err, ENOMEM, "user config");
	*ret = path;
	*ret_required = required;
	return 0;
}

static int resolve_dir(struct cfg_parser *p, const struct sbx_config_env *env, const char *key,
                       const char *xdg, const char *xdg_name, const char *home_rel,
                       const char *leaf, const char *root_path)
{
	const char **field = cfg_field(p, "storage", key);
	if (*field)
		return 0;
	char *dir = user_dir(env, xdg, home_rel, leaf, root_path);
	if (dir) {
		*field = cfg_path_join("/", dir);
		free(dir);
	}
	if (*field)
		return 0;
	cfg_locate(p, "storage", key);
	if (errno == ENOMEM)
		return sbx_fail(p->err, ENOMEM, "%s", cfg_where(p));
	return cfg_fail(p,
	                "no default: neither %s nor HOME is an absolute path (set one, or %s "
	                "in the user config)",
	                xdg_name, key);
}

static int resolve(struct cfg_parser *p, struct sbx_user_config *c,
                   const struct sbx_config_env *env)
{
	if (c->orchestrator.max_parallel == 0)
		c->orchestrator.max_parallel =
		    env->online_cpus > 0 ? (uint64_t)env->online_cpus : 1;
	int r = resolve_dir(p, env, "state_dir", env->xdg_state_home, "XDG_STATE_HOME",
	                    ".local/state", "trimo-sbx", ROOT_STATE);
	if (r >= 0)
		r = resolve_dir(p, env, "image_dir", env->xdg_data_home, "XDG_DATA_HOME",
		                ".local/share", "trimo-sbx/images", ROOT_IMAGES);
	return r;
}

static int parse_user(struct cfg_parser *p, struct sbx_user_config *c, const char *path,
                      bool missing_ok, const struct sbx_config_env *env)
{
	_cleanup_free_ char *dir = NULL;
	int r = cfg_parser_init(p);
	if (r < 0)
		return r;
	cfg_set_defaults(p);
	if (path) {
		char *abs = NULL;
		r = cfg_path_absolute(path, &abs, p->err);
		if (r < 0)
			return r;
		c->path = abs;
		if (!(dir = cfg_path_dirname(abs)))
			return sbx_fail(p->err, ENOMEM, "%s", path);
		p->dir = dir;
		r = cfg_parse_file(p, path, SBX_CONFIG_FILE_MAX);
		if (r == -ENOENT && missing_ok) {
			free((void *)c->path);
			c->path = NULL;
			sbx_err_clear(p->err);
			r = 0;
		}
		if (r < 0)
			return r;
	}
	return resolve(p, c, env);
}

int config_parse_user(const char *path, bool missing_ok, const struct sbx_config_env *env,
                      const struct sbx_user_config **ret, struct sbx_err *err)
{
	struct sbx_user_config *c = calloc(1, sizeof(*c));
	if (!c)
		return sbx_fail(err, ENOMEM, "user config");
	struct cfg_parser p = {
	    .file = path ? path : "user config",
	    .dir = "/",
	    .sections = user_sections,
	    .n_sections = ELEMENTSOF(user_sections),
	    .target = c,
	    .err = err,
	};
	int r = parse_user(&p, c, path, missing_ok, env);
	cfg_parser_done(&p);
	if (r < 0) {
		config_free_user(c);
		return r;
	}
	*ret = c;
	return 0;
}

int config_load_user(const struct sbx_config_env *env, const struct sbx_user_config **ret,
                     struct sbx_err *err)
{
	_cleanup_free_ char *path = NULL;
	bool required = false;
	int r = config_user_path(env, &path, &required, err);
	if (r < 0)
		return r;
	r = config_parse_user(path, !required, env, ret, err);
	if (r == -ENOENT && required)
		return sbx_wrap(err, "TRIMO_SBX_CONFIG");
	return r;
}

void config_free_user(const struct sbx_user_config *cfg)
{
	if (!cfg)
		return;
	struct sbx_user_config *c = (struct sbx_user_config *)cfg;
	free((void *)c->path);
	free((void *)c->storage.state_dir);
	free((void *)c->storage.image_dir);
	free((void *)c->cgroups.parent);
	free(c);
}
