/* Small helpers shared by every module.  Parsers take user text and return
 * -EINVAL (with a message in err) for anything they do not accept. */
#ifndef SBX_COMMON_UTIL_H
#define SBX_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

/* "512", "64K", "2G", "1.5G" (binary units, optional trailing B or iB).
 * what names the value in the error ("--memory"). */
int sbx_parse_size(const char *s, const char *what, uint64_t *ret, struct sbx_err *err);

/* "90", "90s", "5m", "2h", "1d"; returns seconds. */
int sbx_parse_duration(const char *s, const char *what, uint64_t *ret, struct sbx_err *err);

/* A decimal unsigned integer, whole string, within [min, max]. */
int sbx_parse_u64(const char *s, const char *what, uint64_t min, uint64_t max, uint64_t *ret,
                  struct sbx_err *err);

/* Read a whole (small) file into a NUL-terminated malloc'ed buffer. */
int sbx_read_file(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len,
                  struct sbx_err *err);

/* Write data to dirfd/path through a temporary name and rename(), so
 * readers see the old or the new content, never a mix. */
int sbx_write_file_atomic(int dirfd, const char *path, const void *data, size_t len, mode_t mode,
                          struct sbx_err *err);

/* The first number in a small file (a sysctl, a cgroup counter), or def
 * when it cannot be read. */
long sbx_read_long(const char *path, long def);

/* The path of a helper program that lives next to this one
 * (/proc/self/exe's folder + name), or $env when that variable is set. */
int sbx_helper_path(const char *name, const char *env, char *buf, size_t size);

/* name's first executable match in $PATH (a default PATH when unset),
 * written to out as an absolute path. */
bool sbx_find_in_path(const char *name, char *out, size_t size);

/* Start a helper program: stdin from in (-1: /dev/null), stdout and stderr
 * to out and err (-1: inherited), fd3 as its fd 3 (-1: none), signal mask
 * empty and every disposition default (the caller may block signals for a
 * signalfd).  Returns 0 with *ret_pid, or -errno. */
int sbx_spawn(const char *path, char *const *argv, int in, int out, int err, int fd3,
              pid_t *ret_pid);

/* Hand each complete line of buf[0..*len) (without its newline) to fn,
 * and keep the rest at the front of buf.  A line that fills the whole
 * buffer (size - 1 bytes), or with flush what remains, goes out as is.
 * The lines are NUL-terminated in place: buf needs one spare byte. */
void sbx_take_lines(char *buf, size_t *len, size_t size, bool flush,
                    void (*fn)(void *data, const char *line), void *data);

/* write() all of buf, retrying on EINTR and short writes. */
int sbx_write_all(int fd, const void *buf, size_t len);

/* mkdir -p with mode for each created component. */
int sbx_mkdir_p(const char *path, mode_t mode, struct sbx_err *err);

/* Remove a directory tree without following symlinks, staying on one
 * file system.  Missing is not an error. */
int sbx_rm_rf_at(int dirfd, const char *name, struct sbx_err *err);

/* NULL-terminated string vectors. */
size_t sbx_strv_len(char *const *v);
int sbx_strv_push(char ***v, const char *s); /* copies s; -ENOMEM */
void sbx_strv_free(char **v);

bool sbx_str_has_prefix(const char *s, const char *prefix);

#endif
