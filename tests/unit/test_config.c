/* config/: task.ini, --set, the user config, limits, help. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "config/config.h"

static char tmpdir[PATH_MAX];
static char origdir[PATH_MAX];
static struct sbx_err err;

/* Every test runs in a fresh temporary folder, so that messages name
 * "task.ini" exactly as a user who typed `launch task.ini` would see. */
static int setup(void **state)
{
	if (!getcwd(origdir, sizeof(origdir)))
		return -1;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
	if (!mkdtemp(tmpdir) || chdir(tmpdir) < 0)
		return -1;
	sbx_err_clear(&err);
	return 0;
}

static int teardown(void **state)
{
	struct sbx_err e;
	if (chdir(origdir) < 0)
		return -1;
	return sbx_rm_rf_at(AT_FDCWD, tmpdir, &e);
}

static void write_file(const char *name, const char *text)
{
	FILE *f = fopen(name, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

static const struct sbx_task_config *parse_ok(const char *text, char **sets)
{
	const struct sbx_task_config *cfg = NULL;
	write_file("task.ini", text);
	if (config_parse_task("task.ini", sets, &cfg, &err) < 0)
		fail_msg("unexpected error: %s", err.msg);
	assert_non_null(cfg);
	return cfg;
}

static void parse_fails_with(const char *text, char **sets, int errnum, const char *msg)
{
	const struct sbx_task_config *cfg = NULL;
	write_file("task.ini", text);
	int r = config_parse_task("task.ini", sets, &cfg, &err);
	assert_string_equal(err.msg, msg);
	assert_int_equal(r, -errnum);
	assert_int_equal(err.errnum, errnum);
	assert_null(cfg);
}

/* Bad content is EINVAL, whatever the check. */
static void parse_fails(const char *text, char **sets, const char *msg)
{
	parse_fails_with(text, sets, EINVAL, msg);
}

static char *at_tmp(const char *rel)
{
	static char buf[PATH_MAX + 64];
	snprintf(buf, sizeof(buf), "%s%s%s", tmpdir, *rel ? "/" : "", rel);
	return buf;
}

/* 4 lines: the two required keys. */
#define MIN "[task]\ncommand = true\n[image]\nsource = img.tar\n"

/* ---- the basics ---- */

static void test_minimal_defaults(void **state)
{
	const struct sbx_task_config *cfg = parse_ok(MIN, NULL);
	assert_string_equal(cfg->file, "task.ini");
	assert_string_equal(cfg->path, at_tmp("task.ini"));
	assert_string_equal(cfg->dir, tmpdir);
	assert_string_equal(cfg->task.name, "task");
	assert_true(cfg->task.name_derived);
	assert_string_equal(cfg->task.command, "true");
	assert_null(cfg->task.prompt);
	assert_null(cfg->task.prompt_file);
	assert_non_null(cfg->task.env);
	assert_null(cfg->task.env[0]);
	assert_non_null(cfg->task.pass_env);
	assert_null(cfg->task.pass_env[0]);
	assert_int_equal(cfg->task.timeout, 0);
	assert_string_equal(cfg->task.workdir, "/workspace");
	assert_null(cfg->task.hostname);
	assert_int_equal(cfg->image.kind, SBX_IMAGE_TAR);
	assert_string_equal(cfg->image.path, at_tmp("img.tar"));
	assert_false(cfg->repo.enabled);
	assert_string_equal(cfg->repo.path, tmpdir);
	assert_null(cfg->repo.base);
	assert_string_equal(cfg->repo.branch, "trimo/task");
	assert_int_equal(cfg->repo.push, SBX_PUSH_MANUAL);
	assert_int_equal(cfg->repo.auto_commit, SBX_AUTO_COMMIT_OFF);
	assert_string_equal(cfg->repo.protected_branches[0], "main");
	assert_string_equal(cfg->repo.protected_branches[1], "master");
	assert_string_equal(cfg->repo.protected_branches[2], "release/*");
	assert_null(cfg->repo.protected_branches[3]);
	assert_string_equal(cfg->repo.remote, "origin");
	assert_false(cfg->repo.push_tags);
	assert_null(cfg->repo.author);
	assert_int_equal(cfg->limits.set, 0);
	assert_true(cfg->limits.enabled);
	assert_int_equal(cfg->network.mode, SBX_NET_NONE);
	assert_int_equal(cfg->network.n_publish, 0);
	assert_int_equal(cfg->network.n_allow, 0);
	assert_false(cfg->network.allow_host_loopback);
	config_free_task(cfg);
}

static void test_every_key(void **state)
{
	write_file("p.md", "unused");
	const struct sbx_task_config *cfg = parse_ok("; a full task\n"
	                                             "[task]\n"
	                                             "name = jwt-auth                 ; [a-z0-9-]\n"
	                                             "command = agent --prompt \"$TRIMO_PROMPT\"\n"
	                                             "prompt = Add JWT authentication middleware\n"
	                                             "env = LANG=C.UTF-8\n"
	                                             "env = EMPTY=\n"
	                                             "env = WITH_EQ=a=b c\n"
	                                             "pass_env = ANTHROPIC_API_KEY OPENAI_API_KEY\n"
	                                             "pass_env = HOME\n"
	                                             "timeout = 2h\n"
	                                             "workdir = /workspace/sub//dir/\n"
	                                             "hostname = agent-1.local\n"
	                                             "[image]\n"
	                                             "source = images/agent.tar.zst\n"
	                                             "[repo]\n"
	                                             "path = .\n"
	                                             "base = main\n"
	                                             "branch = agents/{name}-try\n"
	                                             "push = on-exit\n"
	                                             "auto_commit = 5m\n"
	                                             "protected = main release/* hotfix-*\n"
	                                             "remote = upstream\n"
	                                             "push_tags = yes\n"
	                                             "author = Trimo Agent <agent@example.com>\n"
	                                             "[limits]\n"
	                                             "enabled = yes\n"
	                                             "memory = 2G\n"
	                                             "memory_swap = 512M\n"
	                                             "cpus = 1.5\n"
	                                             "pids = 1024\n"
	                                             "oom_kill = group\n"
	                                             "[network]\n"
	                                             "mode = nat\n"
	                                             "publish = 8080:3000 127.0.0.2:9000:9000/udp\n"
	                                             "publish = [::1]:8443:443/tcp\n"
	                                             "allow_host_loopback = on\n",
	                                             NULL);
	const struct sbx_cfg_task *t = &cfg->task;
	assert_string_equal(t->name, "jwt-auth");
	assert_false(t->name_derived);
	assert_string_equal(t->command, "agent --prompt \"$TRIMO_PROMPT\"");
	assert_string_equal(t->prompt, "Add JWT authentication middleware");
	assert_string_equal(t->env[0], "LANG=C.UTF-8");
	assert_string_equal(t->env[1], "EMPTY=");
	assert_string_equal(t->env[2], "WITH_EQ=a=b c");
	assert_null(t->env[3]);
	assert_string_equal(t->pass_env[0], "ANTHROPIC_API_KEY");
	assert_string_equal(t->pass_env[1], "OPENAI_API_KEY");
	assert_string_equal(t->pass_env[2], "HOME");
	assert_null(t->pass_env[3]);
	assert_int_equal(t->timeout, 7200);
	assert_string_equal(t->workdir, "/workspace/sub/dir");
	assert_string_equal(t->hostname, "agent-1.local");
	assert_string_equal(cfg->image.path, at_tmp("images/agent.tar.zst"));

	const struct sbx_cfg_repo *repo = &cfg->repo;
	assert_true(repo->enabled);
	assert_string_equal(repo->path, tmpdir);
	assert_string_equal(repo->base, "main");
	assert_string_equal(repo->branch, "agents/jwt-auth-try");
	assert_int_equal(repo->push, SBX_PUSH_ON_EXIT);
	assert_int_equal(repo->auto_commit, SBX_AUTO_COMMIT_INTERVAL);
	assert_int_equal(repo->auto_commit_interval, 300);
	assert_string_equal(repo->protected_branches[2], "hotfix-*");
	assert_null(repo->protected_branches[3]);
	assert_string_equal(repo->remote, "upstream");
	assert_true(repo->push_tags);
	assert_string_equal(repo->author, "Trimo Agent <agent@example.com>");
	assert_string_equal(repo->author_name, "Trimo Agent");
	assert_string_equal(repo->author_email, "agent@example.com");

	const struct sbx_limits *l = &cfg->limits;
	assert_int_equal(l->set, SBX_LIMIT_ENABLED | SBX_LIMIT_MEMORY | SBX_LIMIT_MEMORY_SWAP |
	                             SBX_LIMIT_CPUS | SBX_LIMIT_PIDS | SBX_LIMIT_OOM_KILL);
	assert_true(l->enabled);
	assert_int_equal(l->memory, 2ULL << 30);
	assert_int_equal(l->memory_swap, 512ULL << 20);
	assert_int_equal(l->millicpus, 1500);
	assert_int_equal(l->pids, 1024);
	assert_int_equal(l->oom_kill, SBX_OOM_KILL_GROUP);

	const struct sbx_cfg_network *n = &cfg->network;
	assert_int_equal(n->mode, SBX_NET_NAT);
	assert_int_equal(n->n_publish, 3);
	assert_int_equal(n->publish[0].family, AF_INET);
	assert_string_equal(n->publish[0].addr, "127.0.0.1");
	assert_int_equal(n->publish[0].host_port, 8080);
	assert_int_equal(n->publish[0].port, 3000);
	assert_false(n->publish[0].udp);
	assert_string_equal(n->publish[1].addr, "127.0.0.2");
	assert_true(n->publish[1].udp);
	assert_int_equal(n->publish[2].family, AF_INET6);
	assert_string_equal(n->publish[2].addr, "::1");
	assert_int_equal(n->publish[2].host_port, 8443);
	assert_int_equal(n->publish[2].port, 443);
	assert_int_equal(n->n_allow, 0);
	assert_true(n->allow_host_loopback);
	config_free_task(cfg);
	/* allow goes with mode none (nat would be a route around the proxy) */
	cfg = parse_ok(MIN "[network]\n"
	                   "allow = api.anthropic.com:443 *.NPMJS.org:443 10.0.0.1:80 "
	                   "[2001:db8::0001]:443\n",
	               NULL);
	n = &cfg->network;
	assert_int_equal(n->n_allow, 4);
	assert_int_equal(n->allow[0].kind, SBX_ALLOW_NAME);
	assert_string_equal(n->allow[0].host, "api.anthropic.com");
	assert_int_equal(n->allow[0].port, 443);
	assert_int_equal(n->allow[1].kind, SBX_ALLOW_SUFFIX);
	assert_string_equal(n->allow[1].host, "*.npmjs.org");
	assert_int_equal(n->allow[2].kind, SBX_ALLOW_IP);
	assert_string_equal(n->allow[2].host, "10.0.0.1");
	assert_int_equal(n->allow[2].port, 80);
	assert_int_equal(n->allow[3].kind, SBX_ALLOW_IP);
	assert_string_equal(n->allow[3].host, "2001:db8::1");
	config_free_task(cfg);
}

static void test_booleans(void **state)
{
	static const char *const yes[] = {"yes", "true", "on", "1", "YES", "True"};
	static const char *const no[] = {"no", "false", "off", "0", "No", "OFF"};
	char text[256];
	for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
		snprintf(text, sizeof(text), MIN "[repo]\npush_tags = %s\n", yes[i]);
		const struct sbx_task_config *cfg = parse_ok(text, NULL);
		assert_true(cfg->repo.push_tags);
		config_free_task(cfg);
		snprintf(text, sizeof(text), MIN "[limits]\nenabled = %s\n", no[i]);
		cfg = parse_ok(text, NULL);
		assert_false(cfg->limits.enabled);
		assert_int_equal(cfg->limits.set, SBX_LIMIT_ENABLED);
		config_free_task(cfg);
	}
	parse_fails(MIN "[repo]\npush_tags = maybe\n", NULL,
	            "task.ini:6: [repo] push_tags: 'maybe' is not a boolean (yes or no, true or "
	            "false, on or off, 1 or 0)");
}

/* ---- names ---- */

static void test_name_derived(void **state)
{
	const struct sbx_task_config *cfg = NULL;
	write_file("JWT_auth  Task.ini", MIN);
	assert_int_equal(config_parse_task("JWT_auth  Task.ini", NULL, &cfg, &err), 0);
	assert_string_equal(cfg->task.name, "jwt-auth-task");
	assert_true(cfg->task.name_derived);
	assert_string_equal(cfg->repo.branch, "trimo/jwt-auth-task");
	config_free_task(cfg);

	write_file("-a-very-long-file-name-that-goes-on-and-on-and-on-.conf", MIN);
	assert_int_equal(
	    config_parse_task("-a-very-long-file-name-that-goes-on-and-on-and-on-.conf", NULL, &cfg,
	                      &err),
	    0);
	assert_string_equal(cfg->task.name, "a-very-long-file-name-that-goes-on-and-o");
	config_free_task(cfg);

	write_file("___.ini", MIN);
	assert_int_equal(config_parse_task("___.ini", NULL, &cfg, &err), -EINVAL);
	assert_string_equal(err.msg, "___.ini: [task] name: required key missing (the file name "
	                             "gives no usable name)");
}

static void test_name_invalid(void **state)
{
	static const char *const bad[] = {"Jwt", "-jwt", "jwt_auth", "jwt auth",
	                                  "a1234567890123456789012345678901234567890"};
	char text[256], msg[256];
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		snprintf(text, sizeof(text), MIN "[task]\nname = %s\n", bad[i]);
		snprintf(msg, sizeof(msg),
		         "task.ini:6: [task] name: '%s' is not a valid name (1 to 40 of a-z, 0-9 "
		         "and '-', starting with a letter or digit)",
		         bad[i]);
		parse_fails(text, NULL, msg);
	}
	const struct sbx_task_config *cfg = parse_ok(MIN "[task]\nname = 9lives-\n", NULL);
	assert_string_equal(cfg->task.name, "9lives-");
	config_free_task(cfg);
}

/* ---- syntax and structure ---- */

static void test_unknown_key(void **state)
{
	parse_fails(MIN "[limits]\nmemroy = 2G\n", NULL,
	            "task.ini:6: [limits] memroy: unknown key (did you mean memory?)");
	parse_fails(MIN "[task]\ncomand = x\n", NULL,
	            "task.ini:6: [task] comand: unknown key (did you mean command?)");
	parse_fails(MIN "[task]\nPrompt_File = x\n", NULL,
	            "task.ini:6: [task] Prompt_File: unknown key (did you mean prompt_file?)");
	parse_fails(MIN "[task]\nprompt-file = x\n", NULL,
	            "task.ini:6: [task] prompt-file: unknown key (did you mean prompt_file?)");
	parse_fails(MIN "[task]\nmemory = 2G\n", NULL,
	            "task.ini:6: [task] memory: unknown key (did you mean [limits] memory?)");
	parse_fails(MIN "[network]\npublsh = 80:80\n", NULL,
	            "task.ini:6: [network] publsh: unknown key (did you mean publish?)");
	parse_fails(MIN "[task]\nfrobnicate = 1\n", NULL,
	            "task.ini:6: [task] frobnicate: unknown key");
}

static void test_unknown_section(void **state)
{
	parse_fails(MIN "[limts]\n", NULL,
	            "task.ini:5: [limts]: unknown section (did you mean [limits]?)");
	parse_fails("[Task]\ncommand = true\n", NULL,
	            "task.ini:1: [Task]: unknown section (did you mean [task]?)");
	parse_fails(MIN "\n[docker]\nx = 1\n", NULL,
	            "task.ini:6: [docker]: unknown section (expected [task], [image], [repo], "
	            "[limits] or [network])");
	parse_fails("command = true\n", NULL,
	            "task.ini:1: command: key before any [section] (did you mean [task] command?)");
}

static void test_syntax_errors(void **state)
{
	parse_fails(MIN "[task]\njust words\n", NULL,
	            "task.ini:6: syntax error: expected 'key = value', '[section]' or a comment");
	parse_fails(MIN "[task\n", NULL, "task.ini:5: syntax error: '[' without ']'");
	parse_fails(MIN "[task] name = x\n", NULL, "task.ini:5: syntax error: text after ']'");
	parse_fails(MIN "[task]\n = x\n", NULL, "task.ini:6: syntax error: no key before '='");
	parse_fails(MIN "[task]\nname = a\x02z\n", NULL,
	            "task.ini:6: syntax error: control character in the line");
	/* comments after a section header are fine */
	const struct sbx_task_config *cfg =
	    parse_ok(MIN "[task] ; more\n# x\n  ; indented\n", NULL);
	config_free_task(cfg);
}

static void test_duplicates(void **state)
{
	parse_fails("[task]\nname = a\ncommand = true\nname = b\n", NULL,
	            "task.ini:4: [task] name: duplicate key (first set on line 2)");
	parse_fails(MIN "[task]\ncommand = false\n", NULL,
	            "task.ini:6: [task] command: duplicate key (first set on line 2)");
	parse_fails(MIN "[limits]\nmemory = 1G\n[limits]\nmemory = 2G\n", NULL,
	            "task.ini:8: [limits] memory: duplicate key (first set on line 6)");
	/* an empty value still counts as given */
	parse_fails(MIN "[task]\ntimeout =\ntimeout = 5m\n", NULL,
	            "task.ini:7: [task] timeout: duplicate key (first set on line 6)");
}

static void test_required(void **state)
{
	parse_fails("[image]\nsource = x.tar\n", NULL,
	            "task.ini: [task] command: required key missing");
	parse_fails("[task]\ncommand = true\n", NULL,
	            "task.ini: [image] source: required key missing");
	parse_fails(
	    "[task]\ncommand =\n[image]\nsource = x.tar\n", NULL,
	    "task.ini:2: [task] command: empty value (a command for /bin/sh -c is required)");
	parse_fails("[task]\ncommand = x ; just a comment?\n[image]\nsource = ;x\n", NULL,
	            "task.ini:4: [image] source: empty value (an image is required)");
}

static void test_comments_and_whitespace(void **state)
{
	const struct sbx_task_config *cfg =
	    parse_ok("\xef\xbb\xbf; BOM, CRLF, comments\r\n"
	             "[task]\r\n"
	             "  name   =   spaced   ; a comment\r\n"
	             "command = make; make test # not a comment ;but this is\r\n"
	             "hostname: colon-form\r\n"
	             "\r\n"
	             "[image]\r\n"
	             "source = img.tar\r\n",
	             NULL);
	assert_string_equal(cfg->task.name, "spaced");
	assert_string_equal(cfg->task.command, "make; make test # not a comment");
	assert_string_equal(cfg->task.hostname, "colon-form");
	config_free_task(cfg);
}

static void test_multiline(void **state)
{
	const struct sbx_task_config *cfg = parse_ok("[task]\n"
	                                             "command = set -e\n"
	                                             "  make\n"
	                                             "\n"
	                                             "  make test ; comment\n"
	                                             "prompt =\n"
	                                             "    Add JWT auth.\n"
	                                             "    Use the middleware.\n"
	                                             "env = A=1\n"
	                                             "  B=2\n"
	                                             "[image]\n"
	                                             "source = img.tar\n",
	                                             NULL);
	assert_string_equal(cfg->task.command, "set -e\nmake\nmake test");
	assert_string_equal(cfg->task.prompt, "Add JWT auth.\nUse the middleware.");
	assert_string_equal(cfg->task.env[0], "A=1");
	assert_string_equal(cfg->task.env[1], "B=2");
	config_free_task(cfg);

	parse_fails(MIN "[task]\nname = a\n  b\n", NULL,
	            "task.ini:7: [task] name: this key takes one line, but an indented line "
	            "continues it (remove the indentation)");
	/* an error on a continuation line names that line */
	parse_fails(
	    MIN "[network]\nmode = nat\npublish = 80:80\n  99999:1\n", NULL,
	    "task.ini:8: [network] publish: '99999:1' is not accepted "
	    "([IP:]HOSTPORT:PORT[/tcp|/udp], ports 1 to 65535, an IPv6 address in brackets)");
	/* an indented line after a section header is a key, as in inih */
	cfg = parse_ok(MIN "[task]\n  name = indented\n", NULL);
	assert_string_equal(cfg->task.name, "indented");
	config_free_task(cfg);
}

static void test_long_lines(void **state)
{
	size_t n = 5000;
	char *text = malloc(3 * n + 512), *prompt = malloc(n + 1), *cont = malloc(n + 1);
	assert_non_null(text);
	memset(prompt, 'p', n);
	prompt[n] = '\0';
	memset(cont, 'c', n);
	cont[n] = '\0';
	snprintf(text, 3 * n + 512,
	         MIN "[task]\nprompt = %s ; comment\nenv = LONG=%s\n  LONG2=%s\nname = after\n",
	         prompt, prompt, cont);
	const struct sbx_task_config *cfg = parse_ok(text, NULL);
	assert_string_equal(cfg->task.prompt, prompt);
	assert_int_equal(strlen(cfg->task.env[0]), n + 5);
	assert_int_equal(strlen(cfg->task.env[1]), n + 6);
	assert_string_equal(cfg->task.name, "after");
	config_free_task(cfg);

	/* line numbers stay right after long lines */
	snprintf(text, 3 * n + 512, MIN "[task]\nprompt = %s\nnmae = x\n", prompt);
	parse_fails(text, NULL, "task.ini:7: [task] nmae: unknown key (did you mean name?)");
	free(text);
	free(prompt);
	free(cont);
}

/* ---- values ---- */

struct bad_value {
	const char *section, *line, *msg;
};

static void test_bad_values(void **state)
{
	static const struct bad_value cases[] = {
	    {"task", "timeout = 2 hours",
	     "[task] timeout: '2 hours' is not a duration (use e.g. 90s, 5m, 2h)"},
	    {"task", "env = LANG",
	     "[task] env: 'LANG' is not accepted (NAME=VALUE; NAME of "
	     "letters, digits and '_', not starting with a digit)"},
	    {"task", "env = 1X=y",
	     "[task] env: '1X=y' is not accepted (NAME=VALUE; NAME of "
	     "letters, digits and '_', not starting with a digit)"},
	    {"task", "env = TRIMO_PROMPT=x",
	     "[task] env: 'TRIMO_PROMPT=x': names starting with TRIMO_ are reserved for "
	     "trimo-sbx"},
	    {"task", "pass_env = HOME A-B",
	     "[task] pass_env: 'A-B' is not a variable name "
	     "(letters, digits and '_', not starting with a digit)"},
	    {"task", "workdir = work",
	     "[task] workdir: 'work' is not accepted (an absolute "
	     "path inside the sandbox, without '..')"},
	    {"task", "workdir = /a/../b",
	     "[task] workdir: '/a/../b' is not accepted (an "
	     "absolute path inside the sandbox, without '..')"},
	    {"task", "hostname = -bad",
	     "[task] hostname: '-bad' is not a valid host name "
	     "(dot-separated labels of letters, digits and '-', at "
	     "most 64 characters)"},
	    {"repo", "base = a..b", "[repo] base: 'a..b' is not a valid git branch name"},
	    {"repo", "branch = trimo/{task}",
	     "[repo] branch: 'trimo/{task}': only {name} is "
	     "expanded"},
	    {"repo", "push = always",
	     "[repo] push: 'always' is not accepted (manual, on-exit or auto)"},
	    {"repo", "auto_commit = 5s",
	     "[repo] auto_commit: '5s' is not accepted (off, exit, "
	     "or an interval of at least 10s, e.g. 5m)"},
	    {"repo", "auto_commit = sometimes",
	     "[repo] auto_commit: 'sometimes' is not accepted (off, exit, or an interval of at "
	     "least 10s, e.g. 5m)"},
	    {"repo", "remote = -x", "[repo] remote: '-x' is not a valid git remote name"},
	    {"repo", "author = Nobody", "[repo] author: 'Nobody' is not accepted (Name <email>)"},
	    {"repo", "author = <a@b>", "[repo] author: '<a@b>' is not accepted (Name <email>)"},
	    {"limits", "memory = 2X",
	     "[limits] memory: '2X' is not a size (use a number with K, M or G)"},
	    {"limits", "memory = 512K", "[limits] memory: '512K' is too small (at least 1M)"},
	    {"limits", "memory_swap = lots",
	     "[limits] memory_swap: 'lots' is not a size (use a number with K, M or G)"},
	    {"limits", "cpus = 0",
	     "[limits] cpus: '0' is not accepted (a number of CPUs above 0 "
	     "and at most 1024, up to 3 decimals, e.g. 1.5)"},
	    {"limits", "cpus = 1.2345",
	     "[limits] cpus: '1.2345' is not accepted (a number of "
	     "CPUs above 0 and at most 1024, up to 3 decimals, e.g. "
	     "1.5)"},
	    {"limits", "cpus = 1025",
	     "[limits] cpus: '1025' is not accepted (a number of CPUs "
	     "above 0 and at most 1024, up to 3 decimals, e.g. 1.5)"},
	    {"limits", "pids = 0", "[limits] pids: 0 is out of range (1 to 4194304)"},
	    {"limits", "pids = many", "[limits] pids: 'many' is not a number"},
	    {"limits", "oom_kill = all",
	     "[limits] oom_kill: 'all' is not accepted (process or group)"},
	    {"network", "mode = bridge",
	     "[network] mode: 'bridge' is not accepted (none, nat or host)"},
	    {"network", "allow = example.com",
	     "[network] allow: 'example.com' is not accepted (HOST:PORT, *.DOMAIN:PORT, "
	     "IP:PORT or [IPv6]:PORT, ports 1 to 65535)"},
	    {"image", "source = docker://alpine",
	     "[image] source: 'docker:' is not a known source type (tar:, oci:, oci-archive:, "
	     "docker-archive:, dir:)"},
	    {"image", "source = Agent",
	     "[image] source: 'Agent' is not accepted (a tar file, oci:DIR[:TAG], "
	     "oci-archive:FILE[:TAG], docker-archive:FILE, dir:PATH or the NAME[:TAG] of an "
	     "imported image)"},
	    {"image", "source = oci:",
	     "[image] source: 'oci:' is not accepted (a tar file, oci:DIR[:TAG], "
	     "oci-archive:FILE[:TAG], docker-archive:FILE, dir:PATH or the NAME[:TAG] of an "
	     "imported image)"},
	};
	char text[512], msg[512];
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		/* [task] and [image] come first so that the bad line is line 6 */
		if (!strcmp(cases[i].section, "image"))
			snprintf(text, sizeof(text), "[task]\ncommand = true\n\n\n[image]\n%s\n",
			         cases[i].line);
		else
			snprintf(text, sizeof(text), MIN "[%s]\n%s\n", cases[i].section,
			         cases[i].line);
		snprintf(msg, sizeof(msg), "task.ini:6: %s", cases[i].msg);
		parse_fails(text, NULL, msg);
	}
}

static void test_bad_publish(void **state)
{
	static const char *const bad[] = {
	    "80",         "0:80", "80:65536",    "1.2.3:80:80", "::1:8080:80",   "[::1]8080:80",
	    "80:80/sctp", "a:80", "80:80:80:80", "[::1:80:80",  "127.0.0.1::80", ""};
	char text[256], msg[512];
	for (size_t i = 0; bad[i][0]; i++) {
		snprintf(text, sizeof(text), MIN "[network]\nmode = nat\npublish = %s\n", bad[i]);
		snprintf(msg, sizeof(msg),
		         "task.ini:7: [network] publish: '%s' is not accepted "
		         "([IP:]HOSTPORT:PORT[/tcp|/udp], ports 1 to 65535, an IPv6 address in "
		         "brackets)",
		         bad[i]);
		parse_fails(text, NULL, msg);
	}
	parse_fails(MIN "[network]\nmode = nat\npublish = 8080:80 8080:81\n", NULL,
	            "task.ini:7: [network] publish: '8080:81': host port 127.0.0.1 8080/tcp is "
	            "already published");
	/* tcp and udp on one port are two things */
	const struct sbx_task_config *cfg =
	    parse_ok(MIN "[network]\nmode = nat\npublish = 53:53/udp 53:53\n", NULL);
	assert_int_equal(cfg->network.n_publish, 2);
	config_free_task(cfg);
}

static void test_bad_allow(void **state)
{
	static const char *const bad[] = {
	    "example.com",   "example.com:0", "*:443",    "a*.b.com:443", "::1:443", "[::1]443",
	    "[1.2.3.4]:443", "-x.com:443",    "a..b:443", "x.com:https",  ""};
	char text[256], msg[512];
	for (size_t i = 0; bad[i][0]; i++) {
		snprintf(text, sizeof(text), MIN "[network]\nallow = %s\n", bad[i]);
		snprintf(msg, sizeof(msg),
		         "task.ini:6: [network] allow: '%s' is not accepted (HOST:PORT, "
		         "*.DOMAIN:PORT, IP:PORT or [IPv6]:PORT, ports 1 to 65535)",
		         bad[i]);
		parse_fails(text, NULL, msg);
	}
	/* duplicates fold into one */
	const struct sbx_task_config *cfg =
	    parse_ok(MIN "[network]\nallow = a.com:443 A.com:443 a.com:80\n", NULL);
	assert_int_equal(cfg->network.n_allow, 2);
	config_free_task(cfg);
}

static void test_network_modes(void **state)
{
	parse_fails(MIN "[network]\npublish = 8080:80\n", NULL,
	            "task.ini:6: [network] publish: needs mode = nat (mode is none)");
	parse_fails(MIN "[network]\nmode = host\nallow_host_loopback = yes\n", NULL,
	            "task.ini:7: [network] allow_host_loopback: needs mode = nat (mode is host)");
	parse_fails(MIN "[network]\nmode = host\nallow = a.com:443\n", NULL,
	            "task.ini:7: [network] allow: needs mode = none: the proxy is the only way "
	            "out (mode is host)");
	parse_fails(MIN "[network]\nmode = nat\nallow = a.com:443\n", NULL,
	            "task.ini:7: [network] allow: needs mode = none: the proxy is the only way "
	            "out (mode is nat)");
	/* the allowlist works without nat: the proxy is the only way out */
	const struct sbx_task_config *cfg = parse_ok(MIN "[network]\nallow = a.com:443\n", NULL);
	assert_int_equal(cfg->network.mode, SBX_NET_NONE);
	assert_int_equal(cfg->network.n_allow, 1);
	config_free_task(cfg);
	/* the check uses the final mode, after --set */
	char *sets[] = {"network.mode=none", NULL};
	parse_fails(MIN "[network]\nmode = nat\npublish = 80:80\n", sets,
	            "task.ini:7: [network] publish: needs mode = nat (mode is none)");
}

static void test_limits_values(void **state)
{
	const struct sbx_task_config *cfg =
	    parse_ok(MIN "[limits]\nmemory = 1.5G\nmemory_swap = max\ncpus = .25\n", NULL);
	assert_int_equal(cfg->limits.memory, 3ULL << 29);
	assert_int_equal(cfg->limits.memory_swap, SBX_MEMORY_SWAP_MAX);
	assert_int_equal(cfg->limits.millicpus, 250);
	assert_int_equal(cfg->limits.set,
	                 SBX_LIMIT_MEMORY | SBX_LIMIT_MEMORY_SWAP | SBX_LIMIT_CPUS);
	config_free_task(cfg);
	cfg = parse_ok(MIN "[limits]\ncpus = 1024\nmemory_swap = 0\npids = 4194304\n", NULL);
	assert_int_equal(cfg->limits.millicpus, 1024000);
	assert_int_equal(cfg->limits.memory_swap, 0);
	assert_int_equal(cfg->limits.pids, 4194304);
	config_free_task(cfg);
	/* an empty value is "not set" */
	cfg = parse_ok(MIN "[limits]\nmemory =\ncpus =\n", NULL);
	assert_int_equal(cfg->limits.set, 0);
	config_free_task(cfg);
}

/* ---- [image] ---- */

static void test_image_sources(void **state)
{
	static const struct {
		const char *value;
		enum sbx_image_kind kind;
		const char *source, *path, *ref; /* relative to tmpdir; "" = NULL */
	} cases[] = {
	    {"img.tar", SBX_IMAGE_TAR, "/img.tar", "/img.tar", ""},
	    {"./sub/../img.tgz", SBX_IMAGE_TAR, "/sub/../img.tgz", "/sub/../img.tgz", ""},
	    {"images/agent", SBX_IMAGE_TAR, "/images/agent", "/images/agent", ""},
	    {"tar:agent", SBX_IMAGE_TAR, "tar:/agent", "/agent", ""},
	    {"/abs/x.tar.xz", SBX_IMAGE_TAR, "!/abs/x.tar.xz", "!/abs/x.tar.xz", ""},
	    {"oci:layout", SBX_IMAGE_OCI, "oci:/layout", "/layout", ""},
	    {"oci:layout:v1.2", SBX_IMAGE_OCI, "oci:/layout:v1.2", "/layout", "v1.2"},
	    {"oci:a:b/layout", SBX_IMAGE_OCI, "oci:/a:b/layout", "/a:b/layout", ""},
	    {"oci-archive:img.tar:latest", SBX_IMAGE_OCI_ARCHIVE, "oci-archive:/img.tar:latest",
	     "/img.tar", "latest"},
	    {"docker-archive:saved.tar", SBX_IMAGE_DOCKER_ARCHIVE, "docker-archive:/saved.tar",
	     "/saved.tar", ""},
	    {"dir:rootfs/", SBX_IMAGE_DIR, "dir:/rootfs", "/rootfs", ""},
	    {"dir:/srv/root", SBX_IMAGE_DIR, "!dir:/srv/root", "!/srv/root", ""},
	    {"agent", SBX_IMAGE_NAME, "!agent", "", "agent"},
	    {"agent:1.0", SBX_IMAGE_NAME, "!agent:1.0", "", "agent:1.0"},
	};
	char text[256], want[PATH_MAX + 64];
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		snprintf(text, sizeof(text), "[task]\ncommand = true\n[image]\nsource = %s\n",
		         cases[i].value);
		const struct sbx_task_config *cfg = parse_ok(text, NULL);
		assert_int_equal(cfg->image.kind, cases[i].kind);
		/* "!x" is x as is; "prefix:/rel" puts tmpdir after the prefix */
		const char *s = cases[i].source, *colon = strstr(s, ":/");
		if (s[0] == '!')
			snprintf(want, sizeof(want), "%s", s + 1);
		else if (colon)
			snprintf(want, sizeof(want), "%.*s%s%s", (int)(colon - s + 1), s, tmpdir,
			         colon + 1);
		else
			snprintf(want, sizeof(want), "%s%s", tmpdir, s);
		assert_string_equal(cfg->image.source, want);
		if (!cases[i].path[0]) {
			assert_null(cfg->image.path);
		} else {
			const char *p = cases[i].path;
			snprintf(want, sizeof(want), "%s%s", p[0] == '!' ? "" : tmpdir,
			         p + (p[0] == '!'));
			assert_string_equal(cfg->image.path, want);
		}
		if (cases[i].ref[0])
			assert_string_equal(cfg->image.ref, cases[i].ref);
		else
			assert_null(cfg->image.ref);
		config_free_task(cfg);
	}
}

/* ---- [repo] ---- */

static void test_repo(void **state)
{
	/* an empty [repo] turns the repository on, at the task file's folder */
	const struct sbx_task_config *cfg = parse_ok(MIN "[repo]\n", NULL);
	assert_true(cfg->repo.enabled);
	assert_string_equal(cfg->repo.path, tmpdir);
	config_free_task(cfg);

	assert_int_equal(mkdir("tasks", 0700), 0);
	write_file("tasks/t.ini",
	           "[task]\ncommand = true\n[image]\nsource = img.tar\n[repo]\npath = ../src//\n"
	           "auto_commit = exit\nprotected =\n");
	assert_int_equal(config_parse_task("tasks/t.ini", NULL, &cfg, &err), 0);
	char want[PATH_MAX + 64];
	snprintf(want, sizeof(want), "%s/tasks/../src", tmpdir);
	assert_string_equal(cfg->repo.path, want);
	assert_string_equal(cfg->image.path, at_tmp("tasks/img.tar"));
	assert_int_equal(cfg->repo.auto_commit, SBX_AUTO_COMMIT_EXIT);
	assert_null(cfg->repo.protected_branches[0]); /* cleared: nothing protected */
	assert_string_equal(cfg->task.name, "t");
	config_free_task(cfg);

	parse_fails(MIN "[repo]\nbranch = main\n", NULL,
	            "task.ini:6: [repo] branch: 'main' matches the protected pattern 'main'");
	parse_fails(MIN "[repo]\nbranch = release/{name}\n", NULL,
	            "task.ini:6: [repo] branch: 'release/task' matches the protected pattern "
	            "'release/*'");
	/* the default branch is checked too, where no line names it */
	parse_fails(
	    MIN "[repo]\nprotected = trimo/*\n", NULL,
	    "task.ini: [repo] branch: 'trimo/task' matches the protected pattern 'trimo/*'");
	parse_fails(MIN "[repo]\nbranch = x/{name}.lock\n", NULL,
	            "task.ini:6: [repo] branch: 'x/task.lock' is not a valid git branch name");
	cfg = parse_ok(MIN "[repo]\nbranch = {name}/{name}\nprotected = main\nprotected = dev\n",
	               NULL);
	assert_string_equal(cfg->repo.branch, "task/task");
	assert_string_equal(cfg->repo.protected_branches[0], "main");
	assert_string_equal(cfg->repo.protected_branches[1], "dev");
	config_free_task(cfg);
}

/* ---- [task] prompt ---- */

static void test_prompt_file(void **state)
{
	assert_int_equal(mkdir("prompts", 0700), 0);
	write_file("prompts/jwt.md", "# JWT\n\nAdd it.\n");
	const struct sbx_task_config *cfg =
	    parse_ok(MIN "[task]\nprompt_file = prompts/jwt.md\n", NULL);
	assert_string_equal(cfg->task.prompt, "# JWT\n\nAdd it.\n");
	assert_string_equal(cfg->task.prompt_file, at_tmp("prompts/jwt.md"));
	config_free_task(cfg);

	char msg[PATH_MAX + 256];
	snprintf(msg, sizeof(msg),
	         "task.ini:6: [task] prompt_file: open '%s/prompts/none.md': No such file or "
	         "directory",
	         tmpdir);
	parse_fails_with(MIN "[task]\nprompt_file = prompts/none.md\n", NULL, ENOENT, msg);

	parse_fails(MIN "[task]\nprompt = hi\nprompt_file = prompts/jwt.md\n", NULL,
	            "task.ini:7: [task] prompt_file: cannot be used together with prompt (line 6)");
	parse_fails(MIN "[task]\nprompt_file = prompts/jwt.md\nprompt = hi\n", NULL,
	            "task.ini:7: [task] prompt: cannot be used together with prompt_file (line 6)");

	/* the limit is what one environment string can carry */
	char *big = malloc(SBX_PROMPT_MAX + 2);
	memset(big, 'x', SBX_PROMPT_MAX + 1);
	big[SBX_PROMPT_MAX + 1] = '\0';
	write_file("prompts/big.md", big);
	snprintf(msg, sizeof(msg),
	         "task.ini:6: [task] prompt_file: '%s/prompts/big.md' is larger than 127 KiB (the "
	         "most $TRIMO_PROMPT can carry)",
	         tmpdir);
	parse_fails(MIN "[task]\nprompt_file = prompts/big.md\n", NULL, msg);
	big[SBX_PROMPT_MAX] = '\0';
	write_file("prompts/big.md", big);
	cfg = parse_ok(MIN "[task]\nprompt_file = prompts/big.md\n", NULL);
	assert_int_equal(strlen(cfg->task.prompt), SBX_PROMPT_MAX);
	config_free_task(cfg);
	free(big);

	write_file("prompts/bin.md", "a");
	FILE *f = fopen("prompts/bin.md", "a");
	fputc('\0', f);
	fclose(f);
	snprintf(msg, sizeof(msg),
	         "task.ini:6: [task] prompt_file: '%s/prompts/bin.md' is not a text file (it "
	         "holds a NUL byte)",
	         tmpdir);
	parse_fails(MIN "[task]\nprompt_file = prompts/bin.md\n", NULL, msg);
}

/* ---- env ---- */

static void test_env_lists(void **state)
{
	const struct sbx_task_config *cfg =
	    parse_ok(MIN "[task]\nenv = A=1\nenv = B=2\nenv = A=3\npass_env = X Y\n"
	                 "pass_env = Y Z X\n",
	             NULL);
	assert_string_equal(cfg->task.env[0], "A=3");
	assert_string_equal(cfg->task.env[1], "B=2");
	assert_null(cfg->task.env[2]);
	assert_string_equal(cfg->task.pass_env[0], "X");
	assert_string_equal(cfg->task.pass_env[1], "Y");
	assert_string_equal(cfg->task.pass_env[2], "Z");
	assert_null(cfg->task.pass_env[3]);
	config_free_task(cfg);
	/* an empty value clears what came before */
	cfg = parse_ok(MIN "[task]\nenv = A=1\nenv =\nenv = C=3\npass_env = X\npass_env =\n", NULL);
	assert_string_equal(cfg->task.env[0], "C=3");
	assert_null(cfg->task.env[1]);
	assert_null(cfg->task.pass_env[0]);
	config_free_task(cfg);
}

/* ---- --set ---- */

static void test_set_overrides(void **state)
{
	char *sets[] = {"task.name=other",    "limits.memory=4G",
	                "task.env=B=9",       "task.env=A=0",
	                "network.mode=nat",   "network.publish=80:80",
	                "task.timeout= 90s ", "image.source=oci:x",
	                "repo.base=dev",      NULL};
	const struct sbx_task_config *cfg =
	    parse_ok(MIN "[task]\nname = jwt\nenv = A=1\n[limits]\nmemory = 2G\n", sets);
	assert_string_equal(cfg->task.name, "other");
	assert_false(cfg->task.name_derived);
	assert_string_equal(cfg->repo.branch, "trimo/other");
	assert_int_equal(cfg->limits.memory, 4ULL << 30);
	assert_string_equal(cfg->task.env[0], "A=0");
	assert_string_equal(cfg->task.env[1], "B=9");
	assert_null(cfg->task.env[2]);
	assert_int_equal(cfg->network.mode, SBX_NET_NAT);
	assert_int_equal(cfg->network.n_publish, 1);
	assert_int_equal(cfg->task.timeout, 90);
	assert_int_equal(cfg->image.kind, SBX_IMAGE_OCI);
	assert_string_equal(cfg->image.path, at_tmp("x"));
	assert_true(cfg->repo.enabled); /* a repo.* override turns it on */
	assert_string_equal(cfg->repo.base, "dev");
	config_free_task(cfg);

	/* --set gives the required keys too; an empty list value clears */
	char *sets2[] = {"task.command=make", "image.source=img.tar",
	                 "task.pass_env=", "limits.enabled=no", NULL};
	cfg = parse_ok("[task]\npass_env = HOME\n", sets2);
	assert_string_equal(cfg->task.command, "make");
	assert_null(cfg->task.pass_env[0]);
	assert_false(cfg->limits.enabled);
	config_free_task(cfg);

	/* prompt and prompt_file replace each other across file and --set */
	write_file("p.md", "from file");
	char *sets3[] = {"task.prompt_file=p.md", NULL};
	cfg = parse_ok(MIN "[task]\nprompt = inline\n", sets3);
	assert_string_equal(cfg->task.prompt, "from file");
	config_free_task(cfg);
	char *sets4[] = {"task.prompt=new\nline", NULL};
	cfg = parse_ok(MIN "[task]\nprompt_file = missing.md\n", sets4);
	assert_string_equal(cfg->task.prompt, "new\nline");
	assert_null(cfg->task.prompt_file);
	config_free_task(cfg);
}

static void test_set_errors(void **state)
{
	char *s1[] = {"limits.memory", NULL};
	parse_fails(MIN, s1, "--set 'limits.memory': expected section.key=value");
	char *s2[] = {"memory=2G", NULL};
	parse_fails(MIN, s2, "--set 'memory=2G': expected section.key=value");
	char *s3[] = {"limits.=2G", NULL};
	parse_fails(MIN, s3, "--set 'limits.=2G': expected section.key=value");
	char *s4[] = {"limits.memroy=2G", NULL};
	parse_fails(MIN, s4, "--set: [limits] memroy: unknown key (did you mean memory?)");
	char *s5[] = {"limts.memory=2G", NULL};
	parse_fails(MIN, s5, "--set: [limts]: unknown section (did you mean [limits]?)");
	char *s6[] = {"limits.memory=2X", NULL};
	parse_fails(MIN, s6,
	            "--set: [limits] memory: '2X' is not a size (use a number with K, M "
	            "or G)");
	char *s7[] = {"task.name=a", "task.name=b", NULL};
	parse_fails(MIN, s7, "--set: [task] name: given twice with --set");
	char *s8[] = {"task.name=a\nb", NULL};
	parse_fails(MIN, s8, "--set: [task] name: the value contains a control character");
	char *s9[] = {"task.prompt=hi", "task.prompt_file=p.md", NULL};
	parse_fails(MIN, s9, "--set: [task] prompt_file: cannot be used together with prompt");
	char *s10[] = {"task.command=", NULL};
	parse_fails(MIN, s10,
	            "--set: [task] command: empty value (a command for /bin/sh -c is required)");
	/* the file's errors come first */
	char *s11[] = {"limits.memory=2X", NULL};
	parse_fails(MIN "[limits]\ncpus = 0\n", s11,
	            "task.ini:6: [limits] cpus: '0' is not accepted (a number of CPUs above 0 and "
	            "at most 1024, up to 3 decimals, e.g. 1.5)");
}

/* ---- the file itself ---- */

static void test_file_errors(void **state)
{
	const struct sbx_task_config *cfg = NULL;
	assert_int_equal(config_parse_task("none.ini", NULL, &cfg, &err), -ENOENT);
	assert_null(cfg);
	assert_string_equal(err.msg, "open 'none.ini': No such file or directory");

	FILE *f = fopen("nul.ini", "w");
	fwrite("[task]\0x", 1, 8, f);
	fclose(f);
	assert_int_equal(config_parse_task("nul.ini", NULL, &cfg, &err), -EINVAL);
	assert_string_equal(err.msg, "nul.ini: not a text file (it holds a NUL byte)");

	assert_int_equal(mkdir("dir.ini", 0700), 0);
	assert_int_equal(config_parse_task("dir.ini", NULL, &cfg, &err), -EISDIR);
	assert_string_equal(err.msg, "read 'dir.ini': Is a directory");

	/* a task file is at most SBX_CONFIG_FILE_MAX bytes */
	char *big = malloc(SBX_CONFIG_FILE_MAX + 2);
	memset(big, ';', SBX_CONFIG_FILE_MAX + 1);
	big[SBX_CONFIG_FILE_MAX + 1] = '\0';
	write_file("big.ini", big);
	assert_int_equal(config_parse_task("big.ini", NULL, &cfg, &err), -EFBIG);
	assert_string_equal(err.msg, "read 'big.ini': larger than 1048576 bytes");

	/* an inline prompt has the limit of prompt_file */
	size_t n = strlen(MIN "[task]\nprompt = ");
	memcpy(big, MIN "[task]\nprompt = ", n);
	memset(big + n, 'x', SBX_PROMPT_MAX + 1);
	strcpy(big + n + SBX_PROMPT_MAX + 1, "\n");
	parse_fails(big, NULL,
	            "task.ini:6: [task] prompt: longer than 127 KiB (the most $TRIMO_PROMPT can "
	            "carry)");
	free(big);

	/* a path given absolute keeps its own name in messages */
	write_file("abs.ini", "[task]\nbad = 1\n");
	char path[PATH_MAX + 16], msg[PATH_MAX + 128];
	snprintf(path, sizeof(path), "%s/abs.ini", tmpdir);
	snprintf(msg, sizeof(msg), "%s:2: [task] bad: unknown key", path);
	assert_int_equal(config_parse_task(path, NULL, &cfg, &err), -EINVAL);
	assert_string_equal(err.msg, msg);
}

/* ---- limits: merge and the command line ---- */

static void test_merge_limits(void **state)
{
	struct sbx_limits task = {.set = SBX_LIMIT_MEMORY | SBX_LIMIT_OOM_KILL,
	                          .memory = 1ULL << 30,
	                          .oom_kill = SBX_OOM_KILL_GROUP};
	struct sbx_limits user = {.set = SBX_LIMIT_MEMORY | SBX_LIMIT_CPUS | SBX_LIMIT_PIDS,
	                          .memory = 4ULL << 30,
	                          .millicpus = 2000,
	                          .pids = 512};
	struct sbx_limits m;
	config_merge_limits(&task, &user, &m);
	assert_true(m.enabled);
	assert_int_equal(m.memory, 1ULL << 30);
	assert_int_equal(m.millicpus, 2000);
	assert_int_equal(m.pids, 512);
	assert_int_equal(m.memory_swap, 0);
	assert_int_equal(m.oom_kill, SBX_OOM_KILL_GROUP);
	assert_int_equal(m.set, SBX_LIMIT_ENABLED | SBX_LIMIT_MEMORY | SBX_LIMIT_MEMORY_SWAP |
	                            SBX_LIMIT_CPUS | SBX_LIMIT_PIDS | SBX_LIMIT_OOM_KILL);

	/* nothing given: built-in defaults, and no memory or cpu cap */
	config_merge_limits(NULL, NULL, &m);
	assert_true(m.enabled);
	assert_int_equal(m.pids, SBX_DEFAULT_PIDS);
	assert_int_equal(m.oom_kill, SBX_OOM_KILL_PROCESS);
	assert_int_equal(m.set & (SBX_LIMIT_MEMORY | SBX_LIMIT_CPUS), 0);

	/* the user turns limits off, the task turns them back on */
	struct sbx_limits off = {.set = SBX_LIMIT_ENABLED, .enabled = false};
	struct sbx_limits on = {.set = SBX_LIMIT_ENABLED, .enabled = true};
	config_merge_limits(NULL, &off, &m);
	assert_false(m.enabled);
	config_merge_limits(&on, &off, &m);
	assert_true(m.enabled);
}

static void test_parse_limit(void **state)
{
	struct sbx_limits l = {0};
	assert_int_equal(config_parse_limit(&l, "memory", "64M", "--memory", &err), 0);
	assert_int_equal(config_parse_limit(&l, "cpus", "0.2", "--cpus", &err), 0);
	assert_int_equal(config_parse_limit(&l, "oom_kill", "group", "--oom-kill", &err), 0);
	assert_int_equal(l.memory, 64ULL << 20);
	assert_int_equal(l.millicpus, 200);
	assert_int_equal(l.set, SBX_LIMIT_MEMORY | SBX_LIMIT_CPUS | SBX_LIMIT_OOM_KILL);
	assert_int_equal(config_parse_limit(&l, "memory", "lots", "--memory", &err), -EINVAL);
	assert_string_equal(err.msg,
	                    "--memory: 'lots' is not a size (use a number with K, M or G)");
	assert_int_equal(l.memory, 64ULL << 20); /* untouched on failure */
	assert_int_equal(config_parse_limit(&l, "oom_kill", "all", "--oom-kill", &err), -EINVAL);
	assert_string_equal(err.msg, "--oom-kill: 'all' is not accepted (process or group)");
	assert_int_equal(config_parse_limit(&l, "pids", "0", "--pids", &err), -EINVAL);
	assert_string_equal(err.msg, "--pids: 0 is out of range (1 to 4194304)");
	assert_int_equal(config_parse_limit(&l, "enabled", "no", "--no-limits", &err), 0);
	assert_false(l.enabled);
	assert_int_equal(config_parse_limit(&l, "memory", "", "--memory", &err), 0);
	assert_int_equal(l.set & SBX_LIMIT_MEMORY, 0);
}

/* ---- the user config ---- */

static void test_env_from_process(void **state)
{
	struct sbx_config_env env;
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	setenv("HOME", "/home/test", 1);
	setenv("XDG_CONFIG_HOME", "/c", 1);
	setenv("XDG_STATE_HOME", "/s", 1);
	setenv("XDG_DATA_HOME", "/d", 1);
	setenv("TRIMO_SBX_CONFIG", "/t.ini", 1);
	config_env_from_process(&env);
	assert_int_equal(env.euid, geteuid());
	assert_string_equal(env.home, "/home/test");
	assert_string_equal(env.xdg_config_home, "/c");
	assert_string_equal(env.xdg_state_home, "/s");
	assert_string_equal(env.xdg_data_home, "/d");
	assert_string_equal(env.config_file, "/t.ini");
	assert_true(env.online_cpus >= 1);
	unsetenv("TRIMO_SBX_CONFIG");
	unsetenv("XDG_CONFIG_HOME");
	config_env_from_process(&env);
	assert_null(env.config_file);
	assert_null(env.xdg_config_home);
	unsetenv("XDG_STATE_HOME");
	unsetenv("XDG_DATA_HOME");
	if (home)
		setenv("HOME", home, 1);
	else
		unsetenv("HOME");
	free(home);
}

static const struct sbx_config_env user_env = {
    .euid = 1000,
    .home = "/home/u",
    .online_cpus = 8,
};

static void test_user_path(void **state)
{
	char *path = NULL;
	bool required = true;
	struct sbx_config_env env = user_env;
	assert_int_equal(config_user_path(&env, &path, &required, &err), 0);
	assert_string_equal(path, "/home/u/.config/trimo-sbx/config.ini");
	assert_false(required);
	free(path);

	env.xdg_config_home = "/xdg/conf/";
	assert_int_equal(config_user_path(&env, &path, &required, &err), 0);
	assert_string_equal(path, "/xdg/conf/trimo-sbx/config.ini");
	free(path);

	env.xdg_config_home = "relative/conf"; /* not absolute: ignored, as XDG says */
	assert_int_equal(config_user_path(&env, &path, &required, &err), 0);
	assert_string_equal(path, "/home/u/.config/trimo-sbx/config.ini");
	free(path);

	env.euid = 0;
	assert_int_equal(config_user_path(&env, &path, &required, &err), 0);
	assert_string_equal(path, "/etc/trimo-sbx/config.ini");
	assert_false(required);
	free(path);

	env.config_file = "my.ini";
	assert_int_equal(config_user_path(&env, &path, &required, &err), 0);
	assert_string_equal(path, "my.ini");
	assert_true(required);
	free(path);

	env = (struct sbx_config_env){.euid = 1000, .home = "", .config_file = ""};
	assert_int_equal(config_user_path(&env, &path, &required, &err), 0);
	assert_null(path);
	assert_false(required);
}

static void test_user_defaults(void **state)
{
	const struct sbx_user_config *c = NULL;
	assert_int_equal(config_parse_user(NULL, false, &user_env, &c, &err), 0);
	assert_null(c->path);
	assert_int_equal(c->orchestrator.max_parallel, 8);
	assert_int_equal(c->orchestrator.memory_reserve, 1ULL << 30);
	assert_int_equal(c->orchestrator.default_memory, 2ULL << 30);
	assert_int_equal(c->orchestrator.max_cpu_pressure, 0);
	assert_string_equal(c->storage.state_dir, "/home/u/.local/state/trimo-sbx");
	assert_string_equal(c->storage.image_dir, "/home/u/.local/share/trimo-sbx/images");
	assert_null(c->cgroups.parent);
	assert_int_equal(c->storage.overlay, SBX_CFG_OVERLAY_AUTO);
	assert_int_equal(c->limits.set, 0);
	config_free_user(c);

	struct sbx_config_env env = user_env;
	env.xdg_state_home = "/st";
	env.xdg_data_home = "/da/";
	env.online_cpus = -1;
	assert_int_equal(config_parse_user(NULL, false, &env, &c, &err), 0);
	assert_int_equal(c->orchestrator.max_parallel, 1);
	assert_string_equal(c->storage.state_dir, "/st/trimo-sbx");
	assert_string_equal(c->storage.image_dir, "/da/trimo-sbx/images");
	config_free_user(c);

	env.euid = 0; /* root ignores XDG */
	assert_int_equal(config_parse_user(NULL, false, &env, &c, &err), 0);
	assert_string_equal(c->storage.state_dir, "/var/lib/trimo-sbx");
	assert_string_equal(c->storage.image_dir, "/var/lib/trimo-sbx/images");
	config_free_user(c);

	env = (struct sbx_config_env){.euid = 1000, .xdg_data_home = "/d"};
	assert_int_equal(config_parse_user(NULL, false, &env, &c, &err), -EINVAL);
	assert_string_equal(err.msg, "user config: [storage] state_dir: no default: neither "
	                             "XDG_STATE_HOME nor HOME is an absolute path (set one, or "
	                             "state_dir in the user config)");
}

static void test_user_file(void **state)
{
	assert_int_equal(mkdir("conf", 0700), 0);
	write_file("conf/config.ini", "[orchestrator]\n"
	                              "max_parallel = 3\n"
	                              "memory_reserve = 0\n"
	                              "default_memory = 1G\n"
	                              "max_cpu_pressure = 12.5%\n"
	                              "[storage]\n"
	                              "state_dir = state\n"
	                              "image_dir = /images/\n"
	                              "overlay = fuse\n"
	                              "[cgroups]\n"
	                              "parent = /trimo.slice//x/\n"
	                              "[limits]\n"
	                              "memory = 3G\n"
	                              "pids = 100\n");
	const struct sbx_user_config *c = NULL;
	assert_int_equal(config_parse_user("conf/config.ini", false, &user_env, &c, &err), 0);
	assert_string_equal(c->path, at_tmp("conf/config.ini"));
	assert_int_equal(c->orchestrator.max_parallel, 3);
	assert_int_equal(c->orchestrator.memory_reserve, 0);
	assert_int_equal(c->orchestrator.default_memory, 1ULL << 30);
	assert_int_equal(c->orchestrator.max_cpu_pressure, 1250);
	assert_string_equal(c->storage.state_dir, at_tmp("conf/state"));
	assert_string_equal(c->storage.image_dir, "/images");
	assert_int_equal(c->storage.overlay, SBX_CFG_OVERLAY_FUSE);
	assert_string_equal(c->cgroups.parent, "/trimo.slice/x");
	assert_int_equal(c->limits.set, SBX_LIMIT_MEMORY | SBX_LIMIT_PIDS);
	assert_int_equal(c->limits.memory, 3ULL << 30);
	config_free_user(c);

	/* errors carry the file name and line like task.ini's */
	static const struct {
		const char *text, *msg;
	} bad[] = {
	    {"[orchestrator]\nmax_paralel = 2\n",
	     "u.ini:2: [orchestrator] max_paralel: unknown key (did you mean max_parallel?)"},
	    {"[orchestrator]\nmax_parallel = 0\n",
	     "u.ini:2: [orchestrator] max_parallel: 0 is out of range (1 to 4096)"},
	    {"[orchestrator]\nmax_cpu_pressure = 101\n",
	     "u.ini:2: [orchestrator] max_cpu_pressure: '101' is not accepted (off, or a "
	     "percentage above 0 and at most 100, e.g. 80 or 12.5%)"},
	    {"[orchestrator]\ndefault_memory = 1K\n",
	     "u.ini:2: [orchestrator] default_memory: '1K' is too small (at least 1M)"},
	    {"[cgroups]\nparent = trimo.slice\n",
	     "u.ini:2: [cgroups] parent: 'trimo.slice' is not accepted (a path from the cgroup "
	     "hierarchy's root, e.g. /trimo.slice, or below this process's own cgroup, e.g. "
	     "./trimo; without '.' or '..')"},
	    {"[cgroups]\nparent = /a/../b\n",
	     "u.ini:2: [cgroups] parent: '/a/../b' is not accepted (a path from the cgroup "
	     "hierarchy's root, e.g. /trimo.slice, or below this process's own cgroup, e.g. "
	     "./trimo; without '.' or '..')"},
	    {"[cgroups]\nparent = /sys/fs/cgroup/trimo\n",
	     "u.ini:2: [cgroups] parent: '/sys/fs/cgroup/trimo' is not accepted (a path from the "
	     "cgroup hierarchy's root, e.g. /trimo.slice, without /sys/fs/cgroup)"},
	    {"[limits]\ncpus = -1\n",
	     "u.ini:2: [limits] cpus: '-1' is not accepted (a number of CPUs above 0 and at "
	     "most 1024, up to 3 decimals, e.g. 1.5)"},
	    {"[task]\ncommand = x\n",
	     "u.ini:1: [task]: unknown section (expected [orchestrator], [storage], [cgroups] "
	     "or [limits])"},
	    {"[storage]\noverlay = fusee\n",
	     "u.ini:2: [storage] overlay: 'fusee' is not accepted (auto, kernel or fuse)"},
	    {"[storage]\nstate_dir = a\nstate_dir = b\n",
	     "u.ini:3: [storage] state_dir: duplicate key (first set on line 2)"},
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		write_file("u.ini", bad[i].text);
		c = NULL;
		assert_int_equal(config_parse_user("u.ini", false, &user_env, &c, &err), -EINVAL);
		assert_null(c);
		assert_string_equal(err.msg, bad[i].msg);
	}
}

static void test_user_missing(void **state)
{
	const struct sbx_user_config *c = NULL;
	/* a missing default file: all defaults */
	assert_int_equal(config_parse_user("nothing.ini", true, &user_env, &c, &err), 0);
	assert_null(c->path);
	assert_int_equal(c->orchestrator.max_parallel, 8);
	config_free_user(c);
	assert_int_equal(config_parse_user("nothing.ini", false, &user_env, &c, &err), -ENOENT);

	/* the file TRIMO_SBX_CONFIG names must exist */
	struct sbx_config_env env = user_env;
	env.config_file = "nothing.ini";
	c = NULL;
	assert_int_equal(config_load_user(&env, &c, &err), -ENOENT);
	assert_null(c);
	assert_string_equal(err.msg,
	                    "TRIMO_SBX_CONFIG: open 'nothing.ini': No such file or directory");

	/* config_load_user finds the file through XDG_CONFIG_HOME */
	assert_int_equal(mkdir("xdg", 0700), 0);
	assert_int_equal(mkdir("xdg/trimo-sbx", 0700), 0);
	write_file("xdg/trimo-sbx/config.ini", "[orchestrator]\nmax_parallel = 5\n");
	env = user_env;
	char xdg[PATH_MAX + 8];
	snprintf(xdg, sizeof(xdg), "%s/xdg", tmpdir);
	env.xdg_config_home = xdg;
	assert_int_equal(config_load_user(&env, &c, &err), 0);
	assert_int_equal(c->orchestrator.max_parallel, 5);
	assert_string_equal(c->path, at_tmp("xdg/trimo-sbx/config.ini"));
	config_free_user(c);

	/* and treats its absence as all defaults */
	env.xdg_config_home = "/nonexistent-trimo-test";
	assert_int_equal(config_load_user(&env, &c, &err), 0);
	assert_null(c->path);
	config_free_user(c);
}

/* ---- help and docs ---- */

/* Does help hold "key = " at a line start inside its "[section]" block? */
static bool help_has_key(const char *help, const char *section_key)
{
	char section[64], key[64];
	const char *dot = strchr(section_key, '.');
	snprintf(section, sizeof(section), "\n[%.*s]\n", (int)(dot - section_key), section_key);
	snprintf(key, sizeof(key), "\n%s = ", dot + 1);
	const char *start = strstr(help, section);
	if (!start)
		return false;
	const char *end = strstr(start + 1, "\n[");
	const char *hit = strstr(start, key);
	return hit && (!end || hit < end);
}

static void test_help_covers_keys(void **state)
{
	const char *const *keys = config_task_keys();
	size_t n = 0;
	for (; keys[n]; n++)
		if (!help_has_key(config_help_task_ini(), keys[n]))
			fail_msg("help task.ini does not document %s", keys[n]);
	assert_int_equal(n, 9 + 1 + 9 + 6 + 4);
	keys = config_user_keys();
	for (n = 0; keys[n]; n++) {
		if (!strncmp(keys[n], "limits.", 7)) {
			/* listed by name: same keys as task.ini's */
			if (!strstr(config_help_user_config(), keys[n] + 7))
				fail_msg("help config does not name %s", keys[n]);
		} else if (!help_has_key(config_help_user_config(), keys[n])) {
			fail_msg("help config does not document %s", keys[n]);
		}
	}
	assert_int_equal(n, 4 + 3 + 1 + 6);
	/* every key name is also a key --set accepts (an empty value) */
	write_file("task.ini", MIN);
	for (keys = config_task_keys(); *keys; keys++) {
		if (!strcmp(*keys, "task.command") || !strcmp(*keys, "image.source"))
			continue;
		char set[64];
		snprintf(set, sizeof(set), "%s=", *keys);
		char *sets[] = {set, NULL};
		const struct sbx_task_config *cfg = NULL;
		if (config_parse_task("task.ini", sets, &cfg, &err) < 0)
			fail_msg("--set %s: %s", set, err.msg);
		config_free_task(cfg);
	}
}

static void test_docs_match_help(void **state)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/docs/task-ini.md", origdir);
	char *doc = NULL;
	if (sbx_read_file(AT_FDCWD, path, 1 << 20, &doc, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	if (!strstr(doc, config_help_task_ini()))
		fail_msg("docs/task-ini.md does not hold config_help_task_ini() verbatim");
	if (!strstr(doc, config_help_user_config()))
		fail_msg("docs/task-ini.md does not hold config_help_user_config() verbatim");
	free(doc);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_minimal_defaults),
	    T(test_every_key),
	    T(test_booleans),
	    T(test_name_derived),
	    T(test_name_invalid),
	    T(test_unknown_key),
	    T(test_unknown_section),
	    T(test_syntax_errors),
	    T(test_duplicates),
	    T(test_required),
	    T(test_comments_and_whitespace),
	    T(test_multiline),
	    T(test_long_lines),
	    T(test_bad_values),
	    T(test_bad_publish),
	    T(test_bad_allow),
	    T(test_network_modes),
	    T(test_limits_values),
	    T(test_image_sources),
	    T(test_repo),
	    T(test_prompt_file),
	    T(test_env_lists),
	    T(test_set_overrides),
	    T(test_set_errors),
	    T(test_file_errors),
	    T(test_merge_limits),
	    T(test_parse_limit),
	    T(test_env_from_process),
	    T(test_user_path),
	    T(test_user_defaults),
	    T(test_user_file),
	    T(test_user_missing),
	    T(test_help_covers_keys),
	    T(test_docs_match_help),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
