#include "sandbox/net.h"

#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"

int net_child_loopback(struct sbx_err *err)
{
	_cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return sbx_fail(err, errno, "loopback: socket");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return sbx_fail(err, errno, "loopback: get flags");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return sbx_fail(err, errno, "loopback: bring up");
	return 0;
}

int net_child_hostname(const char *name, struct sbx_err *err)
{
	if (sethostname(name, strlen(name)) < 0)
		return sbx_fail(err, errno, "sethostname '%s'", name);
	return 0;
}
