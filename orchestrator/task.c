#include "orchestrator/task.h"
#include "rootfs/image.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#define CONFIG_JSON     "config.json"
#define CONFIG_JSON_MAX (4 * 1024 * 1024)

void task_make_id(const char *name, uint16_t rnd, char *buf, size_t size)
{
	snprintf(buf, size, "%s-%04x", name, (unsigned)rnd);
}

bool task_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n < 6 || n >= TASK_ID_MAX || id[n - 5] != '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
		if (!ok || (i == 0 && c == '-'))
			return false;
	}
	for (size_t i = n - 4; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

/* ---- the image ------------------------------------------------------ */

static int check_tree(const char *path, struct sbx_err *err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return sbx_fail(err, errno == ENOENT ? EINVAL : errno, "'%s'", path);
	if (!S_ISDIR(st.st_mode))
		return sbx_failx(err, EINVAL, "'%s' is not a folder", path);
	return 0;
}

int task_resolve_image(const struct sbx_cfg_image *img, const char *image_dir,
                       struct sbx_task_image *ret, struct sbx_err *err)
{
	struct sbx_task_image t = {.hold_fd = -1};
	if (snprintf(t.source, sizeof(t.source), "%s", img->source) >= (int)sizeof(t.source))
		return sbx_failx(err, ENAMETOOLONG, "[image] source: path too long");
	if (img->kind == SBX_IMAGE_DIR) {
		if (snprintf(t.rootfs, sizeof(t.rootfs), "%s", img->path) >= (int)sizeof(t.rootfs))
			return sbx_failx(err, ENAMETOOLONG, "[image] source: path too long");
		int r = check_tree(t.rootfs, err);
		if (r < 0)
			return sbx_wrap(err, "[image] source");
		*ret = t;
		return 0;
	}
	/* a plain tar is given to the store by its path (config's "tar:" prefix
	 * is ours); every other kind keeps its prefix */
	const char *source = img->kind == SBX_IMAGE_TAR ? img->path : img->source;
	struct image_import_opts opts = {.hold = true};
	struct sbx_image image;
	int r = image_import(image_dir, source, NULL, &opts, &image, err);
	if (r < 0) {
		sbx_wrap(err, "[image] source '%s'", img->source);
		return image_err_is_input(err) ? -EINVAL : r;
	}
	snprintf(t.rootfs, sizeof(t.rootfs), "%s", image.path);
	snprintf(t.digest, sizeof(t.digest), "%s", image.digest);
	t.hold_fd = image.hold_fd;
	*ret = t;
	return 0;
}

int task_hold_image(const struct sbx_task_image *img, const char *image_dir,
                    struct sbx_task_image *ret, struct sbx_err *err)
{
	struct sbx_task_image t = *img;
	t.hold_fd = -1;
	if (t.digest[0]) {
		int r = image_hold(image_dir, t.digest, &t.hold_fd, err);
		if (r < 0)
			return sbx_wrap(err, "image '%s'", img->source);
	} else {
		int r = check_tree(t.rootfs, err);
		if (r < 0)
			return sbx_wrap(err, "image '%s'", img->source);
	}
	*ret = t;
	return 0;
}

uint64_t task_memory_admit(const struct sbx_limits *l, uint64_t default_memory)
{
	uint64_t cap = task_memory_max(l);
	return cap == UINT64_MAX ? default_memory : cap;
}

uint64_t task_memory_max(const struct sbx_limits *l)
{
	if (!l->enabled || !(l->set & SBX_LIMIT_MEMORY))
		return UINT64_MAX;
	return l->memory;
}

/* ---- the definition ------------------------------------------------- */

void task_def_free(struct sbx_task_def *d)
{
	if (!d)
		return;
	free(d->id);
	free(d->name);
	free(d->task_file);
	free(d->command);
	sbx_strv_free(d->env);
	sbx_strv_free(d->pass_env);
	free(d->workdir);
	free(d->publish);
	sbx_strv_free(d->allow);
	free(d->hostname);
	free(d->repo_path);
	free(d->repo_base);
	free(d->branch);
	sbx_strv_free(d->git.protected_branches);
	free(d->git.remote);
	free(d->git.author_name);
	free(d->git.author_email);
	free(d->network);
	free(d);
}

static int dup_str(char **dst, const char *src)
{
	if (!src) {
		*dst = NULL;
		return 0;
	}
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

static int dup_strv(char ***dst, const char *const *src)
{
	*dst = calloc(1, sizeof(char *));
	if (!*dst)
		return -ENOMEM;
	for (size_t i = 0; src && src[i]; i++)
		if (sbx_strv_push(dst, src[i]) < 0)
			return -ENOMEM;
	return 0;
}

static const char *net_mode_name(enum sbx_net_mode m)
{
	return m == SBX_NET_NAT ? "nat" : m == SBX_NET_HOST ? "host" : "none";
}

/* [network] as the supervisor needs it: the published ports as they are,
 * the allowlist as the rule text the proxy parses. */
static int net_from_config(const struct sbx_cfg_network *n, struct sbx_task_def *d)
{
	d->allow_host_loopback = n->allow_host_loopback;
	if (n->n_publish) {
		d->publish = calloc(n->n_publish, sizeof(*d->publish));
		if (!d->publish)
			return -ENOMEM;
		memcpy(d->publish, n->publish, n->n_publish * sizeof(*d->publish));
		d->n_publish = n->n_publish;
	}
	d->allow = calloc(1, sizeof(char *));
	if (!d->allow)
		return -ENOMEM;
	for (size_t i = 0; i < n->n_allow; i++) {
		const struct sbx_allow *a = &n->allow[i];
		char rule[300];
		bool v6 = a->kind == SBX_ALLOW_IP && strchr(a->host, ':');
		snprintf(rule, sizeof(rule), v6 ? "[%s]:%u" : "%s:%u", a->host, a->port);
		if (sbx_strv_push(&d->allow, rule) < 0)
			return -ENOMEM;
	}
	return 0;
}

int task_def_from_config(const struct sbx_task_config *cfg, const struct sbx_limits *limits,
                         const struct sbx_task_image *img, const char *id,
                         struct sbx_task_def **ret, struct sbx_err *err)
{
	struct sbx_task_def *d = calloc(1, sizeof(*d));
	if (!d)
		return sbx_fail(err, ENOMEM, "task");
	const struct sbx_cfg_task *t = &cfg->task;
	int r = dup_str(&d->id, id);
	r = r ?: dup_str(&d->name, t->name);
	r = r ?: dup_str(&d->task_file, cfg->path);
	r = r ?: dup_str(&d->command, t->command);
	r = r ?: dup_strv(&d->env, t->env);
	r = r ?: dup_strv(&d->pass_env, t->pass_env);
	r = r ?: dup_str(&d->workdir, t->workdir);
	r = r ?: dup_str(&d->hostname, t->hostname);
	r = r ?: dup_str(&d->network, net_mode_name(cfg->network.mode));
	r = r ?: net_from_config(&cfg->network, d);
	if (r == 0 && cfg->repo.enabled) {
		const struct sbx_cfg_repo *c = &cfg->repo;
		d->repo = true;
		r = dup_str(&d->repo_path, c->path);
		r = r ?: dup_str(&d->repo_base, c->base);
		r = r ?: dup_str(&d->branch, c->branch);
		r = r ?: dup_strv(&d->git.protected_branches, c->protected_branches);
		r = r ?: dup_str(&d->git.remote, c->remote);
		r = r ?: dup_str(&d->git.author_name, c->author_name);
		r = r ?: dup_str(&d->git.author_email, c->author_email);
		d->git.push = c->push;
		d->git.auto_commit = c->auto_commit;
		d->git.auto_commit_interval = c->auto_commit_interval;
		d->git.push_tags = c->push_tags;
	}
	if (r < 0) {
		task_def_free(d);
		return sbx_fail(err, ENOMEM, "task");
	}
	d->timeout = t->timeout;
	d->image = *img;
	d->image.hold_fd = -1;
	d->limits = *limits;
	*ret = d;
	return 0;
}

/* ---- JSON ----------------------------------------------------------- */

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *strv_json(char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; a && v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *limits_json(const struct sbx_limits *l)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "enabled", json_boolean(l->enabled));
	json_object_set_new(o, "memory",
	                    (l->set & SBX_LIMIT_MEMORY) ? json_integer((json_int_t)l->memory)
	                                                : json_null());
	json_t *swap = json_null();
	if ((l->set & SBX_LIMIT_MEMORY_SWAP) && l->memory_swap == SBX_MEMORY_SWAP_MAX)
		swap = json_string("max");
	else if (l->set & SBX_LIMIT_MEMORY_SWAP)
		swap = json_integer((json_int_t)l->memory_swap);
	json_object_set_new(o, "memory_swap", swap);
	json_object_set_new(
	    o, "cpus", (l->set & SBX_LIMIT_CPUS) ? json_real(l->millicpus / 1000.0) : json_null());
	json_object_set_new(
	    o, "pids", (l->set & SBX_LIMIT_PIDS) ? json_integer((json_int_t)l->pids) : json_null());
	json_object_set_new(o, "oom_kill",
	                    json_string(l->oom_kill == SBX_OOM_KILL_GROUP ? "group" : "process"));
	return o;
}

static const char *const push_names[] = {"manual", "on-exit", "auto"};
static const char *const commit_names[] = {"off", "exit", "interval"};

static void repo_git_json(json_t *repo, const struct sbx_task_git *g)
{
	json_object_set_new(repo, "push", json_string(push_names[g->push]));
	json_object_set_new(repo, "auto_commit", json_string(commit_names[g->auto_commit]));
	json_object_set_new(repo, "auto_commit_interval",
	                    json_integer((json_int_t)g->auto_commit_interval));
	json_object_set_new(repo, "protected", strv_json(g->protected_branches));
	json_object_set_new(repo, "remote", str_or_null(g->remote));
	json_object_set_new(repo, "push_tags", json_boolean(g->push_tags));
	json_object_set_new(repo, "author_name", str_or_null(g->author_name));
	json_object_set_new(repo, "author_email", str_or_null(g->author_email));
}

int task_def_to_json(const struct sbx_task_def *d, char **ret, struct sbx_err *err)
{
	json_t *o = json_pack(
	    "{s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:s, s:o, s:{s:s, s:s, s:s}, s:{s:b, s:o, s:o, "
	    "s:o}, s:o, s:{s:s}}",
	    "id", d->id, "name", d->name, "task_file", d->task_file, "command", d->command, "env",
	    strv_json(d->env), "pass_env", strv_json(d->pass_env), "timeout",
	    (json_int_t)d->timeout, "workdir", d->workdir, "hostname", str_or_null(d->hostname),
	    "image", "source", d->image.source, "rootfs", d->image.rootfs, "digest",
	    d->image.digest, "repo", "enabled", d->repo, "path", str_or_null(d->repo_path), "base",
	    str_or_null(d->repo_base), "branch", str_or_null(d->branch), "limits",
	    limits_json(&d->limits), "network", "mode", d->network);
	json_t *repo = o ? json_object_get(o, "repo") : NULL;
	if (repo && d->repo)
		repo_git_json(repo, &d->git);
	json_t *net = o ? json_object_get(o, "network") : NULL;
	if (net) {
		json_t *pub = json_array();
		for (size_t i = 0; pub && i < d->n_publish; i++) {
			const struct sbx_publish *p = &d->publish[i];
			json_array_append_new(pub, json_pack("{s:s, s:i, s:i, s:b}", "addr",
			                                     p->addr, "host_port", p->host_port,
			                                     "port", p->port, "udp", p->udp));
		}
		json_object_set_new(net, "publish", pub);
		json_object_set_new(net, "allow", strv_json(d->allow));
		json_object_set_new(net, "allow_host_loopback",
		                    json_boolean(d->allow_host_loopback));
	}
	char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
	json_decref(o);
	if (!text)
		return sbx_fail(err, ENOMEM, "task configuration");
	*ret = text;
	return 0;
}

static int get_str(json_t *o, const char *key, bool nullable, char **ret)
{
	json_t *v = json_object_get(o, key);
	if (nullable && (!v || json_is_null(v))) {
		*ret = NULL;
		return 0;
	}
	if (!json_is_string(v))
		return -EINVAL;
	*ret = strdup(json_string_value(v));
	return *ret ? 0 : -ENOMEM;
}

static int get_strv(json_t *o, const char *key, char ***ret)
{
	json_t *a = json_object_get(o, key);
	if (!json_is_array(a))
		return -EINVAL;
	*ret = calloc(1, sizeof(char *));
	if (!*ret)
		return -ENOMEM;
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v))
			return -EINVAL;
		if (sbx_strv_push(ret, json_string_value(v)) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int get_fixed(json_t *o, const char *key, char *buf, size_t size)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_string(v))
		return -EINVAL;
	if ((size_t)snprintf(buf, size, "%s", json_string_value(v)) >= size)
		return -ENAMETOOLONG;
	return 0;
}

static int limits_from_json(json_t *o, struct sbx_limits *l)
{
	if (!json_is_object(o))
		return -EINVAL;
	memset(l, 0, sizeof(*l));
	json_t *v = json_object_get(o, "enabled");
	if (!json_is_boolean(v))
		return -EINVAL;
	l->enabled = json_is_true(v);
	l->set |= SBX_LIMIT_ENABLED;
	if (json_is_integer(v = json_object_get(o, "memory"))) {
		l->memory = (uint64_t)json_integer_value(v);
		l->set |= SBX_LIMIT_MEMORY;
	}
	v = json_object_get(o, "memory_swap");
	if (json_is_string(v) && !strcmp(json_string_value(v), "max")) {
		l->memory_swap = SBX_MEMORY_SWAP_MAX;
		l->set |= SBX_LIMIT_MEMORY_SWAP;
	} else if (json_is_integer(v)) {
		l->memory_swap = (uint64_t)json_integer_value(v);
		l->set |= SBX_LIMIT_MEMORY_SWAP;
	}
	if (json_is_number(v = json_object_get(o, "cpus"))) {
		l->millicpus = (uint32_t)(json_number_value(v) * 1000 + 0.5);
		l->set |= SBX_LIMIT_CPUS;
	}
	if (json_is_integer(v = json_object_get(o, "pids"))) {
		l->pids = (uint64_t)json_integer_value(v);
		l->set |= SBX_LIMIT_PIDS;
	}
	v = json_object_get(o, "oom_kill");
	l->oom_kill = json_is_string(v) && !strcmp(json_string_value(v), "group")
	                  ? SBX_OOM_KILL_GROUP
	                  : SBX_OOM_KILL_PROCESS;
	l->set |= SBX_LIMIT_OOM_KILL;
	return 0;
}

static int net_from_json(json_t *net, struct sbx_task_def *d)
{
	int r = get_strv(net, "allow", &d->allow);
	if (r)
		return r;
	d->allow_host_loopback = json_is_true(json_object_get(net, "allow_host_loopback"));
	json_t *pub = json_object_get(net, "publish");
	if (!json_is_array(pub))
		return -EINVAL;
	size_t n = json_array_size(pub);
	if (n && !(d->publish = calloc(n, sizeof(*d->publish))))
		return -ENOMEM;
	size_t i;
	json_t *v;
	json_array_foreach(pub, i, v)
	{
		struct sbx_publish *p = &d->publish[i];
		int host_port, port, udp;
		const char *addr;
		if (json_unpack(v, "{s:s, s:i, s:i, s:b}", "addr", &addr, "host_port", &host_port,
		                "port", &port, "udp", &udp) < 0 ||
		    (size_t)snprintf(p->addr, sizeof(p->addr), "%s", addr) >= sizeof(p->addr))
			return -EINVAL;
		p->family = strchr(addr, ':') ? AF_INET6 : AF_INET;
		p->host_port = (uint16_t)host_port;
		p->port = (uint16_t)port;
		p->udp = udp;
	}
	d->n_publish = n;
	return 0;
}

static int name_index(json_t *v, const char *const *names, size_t n, int def)
{
	if (!v)
		return def;
	for (size_t i = 0; json_is_string(v) && i < n; i++)
		if (!strcmp(json_string_value(v), names[i]))
			return (int)i;
	return -1;
}

/* The git settings of "repo"; absent in a task launched before they
 * existed: the defaults of task.ini. */
static int repo_git_from_json(json_t *repo, struct sbx_task_git *g)
{
	int push = name_index(json_object_get(repo, "push"), push_names, 3, SBX_PUSH_MANUAL);
	int ac =
	    name_index(json_object_get(repo, "auto_commit"), commit_names, 3, SBX_AUTO_COMMIT_OFF);
	if (push < 0 || ac < 0)
		return -EINVAL;
	g->push = (enum sbx_push_mode)push;
	g->auto_commit = (enum sbx_auto_commit)ac;
	json_t *v = json_object_get(repo, "auto_commit_interval");
	g->auto_commit_interval = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
	g->push_tags = json_is_true(json_object_get(repo, "push_tags"));
	int r = 0;
	if (json_object_get(repo, "protected")) {
		r = get_strv(repo, "protected", &g->protected_branches);
	} else {
		const char *const defaults[] = {"main", "master", "release/*", NULL};
		r = dup_strv(&g->protected_branches, defaults);
	}
	r = r ?: get_str(repo, "remote", true, &g->remote);
	r = r ?: get_str(repo, "author_name", true, &g->author_name);
	return r ?: get_str(repo, "author_email", true, &g->author_email);
}

static int def_from_object(json_t *o, struct sbx_task_def *d)
{
	int r = get_str(o, "id", false, &d->id);
	r = r ?: get_str(o, "name", false, &d->name);
	r = r ?: get_str(o, "task_file", false, &d->task_file);
	r = r ?: get_str(o, "command", false, &d->command);
	r = r ?: get_strv(o, "env", &d->env);
	r = r ?: get_strv(o, "pass_env", &d->pass_env);
	r = r ?: get_str(o, "workdir", false, &d->workdir);
	r = r ?: get_str(o, "hostname", true, &d->hostname);
	if (r)
		return r;
	json_t *v = json_object_get(o, "timeout");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -EINVAL;
	d->timeout = (uint64_t)json_integer_value(v);
	json_t *img = json_object_get(o, "image");
	d->image.hold_fd = -1;
	r = get_fixed(img, "source", d->image.source, sizeof(d->image.source));
	r = r ?: get_fixed(img, "rootfs", d->image.rootfs, sizeof(d->image.rootfs));
	r = r ?: get_fixed(img, "digest", d->image.digest, sizeof(d->image.digest));
	json_t *repo = json_object_get(o, "repo");
	if (r || !json_is_object(repo) || !json_is_boolean(json_object_get(repo, "enabled")))
		return r ?: -EINVAL;
	d->repo = json_is_true(json_object_get(repo, "enabled"));
	r = get_str(repo, "path", true, &d->repo_path);
	r = r ?: get_str(repo, "base", true, &d->repo_base);
	r = r ?: get_str(repo, "branch", true, &d->branch);
	if (r == 0 && d->repo)
		r = repo_git_from_json(repo, &d->git);
	r = r ?: limits_from_json(json_object_get(o, "limits"), &d->limits);
	r = r ?: get_str(json_object_get(o, "network"), "mode", false, &d->network);
	return r ?: net_from_json(json_object_get(o, "network"), d);
}

int task_def_from_json(const char *text, size_t len, struct sbx_task_def **ret, struct sbx_err *err)
{
	json_error_t jerr;
	json_t *o = json_loadb(text, len, 0, &jerr);
	if (!json_is_object(o)) {
		json_decref(o);
		return sbx_failx(err, EINVAL, "config.json: %s", o ? "not an object" : jerr.text);
	}
	struct sbx_task_def *d = calloc(1, sizeof(*d));
	int r = d ? def_from_object(o, d) : -ENOMEM;
	json_decref(o);
	if (r < 0) {
		task_def_free(d);
		return r == -ENOMEM ? sbx_fail(err, ENOMEM, "config.json")
		                    : sbx_failx(err, EINVAL,
		                                "config.json: a field is missing or "
		                                "has the wrong type");
	}
	*ret = d;
	return 0;
}

int task_def_read(int dirfd, struct sbx_task_def **ret, struct sbx_err *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = sbx_read_file(dirfd, CONFIG_JSON, CONFIG_JSON_MAX, &text, &len, err);
	if (r < 0)
		return r;
	return task_def_from_json(text, len, ret, err);
}
