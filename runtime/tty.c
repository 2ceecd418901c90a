#include "runtime/tty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int tty_open(struct sbx_tty *t, struct sbx_err *err)
{
	memset(t, 0, sizeof(*t));
	t->master = t->slave = -1;
	t->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (t->master < 0)
		return sbx_fail(err, errno, "open a pseudo-terminal");
	if (grantpt(t->master) < 0 || unlockpt(t->master) < 0 ||
	    ptsname_r(t->master, t->slave_path, sizeof(t->slave_path)) != 0) {
		int e = errno;
		tty_close(t);
		return sbx_fail(err, e, "set up the pseudo-terminal");
	}
	t->slave = open(t->slave_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (t->slave < 0) {
		int e = errno;
		tty_close(t);
		return sbx_fail(err, e, "open '%s'", t->slave_path);
	}
	tty_resize(t);
	return 0;
}

int tty_raw(struct sbx_tty *t, struct sbx_err *err)
{
	if (!isatty(STDIN_FILENO))
		return 0;
	if (tcgetattr(STDIN_FILENO, &t->saved) < 0)
		return sbx_fail(err, errno, "read the terminal's settings");
	struct termios raw = t->saved;
	cfmakeraw(&raw);
	raw.c_oflag &= ~(tcflag_t)OPOST;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0)
		return sbx_fail(err, errno, "set the terminal to raw mode");
	t->raw = true;
	return 0;
}

void tty_resize(struct sbx_tty *t)
{
	struct winsize ws;
	if (t->master >= 0 && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
		ioctl(t->master, TIOCSWINSZ, &ws);
}

void tty_close(struct sbx_tty *t)
{
	if (t->raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
		t->raw = false;
	}
	if (t->master >= 0)
		close(t->master);
	if (t->slave >= 0)
		close(t->slave);
	t->master = t->slave = -1;
}
