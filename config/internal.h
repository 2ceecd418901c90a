/* config/ private: the table-driven INI engine shared by task.ini and the
 * user config, and the value checkers.  Not for use outside config/. */
#ifndef SBX_CONFIG_INTERNAL_H
#define SBX_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "config/config.h"

/* Where the value being handled came from. */
enum cfg_origin {
	CFG_NONE,   /* not given (a default) */
	CFG_FILE,   /* a line of the file */
	CFG_SET,    /* a --set override */
	CFG_OPTION, /* a command-line option named by cfg_parser.what */
};

enum cfg_type {
	CFG_STR,      /* char *, empty = NULL */
	CFG_BOOL,     /* bool */
	CFG_DURATION, /* uint64_t seconds */
	CFG_SIZE,     /* uint64_t bytes, >= min */
	CFG_U64,      /* uint64_t in [min, max] */
	CFG_ENUM,     /* an enum, indexed by choices */
	CFG_PATH,     /* char *, made absolute against cfg_parser.dir */
	CFG_CUSTOM,   /* cfg_key.set does it all */
};

#define CFG_LIST      (1u << 0) /* repeatable; an empty value clears the list */
#define CFG_MULTILINE (1u << 1) /* indented continuation lines join with "\n" */

struct cfg_parser;
struct cfg_key;

/* Parse value into field (the key's field in the target); return 0 or a
 * cfg_fail() code.  An empty value means "default" (or "clear" for a list). */
typedef int cfg_setter(struct cfg_parser *p, const struct cfg_key *k, void *field,
                       const char *value);

struct cfg_key {
	const char *name;
	enum cfg_type type;
	unsigned flags;
	size_t offset;              /* of the field within the section's struct */
	unsigned set_bit;           /* for a section with a set mask */
	uint64_t def;               /* default of a CFG_BOOL/DURATION/SIZE/U64/ENUM */
	uint64_t min, max;          /* CFG_SIZE (min), CFG_U64 */
	const char *const *choices; /* CFG_ENUM, NULL-terminated, indexed by value */
	const char *accepted;       /* what a wrong value is told (CFG_ENUM: built) */
	cfg_setter *set;            /* CFG_CUSTOM */
};

struct cfg_section {
	const char *name;
	const struct cfg_key *keys;
	size_t n_keys;
	size_t offset;     /* of the section's struct within the target */
	bool has_set_mask; /* the section's struct starts with `unsigned set` */
};

struct cfg_slot {
	enum cfg_origin origin;
	int line;
	char *text; /* CFG_MULTILINE: the value accumulated so far */
};

struct cfg_parser {
	/* set by the caller */
	const char *file; /* as the user gave it, for messages */
	const char *dir;  /* absolute: base of relative paths */
	const char *what; /* CFG_OPTION: the option's name for messages */
	const struct cfg_section *sections;
	size_t n_sections;
	void *target;
	struct sbx_err *err;

	/* engine state */
	struct cfg_slot *slots; /* one per key, sections in order */
	bool *seen;             /* per section: given (header or any key) */
	enum cfg_origin origin; /* of the value being handled */
	int line;
	bool continuation;
	const struct cfg_section *cur_sec; /* the key being handled, for messages */
	const struct cfg_key *cur_key;
	int ret;

	/* the line reader feeding inih */
	const char *pos, *end;
	int sec_index; /* section of the line being read, -1 before any */
	bool have_key; /* inih's "prev_name": an indented line continues it */
	char **stash;  /* values too long for inih's line buffer */
	size_t n_stash;
	char where_buf[384];
};

/* ---- engine (ini.c) ---- */

/* Allocate the engine's state. */
int cfg_parser_init(struct cfg_parser *p);
void cfg_parser_done(struct cfg_parser *p);

/* Put every typed key's default into the target (and clear set masks). */
void cfg_set_defaults(struct cfg_parser *p);

/* Read file (at most max bytes) and feed it through inih.  -ENOENT (with
 * err filled) when it does not exist. */
int cfg_parse_file(struct cfg_parser *p, const char *path, size_t max);

/* Apply "section.key=value" overrides. */
int cfg_apply_sets(struct cfg_parser *p, char *const *sets);

/* Assign one value with the current origin (what cfg_parse_file and
 * cfg_apply_sets do per value). */
int cfg_assign(struct cfg_parser *p, const char *section, const char *key, const char *value);

/* The slot of a key; NULL for an unknown name (a programming error). */
struct cfg_slot *cfg_slot(struct cfg_parser *p, const char *section, const char *key);

/* Make section.key the subject of the next cfg_fail(), at the place its
 * slot says it was set (or "FILE: [s] k" when it was not). */
void cfg_locate(struct cfg_parser *p, const char *section, const char *key);

/* The field of section.key in the target. */
void *cfg_field(struct cfg_parser *p, const char *section, const char *key);

/* "FILE:LINE: [section] key", "--set: [section] key", "FILE: [section] key"
 * or the option name, for the current subject. */
const char *cfg_where(struct cfg_parser *p);

/* Fail with "<where>: <message>"; EINVAL.  Returns the -errno. */
int cfg_fail(struct cfg_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "section.key" of every key, built once into names/list (max entries,
 * list has room for max + 1); the tables are static, so is the result. */
const char *const *cfg_key_names(const struct cfg_section *sections, size_t n_sections,
                                 char (*names)[48], const char **list, size_t max);

/* ---- values (values.c) ---- */

int cfg_parse_bool(const char *s, bool *ret);
bool cfg_valid_env_name(const char *s);
bool cfg_valid_hostname(const char *s);
bool cfg_valid_ref_name(const char *s);
bool cfg_valid_task_name(const char *s);
bool cfg_has_ctrl(const char *s, bool newline_ok);

/* Join dir and path (unless path is absolute) and normalise lexically:
 * "//" and "/./" collapse, a trailing "/" goes, ".." stays.  NULL on ENOMEM. */
char *cfg_path_join(const char *dir, const char *path);
/* path made absolute against getcwd(). */
int cfg_path_absolute(const char *path, char **ret, struct sbx_err *err);
/* The folder of an absolute, normalised path ("/" for "/x"). */
char *cfg_path_dirname(const char *path);

/* "1.5" -> 1500; up to three decimals, 0 < v <= SBX_MAX_CPUS. */
int cfg_parse_cpus(const char *s, uint32_t *ret);
/* "12.5" or "12.5%" -> 1250; 0 < v <= 100, up to two decimals. */
int cfg_parse_percent(const char *s, uint32_t *ret);
/* [IP:]HOSTPORT:PORT[/tcp|/udp] */
int cfg_parse_publish(const char *s, struct sbx_publish *ret);
/* HOST:PORT, *.SUFFIX:PORT, IP:PORT, [IPv6]:PORT; ret->host malloc'ed. */
int cfg_parse_allow(const char *s, struct sbx_allow *ret);
/* "Name <email>": name and email malloc'ed. */
int cfg_parse_author(const char *s, char **ret_name, char **ret_email);

/* Damerau-Levenshtein (optimal string alignment) distance, ignoring case. */
size_t cfg_distance(const char *a, const char *b);
/* Is the distance small enough to suggest b for the mistyped a? */
bool cfg_close_enough(const char *a, const char *b);

/* Split s at blanks into words, pushed onto *v (a NULL-terminated list). */
int cfg_split_words(const char *s, char ***v);

/* ---- shared key tables ---- */

#define CFG_LIMITS_N_KEYS 6
extern const struct cfg_key cfg_limits_keys[CFG_LIMITS_N_KEYS];

#endif
