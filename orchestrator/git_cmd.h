/* The git verbs of the CLI (orchestrator/git_cmd.c). */
#ifndef SBX_ORCH_GIT_CMD_H
#define SBX_ORCH_GIT_CMD_H

#define GIT_JOB_VERB "__git-job"

/* `trimo-sbx __git-job JOB [OPTIONS]` (argv[0] is the verb). */
int cmd_git_job(int argc, char **argv);

/* `trimo-sbx diff [--stat] ID` and `trimo-sbx push ID`. */
int cmd_diff(int argc, char **argv);
int cmd_push(int argc, char **argv);

#endif
