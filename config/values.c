/* Value checkers of config/: pure functions over strings. */
#include "config/internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

int cfg_parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
		if (!strcasecmp(s, yes[i])) {
			*ret = true;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

bool cfg_valid_env_name(const char *s)
{
	if (!(isalpha((unsigned char)*s) || *s == '_'))
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

bool cfg_valid_task_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > SBX_NAME_MAX || *s == '-')
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-'))
			return false;
	return true;
}

/* RFC 1123 labels: [A-Za-z0-9-], 1 to 63, no '-' at either end; extra
 * allows '_' (seen in DNS names, never in a host's own name). */
static bool valid_dns_name(const char *s, size_t max, bool extra)
{
	size_t n = strlen(s), label = 0;
	if (n == 0 || n > max)
		return false;
	for (const char *c = s;; c++) {
		if (*c == '.' || *c == '\0') {
			if (label == 0 || label > 63 || c[-1] == '-')
				return false;
			if (*c == '\0')
				return true;
			label = 0;
			continue;
		}
		if (!(isalnum((unsigned char)*c) || *c == '-' || (extra && *c == '_')))
			return false;
		if (label == 0 && *c == '-')
			return false;
		label++;
	}
}

bool cfg_valid_hostname(const char *s)
{
	return valid_dns_name(s, 64, false); /* HOST_NAME_MAX */
}

/* git check-ref-format, for a branch name. */
bool cfg_valid_ref_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255 || s[0] == '-' || s[0] == '/' || s[n - 1] == '/' || s[n - 1] == '.')
		return false;
	if (strstr(s, "..") || strstr(s, "//") || strstr(s, "@{") || !strcmp(s, "@"))
		return false;
	for (const char *c = s; *c; c++) {
		unsigned char u = (unsigned char)*c;
		if (u < 0x20 || u == 0x7f || strchr(" ~^:?*[\\", u))
			return false;
		if (u == '.' && (c == s || c[-1] == '/'))
			return false;
	}
	for (const char *c = s; (c = strstr(c, ".lock")); c++)
		if (c[5] == '\0' || c[5] == '/')
			return false;
	return true;
}

bool cfg_has_ctrl(const char *s, bool newline_ok)
{
	for (; *s; s++) {
		unsigned char u = (unsigned char)*s;
		if ((u < 0x20 && u != '\t' && !(newline_ok && u == '\n')) || u == 0x7f)
			return true;
	}
	return false;
}

/* Append the components of path to out (which ends without '/'), dropping
 * empty and "." ones. */
static char *append_components(char *out, const char *path)
{
	while (*path) {
		while (*path == '/')
			path++;
		size_t n = strcspn(path, "/");
		if (n == 0)
			break;
		if (!(n == 1 && path[0] == '.')) {
			*out++ = '/';
			memcpy(out, path, n);
			out += n;
		}
		path += n;
	}
	return out;
}

char *cfg_path_join(const char *dir, const char *path)
{
	bool abs = path[0] == '/';
	char *buf = malloc((abs ? 0 : strlen(dir)) + strlen(path) + 2);
	if (!buf)
		return NULL;
	char *o = buf;
	if (!abs)
		o = append_components(o, dir);
	o = append_components(o, path);
	if (o == buf)
		*o++ = '/';
	*o = '\0';
	return buf;
}

int cfg_path_absolute(const char *path, char **ret, struct sbx_err *err)
{
	_cleanup_free_ char *cwd = NULL;
	if (path[0] != '/' && !(cwd = getcwd(NULL, 0)))
		return sbx_fail(err, errno, "%s: cannot find the current folder", path);
	char *abs = cfg_path_join(cwd ? cwd : "/", path);
	if (!abs)
		return sbx_fail(err, ENOMEM, "%s", path);
	*ret = abs;
	return 0;
}

char *cfg_path_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* A decimal with up to `decimals` places, scaled by 10^decimals, in
 * (0, max]. */
static int parse_fixed(const char *s, int decimals, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;
	int digits = 0, places = -1;
	for (; *s; s++) {
		if (*s == '.' && places < 0) {
			places = 0;
			continue;
		}
		if (!isdigit((unsigned char)*s) || places == decimals)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
		digits++;
		if (places >= 0)
			places++;
		if (v > max * 1000)
			return -ERANGE;
	}
	if (digits == 0)
		return -EINVAL;
	for (places = places < 0 ? 0 : places; places < decimals; places++)
		v *= 10;
	if (v == 0 || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int cfg_parse_cpus(const char *s, uint32_t *ret)
{
	uint64_t v;
	int r = parse_fixed(s, 3, (uint64_t)SBX_MAX_CPUS * 1000, &v);
	if (r < 0)
		return r;
	*ret = (uint32_t)v;
	return 0;
}

int cfg_parse_percent(const char *s, uint32_t *ret)
{
	char buf[32];
	size_t n = strlen(s);
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n + 1);
	if (buf[n - 1] == '%')
		buf[n - 1] = '\0';
	uint64_t v;
	int r = parse_fixed(buf, 2, 10000, &v);
	if (r < 0)
		return r;
	*ret = (uint32_t)v;
	return 0;
}

static int parse_port(const char *s, uint16_t *ret)
{
	uint64_t v = 0;
	if (!*s || strlen(s) > 5)
		return -EINVAL;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v < 1 || v > 65535)
		return -ERANGE;
	*ret = (uint16_t)v;
	return 0;
}

/* Parse an IP literal of family into its inet_ntop text. */
static int normalise_ip(int family, const char *s, char *out, size_t size)
{
	unsigned char bin[16];
	if (inet_pton(family, s, bin) != 1 || !inet_ntop(family, bin, out, (socklen_t)size))
		return -EINVAL;
	return 0;
}

/* "[v6]:REST" or "v4:REST": the address into out, *rest past the ':'.
 * Without a leading address *rest = s and out is untouched. */
static int split_addr(char *s, bool required, int *family, char *out, size_t size, char **rest)
{
	if (s[0] == '[') {
		char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		*close = '\0';
		*family = AF_INET6;
		*rest = close + 2;
		return normalise_ip(AF_INET6, s + 1, out, size);
	}
	char *colon = strchr(s, ':');
	if (!colon)
		return -EINVAL;
	if (!required && !strchr(colon + 1, ':')) {
		*rest = s;
		return 0;
	}
	*colon = '\0';
	*family = AF_INET;
	*rest = colon + 1;
	return normalise_ip(AF_INET, s, out, size);
}

int cfg_parse_publish(const char *s, struct sbx_publish *ret)
{
	struct sbx_publish pub = {.family = AF_INET, .addr = "127.0.0.1"};
	char buf[128];
	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	char *slash = strrchr(buf, '/');
	if (slash) {
		*slash = '\0';
		if (!strcmp(slash + 1, "udp"))
			pub.udp = true;
		else if (strcmp(slash + 1, "tcp"))
			return -EINVAL;
	}
	char *ports;
	if (split_addr(buf, false, &pub.family, pub.addr, sizeof(pub.addr), &ports) < 0)
		return -EINVAL;
	char *colon = strchr(ports, ':');
	if (!colon || strchr(colon + 1, ':'))
		return -EINVAL;
	*colon = '\0';
	if (parse_port(ports, &pub.host_port) < 0 || parse_port(colon + 1, &pub.port) < 0)
		return -EINVAL;
	*ret = pub;
	return 0;
}

static int allow_name(char *host, struct sbx_allow *a)
{
	for (char *c = host; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	a->kind = SBX_ALLOW_NAME;
	const char *name = host;
	if (!strncmp(host, "*.", 2)) {
		a->kind = SBX_ALLOW_SUFFIX;
		name += 2;
	}
	if (!valid_dns_name(name, 253, true))
		return -EINVAL;
	return (a->host = strdup(host)) ? 0 : -ENOMEM;
}

int cfg_parse_allow(const char *s, struct sbx_allow *ret)
{
	struct sbx_allow a = {0};
	char buf[300], ip[46];
	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	char *port = strrchr(buf, ':');
	if (!port || parse_port(port + 1, &a.port) < 0)
		return -EINVAL;
	if (buf[0] == '[') {
		int family;
		char *rest;
		if (split_addr(buf, true, &family, ip, sizeof(ip), &rest) < 0 || rest != port + 1)
			return -EINVAL;
		a.kind = SBX_ALLOW_IP;
		a.host = strdup(ip);
	} else {
		*port = '\0';
		if (strchr(buf, ':'))
			return -EINVAL; /* IPv6 needs brackets */
		if (normalise_ip(AF_INET, buf, ip, sizeof(ip)) == 0) {
			a.kind = SBX_ALLOW_IP;
			a.host = strdup(ip);
		} else {
			int r = allow_name(buf, &a);
			if (r < 0)
				return r;
		}
	}
	if (!a.host)
		return -ENOMEM;
	*ret = a;
	return 0;
}

int cfg_parse_author(const char *s, char **ret_name, char **ret_email)
{
	const char *lt = strchr(s, '<');
	size_t n = strlen(s);
	if (!lt || n < 3 || s[n - 1] != '>')
		return -EINVAL;
	const char *name_end = lt;
	while (name_end > s && isspace((unsigned char)name_end[-1]))
		name_end--;
	const char *email = lt + 1, *email_end = s + n - 1;
	if (name_end == s || email == email_end || memchr(s, '>', (size_t)(name_end - s)))
		return -EINVAL;
	for (const char *c = email; c < email_end; c++)
		if (*c == '<' || *c == '>' || isspace((unsigned char)*c))
			return -EINVAL;
	_cleanup_free_ char *name = strndup(s, (size_t)(name_end - s));
	char *mail = strndup(email, (size_t)(email_end - email));
	if (!name || !mail) {
		free(mail);
		return -ENOMEM;
	}
	*ret_name = TAKE_PTR(name);
	*ret_email = mail;
	return 0;
}

size_t cfg_distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	if (n > 64 || m > 64)
		return SIZE_MAX;
	size_t d[65][65];
	for (size_t i = 0; i <= n; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= m; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= n; i++) {
		for (size_t j = 1; j <= m; j++) {
			int ca = tolower((unsigned char)a[i - 1]),
			    cb = tolower((unsigned char)b[j - 1]);
			size_t cost = ca != cb;
			size_t v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1; /* a transposition */
			d[i][j] = v;
		}
	}
	return d[n][m];
}

bool cfg_close_enough(const char *a, const char *b)
{
	size_t n = strlen(a), d = cfg_distance(a, b);
	size_t limit = n <= 4 ? 1 : n <= 8 ? 2 : 3;
	return d <= limit && d < strlen(b);
}

int cfg_split_words(const char *s, char ***v)
{
	while (*s) {
		while (isspace((unsigned char)*s))
			s++;
		size_t n = 0;
		while (s[n] && !isspace((unsigned char)s[n]))
			n++;
		if (n == 0)
			break;
		_cleanup_free_ char *w = strndup(s, n);
		if (!w || sbx_strv_push(v, w) < 0)
			return -ENOMEM;
		s += n;
	}
	return 0;
}
