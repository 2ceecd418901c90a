/* The INI engine: a line reader that feeds inih, key tables, --set, and the
 * error messages.
 *
 * inih (Debian's r55) is built with a 200-byte line buffer, splits longer
 * lines silently, does not pass line numbers to the handler, and strips
 * inline comments on key lines but not on continuation lines.  So inih never
 * reads the file itself: feed_line() hands it one line at a time, counting
 * lines, classifying each one the way inih will (section, key, continuation,
 * comment), checking sections where they are written, and replacing a value
 * too long for inih's buffer with a reference into a stash.  inih still
 * splits every line into section, key and value; the reader only makes sure
 * that what inih sees is short and means what the file says. */
#include "config/internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"

/* A value inih gets as STASH_MARK + index lives in cfg_parser.stash.  Real
 * input never holds this byte: control characters are refused. */
#define STASH_MARK   '\x01'
#define NAME_MAX_LEN 64

/* ---- tables ---- */

static const struct cfg_section *find_section(const struct cfg_parser *p, const char *name)
{
	for (size_t i = 0; i < p->n_sections; i++)
		if (!strcmp(p->sections[i].name, name))
			return &p->sections[i];
	return NULL;
}

static const struct cfg_key *find_key(const struct cfg_section *s, const char *name)
{
	for (size_t i = 0; i < s->n_keys; i++)
		if (!strcmp(s->keys[i].name, name))
			return &s->keys[i];
	return NULL;
}

static struct cfg_slot *key_slot(struct cfg_parser *p, const struct cfg_section *s,
                                 const struct cfg_key *k)
{
	size_t n = 0;
	for (const struct cfg_section *t = p->sections; t != s; t++)
		n += t->n_keys;
	return &p->slots[n + (size_t)(k - s->keys)];
}

static void *key_field(struct cfg_parser *p, const struct cfg_section *s, const struct cfg_key *k)
{
	return (char *)p->target + s->offset + k->offset;
}

static unsigned *set_mask(struct cfg_parser *p, const struct cfg_section *s)
{
	return s->has_set_mask ? (unsigned *)((char *)p->target + s->offset) : NULL;
}

struct cfg_slot *cfg_slot(struct cfg_parser *p, const char *section, const char *key)
{
	const struct cfg_section *s = find_section(p, section);
	const struct cfg_key *k = s ? find_key(s, key) : NULL;
	return k ? key_slot(p, s, k) : NULL;
}

void *cfg_field(struct cfg_parser *p, const char *section, const char *key)
{
	const struct cfg_section *s = find_section(p, section);
	const struct cfg_key *k = s ? find_key(s, key) : NULL;
	return k ? key_field(p, s, k) : NULL;
}

int cfg_parser_init(struct cfg_parser *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n_sections; i++)
		n += p->sections[i].n_keys;
	p->slots = calloc(n ? n : 1, sizeof(*p->slots));
	p->seen = calloc(p->n_sections ? p->n_sections : 1, sizeof(*p->seen));
	if (!p->slots || !p->seen)
		return sbx_fail(p->err, ENOMEM, "config");
	p->sec_index = -1;
	return 0;
}

void cfg_parser_done(struct cfg_parser *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n_sections; i++)
		n += p->sections[i].n_keys;
	for (size_t i = 0; p->slots && i < n; i++)
		free(p->slots[i].text);
	free(p->slots);
	free(p->seen);
	for (size_t i = 0; i < p->n_stash; i++)
		free(p->stash[i]);
	free(p->stash);
	p->slots = NULL;
	p->seen = NULL;
	p->stash = NULL;
	p->n_stash = 0;
}

const char *const *cfg_key_names(const struct cfg_section *sections, size_t n_sections,
                                 char (*names)[48], const char **list, size_t max)
{
	size_t n = 0;
	if (list[0])
		return list;
	for (size_t i = 0; i < n_sections; i++) {
		for (size_t j = 0; j < sections[i].n_keys && n < max; j++, n++) {
			snprintf(names[n], 48, "%s.%s", sections[i].name, sections[i].keys[j].name);
			list[n] = names[n];
		}
	}
	list[n] = NULL;
	return list;
}

/* Put a typed key's default into its field and clear its set bit. */
static void set_default(struct cfg_parser *p, const struct cfg_section *s, const struct cfg_key *k)
{
	void *f = key_field(p, s, k);
	switch (k->type) {
	case CFG_BOOL:
		*(bool *)f = k->def != 0;
		break;
	case CFG_DURATION:
	case CFG_SIZE:
	case CFG_U64:
		*(uint64_t *)f = k->def;
		break;
	case CFG_ENUM:
		*(int *)f = (int)k->def;
		break;
	case CFG_STR:
	case CFG_PATH:
		free((void *)*(const char **)f);
		*(const char **)f = NULL;
		break;
	case CFG_CUSTOM:
		break;
	}
	unsigned *mask = set_mask(p, s);
	if (mask)
		*mask &= ~k->set_bit;
}

void cfg_set_defaults(struct cfg_parser *p)
{
	for (size_t i = 0; i < p->n_sections; i++)
		for (size_t j = 0; j < p->sections[i].n_keys; j++)
			set_default(p, &p->sections[i], &p->sections[i].keys[j]);
}

/* ---- messages ---- */

/* "FILE:LINE", "--set", "FILE" or the option's name. */
static const char *location(const struct cfg_parser *p, char *buf, size_t size)
{
	switch (p->origin) {
	case CFG_OPTION:
		return p->what;
	case CFG_SET:
		return "--set";
	case CFG_FILE:
		snprintf(buf, size, "%s:%d", p->file, p->line);
		return buf;
	case CFG_NONE:
		break;
	}
	return p->file;
}

const char *cfg_where(struct cfg_parser *p)
{
	char loc[320];
	const char *l = location(p, loc, sizeof(loc));
	if (p->origin == CFG_OPTION)
		snprintf(p->where_buf, sizeof(p->where_buf), "%s", l);
	else
		snprintf(p->where_buf, sizeof(p->where_buf), "%s: [%s] %s", l,
		         p->cur_sec ? p->cur_sec->name : "", p->cur_key ? p->cur_key->name : "");
	return p->where_buf;
}

static int vfail(struct cfg_parser *p, const char *prefix, const char *fmt, va_list ap)
{
	char msg[SBX_ERR_MSG_MAX];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	return sbx_failx(p->err, EINVAL, "%s: %s", prefix, msg);
}

int cfg_fail(struct cfg_parser *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(p, cfg_where(p), fmt, ap);
	va_end(ap);
	return r;
}

/* A failure at the current place that is not about a known key. */
__attribute__((format(printf, 2, 3))) static int fail_here(struct cfg_parser *p, const char *fmt,
                                                           ...)
{
	char loc[320];
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(p, location(p, loc, sizeof(loc)), fmt, ap);
	va_end(ap);
	return r;
}

void cfg_locate(struct cfg_parser *p, const char *section, const char *key)
{
	const struct cfg_section *s = find_section(p, section);
	const struct cfg_key *k = s ? find_key(s, key) : NULL;
	struct cfg_slot *slot = k ? key_slot(p, s, k) : NULL;
	p->cur_sec = s;
	p->cur_key = k;
	p->origin = slot ? slot->origin : CFG_NONE;
	p->line = slot ? slot->line : 0;
}

/* " (did you mean X?)" for the closest of the candidates, or "". */
static void suggest_key(const struct cfg_parser *p, const struct cfg_section *in, const char *name,
                        char *buf, size_t size)
{
	size_t best = SIZE_MAX;
	const char *hit = NULL;
	for (size_t i = 0; in && i < in->n_keys; i++) {
		size_t d = cfg_distance(name, in->keys[i].name);
		if (d < best && cfg_close_enough(name, in->keys[i].name)) {
			best = d;
			hit = in->keys[i].name;
		}
	}
	if (hit) {
		snprintf(buf, size, " (did you mean %s?)", hit);
		return;
	}
	/* the right key in the wrong section: name it with its section */
	for (size_t i = 0; i < p->n_sections; i++) {
		const struct cfg_section *s = &p->sections[i];
		for (size_t j = 0; s != in && j < s->n_keys; j++) {
			if (cfg_distance(name, s->keys[j].name) <= 1) {
				snprintf(buf, size, " (did you mean [%s] %s?)", s->name,
				         s->keys[j].name);
				return;
			}
		}
	}
	buf[0] = '\0';
}

static int unknown_section(struct cfg_parser *p, const char *name)
{
	const char *hit = NULL;
	size_t best = SIZE_MAX;
	for (size_t i = 0; i < p->n_sections; i++) {
		size_t d = cfg_distance(name, p->sections[i].name);
		if (d < best && cfg_close_enough(name, p->sections[i].name)) {
			best = d;
			hit = p->sections[i].name;
		}
	}
	if (hit)
		return fail_here(p, "[%s]: unknown section (did you mean [%s]?)", name, hit);
	char known[160] = "";
	for (size_t i = 0; i < p->n_sections; i++)
		snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s[%s]",
		         i ? (i + 1 == p->n_sections ? " or " : ", ") : "", p->sections[i].name);
	return fail_here(p, "[%s]: unknown section (expected %s)", name, known);
}

/* ---- assigning values ---- */

static int set_enum(struct cfg_parser *p, const struct cfg_key *k, int *field, const char *value)
{
	for (int i = 0; k->choices[i]; i++) {
		if (!strcmp(k->choices[i], value)) {
			*field = i;
			return 0;
		}
	}
	char accepted[160] = "";
	for (int i = 0; k->choices[i]; i++)
		snprintf(accepted + strlen(accepted), sizeof(accepted) - strlen(accepted), "%s%s",
		         i ? (k->choices[i + 1] ? ", " : " or ") : "", k->choices[i]);
	return cfg_fail(p, "'%s' is not accepted (%s)", value, accepted);
}

static int set_typed(struct cfg_parser *p, const struct cfg_key *k, void *f, const char *value)
{
	int r = 0;
	switch (k->type) {
	case CFG_STR: {
		char *copy = strdup(value);
		if (!copy)
			return sbx_fail(p->err, ENOMEM, "%s", cfg_where(p));
		free((void *)*(const char **)f);
		*(const char **)f = copy;
		return 0;
	}
	case CFG_PATH: {
		char *abs = cfg_path_join(p->dir, value);
		if (!abs)
			return sbx_fail(p->err, ENOMEM, "%s", cfg_where(p));
		free((void *)*(const char **)f);
		*(const char **)f = abs;
		return 0;
	}
	case CFG_BOOL:
		if (cfg_parse_bool(value, f) < 0)
			return cfg_fail(p,
			                "'%s' is not a boolean (yes or no, true or false, on or "
			                "off, 1 or 0)",
			                value);
		return 0;
	case CFG_DURATION:
		return sbx_parse_duration(value, cfg_where(p), f, p->err);
	case CFG_SIZE:
		r = sbx_parse_size(value, cfg_where(p), f, p->err);
		if (r >= 0 && *(uint64_t *)f < k->min)
			return cfg_fail(p, "'%s' is too small (%s)", value, k->accepted);
		return r;
	case CFG_U64:
		return sbx_parse_u64(value, cfg_where(p), k->min, k->max, f, p->err);
	case CFG_ENUM:
		return set_enum(p, k, f, value);
	case CFG_CUSTOM:
		return k->set(p, k, f, value);
	}
	return r;
}

static int set_value(struct cfg_parser *p, const struct cfg_section *s, const struct cfg_key *k,
                     const char *value)
{
	int r;
	if (!*value && k->type != CFG_CUSTOM) {
		set_default(p, s, k);
		return 0;
	}
	r = set_typed(p, k, key_field(p, s, k), value);
	if (r < 0 && r != -ENOMEM) {
		/* out of range is bad content too: one errno for every config error */
		p->err->errnum = EINVAL;
		return -EINVAL;
	}
	if (r < 0)
		return r;
	unsigned *mask = set_mask(p, s);
	if (mask && *value)
		*mask |= k->set_bit;
	else if (mask)
		*mask &= ~k->set_bit;
	return 0;
}

/* An indented line of a multi-line key: join it to what came before. */
static int append_line(struct cfg_parser *p, const struct cfg_section *s, const struct cfg_key *k,
                       struct cfg_slot *slot, const char *value)
{
	size_t old = slot->text ? strlen(slot->text) : 0;
	char *n = realloc(slot->text, old + strlen(value) + 2);
	if (!n)
		return sbx_fail(p->err, ENOMEM, "%s", cfg_where(p));
	if (old)
		n[old++] = '\n';
	strcpy(n + old, value);
	slot->text = n;
	return set_value(p, s, k, n);
}

static int check_repeat(struct cfg_parser *p, const struct cfg_key *k, const struct cfg_slot *slot)
{
	if ((k->flags & CFG_LIST) || slot->origin != p->origin)
		return 0;
	if (p->origin == CFG_FILE)
		return cfg_fail(p, "duplicate key (first set on line %d)", slot->line);
	if (p->origin == CFG_SET)
		return cfg_fail(p, "given twice with --set");
	return 0;
}

static int key_outside(struct cfg_parser *p, const char *name)
{
	char hint[160];
	suggest_key(p, NULL, name, hint, sizeof(hint));
	return fail_here(p, "%s: key before any [section]%s", name, hint);
}

int cfg_assign(struct cfg_parser *p, const char *section, const char *name, const char *value)
{
	const struct cfg_section *s = find_section(p, section);
	if (!s)
		return *section ? unknown_section(p, section) : key_outside(p, name);
	const struct cfg_key *k = find_key(s, name);
	p->cur_sec = s;
	p->cur_key = k;
	if (!k) {
		char hint[160];
		suggest_key(p, s, name, hint, sizeof(hint));
		return fail_here(p, "[%s] %s: unknown key%s", s->name, name, hint);
	}
	p->seen[s - p->sections] = true;
	if (p->origin != CFG_FILE && cfg_has_ctrl(value, k->flags & CFG_MULTILINE))
		return cfg_fail(p, "the value contains a control character");
	struct cfg_slot *slot = key_slot(p, s, k);
	if (p->continuation) {
		if (k->flags & CFG_MULTILINE)
			return append_line(p, s, k, slot, value);
		if (!(k->flags & CFG_LIST))
			return cfg_fail(p,
			                "this key takes one line, but an indented line continues "
			                "it (remove the indentation)");
		return set_value(p, s, k, value);
	}
	int r = check_repeat(p, k, slot);
	if (r < 0)
		return r;
	slot->origin = p->origin;
	slot->line = p->line;
	if (k->flags & CFG_MULTILINE) {
		free(slot->text);
		slot->text = strdup(value);
		if (!slot->text)
			return sbx_fail(p->err, ENOMEM, "%s", cfg_where(p));
	}
	return set_value(p, s, k, value);
}

/* ---- feeding inih ---- */

static const char *lskip(const char *s, const char *end)
{
	while (s < end && isspace((unsigned char)*s))
		s++;
	return s;
}

static const char *rskip(const char *s, const char *end)
{
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	return end;
}

/* The first of chars or the ';' of an inline comment (one that follows a
 * blank) in [s, end), as inih's ini_find_chars_or_comment() finds it. */
static const char *find_chars_or_comment(const char *s, const char *end, const char *chars)
{
	bool was_space = false;
	for (; s < end; s++) {
		if ((chars && strchr(chars, *s)) || (was_space && *s == ';'))
			return s;
		was_space = isspace((unsigned char)*s);
	}
	return end;
}

/* Hand inih prefix + value + "\n", or prefix + a stash reference when it
 * would not fit into inih's buffer. */
static int emit(struct cfg_parser *p, char *out, size_t size, const char *prefix, const char *v,
                const char *v_end)
{
	size_t plen = strlen(prefix), vlen = (size_t)(v_end - v);
	if (plen + vlen + 2 <= size) {
		memcpy(out, prefix, plen);
		memcpy(out + plen, v, vlen);
		memcpy(out + plen + vlen, "\n", 2);
		return 0;
	}
	char **n = realloc(p->stash, (p->n_stash + 1) * sizeof(*n));
	if (!n)
		return sbx_fail(p->err, ENOMEM, "%s", p->file);
	p->stash = n;
	if (!(p->stash[p->n_stash] = strndup(v, vlen)))
		return sbx_fail(p->err, ENOMEM, "%s", p->file);
	snprintf(out, size, "%s%c%zu\n", prefix, STASH_MARK, p->n_stash++);
	return 0;
}

static int section_line(struct cfg_parser *p, const char *s, const char *e, char *out, size_t size)
{
	const char *close = find_chars_or_comment(s + 1, e, "]");
	if (close == e || *close != ']')
		return fail_here(p, "syntax error: '[' without ']'");
	const char *tail = lskip(close + 1, e);
	if (tail != e && *tail != ';' && *tail != '#')
		return fail_here(p, "syntax error: text after ']'");
	char name[NAME_MAX_LEN + 1];
	size_t n = (size_t)(close - s - 1);
	snprintf(name, sizeof(name), "%.*s", (int)(n > NAME_MAX_LEN ? NAME_MAX_LEN : n), s + 1);
	const struct cfg_section *sec = find_section(p, name);
	if (!sec || n > NAME_MAX_LEN)
		return unknown_section(p, name);
	p->sec_index = (int)(sec - p->sections);
	p->seen[p->sec_index] = true;
	p->have_key = false;
	snprintf(out, size, "[%s]\n", sec->name);
	return 0;
}

static int key_line(struct cfg_parser *p, const char *s, const char *e, char *out, size_t size)
{
	const char *sep = find_chars_or_comment(s, e, "=:");
	if (sep == e || *sep == ';')
		return fail_here(p,
		                 "syntax error: expected 'key = value', '[section]' or a comment");
	const char *name_end = rskip(s, sep);
	if (name_end == s)
		return fail_here(p, "syntax error: no key before '%c'", *sep);
	size_t n = (size_t)(name_end - s);
	if (n > NAME_MAX_LEN)
		return fail_here(p, "syntax error: key name longer than %d characters",
		                 NAME_MAX_LEN);
	const char *cend = find_chars_or_comment(sep + 1, e, NULL);
	const char *v = lskip(sep + 1, cend);
	char prefix[NAME_MAX_LEN + 2];
	snprintf(prefix, sizeof(prefix), "%.*s=", (int)n, s);
	p->have_key = true;
	return emit(p, out, size, prefix, v, rskip(v, cend));
}

static bool has_ctrl_range(const char *s, const char *e)
{
	for (; s < e; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return true;
	return false;
}

static int prepare_line(struct cfg_parser *p, const char *line, const char *eol, char *out,
                        size_t size)
{
	const char *s = lskip(line, eol), *e = rskip(s, eol);
	p->continuation = false;
	if (s == e || *s == ';' || *s == '#') {
		memcpy(out, "\n", 2); /* blank or comment: nothing for inih to do */
		return 0;
	}
	if (has_ctrl_range(s, e))
		return fail_here(p, "syntax error: control character in the line");
	if (p->have_key && s > line) {
		/* inih's rule: an indented line continues the previous key */
		p->continuation = true;
		return emit(p, out, size, " ", s, rskip(s, find_chars_or_comment(s, e, NULL)));
	}
	if (*s == '[')
		return section_line(p, s, e, out, size);
	return key_line(p, s, e, out, size);
}

static char *feed_line(char *str, int num, void *stream)
{
	struct cfg_parser *p = stream;
	if (p->ret < 0 || p->pos >= p->end || num < 16)
		return NULL;
	const char *line = p->pos;
	const char *nl = memchr(line, '\n', (size_t)(p->end - line));
	const char *eol = nl ? nl : p->end;
	p->pos = nl ? nl + 1 : p->end;
	p->line++;
	p->origin = CFG_FILE;
	p->cur_sec = NULL;
	p->cur_key = NULL;
	int r = prepare_line(p, line, eol, str, (size_t)num);
	if (r < 0) {
		p->ret = r;
		return NULL;
	}
	return str;
}

static int on_value(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_parser *p = user;
	if (p->ret < 0)
		return 1;
	if (value[0] == STASH_MARK) {
		size_t i = strtoul(value + 1, NULL, 10);
		value = i < p->n_stash ? p->stash[i] : "";
	}
	p->ret = cfg_assign(p, section, name, value);
	/* errors are ours (p->ret), never inih's */
	return 1;
}

int cfg_parse_file(struct cfg_parser *p, const char *path, size_t max)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = sbx_read_file(AT_FDCWD, path, max, &buf, &len, p->err);
	if (r < 0)
		return r;
	if (memchr(buf, '\0', len))
		return sbx_failx(p->err, EINVAL, "%s: not a text file (it holds a NUL byte)",
		                 p->file);
	const char *s = buf;
	if (len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
		s += 3;
	p->pos = s;
	p->end = buf + len;
	p->line = 0;
	p->ret = 0;
	p->sec_index = -1;
	p->have_key = false;
	int e = ini_parse_stream(feed_line, p, on_value, p);
	p->pos = p->end = NULL;
	if (p->ret < 0)
		return p->ret;
	if (e != 0) /* not expected: the reader catches what inih would refuse */
		return sbx_failx(p->err, EINVAL, "%s:%d: syntax error", p->file, e);
	return 0;
}

/* ---- --set ---- */

static int apply_set(struct cfg_parser *p, const char *set)
{
	const char *eq = strchr(set, '=');
	const char *dot = eq ? memchr(set, '.', (size_t)(eq - set)) : NULL;
	if (!dot || dot == set || dot + 1 == eq)
		return sbx_failx(p->err, EINVAL, "--set '%s': expected section.key=value", set);
	_cleanup_free_ char *section = strndup(set, (size_t)(dot - set));
	_cleanup_free_ char *key = strndup(dot + 1, (size_t)(eq - dot - 1));
	const char *v = lskip(eq + 1, eq + 1 + strlen(eq + 1));
	_cleanup_free_ char *value = strndup(v, (size_t)(rskip(v, v + strlen(v)) - v));
	if (!section || !key || !value)
		return sbx_fail(p->err, ENOMEM, "--set");
	p->origin = CFG_SET;
	p->line = 0;
	p->continuation = false;
	p->cur_sec = NULL;
	p->cur_key = NULL;
	return cfg_assign(p, section, key, value);
}

int cfg_apply_sets(struct cfg_parser *p, char *const *sets)
{
	for (; sets && *sets; sets++) {
		int r = apply_set(p, *sets);
		if (r < 0)
			return r;
	}
	return 0;
}
