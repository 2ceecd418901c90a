#include "orchestrator/task_log.h"

#include <stdio.h>
#include <string.h>

static char *digits(char *p, unsigned v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

/* Always exactly TASK_LOG_STAMP_LEN characters, whatever the clock says. */
void task_log_format_stamp(const struct timespec *ts, char buf[TASK_LOG_STAMP_LEN + 1])
{
	struct tm tm;
	time_t t = ts->tv_sec;
	if (!gmtime_r(&t, &tm))
		memset(&tm, 0, sizeof(tm));
	char *p = buf;
	p = digits(p, (unsigned)(tm.tm_year + 1900), 4);
	*p++ = '-';
	p = digits(p, (unsigned)tm.tm_mon + 1, 2);
	*p++ = '-';
	p = digits(p, (unsigned)tm.tm_mday, 2);
	*p++ = 'T';
	p = digits(p, (unsigned)tm.tm_hour, 2);
	*p++ = ':';
	p = digits(p, (unsigned)tm.tm_min, 2);
	*p++ = ':';
	p = digits(p, (unsigned)tm.tm_sec, 2);
	*p++ = '.';
	p = digits(p, (unsigned)(ts->tv_nsec / 1000000), 3);
	*p++ = 'Z';
	*p++ = ' ';
	*p = '\0';
}

void task_log_stamper_init(struct sbx_log_stamper *st,
                           void (*emit)(void *data, const char *text, size_t len), void *data)
{
	st->mid_line = false;
	st->len = 0;
	st->emit = emit;
	st->data = data;
}

void task_log_flush(struct sbx_log_stamper *st)
{
	if (st->len)
		st->emit(st->data, st->buf, st->len);
	st->len = 0;
}

static void put(struct sbx_log_stamper *st, const char *s, size_t n)
{
	while (n) {
		if (st->len == sizeof(st->buf))
			task_log_flush(st);
		size_t k = sizeof(st->buf) - st->len;
		if (k > n)
			k = n;
		memcpy(st->buf + st->len, s, k);
		st->len += k;
		s += k;
		n -= k;
	}
}

void task_log_feed(struct sbx_log_stamper *st, const char *in, size_t n, const struct timespec *now)
{
	char stamp[TASK_LOG_STAMP_LEN + 1];
	bool have_stamp = false;
	while (n) {
		if (!st->mid_line) {
			if (!have_stamp) {
				task_log_format_stamp(now, stamp);
				have_stamp = true;
			}
			put(st, stamp, TASK_LOG_STAMP_LEN);
		}
		const char *nl = memchr(in, '\n', n);
		size_t k = nl ? (size_t)(nl - in) + 1 : n;
		put(st, in, k);
		st->mid_line = !nl;
		in += k;
		n -= k;
	}
}

void task_log_message(struct sbx_log_stamper *st, const struct timespec *now, const char *text)
{
	if (st->mid_line)
		task_log_feed(st, "\n", 1, now);
	char line[1024];
	int n = snprintf(line, sizeof(line), "trimo-sbx: %s\n", text);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	task_log_feed(st, line, (size_t)n, now);
}

void task_log_strip_init(struct sbx_log_strip *st)
{
	st->skip = TASK_LOG_STAMP_LEN;
	st->at_start = true;
}

size_t task_log_strip(struct sbx_log_strip *st, const char *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (st->at_start && st->skip && in[i] != '\n') {
			st->skip--;
			continue;
		}
		st->at_start = false;
		out[o++] = in[i];
		if (in[i] == '\n') {
			st->at_start = true;
			st->skip = TASK_LOG_STAMP_LEN;
		}
	}
	return o;
}
