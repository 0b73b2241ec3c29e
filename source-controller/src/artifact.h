/*
 * Artifact packer: turns one Git commit's tree into the deterministic tar.gz that agents
 * download from the artifact server (DESIGN.md §4, CONTRACTS.md "Artifact download"),
 * and the gitignore-style matcher for GitSource `spec.ignore`.
 *
 * Archive format (the same commit and ignore rules give byte-identical output, hence the
 * same digest, wherever it is packed):
 *  - POSIX ustar; a path longer than ustar's name/prefix fields (100/155 bytes) gets a
 *    PAX extended header ('x', named "@PaxHeader") carrying `path=`, and the ustar
 *    header then holds the entry's base name cut to 100 bytes, so a reader that does not
 *    know PAX still never sees an absolute path or a ".." component.
 *  - Entries are the commit's tree, directories included, named relative to the root
 *    (no leading "./" or "/"), directories with a trailing '/'. Names are in strictly
 *    increasing byte-wise order, which puts every directory before its contents.
 *  - mtime 0, uid/gid 0, uname/gname empty; mode 0755 for directories and executable
 *    files (git 100755), 0644 for every other regular file.
 *  - Regular files and directories only. Symbolic links (git 120000) are never written,
 *    whatever their target: a link pointing inside the tree would need the agent to
 *    resolve it safely, and one pointing outside (/etc/passwd) must never reach a
 *    gateway, so all are skipped and counted in `skipped_symlinks`. Submodules (gitlinks,
 *    160000) have no content in this repository; they are skipped and counted in
 *    `skipped_submodules`.
 *  - Ends with two zero blocks, padded to a 10240-byte record as tar(1) does.
 *  - gzip by zlib: deflate level 6, window 15, memLevel 8, default strategy; header with
 *    no name, no comment, mtime 0, OS byte 3 (Unix). The tar stream reaches deflate in
 *    fixed 64 KiB slices, so the output does not depend on how libgit2 hands out blobs.
 *    Byte-identical output needs the same deflate implementation: stock zlib (any
 *    1.2.x/1.3) is stable; zlib-ng or SIMD forks may compress differently.
 *
 * A tree that git itself would refuse to check out (an entry named "", ".", ".." or
 * ".git" in any case, a name containing '/', duplicate names, an unknown mode) fails the
 * pack with STK_EINVAL instead of being half-packed.
 */
#ifndef SRCCTL_ARTIFACT_H
#define SRCCTL_ARTIFACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <git2.h>

#include "stk/err.h"

/* Default cap on one artifact's bytes (the tar.gz), for GitSource repositories. */
#define SRCCTL_ARTIFACT_MAX_SIZE (UINT64_C(1) << 30)
/* Longest path inside an artifact, in bytes, without a directory's trailing '/'. */
#define SRCCTL_ARTIFACT_PATH_MAX 4095u
/* "sha256:" + 64 hex digits + NUL. */
#define SRCCTL_DIGEST_SIZE 72u

struct srcctl_pack_opts {
	git_repository *repo;	   /* open repository, bare or not; borrowed for the call */
	const char *commit;	   /* 40-hex id of a commit in `repo` */
	const char *const *ignore; /* gitignore-style patterns (GitSource spec.ignore) */
	size_t ignore_count;	   /* entries in `ignore`; `ignore` may be NULL when 0 */
	const char *dest_path;	   /* where the artifact goes; its directory must exist */
	uint64_t max_size;	   /* fail with STK_ETOOBIG past this many artifact bytes */
};

#define SRCCTL_PACK_OPTS_INIT                                       \
	{                                                           \
		NULL, NULL, NULL, 0, NULL, SRCCTL_ARTIFACT_MAX_SIZE \
	}

struct srcctl_pack_result {
	char digest[SRCCTL_DIGEST_SIZE]; /* "sha256:<64 hex>" of the tar.gz bytes */
	uint64_t size;			 /* bytes of the tar.gz */
	size_t files;			 /* regular files in the archive */
	size_t dirs;			 /* directories in the archive */
	size_t skipped_symlinks;	 /* symbolic links left out (never archived) */
	size_t skipped_submodules;	 /* gitlinks left out */
	size_t ignored;			 /* entries matched by `ignore` (a directory counts once) */
};

/*
 * Packs the tree of `opts->commit` into a tar.gz at `opts->dest_path` (format above),
 * leaving out what `opts->ignore` matches (see srcctl_ignore_match).
 *
 * The archive is streamed: blobs go into the gzip stream in 64 KiB slices and the output
 * is written as it is produced, so memory use is bounded by the largest single blob
 * (libgit2 inflates a packed object whole) plus a few hundred KiB, never by the archive.
 * It is written to a temporary file ".<dest name>.tmp-XXXXXX" in the destination's
 * directory (mode 0600, kept by the artifact: only the daemon serves it, to the source's
 * namespace), fsynced, and renamed over `dest_path`, so readers see either
 * the previous file or the complete new one. On any error the temporary file is removed
 * and an existing `dest_path` is left untouched. The directory is fsynced after the
 * rename on a best-effort basis: the rename cannot be undone, so a failure there is not
 * reported; after a crash `dest_path` holds either the old or the new complete file
 * (check it with srcctl_artifact_digest_file).
 *
 * `*out` is written only on success. The repository is used only during the call and
 * must not be used by another thread meanwhile (a git_repository belongs to one thread at
 * a time); call from a worker thread, as this blocks on disk I/O and compression.
 *
 * Errors: STK_EINVAL (bad options, `commit` not 40 hex digits or not a commit, a
 * malformed tree or path longer than SRCCTL_ARTIFACT_PATH_MAX — the message names the
 * path), STK_ENOTFOUND (the commit is not in the repository), STK_ETOOBIG (the artifact
 * would exceed `max_size`, or a file is 8 GiB or larger, which ustar cannot describe),
 * STK_EIO (repository read failure, missing or corrupt object — a streamed blob is
 * re-hashed and checked against its id —, temporary file, write, fsync or rename failure;
 * the message carries the libgit2 or errno text).
 */
int srcctl_artifact_pack(const struct srcctl_pack_opts *opts, struct srcctl_pack_result *out,
			 stk_err *err);

/*
 * Computes "sha256:<64 hex>" of the file at `path` into `out` (written only on success),
 * reading it in 64 KiB slices — to check a stored artifact against status after a
 * restart. Any thread; blocking. Errors: STK_EINVAL (NULL argument), STK_ENOTFOUND (no
 * such file), STK_EIO (open/read failure, or `path` is not a regular file).
 */
int srcctl_artifact_digest_file(const char *path, char out[SRCCTL_DIGEST_SIZE], stk_err *err);

/*
 * Whether `path` is excluded by the gitignore-style `patterns` (in order; NULL entries
 * are skipped). `path` is relative to the repository root, '/'-separated, without a
 * leading or trailing '/'; `is_dir` says whether it names a directory. Pure function,
 * no allocation, any thread.
 *
 * Semantics are git's (gitignore(5)), case-sensitive, byte-wise:
 *  - a blank pattern or one starting with '#' is ignored; trailing spaces are dropped
 *    unless escaped with '\'; "\#" and "\!" start a pattern with a literal '#' or '!';
 *  - '!' negates: a path is excluded when the last pattern matching it is not negated;
 *  - a trailing '/' makes the pattern match directories only;
 *  - a pattern with a '/' at its start or middle is anchored at the root (a leading '/'
 *    is dropped); without one it matches the last component at any depth;
 *  - '*' matches any run within one component, '?' one byte other than '/', "[...]" a
 *    bracket expression ('!' or '^' negates, ranges, "[:alpha:]"-style ASCII classes);
 *    '\' quotes the next byte;
 *  - a "**" component matches zero or more components ("**" + "/foo", "a/" + "**" +
 *    "/b"); a trailing "/" + "**" matches everything inside but not the directory itself;
 *  - a path whose ancestor directory is excluded is excluded too: a file cannot be
 *    re-included when a parent directory is excluded.
 * A malformed pattern (unterminated "[", unknown "[:class:]", trailing lone '\') matches
 * nothing, as in git. Unlike git, '/' always separates components, even inside "[...]".
 */
bool srcctl_ignore_match(const char *const *patterns, size_t n, const char *path, bool is_dir);

#endif
