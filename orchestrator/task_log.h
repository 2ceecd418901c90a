/* The task log: the sandbox's stdout and stderr through one pipe (so they
 * stay interleaved as written), each line stamped with the time its first
 * byte arrived:
 *
 *   2026-11-28T10:15:02.123Z building...\n
 *
 * A line still being written is stored as it comes (a progress bar shows
 * live); its continuation carries no second stamp.  The supervisor's own
 * messages are lines of the same form starting with "trimo-sbx: ". */
#ifndef SBX_ORCH_TASK_LOG_H
#define SBX_ORCH_TASK_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* "YYYY-MM-DDTHH:MM:SS.mmmZ " */
#define TASK_LOG_STAMP_LEN 25

/* Formats the stamp (with its trailing space) into buf, NUL-terminated. */
void task_log_format_stamp(const struct timespec *ts, char buf[TASK_LOG_STAMP_LEN + 1]);

struct sbx_log_stamper {
	bool mid_line; /* the last byte written was not a newline */
	size_t len;
	char buf[8192];
	void (*emit)(void *data, const char *text, size_t len); /* called with stamped text */
	void *data;
};

void task_log_stamper_init(struct sbx_log_stamper *st,
                           void (*emit)(void *data, const char *text, size_t len), void *data);
/* Stamp n bytes that arrived at now; output goes to emit (buffered: call
 * task_log_flush after each batch). */
void task_log_feed(struct sbx_log_stamper *st, const char *in, size_t n,
                   const struct timespec *now);
/* A line of our own ("trimo-sbx: text"), ending an unfinished line first. */
void task_log_message(struct sbx_log_stamper *st, const struct timespec *now, const char *text);
void task_log_flush(struct sbx_log_stamper *st);

/* Removing the stamps again, for `logs` (streaming: a stamp may arrive in
 * pieces). */
struct sbx_log_strip {
	size_t skip; /* stamp bytes still to drop at the current line start */
	bool at_start;
};

void task_log_strip_init(struct sbx_log_strip *st);
/* Writes at most n bytes to out; returns how many. */
size_t task_log_strip(struct sbx_log_strip *st, const char *in, size_t n, char *out);

#endif
