#include "sandbox/seccomp_profile.h"

#include <errno.h>
#include <jansson.h>
#include <seccomp.h>
#include <string.h>
#include <strings.h>
#include <stdio.h>

#include "sandbox/caps.h"

struct action_name {
	const char *name;
	uint32_t action; /* SCMP_ACT_ERRNO(0)/TRACE(0): errno filled in later */
};

static const struct action_name actions[] = {
    {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW},
    {"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0)},
    {"SCMP_ACT_KILL", SCMP_ACT_KILL},
    {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL},
    {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS},
    {"SCMP_ACT_TRAP", SCMP_ACT_TRAP},
    {"SCMP_ACT_LOG", SCMP_ACT_LOG},
    {"SCMP_ACT_TRACE", SCMP_ACT_TRACE(0)},
    {NULL, 0},
};

static const struct {
	const char *name;
	enum scmp_compare op;
} ops[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE},
    {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},
    {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
    {NULL, 0},
};

static int parse_action(const char *path, const char *where, json_t *obj, const char *key,
                        const char *errno_key, uint32_t *ret, struct sbx_err *err)
{
	json_t *a = json_object_get(obj, key);
	if (!json_is_string(a))
		return sbx_failx(err, EINVAL, "%s: %s: \"%s\" must be a string", path, where, key);
	const char *s = json_string_value(a);
	for (size_t i = 0; actions[i].name; i++) {
		if (strcmp(actions[i].name, s))
			continue;
		uint32_t act = actions[i].action;
		if (act == SCMP_ACT_ERRNO(0)) {
			json_t *e = json_object_get(obj, errno_key);
			int v = json_is_integer(e) ? (int)json_integer_value(e) : EPERM;
			if (v < 0 || v > 4095)
				return sbx_failx(err, EINVAL, "%s: %s: \"%s\" %d is out of range",
				                 path, where, errno_key, v);
			act = SCMP_ACT_ERRNO(v);
		} else if (act == SCMP_ACT_TRACE(0)) {
			act = SCMP_ACT_ERRNO(ENOSYS); /* no tracer here: what the kernel answers */
		}
		*ret = act;
		return 0;
	}
	return sbx_failx(err, EINVAL, "%s: %s: unknown action \"%s\"", path, where, s);
}

static int has_cap_name(uint64_t caps, const char *name)
{
	int cap, all;
	if (caps_parse_name(name, &cap, &all, NULL) < 0)
		return 0;
	return all ? caps == UINT64_MAX : (caps >> cap) & 1;
}

static int native_arch_listed(json_t *arches)
{
	size_t i;
	json_t *v;
	json_array_foreach(arches, i, v)
	{
		if (!json_is_string(v))
			continue;
		const char *s = json_string_value(v);
		const char *n = strncmp(s, "SCMP_ARCH_", 10) == 0 ? s + 10 : s;
		if (!strcasecmp(n, "X86_64") || !strcasecmp(n, "amd64"))
			return seccomp_arch_native() == SCMP_ARCH_X86_64;
		if (!strcasecmp(n, "AARCH64") || !strcasecmp(n, "arm64"))
			return seccomp_arch_native() == SCMP_ARCH_AARCH64;
	}
	return 0;
}

/* Whether a rule's includes/excludes let it apply to this sandbox. */
static int rule_applies(json_t *rule, uint64_t caps)
{
	json_t *inc = json_object_get(rule, "includes");
	json_t *exc = json_object_get(rule, "excludes");
	size_t i;
	json_t *v;
	if (json_is_object(inc)) {
		json_array_foreach(json_object_get(inc, "caps"), i, v)
		{
			if (!json_is_string(v) || !has_cap_name(caps, json_string_value(v)))
				return 0;
		}
		json_t *arches = json_object_get(inc, "arches");
		if (json_array_size(arches) && !native_arch_listed(arches))
			return 0;
	}
	if (json_is_object(exc)) {
		json_array_foreach(json_object_get(exc, "caps"), i, v)
		{
			if (json_is_string(v) && has_cap_name(caps, json_string_value(v)))
				return 0;
		}
		json_t *arches = json_object_get(exc, "arches");
		if (json_array_size(arches) && native_arch_listed(arches))
			return 0;
	}
	return 1;
}

static int parse_args(const char *path, const char *where, json_t *args, struct scmp_arg_cmp *cmps,
                      unsigned *ret_n, struct sbx_err *err)
{
	*ret_n = 0;
	if (!args || json_is_null(args))
		return 0;
	if (!json_is_array(args) || json_array_size(args) > 6)
		return sbx_failx(err, EINVAL, "%s: %s: \"args\" must be an array of at most 6",
		                 path, where);
	size_t i;
	json_t *a;
	json_array_foreach(args, i, a)
	{
		json_t *idx = json_object_get(a, "index"), *val = json_object_get(a, "value");
		json_t *val2 = json_object_get(a, "valueTwo"), *op = json_object_get(a, "op");
		if (!json_is_integer(idx) || json_integer_value(idx) < 0 ||
		    json_integer_value(idx) > 5 || !json_is_integer(val) || !json_is_string(op))
			return sbx_failx(err, EINVAL,
			                 "%s: %s: args[%zu] needs index (0-5), value and op", path,
			                 where, i);
		size_t k;
		for (k = 0; ops[k].name && strcmp(ops[k].name, json_string_value(op)); k++)
			;
		if (!ops[k].name)
			return sbx_failx(err, EINVAL, "%s: %s: args[%zu]: unknown op \"%s\"", path,
			                 where, i, json_string_value(op));
		cmps[i] = (struct scmp_arg_cmp){
		    .arg = (unsigned)json_integer_value(idx),
		    .op = ops[k].op,
		    .datum_a = (scmp_datum_t)json_integer_value(val),
		    .datum_b = json_is_integer(val2) ? (scmp_datum_t)json_integer_value(val2) : 0,
		};
	}
	*ret_n = (unsigned)json_array_size(args);
	return 0;
}

static int add_rule(scmp_filter_ctx ctx, const char *path, size_t index, json_t *rule,
                    uint64_t caps, struct sbx_err *err)
{
	char where[48];
	snprintf(where, sizeof(where), "syscalls[%zu]", index);
	if (!json_is_object(rule))
		return sbx_failx(err, EINVAL, "%s: %s: must be an object", path, where);
	if (!rule_applies(rule, caps))
		return 0;
	uint32_t action;
	int r = parse_action(path, where, rule, "action", "errnoRet", &action, err);
	if (r < 0)
		return r;
	struct scmp_arg_cmp cmps[6];
	unsigned n_cmps;
	r = parse_args(path, where, json_object_get(rule, "args"), cmps, &n_cmps, err);
	if (r < 0)
		return r;
	json_t *names = json_object_get(rule, "names");
	json_t *one = json_object_get(rule, "name");
	if (!json_is_array(names) && !json_is_string(one))
		return sbx_failx(err, EINVAL, "%s: %s: needs \"names\"", path, where);
	size_t count = json_is_array(names) ? json_array_size(names) : 1;
	for (size_t i = 0; i < count; i++) {
		json_t *n = json_is_array(names) ? json_array_get(names, i) : one;
		if (!json_is_string(n))
			return sbx_failx(err, EINVAL, "%s: %s: names[%zu] must be a string", path,
			                 where, i);
		int nr = seccomp_syscall_resolve_name(json_string_value(n));
		if (nr == __NR_SCMP_ERROR)
			continue;
		int e = seccomp_rule_add_array(ctx, action, nr, n_cmps, cmps);
		if (e < 0 && e != -EEXIST)
			return sbx_fail(err, -e, "%s: %s: rule for %s", path, where,
			                json_string_value(n));
	}
	return 0;
}

int seccomp_profile_build(const char *path, uint64_t caps, void **ret, struct sbx_err *err)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (jerr.line < 0 && jerr.position == 0)
			return sbx_failx(err, ENOENT, "seccomp profile %s: %s", path, jerr.text);
		return sbx_failx(err, EINVAL, "seccomp profile %s:%d:%d: %s", path, jerr.line,
		                 jerr.column, jerr.text);
	}
	int r;
	scmp_filter_ctx ctx = NULL;
	uint32_t def;
	if (!json_is_object(root)) {
		r = sbx_failx(err, EINVAL, "seccomp profile %s: not a JSON object", path);
		goto out;
	}
	r = parse_action(path, "defaultAction", root, "defaultAction", "defaultErrnoRet", &def,
	                 err);
	if (r < 0)
		goto out;
	ctx = seccomp_init(def);
	if (!ctx) {
		r = sbx_failx(err, ENOMEM, "seccomp profile %s: seccomp_init failed", path);
		goto out;
	}
	json_t *rules = json_object_get(root, "syscalls");
	if (rules && !json_is_array(rules)) {
		r = sbx_failx(err, EINVAL, "seccomp profile %s: \"syscalls\" must be an array",
		              path);
		goto out;
	}
	size_t i;
	json_t *rule;
	json_array_foreach(rules, i, rule)
	{
		r = add_rule(ctx, path, i, rule, caps, err);
		if (r < 0)
			goto out;
	}
	*ret = ctx;
	ctx = NULL;
	r = 0;
out:
	if (ctx)
		seccomp_release(ctx);
	json_decref(root);
	return r;
}
