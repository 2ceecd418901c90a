#include "sandbox/caps.h"

#include <ctype.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

uint64_t caps_default(void)
{
	static const int keep[] = {
	    CAP_CHOWN,   CAP_DAC_OVERRIDE,     CAP_FOWNER,     CAP_FSETID,
	    CAP_KILL,    CAP_NET_BIND_SERVICE, CAP_SETFCAP,    CAP_SETGID,
	    CAP_SETPCAP, CAP_SETUID,           CAP_SYS_CHROOT,
	};
	uint64_t m = 0;
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		m |= 1ULL << keep[i];
	/* As root, the sandbox's uid 0 is the host's: a file capability it
	 * set would be valid for host root on a bound folder.  Only by name. */
	if (geteuid() == 0)
		m &= ~(1ULL << CAP_SETFCAP);
	return m;
}

int caps_last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int last = CAP_LAST_CAP;
	if (f) {
		if (fscanf(f, "%d", &last) != 1 || last < 0 || last > 63)
			last = CAP_LAST_CAP;
		fclose(f);
	}
	return last;
}

int caps_parse_name(const char *name, int *ret_cap, int *ret_all, struct sbx_err *err)
{
	*ret_all = 0;
	if (!strcasecmp(name, "ALL")) {
		*ret_all = 1;
		return 0;
	}
	char buf[64];
	const char *n = name;
	if (strncasecmp(n, "CAP_", 4) != 0) {
		if (snprintf(buf, sizeof(buf), "cap_%s", n) >= (int)sizeof(buf))
			goto bad;
	} else if (snprintf(buf, sizeof(buf), "%s", n) >= (int)sizeof(buf)) {
		goto bad;
	}
	for (char *p = buf; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	cap_value_t v;
	if (cap_from_name(buf, &v) < 0 || v < 0 || v > caps_last_cap())
		goto bad;
	*ret_cap = v;
	return 0;
bad:
	return sbx_failx(err, EINVAL, "unknown capability '%s'", name);
}

static int collect(char *const *names, uint64_t *mask, int *all, struct sbx_err *err)
{
	*mask = 0;
	*all = 0;
	for (size_t i = 0; names && names[i]; i++) {
		int cap, a;
		int r = caps_parse_name(names[i], &cap, &a, err);
		if (r < 0)
			return r;
		if (a)
			*all = 1;
		else
			*mask |= 1ULL << cap;
	}
	return 0;
}

int caps_compute(uint64_t base, char *const *adds, char *const *drops, uint64_t *ret,
                 struct sbx_err *err)
{
	uint64_t add, drop;
	int add_all, drop_all;
	int r = collect(adds, &add, &add_all, err);
	if (r < 0)
		return sbx_wrap(err, "--cap-add");
	r = collect(drops, &drop, &drop_all, err);
	if (r < 0)
		return sbx_wrap(err, "--cap-drop");
	if (add & drop) {
		char names[256];
		caps_format(add & drop, names, sizeof(names));
		return sbx_failx(err, EINVAL, "capability %s is both added and dropped", names);
	}
	int last = caps_last_cap();
	uint64_t all = last >= 63 ? UINT64_MAX : (1ULL << (last + 1)) - 1;
	uint64_t m = base;
	if (drop_all)
		m = 0;
	if (add_all)
		m = all;
	m = (m | add) & ~drop & all;
	*ret = m;
	return 0;
}

void caps_format(uint64_t caps, char *buf, size_t size)
{
	size_t len = 0;
	buf[0] = '\0';
	for (int c = 0; c < 64; c++) {
		if (!(caps & (1ULL << c)))
			continue;
		char *name = cap_to_name(c);
		const char *n = name ? name : "?";
		if (!strncmp(n, "cap_", 4))
			n += 4;
		int w = snprintf(buf + len, size - len, "%s%s", len ? "," : "", n);
		cap_free(name);
		if (w < 0 || (size_t)w >= size - len)
			break;
		for (size_t i = len; i < len + (size_t)w; i++)
			buf[i] = (char)toupper((unsigned char)buf[i]);
		len += (size_t)w;
	}
}

int caps_child(uint64_t keep, int last_cap, struct sbx_err *err)
{
	/* Bounding set first: dropping from it needs CAP_SETPCAP, which the
	 * capset below may take away. */
	for (int c = 0; c <= last_cap; c++) {
		if (keep & (1ULL << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return sbx_fail(err, errno, "drop capability %d from the bounding set", c);
	}
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	for (int i = 0; i < 2; i++) {
		uint32_t v = (uint32_t)(keep >> (32 * i));
		data[i].effective = v;
		data[i].permitted = v;
		/* inheritable stays empty, as in docker and podman since
		 * CVE-2022-24769: no gain through inheritable file caps */
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		return sbx_fail(err, errno, "capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return sbx_fail(err, errno, "clear ambient capabilities");
	return 0;
}
