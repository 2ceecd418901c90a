#include "orchestrator/cli.h"

#include <stdarg.h>
#include <stdio.h>

int cli_error(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("trimo-sbx: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return code;
}

int cli_report(int code, const struct sbx_err *err)
{
	return cli_error(code, "%s", err->msg[0] ? err->msg : sbx_strerror(err->errnum));
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("trimo-sbx: warning: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}
