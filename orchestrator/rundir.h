/* The private copy-on-write layer of a `trimo-sbx run` of a stored image:
 * <state_dir>/run/<name>-XXXXXX/{upper,work}, removed when the run ends
 * (unless --keep).  The folder holds an flock while its runner lives, so a
 * later run can tell a leftover of a killed runner (lock free) from a live
 * one and remove it. */
#ifndef SBX_ORCH_RUNDIR_H
#define SBX_ORCH_RUNDIR_H

#include <stdbool.h>

#include "common/err.h"

struct sbx_rundir {
	char *path; /* the folder */
	char *upper, *work;
	int lock_fd;
};

/* Sweep leftovers, then create a fresh folder with upper/ and work/. */
int rundir_create(const char *state_dir, const char *name, struct sbx_rundir *ret,
                  struct sbx_err *err);

/* Remove the folder, or with keep leave it (marked kept: no sweep removes
 * it) and release the lock.  Safe on a zeroed struct. */
void rundir_finish(struct sbx_rundir *rd, bool keep);

#endif
