/* trimo-sbx: the command line. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "config/config.h"
#include "orchestrator/cli.h"
#include "orchestrator/git_cmd.h"
#include "orchestrator/supervisor.h"
#include "sandbox/child.h"

static const char usage[] =
    "usage: trimo-sbx COMMAND [ARGS...]\n"
    "\n"
    "Run AI coding agents in parallel, each in its own sandbox.\n"
    "\n"
    "Tasks (each in its own sandbox, run by its own detached supervisor):\n"
    "  launch TASK.ini [-f]             start a task in the background, print its id\n"
    "  ps [-a] [--json]                 list tasks: state, run, memory, CPU, branch\n"
    "  logs [-f] [--run N] ID           a task's output\n"
    "  wait ID...                       wait for tasks to end; exit with their status\n"
    "  stop [-t SECONDS] ID...          stop tasks (SIGTERM, then SIGKILL)\n"
    "  followup ID --prompt TEXT        a new run of an ended task, same workspace\n"
    "  inspect ID                       everything about a task, as JSON\n"
    "  diff [--stat] ID                 the task's branch and its uncommitted changes\n"
    "  push ID                          push the task's branch to the repository's remote\n"
    "  rm [-f] ID...                    remove tasks and their folders\n"
    "\n"
    "Other commands:\n"
    "  run [OPTIONS] IMAGE [--] CMD...   run a command in a new sandbox, in the foreground\n"
    "  image import|ls|rm|prune         the image store\n"
    "  check                            what this host supports, and the fix where not\n"
    "  help [COMMAND]                   this text, or a command's help\n"
    "  help task.ini | config           every key of task.ini, or of the user config\n"
    "\n"
    "Exit codes: 0 ok, 1 task failed, 2 usage or configuration error, 125 runtime\n"
    "error; `run`, `wait` and `launch -f` pass the command's own code through (126 not\n"
    "executable, 127 not found, 128+N killed by signal N).\n";

struct verb {
	const char *name;
	int (*fn)(int argc, char **argv);
};

static const struct verb verbs[] = {
    {"run", cmd_run},
    {"check", cmd_check},
    {"image", cmd_image_exec},
    {"launch", cmd_launch},
    {"ps", cmd_ps},
    {"logs", cmd_logs},
    {"stop", cmd_stop},
    {"rm", cmd_rm},
    {"wait", cmd_wait},
    {"inspect", cmd_inspect},
    {"followup", cmd_followup},
    {"diff", cmd_diff},
    {"push", cmd_push},
    {GIT_JOB_VERB, cmd_git_job},
    {SUPERVISOR_VERB, supervisor_main},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	/* argv's strings are contiguous: hand their memory to the sandbox's
	 * init, which writes its own name over it */
	if (argc > 0)
		child_set_title_area(argv[0],
		                     (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) - argv[0]));
	/* the soft open-file limit up to the hard one, as podman does */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	const char *v = argv[1];
	if (!strcmp(v, "help") || !strcmp(v, "--help") || !strcmp(v, "-h")) {
		if (argc > 2 && (!strcmp(argv[2], "task.ini") || !strcmp(argv[2], "config"))) {
			fputs(!strcmp(argv[2], "config") ? config_help_user_config()
			                                 : config_help_task_ini(),
			      stdout);
			return EXIT_OK;
		}
		if (argc > 2) {
			for (const struct verb *p = verbs; p->name; p++) {
				if (!strcmp(p->name, argv[2])) {
					char *args[] = {argv[2], "--help", NULL};
					return p->fn(2, args);
				}
			}
			return cli_error(EXIT_USAGE, "help: unknown command '%s'", argv[2]);
		}
		fputs(usage, stdout);
		return EXIT_OK;
	}
	for (const struct verb *p = verbs; p->name; p++)
		if (!strcmp(p->name, v))
			return p->fn(argc - 1, argv + 1);
	return cli_error(EXIT_USAGE, "unknown command '%s' (see trimo-sbx help)", v);
}
