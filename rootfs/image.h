/* The image store: import a rootfs image once, verified, into a
 * content-addressed folder, and hand out its read-only tree.
 *
 * Sources (the SOURCE strings of `run`, task.ini `[image] source` and
 * `image import`):
 *   FILE                 a plain rootfs tarball, uncompressed or gzip, zstd,
 *                        xz, bzip2, lz4 (found by content, not by name)
 *   oci:DIR[:TAG]        an OCI image layout; TAG matches the annotation
 *                        org.opencontainers.image.ref.name; nested indexes
 *                        are followed and the host's platform is picked
 *   oci-archive:FILE[:TAG]  a tar of an OCI image layout
 *   docker-archive:FILE  what `docker save` / `podman save` write
 *   dir:PATH             a folder used in place: never copied, never written
 *   NAME                 a name given earlier with image_import(.name)
 *   sha256:HEX           an image already in the store
 * A source without a prefix is a NAME when it has no '/' and the store has
 * that name; otherwise it is a FILE.  Relative paths are taken relative to
 * base_dir (the task file's folder; NULL means the working directory).
 *
 * The store (store_dir is the caller's; see image_default_store_dir in
 * orchestrator/cmd_image.c for the current default):
 *   rootfs/<hex>/      the unpacked tree, published whole by one rename
 *   meta/<hex>.json    source, created, size, layers, the image config
 *   refs/<name>        "sha256:<hex>\n"
 *   locks/<hex>.lock   per-image import lock (flock)
 *   sources/<dev>-<ino>[-<tag hash>]  file identity (and size, mtime,
 *                      ctime) -> digest, so a second `run` of the same 2 GB
 *                      tarball does not hash it again
 *   tmp/               unpacks and staging in progress, each flock'ed by
 *                      its owner; what nobody holds is a leftover
 * <hex> is the 64 hex digits of the sha256 key, without "sha256:": a ':'
 * would have to be escaped in overlayfs's lowerdir option (',' and ':' in
 * the store path itself still must be).  The key is the manifest digest
 * (OCI), the config digest (docker-archive) or the archive's sha256 (plain
 * tar).  rootfs/ is mode 0700: as root the trees keep setuid binaries and
 * device nodes that other users must not reach.  Nothing writes a tree
 * after it is published: mount it only as an overlay lower layer (or a
 * read-only bind).  The tree keeps the image's own modes (a 0644 file is
 * writable by its owner outside the sandbox), so never hand it to a
 * sandbox writable.
 *
 * Trust: every blob is checked against its descriptor (size and sha256),
 * every layer's uncompressed stream against the config's rootfs.diff_ids,
 * a plain tar against the digest it is published under (hashed again as it
 * streams, so a file changed meanwhile or a stale sources/ entry fails),
 * nothing is written outside the tree (libarchive's SECURE_SYMLINKS,
 * SECURE_NODOTDOT and SECURE_NOABSOLUTEPATHS stay on; our own checks run
 * first for clearer errors; whiteouts are resolved with
 * openat2(RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS)).  As root, ownership,
 * setuid bits, device nodes and security.* xattrs are kept.  Rootless
 * (euid != 0, or root in a user namespace without the full id map), files
 * belong to the caller (root inside a sandbox that maps the caller to 0),
 * setuid/setgid bits are dropped, device nodes are skipped and counted,
 * security.* and trusted.* xattrs are skipped.  trusted.overlay.* and
 * user.overlay.* are always skipped: overlayfs would act on them in a lower
 * layer.  ACLs and file flags (chattr) are not restored.  Directories
 * whose mode would lock the owner out (0500, 0000) are unpacked writable
 * and get their mode back at the end, so later layers apply and `image rm`
 * works.  Metadata libarchive cannot restore (times, xattrs on a file
 * system without them) is counted in sbx_image.warnings; a failed data
 * write (ENOSPC) fails the import.
 *
 * Concurrency: any number of trimo-sbx processes may use one store.  The
 * per-image lock makes concurrent imports of one image unpack it once (the
 * others wait, then reuse it).  An import that dies (SIGKILL, ENOSPC)
 * leaves nothing published; its leftovers in tmp/ are removed by the next
 * import of that image or by image_prune.
 *
 * Where the unpack runs: resolving an image the store has (a name, a
 * digest, a file seen before, an OCI layout's manifest) needs no
 * libarchive.  Only an unpack does, and linking libarchive costs every
 * start of a program ~2 ms (libxml2, ICU, libstdc++ come with it), so by
 * default image_import() runs the unpack in the helper program
 * IMAGE_HELPER (`IMAGE_HELPER image import --json ...`, next to
 * /proc/self/exe, or $TRIMO_SBX_IMAGE_HELPER), like bin/trimo-sbx-scope.
 * The helper itself, and the tests, pass opts.unpack = image_unpack_here.
 * image_unpack_here() forks one short-lived process per layer
 * (decompression and hashing run beside the unpack, on another core) and
 * changes the working directory while it unpacks, restoring it before it
 * returns.  Call it from a single-threaded process (trimo-sbx has no
 * threads).
 *
 * Errors: every function returns >= 0 on success and -errno on failure,
 * with err filled.  image_err_is_input() tells errors caused by the source
 * (exit code 2) from runtime errors (125).  Nothing here prints. */
#ifndef SBX_ROOTFS_IMAGE_H
#define SBX_ROOTFS_IMAGE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/err.h"

#define IMAGE_DIGEST_MAX 72 /* "sha256:" + 64 hex + NUL, rounded */
#define IMAGE_HELPER     "trimo-sbx-image"
#define IMAGE_NAME_MAX   128

/* Default limits (struct image_import_opts overrides them). */
#define IMAGE_DEFAULT_MAX_BYTES (64ULL << 30) /* uncompressed, all layers */
#define IMAGE_MAX_LAYERS        256
#define IMAGE_MAX_JSON          (4U << 20) /* index, manifest, config */

struct sbx_image {
	char digest[IMAGE_DIGEST_MAX]; /* "sha256:<hex>"; "" for dir: */
	char path[PATH_MAX];           /* absolute path of the read-only tree */
	bool in_place;                 /* dir:PATH: path is the user's folder */
	bool imported;                 /* this call unpacked it (else reused) */
	int hold_fd;                   /* >= 0 with opts.hold: see image_hold */
	/* What this call's unpack did (zero when reused): */
	uint64_t bytes;           /* uncompressed bytes read */
	uint64_t size;            /* apparent size of the tree */
	unsigned layers;          /* 1 for a plain tar */
	unsigned skipped_devices; /* rootless only */
	unsigned skipped_xattrs;  /* rootless security.* / trusted.*, overlay.* */
	unsigned warnings;        /* metadata libarchive could not restore */
	char first_warning[160];  /* the first of those, for the CLI */
};

/* Progress of an import, for a progress line: called at most every 100 ms
 * while layer `layer` (1-based) of `layers` is unpacked.  bytes counts the
 * uncompressed stream so far over all layers. */
typedef void (*image_progress_fn)(void *userdata, unsigned layer, unsigned layers, uint64_t bytes,
                                  double seconds);

struct image_import_opts;

/* Unpacks SOURCE into the store (the store lacks it): the import proper,
 * without names and holds.  Fills ret's digest, imported and statistics. */
typedef int (*image_unpack_fn)(const char *store_dir, const char *source, const char *base_dir,
                               const struct image_import_opts *opts, struct sbx_image *ret,
                               struct sbx_err *err);

struct image_import_opts {
	const char *name;           /* also record refs/<name>; NULL for none */
	image_unpack_fn unpack;     /* NULL: image_unpack_helper */
	bool hold;                  /* return with ret->hold_fd held (see image_hold) */
	uint64_t max_bytes;         /* 0: IMAGE_DEFAULT_MAX_BYTES */
	image_progress_fn progress; /* NULL for none */
	void *progress_data;
};

/* Resolve SOURCE to an unpacked tree, importing it once if the store does
 * not have it yet.  ret->hold_fd is -1.  See image_import for the rest. */
int image_resolve(const char *store_dir, const char *source, const char *base_dir,
                  struct sbx_image *ret, struct sbx_err *err);

/* image_resolve with options.  With opts->name, the name is recorded (a
 * name already given to another image moves to this one).  With
 * opts->hold, ret->hold_fd holds the image as by image_hold, taken so that
 * no image_remove can slip in between (dir: sources hold nothing). */
int image_import(const char *store_dir, const char *source, const char *base_dir,
                 const struct image_import_opts *opts, struct sbx_image *ret, struct sbx_err *err);

/* The unpack in this process (links libarchive). */
int image_unpack_here(const char *store_dir, const char *source, const char *base_dir,
                      const struct image_import_opts *opts, struct sbx_image *ret,
                      struct sbx_err *err);

/* The unpack in the helper program (see "Where the unpack runs"): its
 * progress line goes to our stderr; its error comes back whole (message
 * and errno).  opts->progress is not called. */
int image_unpack_helper(const char *store_dir, const char *source, const char *base_dir,
                        const struct image_import_opts *opts, struct sbx_image *ret,
                        struct sbx_err *err);

/* Hold a stored image for as long as the returned fd stays open (a shared
 * flock on its tree, visible in /proc/locks): image_remove and image_prune
 * refuse to remove it.  The runner keeps the fd for the sandbox's life;
 * the lock belongs to the open file, not the process, so a forked
 * supervisor keeps it (the fd is O_CLOEXEC: clear that before an exec
 * that must keep it).  Fails with -ENOENT when the image is not (or no
 * longer) in the store. */
int image_hold(const char *store_dir, const char *digest, int *ret_fd, struct sbx_err *err);

/* Release a hold (closes the fd; -1 is fine). */
void image_release(int fd);

struct image_info {
	char digest[IMAGE_DIGEST_MAX];
	char **names;   /* NULL-terminated, sorted; may be empty */
	char *source;   /* as given at import; may be NULL */
	uint64_t size;  /* apparent bytes of the tree; 0 if unknown */
	time_t created; /* 0 if unknown */
	unsigned layers;
	int *holders; /* pids holding the image, from /proc/locks */
	size_t n_holders;
};

/* Every image in the store, sorted by creation (newest first). */
int image_list(const char *store_dir, struct image_info **ret, size_t *ret_n, struct sbx_err *err);
void image_list_free(struct image_info *v, size_t n);

/* Remove NAME, or an image by digest ("sha256:<hex>", or a unique prefix
 * of at least 4 hex digits).  A name that shares its image with other
 * names is only untagged.  Otherwise the image and all its names go,
 * unless it is held (-EBUSY, naming the holders).  ret_removed (may be
 * NULL) is set to true when a tree was removed. */
int image_remove(const char *store_dir, const char *what, bool *ret_removed, struct sbx_err *err);

struct image_prune_stats {
	unsigned leftovers; /* interrupted imports and staging folders */
	unsigned images;    /* unnamed images nobody held */
	uint64_t bytes;     /* apparent size of the removed images */
};

/* Remove leftovers of interrupted imports and every image that has no
 * name and is not held. */
int image_prune(const char *store_dir, struct image_prune_stats *ret, struct sbx_err *err);

/* True when err describes bad input (the source, its content, a name or a
 * digest that is not there): exit code 2.  Otherwise 125. */
bool image_err_is_input(const struct sbx_err *err);

/* A valid image name: [A-Za-z0-9][A-Za-z0-9._:@+-]*, at most
 * IMAGE_NAME_MAX - 1 characters, not "sha256:...", not a source prefix. */
bool image_name_valid(const char *name);

#endif
