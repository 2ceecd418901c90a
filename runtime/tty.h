/* The sandbox's pseudo-terminal (--tty): the runner keeps the master and
 * relays it to its own stdin/stdout; the caller's terminal is never handed
 * into the sandbox. */
#ifndef SBX_RUNTIME_TTY_H
#define SBX_RUNTIME_TTY_H

#include <stdbool.h>
#include <stddef.h>
#include <termios.h>

#include "common/err.h"

struct sbx_tty {
	int master, slave;
	char slave_path[64];
	bool raw;             /* stdin was put into raw mode */
	struct termios saved; /* ... and is restored from this */
};

/* Open a pty pair sized like stdin (when it is a terminal). */
int tty_open(struct sbx_tty *t, struct sbx_err *err);

/* Put the caller's terminal (stdin) into raw mode, if it is one. */
int tty_raw(struct sbx_tty *t, struct sbx_err *err);

/* Copy stdin's window size to the pty (on SIGWINCH). */
void tty_resize(struct sbx_tty *t);

/* Restore the caller's terminal and close everything. */
void tty_close(struct sbx_tty *t);

#endif
