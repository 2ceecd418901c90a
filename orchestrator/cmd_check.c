/* trimo-sbx check: what this host supports, and the fix where not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orchestrator/cli.h"
#include "runtime/hostcheck.h"

static const char check_usage[] =
	"usage: trimo-sbx check\n"
	"\n"
	"Try each feature trimo-sbx uses on this host (user namespaces, mounts and an\n"
	"overlay inside one, seccomp, cgroups, user-mode networking, Landlock) and print\n"
	"what works, what does not, and the fix.  Exit 0 when `run` can work here.\n";

/* Where task uppers will live: the overlay must work on that file system. */
static void scratch_dir(char *buf, size_t size)
{
	const char *x = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	if (geteuid() == 0)
		snprintf(buf, size, "/var/lib/trimo-sbx");
	else if (x && *x)
		snprintf(buf, size, "%s/trimo-sbx", x);
	else if (home && *home)
		snprintf(buf, size, "%s/.local/state/trimo-sbx", home);
	else
		snprintf(buf, size, "/tmp/trimo-sbx-%d", (int)getuid());
}

int cmd_check(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(check_usage, stdout);
		return EXIT_OK;
	}
	if (argc > 1)
		return cli_error(EXIT_USAGE, "check: unexpected argument '%s'", argv[1]);
	char scratch[4096];
	scratch_dir(scratch, sizeof(scratch));
	struct hostcheck hc;
	hostcheck_run(&hc, scratch);
	static const char *const word[] = {"ok", "warn", "FAIL"};
	for (int i = 0; i < hc.n; i++)
		printf("%-30s %-5s %s\n", hc.items[i].name, word[hc.items[i].level],
		       hc.items[i].detail);
	bool ok = hostcheck_ok(&hc);
	printf("\n%s\n", ok ? "trimo-sbx run works on this host."
			    : "trimo-sbx run cannot work on this host: see FAIL above.");
	return ok ? EXIT_OK : EXIT_RUNTIME;
}
