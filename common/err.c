#include "common/err.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

const char *sbx_strerror(int errnum)
{
	const char *s = strerrordesc_np(errnum);
	return s ? s : "Unknown error";
}

struct out {
	char *buf;
	size_t size, len;
};

static void put_char(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len++] = c;
}

static void put_str(struct out *o, const char *s)
{
	if (!s)
		s = "(null)";
	while (*s)
		put_char(o, *s++);
}

static void put_unsigned(struct out *o, unsigned long long v, unsigned base)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n)
		put_char(o, tmp[--n]);
}

size_t sbx_vfmt(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = {buf, size, 0};

	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			put_char(&o, *p);
			continue;
		}
		p++;
		int lng = 0;
		while (*p == 'l' || *p == 'z') {
			lng = *p == 'z' ? 2 : lng + 1;
			p++;
		}
		switch (*p) {
		case 'd':
		case 'i': {
			long long v = lng == 0   ? va_arg(ap, int)
			              : lng == 1 ? va_arg(ap, long)
			              : lng == 2 ? (long long)va_arg(ap, ssize_t)
			                         : va_arg(ap, long long);
			if (v < 0) {
				put_char(&o, '-');
				put_unsigned(&o, -(unsigned long long)v, 10);
			} else {
				put_unsigned(&o, (unsigned long long)v, 10);
			}
			break;
		}
		case 'u':
		case 'x': {
			unsigned long long v = lng == 0   ? va_arg(ap, unsigned)
			                       : lng == 1 ? va_arg(ap, unsigned long)
			                       : lng == 2 ? va_arg(ap, size_t)
			                                  : va_arg(ap, unsigned long long);
			put_unsigned(&o, v, *p == 'u' ? 10 : 16);
			break;
		}
		case 'p':
			put_str(&o, "0x");
			put_unsigned(&o, (uintptr_t)va_arg(ap, void *), 16);
			break;
		case 's':
			put_str(&o, va_arg(ap, const char *));
			break;
		case 'c':
			put_char(&o, (char)va_arg(ap, int));
			break;
		case '%':
			put_char(&o, '%');
			break;
		case '\0':
			p--;
			break;
		default:
			put_char(&o, '%');
			put_char(&o, *p);
			break;
		}
	}
	if (size)
		buf[o.len] = '\0';
	return o.len;
}

size_t sbx_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = sbx_vfmt(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

static int fail_v(struct sbx_err *err, int errnum, int with_text, const char *fmt, va_list ap)
{
	if (errnum < 0)
		errnum = -errnum;
	if (errnum == 0) {
		errnum = EINVAL;
		with_text = 0;
	}
	if (!err)
		return -errnum;
	err->errnum = errnum;
	size_t n = sbx_vfmt(err->msg, sizeof(err->msg), fmt, ap);
	if (with_text)
		sbx_fmt(err->msg + n, sizeof(err->msg) - n, ": %s", sbx_strerror(errnum));
	return -errnum;
}

int sbx_fail(struct sbx_err *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = fail_v(err, errnum, 1, fmt, ap);
	va_end(ap);
	return r;
}

int sbx_failx(struct sbx_err *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = fail_v(err, errnum, 0, fmt, ap);
	va_end(ap);
	return r;
}

int sbx_wrap(struct sbx_err *err, const char *fmt, ...)
{
	if (!err)
		return -EINVAL;
	char prefix[SBX_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	size_t n = sbx_vfmt(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	if (n + 2 < sizeof(prefix)) {
		size_t keep = sizeof(err->msg) - 1 - (n + 2);
		size_t old = strnlen(err->msg, sizeof(err->msg) - 1);
		if (old > keep)
			old = keep;
		memmove(err->msg + n + 2, err->msg, old);
		err->msg[n + 2 + old] = '\0';
		memcpy(err->msg, prefix, n);
		err->msg[n] = ':';
		err->msg[n + 1] = ' ';
	}
	if (err->errnum <= 0)
		err->errnum = EINVAL;
	return -err->errnum;
}

void sbx_err_clear(struct sbx_err *err)
{
	err->errnum = 0;
	err->msg[0] = '\0';
}
