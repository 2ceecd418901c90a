#include "orchestrator/cmd_image.h"
#include "config/config.h"
#include "common/cleanup.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "rootfs/image.h"

#define USAGE                                                                                      \
	"usage: trimo-sbx image import SOURCE [--name NAME] [--json] [--base-dir DIR]\n"           \
	"       trimo-sbx image ls [--json]\n"                                                     \
	"       trimo-sbx image rm NAME|DIGEST...\n"                                               \
	"       trimo-sbx image prune\n"                                                           \
	"Every verb takes --store DIR (default: the user config's [storage] image_dir).\n"

int image_default_store_dir(char *buf, size_t size, struct sbx_err *err)
{
	struct sbx_config_env cenv;
	config_env_from_process(&cenv);
	_cleanup_user_config_ const struct sbx_user_config *ucfg = NULL;
	int r = config_load_user(&cenv, &ucfg, err);
	if (r < 0)
		return r;
	if ((size_t)snprintf(buf, size, "%s", ucfg->storage.image_dir) >= size)
		return sbx_failx(err, ENAMETOOLONG, "image store path is too long");
	return 0;
}

static int report(const struct sbx_err *err, const char *fmt, const char *arg)
{
	fprintf(stderr, "trimo-sbx: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, ": %s\n", err->msg);
	return image_err_is_input(err) ? 2 : 125;
}

static int usage_error(const char *msg)
{
	if (msg)
		fprintf(stderr, "trimo-sbx: image: %s\n", msg);
	fputs(USAGE, stderr);
	return 2;
}

static void human_size(uint64_t b, char *buf, size_t size)
{
	if (b < 1000)
		snprintf(buf, size, "%u B", (unsigned)b);
	else if (b < 1000 * 1000)
		snprintf(buf, size, "%.1f kB", (double)b / 1e3);
	else if (b < 1000ULL * 1000 * 1000)
		snprintf(buf, size, "%.1f MB", (double)b / 1e6);
	else
		snprintf(buf, size, "%.2f GB", (double)b / 1e9);
}

struct progress {
	bool shown;
};

/* On a TTY, after the first second: "importing: layer 2/3  123.4 MB  98.1 MB/s" */
static void progress_cb(void *userdata, unsigned layer, unsigned layers, uint64_t bytes,
                        double seconds)
{
	struct progress *p = userdata;
	if (seconds < 1.0)
		return;
	char where[32] = "archive";
	if (layers)
		snprintf(where, sizeof(where), "layer %u/%u", layer, layers);
	fprintf(stderr, "\r\033[Kimporting: %s  %.1f MB  %.1f MB/s", where, (double)bytes / 1e6,
	        (double)bytes / 1e6 / seconds);
	fflush(stderr);
	p->shown = true;
}

static double now_seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void print_warnings(const struct sbx_image *img)
{
	if (img->skipped_devices)
		fprintf(stderr, "trimo-sbx: warning: skipped %u device nodes (not root)\n",
		        img->skipped_devices);
	if (img->warnings)
		fprintf(stderr,
		        "trimo-sbx: warning: %u entries kept only part of their metadata (%s)\n",
		        img->warnings, img->first_warning);
}

/* --json: one object on stdout, warnings in it, nothing on stderr but the
 * progress line (what image_unpack_helper reads). */
static void print_json(const struct sbx_image *img, double seconds)
{
	json_t *o = json_pack("{s:s, s:s, s:b, s:I, s:I, s:i, s:f, s:i, s:i, s:i, s:s}", "digest",
	                      img->digest, "path", img->path, "imported", img->imported, "bytes",
	                      (json_int_t)img->bytes, "size", (json_int_t)img->size, "layers",
	                      (int)img->layers, "seconds", seconds, "skipped_devices",
	                      (int)img->skipped_devices, "skipped_xattrs", (int)img->skipped_xattrs,
	                      "warnings", (int)img->warnings, "first_warning", img->first_warning);
	if (o) {
		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(o);
	}
}

static int report_json(const struct sbx_err *err)
{
	json_t *o = json_pack("{s:s, s:i}", "error", err->msg, "errno", err->errnum);
	if (o) {
		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(o);
	}
	return image_err_is_input(err) ? 2 : 125;
}

struct import_args {
	const char *source, *base_dir;
	bool json;
	struct image_import_opts o;
};

static int parse_import(int argc, char **argv, struct import_args *a)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"json", no_argument, NULL, 'j'},
	    {"base-dir", required_argument, NULL, 'b'},
	    {"max-bytes", required_argument, NULL, 'm'},
	    {NULL, 0, NULL, 0},
	};
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "n:j", opts, NULL)) != -1) {
		struct sbx_err err = {0};
		if (c == 'n')
			a->o.name = optarg;
		else if (c == 'j')
			a->json = true;
		else if (c == 'b')
			a->base_dir = optarg;
		else if (c != 'm' ||
		         sbx_parse_size(optarg, "--max-bytes", &a->o.max_bytes, &err) < 0)
			return usage_error(err.msg[0] ? err.msg : NULL);
	}
	if (optind != argc - 1)
		return usage_error("import takes one SOURCE");
	a->source = argv[optind];
	return 0;
}

static int cmd_import(const char *store, int argc, char **argv)
{
	struct import_args a = {.o = {.unpack = image_unpack_here}};
	int r = parse_import(argc, argv, &a);
	if (r)
		return r;
	struct sbx_err err = {0};
	if (!strncmp(a.source, "dir:", 4)) {
		sbx_failx(&err, EINVAL,
		          "dir: sources are used in place; there is nothing to import");
		return a.json ? report_json(&err) : report(&err, "image import '%s'", a.source);
	}
	struct progress p = {false};
	if (isatty(STDERR_FILENO)) {
		a.o.progress = progress_cb;
		a.o.progress_data = &p;
	}
	struct sbx_image img;
	double t0 = now_seconds();
	r = image_import(store, a.source, a.base_dir, &a.o, &img, &err);
	if (p.shown)
		fputs("\r\033[K", stderr);
	if (r < 0)
		return a.json ? report_json(&err) : report(&err, "image import '%s'", a.source);
	if (a.json) {
		print_json(&img, now_seconds() - t0);
	} else {
		print_warnings(&img);
		printf("%s\n", img.digest);
	}
	return 0;
}

static json_t *info_json(const struct image_info *v)
{
	char created[32] = "";
	struct tm tm;
	if (v->created && gmtime_r(&v->created, &tm))
		strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *names = json_array(), *pids = json_array();
	for (char **n = v->names; n && *n; n++)
		json_array_append_new(names, json_string(*n));
	for (size_t i = 0; i < v->n_holders; i++)
		json_array_append_new(pids, json_integer(v->holders[i]));
	return json_pack("{s:o, s:s, s:I, s:s, s:I, s:s?, s:i, s:o}", "names", names, "digest",
	                 v->digest, "size", (json_int_t)v->size, "created", created, "created_unix",
	                 (json_int_t)v->created, "source", v->source, "layers", (int)v->layers,
	                 "in_use_by", pids);
}

static void print_row(const struct image_info *v, const char *name)
{
	char size[32], created[32] = "-", users[64] = "-";
	human_size(v->size, size, sizeof(size));
	struct tm tm;
	if (v->created && localtime_r(&v->created, &tm))
		strftime(created, sizeof(created), "%Y-%m-%d %H:%M", &tm);
	size_t len = 0;
	for (size_t i = 0; i < v->n_holders && len + 12 < sizeof(users); i++)
		len += (size_t)snprintf(users + len, sizeof(users) - len, "%spid %d", i ? ", " : "",
		                        v->holders[i]);
	printf("%-24s %-19.19s %10s  %-16s  %s\n", name, v->digest, size, created, users);
}

static int cmd_ls(const char *store, int argc, char **argv)
{
	bool json = argc == 2 && !strcmp(argv[1], "--json");
	if (argc > 2 || (argc == 2 && !json))
		return usage_error(NULL);
	struct image_info *v;
	size_t n;
	struct sbx_err err = {0};
	if (image_list(store, &v, &n, &err) < 0)
		return report(&err, "image ls%s", "");
	if (json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, info_json(&v[i]));
		json_dumpf(a, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(a);
	} else {
		printf("%-24s %-19s %10s  %-16s  %s\n", "NAME", "DIGEST", "SIZE", "CREATED",
		       "IN USE BY");
		for (size_t i = 0; i < n; i++) {
			if (!v[i].names || !v[i].names[0])
				print_row(&v[i], "<none>");
			for (char **nm = v[i].names; nm && *nm; nm++)
				print_row(&v[i], *nm);
		}
	}
	image_list_free(v, n);
	return 0;
}

static int cmd_rm(const char *store, int argc, char **argv)
{
	if (argc < 2)
		return usage_error("rm takes NAME or DIGEST");
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		bool removed;
		struct sbx_err err = {0};
		if (image_remove(store, argv[i], &removed, &err) < 0) {
			int c = report(&err, "image rm '%s'", argv[i]);
			rc = rc ? rc : c;
			continue;
		}
		printf("%s %s\n", removed ? "removed" : "untagged", argv[i]);
	}
	return rc;
}

static int cmd_prune(const char *store, int argc, char **argv)
{
	if (argc != 1)
		return usage_error(NULL);
	struct image_prune_stats st;
	struct sbx_err err = {0};
	if (image_prune(store, &st, &err) < 0)
		return report(&err, "image prune%s", "");
	char size[32];
	human_size(st.bytes, size, sizeof(size));
	printf("removed %u images (%s) and %u leftovers of interrupted imports\n", st.images, size,
	       st.leftovers);
	return 0;
}

/* Take "--store DIR" out of argv (any position after the verb). */
static const char *take_store(int *argc, char **argv)
{
	const char *store = NULL;
	int j = 0;
	for (int i = 0; i < *argc; i++) {
		if (!strcmp(argv[i], "--") && i > 0) {
			while (i < *argc)
				argv[j++] = argv[i++];
			break;
		}
		if (!strcmp(argv[i], "--store") && i + 1 < *argc)
			store = argv[++i];
		else if (!strncmp(argv[i], "--store=", 8))
			store = argv[i] + 8;
		else
			argv[j++] = argv[i];
	}
	argv[j] = NULL;
	*argc = j;
	return store;
}

int cmd_image(int argc, char **argv)
{
	const char *given = take_store(&argc, argv);
	if (argc < 2)
		return usage_error(NULL);
	char store[4096];
	struct sbx_err err = {0};
	if (given)
		snprintf(store, sizeof(store), "%s", given);
	else if (image_default_store_dir(store, sizeof(store), &err) < 0) {
		fprintf(stderr, "trimo-sbx: image: %s\n", err.msg);
		return 2;
	}
	const char *verb = argv[1];
	if (!strcmp(verb, "import"))
		return cmd_import(store, argc - 1, argv + 1);
	if (!strcmp(verb, "ls") || !strcmp(verb, "list"))
		return cmd_ls(store, argc - 1, argv + 1);
	if (!strcmp(verb, "rm"))
		return cmd_rm(store, argc - 1, argv + 1);
	if (!strcmp(verb, "prune"))
		return cmd_prune(store, argc - 1, argv + 1);
	if (!strcmp(verb, "--help") || !strcmp(verb, "-h")) {
		fputs(USAGE, stdout);
		return 0;
	}
	fprintf(stderr, "trimo-sbx: image: unknown command '%s'\n", verb);
	return usage_error(NULL);
}
