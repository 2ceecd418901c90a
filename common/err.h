/* Errors: one fixed-size record the caller owns, filled where the failure
 * happens and given context on the way up, printed once at the top.
 *
 *   return sbx_fail(err, errno, "mount '%s'", dst);   -> -errno
 *   return sbx_wrap(err, "task %s", id);              -> -err->errnum
 *
 * Both are async-signal-safe (no malloc, no stdio, no locale): the sandbox
 * child fills a struct sbx_err after clone() and sends it whole over the
 * sync socket.  The formatter understands %s %d %i %u %x %c %p %% with the
 * l, ll and z length modifiers, and nothing else. */
#ifndef SBX_COMMON_ERR_H
#define SBX_COMMON_ERR_H

#include <stdarg.h>
#include <stddef.h>

#define SBX_ERR_MSG_MAX 480

struct sbx_err {
	int errnum; /* positive errno; EINVAL for bad input without one */
	char msg[SBX_ERR_MSG_MAX];
};

/* Record a failure: msg = formatted text, then ": strerror(errnum)" when
 * errnum is not 0.  Returns -errnum (-EINVAL when errnum is 0), so callers
 * write `return sbx_fail(...)`. */
int sbx_fail(struct sbx_err *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like sbx_fail, but the message carries no strerror text even though
 * err->errnum is set: for failures whose text already says everything. */
int sbx_failx(struct sbx_err *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepend "context: " to an error already recorded.  Returns -err->errnum. */
int sbx_wrap(struct sbx_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clear an error record. */
void sbx_err_clear(struct sbx_err *err);

/* Async-signal-safe vsnprintf subset (see above).  Always NUL-terminates
 * when size > 0; returns the length written (truncated output is cut). */
size_t sbx_vfmt(char *buf, size_t size, const char *fmt, va_list ap);
size_t sbx_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* strerror without locale or allocation: "Permission denied". */
const char *sbx_strerror(int errnum);

#endif
