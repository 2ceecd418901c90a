/* task.ini: its key table, the checks of each value, the checks across
 * keys once everything is read, and the finished struct sbx_task_config. */
#include "config/internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"

/* The config while it is built: lists grow here and move into cfg at the
 * end, when nothing can fail any more. */
struct task_build {
	struct sbx_task_config cfg;
	char **env, **pass_env, **protected_patterns;
	struct sbx_publish *publish;
	size_t n_publish;
	struct sbx_allow *allow;
	size_t n_allow;
};

enum { SEC_TASK, SEC_IMAGE, SEC_REPO, SEC_LIMITS, SEC_NETWORK };

static struct task_build *build_of(struct cfg_parser *p)
{
	return p->target;
}

static int oom(struct cfg_parser *p)
{
	return sbx_fail(p->err, ENOMEM, "%s", cfg_where(p));
}

/* Replace a string field with a copy of value (NULL or "" -> NULL). */
static int put_str(struct cfg_parser *p, void *field, const char *value)
{
	char *copy = NULL;
	if (value && *value && !(copy = strdup(value)))
		return oom(p);
	free((void *)*(const char **)field);
	*(const char **)field = copy;
	return 0;
}

/* ---- [task] ---- */

static int set_name(struct cfg_parser *p, const struct cfg_key *k, void *field, const char *value)
{
	if (*value && !cfg_valid_task_name(value))
		return cfg_fail(p,
		                "'%s' is not a valid name (1 to %d of a-z, 0-9 and '-', starting "
		                "with a letter or digit)",
		                value, SBX_NAME_MAX);
	return put_str(p, field, value);
}

static int check_env_name(struct cfg_parser *p, const char *name, const char *item)
{
	if (!cfg_valid_env_name(name))
		return cfg_fail(p,
		                "'%s' is not accepted (NAME=VALUE; NAME of letters, digits and "
		                "'_', not starting with a digit)",
		                item);
	if (!strncmp(name, "TRIMO_", 6))
		return cfg_fail(p, "'%s': names starting with TRIMO_ are reserved for trimo-sbx",
		                item);
	return 0;
}

static int set_env(struct cfg_parser *p, const struct cfg_key *k, void *field, const char *value)
{
	struct task_build *b = build_of(p);
	if (!*value) {
		sbx_strv_free(b->env);
		b->env = NULL;
		return 0;
	}
	const char *eq = strchr(value, '=');
	_cleanup_free_ char *name = strndup(value, eq ? (size_t)(eq - value) : strlen(value));
	if (!name)
		return oom(p);
	int r = check_env_name(p, eq ? name : "", value);
	if (r < 0)
		return r;
	size_t n = strlen(name);
	for (char **e = b->env; e && *e; e++) {
		if (!strncmp(*e, value, n + 1)) { /* same NAME=: the later one wins */
			char *copy = strdup(value);
			if (!copy)
				return oom(p);
			free(*e);
			*e = copy;
			return 0;
		}
	}
	return sbx_strv_push(&b->env, value) < 0 ? oom(p) : 0;
}

static bool strv_contains(char **v, const char *s)
{
	for (; v && *v; v++)
		if (!strcmp(*v, s))
			return true;
	return false;
}

static int set_pass_env(struct cfg_parser *p, const struct cfg_key *k, void *field,
                        const char *value)
{
	struct task_build *b = build_of(p);
	_cleanup_strv_free_ char **words = NULL;
	if (!*value) {
		sbx_strv_free(b->pass_env);
		b->pass_env = NULL;
		return 0;
	}
	if (cfg_split_words(value, &words) < 0)
		return oom(p);
	for (char **w = words; *w; w++) {
		if (!cfg_valid_env_name(*w))
			return cfg_fail(p,
			                "'%s' is not a variable name (letters, digits and '_', not "
			                "starting with a digit)",
			                *w);
		if (!strncmp(*w, "TRIMO_", 6))
			return cfg_fail(p,
			                "'%s': names starting with TRIMO_ are reserved for "
			                "trimo-sbx",
			                *w);
		if (!strv_contains(b->pass_env, *w) && sbx_strv_push(&b->pass_env, *w) < 0)
			return oom(p);
	}
	return 0;
}

static int set_workdir(struct cfg_parser *p, const struct cfg_key *k, void *field,
                       const char *value)
{
	if (!*value)
		return put_str(p, field, NULL);
	bool dotdot = false;
	for (const char *c = value; (c = strstr(c, "..")); c++)
		if ((c == value || c[-1] == '/') && (c[2] == '/' || c[2] == '\0'))
			dotdot = true;
	if (value[0] != '/' || dotdot)
		return cfg_fail(p,
		                "'%s' is not accepted (an absolute path inside the sandbox, "
		                "without '..')",
		                value);
	_cleanup_free_ char *norm = cfg_path_join("/", value);
	if (!norm)
		return oom(p);
	return put_str(p, field, norm);
}

static int set_hostname(struct cfg_parser *p, const struct cfg_key *k, void *field,
                        const char *value)
{
	if (*value && !cfg_valid_hostname(value))
		return cfg_fail(p,
		                "'%s' is not a valid host name (dot-separated labels of letters, "
		                "digits and '-', at most 64 characters)",
		                value);
	return put_str(p, field, value);
}

/* ---- [image] ---- */

static const struct {
	const char *prefix;
	enum sbx_image_kind kind;
	bool tag;
} image_prefixes[] = {
    {"oci:", SBX_IMAGE_OCI, true},
    {"oci-archive:", SBX_IMAGE_OCI_ARCHIVE, true},
    {"docker-archive:", SBX_IMAGE_DOCKER_ARCHIVE, false},
    {"dir:", SBX_IMAGE_DIR, false},
    {"tar:", SBX_IMAGE_TAR, false},
};

static int bad_source(struct cfg_parser *p, const char *value)
{
	return cfg_fail(p,
	                "'%s' is not accepted (a tar file, oci:DIR[:TAG], oci-archive:FILE[:TAG], "
	                "docker-archive:FILE, dir:PATH or the NAME[:TAG] of an imported image)",
	                value);
}

static bool valid_tag(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 128)
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || strchr("._-", *s)))
			return false;
	return true;
}

/* NAME[:TAG] of an image in the store. */
static bool valid_image_name(const char *s)
{
	const char *colon = strchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);
	if (n == 0 || n > 128 || !(islower((unsigned char)*s) || isdigit((unsigned char)*s)))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) ||
		      strchr("._-", s[i])))
			return false;
	return !colon || valid_tag(colon + 1);
}

static bool looks_like_tar(const char *s)
{
	static const char *const exts[] = {".tar",    ".tar.gz", ".tgz",     ".tar.zst", ".tzst",
	                                   ".tar.xz", ".txz",    ".tar.bz2", ".tbz2"};
	size_t n = strlen(s);
	for (size_t i = 0; i < ELEMENTSOF(exts); i++) {
		size_t e = strlen(exts[i]);
		if (n > e && !strcmp(s + n - e, exts[i]))
			return true;
	}
	return false;
}

static int put_image(struct cfg_parser *p, enum sbx_image_kind kind, const char *prefix,
                     const char *rel, const char *tag)
{
	struct sbx_cfg_image *img = &build_of(p)->cfg.image;
	_cleanup_free_ char *path = cfg_path_join(p->dir, rel);
	_cleanup_free_ char *source = NULL;
	if (!path ||
	    asprintf(&source, "%s%s%s%s", prefix, path, tag ? ":" : "", tag ? tag : "") < 0)
		return oom(p);
	int r = put_str(p, &img->ref, tag);
	if (r >= 0)
		r = put_str(p, &img->source, source);
	if (r >= 0)
		r = put_str(p, &img->path, path);
	img->kind = kind;
	return r;
}

static int set_prefixed_source(struct cfg_parser *p, const char *value, size_t i)
{
	_cleanup_free_ char *rest = strdup(value + strlen(image_prefixes[i].prefix));
	if (!rest)
		return oom(p);
	char *tag = NULL;
	if (image_prefixes[i].tag) {
		char *colon = strrchr(rest, ':');
		if (colon && colon != rest && !strchr(colon, '/')) {
			*colon = '\0';
			tag = colon + 1;
			if (!valid_tag(tag))
				return bad_source(p, value);
		}
	}
	if (!*rest)
		return bad_source(p, value);
	return put_image(p, image_prefixes[i].kind, image_prefixes[i].prefix, rest, tag);
}

static int set_source(struct cfg_parser *p, const struct cfg_key *k, void *field, const char *value)
{
	struct sbx_cfg_image *img = &build_of(p)->cfg.image;
	for (size_t i = 0; i < ELEMENTSOF(image_prefixes); i++)
		if (sbx_str_has_prefix(value, image_prefixes[i].prefix))
			return set_prefixed_source(p, value, i);
	if (!*value) {
		put_str(p, &img->ref, NULL);
		put_str(p, &img->path, NULL);
		return put_str(p, &img->source, NULL);
	}
	size_t scheme = strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789-");
	if (value[scheme] == ':' && strchr(value, '/'))
		return cfg_fail(p,
		                "'%.*s:' is not a known source type (tar:, oci:, oci-archive:, "
		                "docker-archive:, dir:)",
		                (int)scheme, value);
	if (strchr(value, '/') || looks_like_tar(value))
		return put_image(p, SBX_IMAGE_TAR, "", value, NULL);
	if (!valid_image_name(value))
		return bad_source(p, value);
	img->kind = SBX_IMAGE_NAME;
	int r = put_str(p, &img->path, NULL);
	if (r >= 0)
		r = put_str(p, &img->ref, value);
	return r < 0 ? r : put_str(p, &img->source, value);
}

/* ---- [repo] ---- */

static int set_ref(struct cfg_parser *p, const struct cfg_key *k, void *field, const char *value)
{
	if (*value && !cfg_valid_ref_name(value))
		return cfg_fail(p, "'%s' is not a valid git %s name", value,
		                strcmp(k->name, "remote") ? "branch" : "remote");
	return put_str(p, field, value);
}

static int set_branch(struct cfg_parser *p, const struct cfg_key *k, void *field, const char *value)
{
	for (const char *c = value; (c = strpbrk(c, "{}")); c++) {
		if (*c == '{' && !strncmp(c, "{name}", 6)) {
			c += 5;
			continue;
		}
		return cfg_fail(p, "'%s': only {name} is expanded", value);
	}
	return put_str(p, field, value); /* checked once {name} is known */
}

static int set_auto_commit(struct cfg_parser *p, const struct cfg_key *k, void *field,
                           const char *value)
{
	struct sbx_cfg_repo *repo = &build_of(p)->cfg.repo;
	uint64_t secs = 0;
	if (!*value || !strcmp(value, "off")) {
		repo->auto_commit = SBX_AUTO_COMMIT_OFF;
	} else if (!strcmp(value, "exit")) {
		repo->auto_commit = SBX_AUTO_COMMIT_EXIT;
	} else {
		struct sbx_err ignored;
		if (sbx_parse_duration(value, "", &secs, &ignored) < 0 ||
		    secs < SBX_MIN_AUTO_COMMIT)
			return cfg_fail(p,
			                "'%s' is not accepted (off, exit, or an interval of at "
			                "least %ds, e.g. 5m)",
			                value, SBX_MIN_AUTO_COMMIT);
		repo->auto_commit = SBX_AUTO_COMMIT_INTERVAL;
	}
	repo->auto_commit_interval = secs;
	return 0;
}

static int set_protected(struct cfg_parser *p, const struct cfg_key *k, void *field,
                         const char *value)
{
	struct task_build *b = build_of(p);
	if (!*value) {
		sbx_strv_free(b->protected_patterns);
		b->protected_patterns = NULL;
		return 0;
	}
	_cleanup_strv_free_ char **words = NULL;
	if (cfg_split_words(value, &words) < 0)
		return oom(p);
	for (char **w = words; *w; w++)
		if (!strv_contains(b->protected_patterns, *w) &&
		    sbx_strv_push(&b->protected_patterns, *w) < 0)
			return oom(p);
	return 0;
}

static int set_author(struct cfg_parser *p, const struct cfg_key *k, void *field, const char *value)
{
	struct sbx_cfg_repo *repo = &build_of(p)->cfg.repo;
	_cleanup_free_ char *name = NULL, *email = NULL;
	if (*value) {
		int r = cfg_parse_author(value, &name, &email);
		if (r == -ENOMEM)
			return oom(p);
		if (r < 0)
			return cfg_fail(p, "'%s' is not accepted (Name <email>)", value);
	}
	if (put_str(p, &repo->author_name, name) < 0 || put_str(p, &repo->author_email, email) < 0)
		return -ENOMEM;
	return put_str(p, &repo->author, value);
}

/* ---- [network] ---- */

static int set_publish(struct cfg_parser *p, const struct cfg_key *k, void *field,
                       const char *value)
{
	struct task_build *b = build_of(p);
	_cleanup_strv_free_ char **words = NULL;
	if (!*value) {
		free(b->publish);
		b->publish = NULL;
		b->n_publish = 0;
		return 0;
	}
	if (cfg_split_words(value, &words) < 0)
		return oom(p);
	for (char **w = words; *w; w++) {
		struct sbx_publish pub;
		if (cfg_parse_publish(*w, &pub) < 0)
			return cfg_fail(p,
			                "'%s' is not accepted ([IP:]HOSTPORT:PORT[/tcp|/udp], "
			                "ports 1 to 65535, an IPv6 address in brackets)",
			                *w);
		for (size_t i = 0; i < b->n_publish; i++) {
			const struct sbx_publish *o = &b->publish[i];
			if (o->host_port == pub.host_port && o->udp == pub.udp &&
			    !strcmp(o->addr, pub.addr))
				return cfg_fail(p, "'%s': host port %s %u/%s is already published",
				                *w, pub.addr, pub.host_port,
				                pub.udp ? "udp" : "tcp");
		}
		struct sbx_publish *n = realloc(b->publish, (b->n_publish + 1) * sizeof(*n));
		if (!n)
			return oom(p);
		b->publish = n;
		b->publish[b->n_publish++] = pub;
	}
	return 0;
}

static bool has_allow(const struct task_build *b, const struct sbx_allow *a)
{
	for (size_t i = 0; i < b->n_allow; i++)
		if (b->allow[i].port == a->port && !strcmp(b->allow[i].host, a->host))
			return true;
	return false;
}

static void clear_allow(struct task_build *b)
{
	for (size_t i = 0; i < b->n_allow; i++)
		free((void *)b->allow[i].host);
	free(b->allow);
	b->allow = NULL;
	b->n_allow = 0;
}

static int set_allow(struct cfg_parser *p, const struct cfg_key *k, void *field, const char *value)
{
	struct task_build *b = build_of(p);
	_cleanup_strv_free_ char **words = NULL;
	if (!*value) {
		clear_allow(b);
		return 0;
	}
	if (cfg_split_words(value, &words) < 0)
		return oom(p);
	for (char **w = words; *w; w++) {
		struct sbx_allow a;
		int r = cfg_parse_allow(*w, &a);
		if (r == -ENOMEM)
			return oom(p);
		if (r < 0)
			return cfg_fail(p,
			                "'%s' is not accepted (HOST:PORT, *.DOMAIN:PORT, IP:PORT "
			                "or [IPv6]:PORT, ports 1 to 65535)",
			                *w);
		if (has_allow(b, &a)) {
			free((void *)a.host);
			continue;
		}
		struct sbx_allow *n = realloc(b->allow, (b->n_allow + 1) * sizeof(*n));
		if (!n) {
			free((void *)a.host);
			return oom(p);
		}
		b->allow = n;
		b->allow[b->n_allow++] = a;
	}
	return 0;
}

/* ---- the table ---- */

#define TASK(f)    offsetof(struct sbx_cfg_task, f)
#define REPO(f)    offsetof(struct sbx_cfg_repo, f)
#define NETWORK(f) offsetof(struct sbx_cfg_network, f)

static const struct cfg_key task_keys[] = {
    {.name = "name", .type = CFG_CUSTOM, .offset = TASK(name), .set = set_name},
    {.name = "command", .type = CFG_STR, .flags = CFG_MULTILINE, .offset = TASK(command)},
    {.name = "prompt", .type = CFG_STR, .flags = CFG_MULTILINE, .offset = TASK(prompt)},
    {.name = "prompt_file", .type = CFG_PATH, .offset = TASK(prompt_file)},
    {.name = "env", .type = CFG_CUSTOM, .flags = CFG_LIST, .set = set_env},
    {.name = "pass_env", .type = CFG_CUSTOM, .flags = CFG_LIST, .set = set_pass_env},
    {.name = "timeout", .type = CFG_DURATION, .offset = TASK(timeout)},
    {.name = "workdir", .type = CFG_CUSTOM, .offset = TASK(workdir), .set = set_workdir},
    {.name = "hostname", .type = CFG_CUSTOM, .offset = TASK(hostname), .set = set_hostname},
};

static const struct cfg_key image_keys[] = {
    {.name = "source", .type = CFG_CUSTOM, .set = set_source},
};

static const char *const push_choices[] = {"manual", "on-exit", "auto", NULL};
static const char *const mode_choices[] = {"none", "nat", "host", NULL};

static const struct cfg_key repo_keys[] = {
    {.name = "path", .type = CFG_PATH, .offset = REPO(path)},
    {.name = "base", .type = CFG_CUSTOM, .offset = REPO(base), .set = set_ref},
    {.name = "branch", .type = CFG_CUSTOM, .offset = REPO(branch), .set = set_branch},
    {.name = "push", .type = CFG_ENUM, .offset = REPO(push), .choices = push_choices},
    {.name = "auto_commit", .type = CFG_CUSTOM, .set = set_auto_commit},
    {.name = "protected", .type = CFG_CUSTOM, .flags = CFG_LIST, .set = set_protected},
    {.name = "remote", .type = CFG_CUSTOM, .offset = REPO(remote), .set = set_ref},
    {.name = "push_tags", .type = CFG_BOOL, .offset = REPO(push_tags)},
    {.name = "author", .type = CFG_CUSTOM, .set = set_author},
};

static const struct cfg_key network_keys[] = {
    {.name = "mode", .type = CFG_ENUM, .offset = NETWORK(mode), .choices = mode_choices},
    {.name = "publish", .type = CFG_CUSTOM, .flags = CFG_LIST, .set = set_publish},
    {.name = "allow", .type = CFG_CUSTOM, .flags = CFG_LIST, .set = set_allow},
    {.name = "allow_host_loopback", .type = CFG_BOOL, .offset = NETWORK(allow_host_loopback)},
};

#define SECTION(n, keys, member)                                                                   \
	{                                                                                          \
		n, keys, ELEMENTSOF(keys), offsetof(struct task_build, cfg.member), false          \
	}

static const struct cfg_section task_sections[] = {
    [SEC_TASK] = SECTION("task", task_keys, task),
    [SEC_IMAGE] = SECTION("image", image_keys, image),
    [SEC_REPO] = SECTION("repo", repo_keys, repo),
    [SEC_LIMITS] = {"limits", cfg_limits_keys, CFG_LIMITS_N_KEYS,
                    offsetof(struct task_build, cfg.limits), true},
    [SEC_NETWORK] = SECTION("network", network_keys, network),
};

const char *const *config_task_keys(void)
{
	static char names[64][48];
	static const char *list[65];
	return cfg_key_names(task_sections, ELEMENTSOF(task_sections), names, list, 64);
}

/* ---- once everything is read ---- */

/* prompt and prompt_file exclude each other, except that --set replaces
 * whichever the file gave. */
static int finish_prompt_choice(struct cfg_parser *p, struct task_build *b)
{
	struct sbx_cfg_task *t = &b->cfg.task;
	const struct cfg_slot *sp = cfg_slot(p, "task", "prompt");
	const struct cfg_slot *sf = cfg_slot(p, "task", "prompt_file");
	if (sp->origin == CFG_NONE || sf->origin == CFG_NONE)
		return 0;
	if (sp->origin != sf->origin)
		return put_str(
		    p, sp->origin == CFG_SET ? (void *)&t->prompt_file : (void *)&t->prompt, NULL);
	if (!t->prompt || !t->prompt_file)
		return 0;
	bool file_later = sp->origin == CFG_SET || sf->line > sp->line;
	int other_line = file_later ? sp->line : sf->line;
	cfg_locate(p, "task", file_later ? "prompt_file" : "prompt");
	if (p->origin == CFG_SET)
		return cfg_fail(p, "cannot be used together with prompt");
	return cfg_fail(p, "cannot be used together with %s (line %d)",
	                file_later ? "prompt" : "prompt_file", other_line);
}

static int finish_prompt(struct cfg_parser *p, struct task_build *b)
{
	struct sbx_cfg_task *t = &b->cfg.task;
	if (!t->prompt_file) {
		cfg_locate(p, "task", "prompt");
		if (t->prompt && strlen(t->prompt) > SBX_PROMPT_MAX)
			return cfg_fail(p, "longer than %d KiB (the most $TRIMO_PROMPT can carry)",
			                SBX_PROMPT_MAX / 1024);
		return 0;
	}
	cfg_locate(p, "task", "prompt_file");
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = sbx_read_file(AT_FDCWD, t->prompt_file, SBX_PROMPT_MAX, &text, &len, p->err);
	if (r == -EFBIG)
		return cfg_fail(p, "'%s' is larger than %d KiB (the most $TRIMO_PROMPT can carry)",
		                t->prompt_file, SBX_PROMPT_MAX / 1024);
	if (r < 0)
		return sbx_wrap(p->err, "%s", cfg_where(p));
	if (memchr(text, '\0', len))
		return cfg_fail(p, "'%s' is not a text file (it holds a NUL byte)", t->prompt_file);
	free((void *)t->prompt);
	t->prompt = TAKE_PTR(text);
	return 0;
}

static int finish_required(struct cfg_parser *p, const char *section, const char *key,
                           const char *value, const char *what)
{
	if (value)
		return 0;
	cfg_locate(p, section, key);
	if (p->origin == CFG_NONE)
		return cfg_fail(p, "required key missing");
	return cfg_fail(p, "empty value (%s is required)", what);
}

/* The name from the file's name: "JWT_auth.ini" -> "jwt-auth". */
static int finish_name(struct cfg_parser *p, struct task_build *b)
{
	if (b->cfg.task.name)
		return 0;
	const char *base = strrchr(b->cfg.path, '/') + 1;
	size_t n = strlen(base);
	if (n > 4 && !strcmp(base + n - 4, ".ini"))
		n -= 4;
	char name[SBX_NAME_MAX + 1];
	size_t o = 0;
	for (size_t i = 0; i < n && o < SBX_NAME_MAX; i++) {
		char c = (char)tolower((unsigned char)base[i]);
		if (!(islower((unsigned char)c) || isdigit((unsigned char)c)))
			c = '-';
		if (c == '-' && (o == 0 || name[o - 1] == '-'))
			continue;
		name[o++] = c;
	}
	while (o > 0 && name[o - 1] == '-')
		o--;
	name[o] = '\0';
	if (o == 0) {
		cfg_locate(p, "task", "name");
		return cfg_fail(p, "required key missing (the file name gives no usable name)");
	}
	b->cfg.task.name_derived = true;
	return put_str(p, &b->cfg.task.name, name);
}

static int finish_branch(struct cfg_parser *p, struct task_build *b)
{
	struct sbx_cfg_repo *repo = &b->cfg.repo;
	const char *tmpl = repo->branch ? repo->branch : SBX_DEFAULT_BRANCH;
	char out[512];
	size_t o = 0;
	for (const char *c = tmpl; *c && o < sizeof(out) - SBX_NAME_MAX - 1; c++) {
		if (!strncmp(c, "{name}", 6)) {
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s", b->cfg.task.name);
			c += 5;
		} else {
			out[o++] = *c;
		}
	}
	out[o] = '\0';
	cfg_locate(p, "repo", "branch");
	if (!cfg_valid_ref_name(out))
		return cfg_fail(p, "'%s' is not a valid git branch name", out);
	for (char **pat = b->protected_patterns; pat && *pat; pat++)
		if (fnmatch(*pat, out, 0) == 0)
			return cfg_fail(p, "'%s' matches the protected pattern '%s'", out, *pat);
	return put_str(p, &repo->branch, out);
}

static int finish_repo(struct cfg_parser *p, struct task_build *b)
{
	struct sbx_cfg_repo *repo = &b->cfg.repo;
	repo->enabled = p->seen[SEC_REPO];
	if (!repo->path && put_str(p, &repo->path, p->dir) < 0)
		return -ENOMEM;
	if (!repo->remote && put_str(p, &repo->remote, SBX_DEFAULT_REMOTE) < 0)
		return -ENOMEM;
	if (cfg_slot(p, "repo", "protected")->origin == CFG_NONE &&
	    cfg_split_words(SBX_DEFAULT_PROTECTED, &b->protected_patterns) < 0)
		return oom(p);
	return finish_branch(p, b);
}

static int finish_network(struct cfg_parser *p, struct task_build *b)
{
	const struct sbx_cfg_network *net = &b->cfg.network;
	const char *mode = mode_choices[net->mode];
	if (b->n_publish && net->mode != SBX_NET_NAT) {
		cfg_locate(p, "network", "publish");
		return cfg_fail(p, "needs mode = nat (mode is %s)", mode);
	}
	if (net->allow_host_loopback && net->mode != SBX_NET_NAT) {
		cfg_locate(p, "network", "allow_host_loopback");
		return cfg_fail(p, "needs mode = nat (mode is %s)", mode);
	}
	/* the allowlist proxy is the only way out: nat or host would give the
	 * sandbox a route around it */
	if (b->n_allow && net->mode != SBX_NET_NONE) {
		cfg_locate(p, "network", "allow");
		return cfg_fail(p, "needs mode = none: the proxy is the only way out (mode is %s)",
		                mode);
	}
	return 0;
}

/* A list for the finished config: never NULL. */
static const char *const *take_list(char ***v)
{
	if (!*v && !(*v = calloc(1, sizeof(char *))))
		return NULL;
	return (const char *const *)TAKE_PTR(*v);
}

static int finish(struct cfg_parser *p, struct task_build *b)
{
	struct sbx_cfg_task *t = &b->cfg.task;
	int r = finish_prompt_choice(p, b);
	if (r >= 0)
		r = finish_required(p, "task", "command", t->command, "a command for /bin/sh -c");
	if (r >= 0)
		r = finish_required(p, "image", "source", b->cfg.image.source, "an image");
	if (r >= 0)
		r = finish_name(p, b);
	if (r >= 0)
		r = finish_prompt(p, b);
	if (r >= 0 && !t->workdir)
		r = put_str(p, &t->workdir, SBX_DEFAULT_WORKDIR);
	if (r >= 0)
		r = finish_repo(p, b);
	if (r >= 0)
		r = finish_network(p, b);
	if (r < 0)
		return r;
	if (!(t->env = take_list(&b->env)) || !(t->pass_env = take_list(&b->pass_env)) ||
	    !(b->cfg.repo.protected_branches = take_list(&b->protected_patterns)))
		return sbx_fail(p->err, ENOMEM, "%s", p->file);
	b->cfg.network.publish = TAKE_PTR(b->publish);
	b->cfg.network.n_publish = b->n_publish;
	b->cfg.network.allow = TAKE_PTR(b->allow);
	b->cfg.network.n_allow = b->n_allow;
	return 0;
}

/* ---- life cycle ---- */

static void free_strv_const(const char *const *v)
{
	sbx_strv_free((char **)v);
}

static void release(struct sbx_task_config *c)
{
	const char *strs[] = {
	    c->file,
	    c->path,
	    c->dir,
	    c->task.name,
	    c->task.command,
	    c->task.prompt,
	    c->task.prompt_file,
	    c->task.workdir,
	    c->task.hostname,
	    c->image.source,
	    c->image.path,
	    c->image.ref,
	    c->repo.path,
	    c->repo.base,
	    c->repo.branch,
	    c->repo.remote,
	    c->repo.author,
	    c->repo.author_name,
	    c->repo.author_email,
	};
	for (size_t i = 0; i < ELEMENTSOF(strs); i++)
		free((void *)strs[i]);
	free_strv_const(c->task.env);
	free_strv_const(c->task.pass_env);
	free_strv_const(c->repo.protected_branches);
	free((void *)c->network.publish);
	for (size_t i = 0; i < c->network.n_allow; i++)
		free((void *)c->network.allow[i].host);
	free((void *)c->network.allow);
	free(c);
}

void config_free_task(const struct sbx_task_config *cfg)
{
	if (cfg)
		release((struct sbx_task_config *)cfg);
}

static void build_free(struct task_build *b)
{
	sbx_strv_free(b->env);
	sbx_strv_free(b->pass_env);
	sbx_strv_free(b->protected_patterns);
	free(b->publish);
	clear_allow(b);
	/* cfg is the first member: release() frees the whole build */
	release(&b->cfg);
}

static int parse(struct cfg_parser *p, struct task_build *b, const char *path, char *const *sets)
{
	char *abs = NULL;
	int r = cfg_path_absolute(path, &abs, p->err);
	if (r < 0)
		return r;
	b->cfg.path = abs;
	if (!(b->cfg.file = strdup(path)) || !(b->cfg.dir = cfg_path_dirname(b->cfg.path)))
		return sbx_fail(p->err, ENOMEM, "%s", path);
	p->dir = b->cfg.dir;
	r = cfg_parser_init(p);
	if (r < 0)
		return r;
	cfg_set_defaults(p);
	r = cfg_parse_file(p, path, SBX_CONFIG_FILE_MAX);
	if (r >= 0)
		r = cfg_apply_sets(p, sets);
	if (r >= 0)
		r = finish(p, b);
	return r;
}

int config_parse_task(const char *path, char *const *sets, const struct sbx_task_config **ret,
                      struct sbx_err *err)
{
	struct task_build *b = calloc(1, sizeof(*b));
	if (!b)
		return sbx_fail(err, ENOMEM, "%s", path);
	struct cfg_parser p = {
	    .file = path,
	    .sections = task_sections,
	    .n_sections = ELEMENTSOF(task_sections),
	    .target = b,
	    .err = err,
	};
	int r = parse(&p, b, path, sets);
	cfg_parser_done(&p);
	if (r < 0) {
		build_free(b);
		return r;
	}
	*ret = &b->cfg;
	return 0;
}
