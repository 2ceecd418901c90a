/* trimo-sbx check: what this host supports, and the fix where not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "config/config.h"
#include "orchestrator/cli.h"
#include "runtime/hostcheck.h"

static const char check_usage[] =
    "usage: trimo-sbx check\n"
    "\n"
    "Try each feature trimo-sbx uses on this host (user namespaces, mounts and an\n"
    "overlay inside one, seccomp, cgroups, user-mode networking, Landlock) and print\n"
    "what works, what does not, and the fix.  Exit 0 when `run` can work here.\n";

int cmd_check(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(check_usage, stdout);
		return EXIT_OK;
	}
	if (argc > 1)
		return cli_error(EXIT_USAGE, "check: unexpected argument '%s'", argv[1]);
	/* task uppers live in the state folder: the overlay must work there */
	struct sbx_config_env cenv;
	config_env_from_process(&cenv);
	struct sbx_err err = {0};
	_cleanup_user_config_ const struct sbx_user_config *ucfg = NULL;
	if (config_load_user(&cenv, &ucfg, &err) < 0)
		return cli_report(EXIT_USAGE, &err);
	struct hostcheck hc;
	hostcheck_run(&hc, ucfg->storage.state_dir);
	static const char *const word[] = {"ok", "warn", "FAIL"};
	for (int i = 0; i < hc.n; i++)
		printf("%-30s %-5s %s\n", hc.items[i].name, word[hc.items[i].level],
		       hc.items[i].detail);
	bool ok = hostcheck_ok(&hc);
	printf("\n%s\n", ok ? "trimo-sbx run works on this host."
	                    : "trimo-sbx run cannot work on this host: see FAIL above.");
	return ok ? EXIT_OK : EXIT_RUNTIME;
}
