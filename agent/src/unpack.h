/*
 * The agent's artifact reader (DESIGN.md §4, CONTRACTS.md "Artifact download"): checks a
 * downloaded tar.gz against the digest the source-controller published and unpacks it
 * into a fresh directory, refusing anything a hostile or broken archive could use to
 * write outside that directory.
 *
 * Accepted format (a superset of what source-controller/src/artifact.h writes):
 *  - one gzip member (RFC 1952). Concatenated members and any byte after the first
 *    member's trailer are refused ("trailing data after the gzip stream"): the packer
 *    and tar(1) write one member, and a reader that ignores appended bytes would unpack
 *    something other than what the digest seems to vouch for;
 *  - POSIX ustar ("ustar\0" "00"; GNU's "ustar  \0" is tolerated, its prefix field
 *    ignored); header checksums checked (unsigned or historic signed sum); numeric
 *    fields octal, checked for overflow (base-256 is refused);
 *  - PAX 'x' extended headers: `path` and `size` are honoured, other keys ignored,
 *    GNU.sparse.* refused; every record's length field is checked; 'g' global headers are
 *    validated and ignored; an 'x' header must be followed by a file or directory;
 *  - entry types: regular files ('0', '\0') and directories ('5') only; hard links,
 *    symbolic links, devices, FIFOs, GNU long names ('L'/'K') and every other type are
 *    refused ("unsupported tar entry type");
 *  - two zero blocks end the archive; zero padding may follow (at most
 *    AGENT_TAR_TAIL_MAX bytes), anything else after them is refused. EOF before them is
 *    a truncated archive.
 *
 * Paths (agent_tar_check_path): relative, '/'-separated, not empty, no empty, "." or
 * ".." component, no NUL, at most AGENT_TAR_PATH_MAX bytes without a directory's
 * trailing '/', at most AGENT_TAR_DEPTH_MAX components. Only directories may end with
 * '/'. Backslashes and other bytes are ordinary name bytes, as on Linux.
 */
#ifndef AGENT_UNPACK_H
#define AGENT_UNPACK_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stk/err.h"

/* Default cap on the sum of file sizes of one archive. */
#define AGENT_UNPACK_MAX_BYTES (UINT64_C(4) << 30)
/* Default cap on the entries of one archive (files plus directories). */
#define AGENT_UNPACK_MAX_ENTRIES UINT64_C(1000000)
/* Longest entry path in bytes, without a directory's trailing '/' (the packer's limit). */
#define AGENT_TAR_PATH_MAX 4095u
/* Deepest nesting of an entry path, in components (the sync engine's walk limit). */
#define AGENT_TAR_DEPTH_MAX 256u
/* Largest PAX extended or global header data accepted. */
#define AGENT_TAR_PAX_MAX (64u * 1024)
/* Most zero padding accepted after the end-of-archive blocks (tar -b 2048 records). */
#define AGENT_TAR_TAIL_MAX (1u << 20)
/* "sha256:" + 64 hex digits + NUL. */
#define AGENT_DIGEST_SIZE 72u

/* ---- the streaming parser ------------------------------------------------------------ */

/* One file or directory of an archive, as handed to agent_tar_cb.begin. */
struct agent_tar_entry {
	const char *path; /* validated (agent_tar_check_path), NUL-terminated, no trailing '/' */
	size_t path_len;
	bool is_dir;
	bool exec;     /* any execute bit set in the header's mode */
	uint64_t size; /* data bytes that follow (0 for a directory) */
};

/*
 * What the parser calls, in archive order: begin() for each file or directory, then for a
 * file data() with its content in slices (none for an empty file) and end(). A non-zero
 * return (a negative STK_E… code, with `err` set) stops the parse, which returns it.
 * Any callback may be NULL. Pointers passed are valid only during the call.
 */
struct agent_tar_cb {
	int (*begin)(void *arg, const struct agent_tar_entry *e, stk_err *err);
	int (*data)(void *arg, const void *buf, size_t len, stk_err *err);
	int (*end)(void *arg, const struct agent_tar_entry *e, stk_err *err);
	void *arg;
};

/* Caps on one archive; 0 means the AGENT_UNPACK_MAX_* default. */
struct agent_tar_limits {
	uint64_t max_bytes;   /* sum of the sizes of all files */
	uint64_t max_entries; /* files plus directories (plus 'g' headers) */
};

/* A gzip + tar stream parser fed in slices of any size (opaque). */
struct agent_tar_reader;

/*
 * Creates a reader that reports entries to `cb` (copied; `cb->arg` is borrowed) under
 * `limits` (copied; NULL for the defaults). Memory is bounded (zlib's window, a 64 KiB
 * output slice, one path and at most AGENT_TAR_PAX_MAX of PAX records), whatever the
 * archive. The reader belongs to one thread at a time. Errors: STK_EINVAL (NULL `cb`),
 * STK_EIO (zlib could not initialise).
 */
int agent_tar_reader_new(struct agent_tar_reader **out, const struct agent_tar_cb *cb,
			 const struct agent_tar_limits *limits, stk_err *err);

/*
 * Feeds the next `len` bytes of the .tar.gz. The result depends only on the bytes, never
 * on how they are sliced. After an error the reader only repeats it. Errors: STK_EINVAL
 * (not gzip, corrupt data, a malformed or refused entry, bad path: the message names the
 * entry, or the offset in the tar stream when no name is known yet), STK_ETOOBIG (a cap
 * of `limits` or AGENT_TAR_PAX_MAX), whatever a callback returned.
 */
int agent_tar_reader_feed(struct agent_tar_reader *r, const void *buf, size_t len, stk_err *err);

/*
 * Declares the input complete: 0 when the gzip stream ended with a valid trailer and
 * the tar stream with its end-of-archive blocks, else STK_EINVAL ("truncated archive…"),
 * or the error a previous feed returned.
 */
int agent_tar_reader_finish(struct agent_tar_reader *r, stk_err *err);

/* Frees the reader. NULL-safe. */
void agent_tar_reader_free(struct agent_tar_reader *r);

/*
 * The whole .tar.gz `buf[0, len)` through a reader: new, one feed, finish, free. For
 * tests and the fuzzer. Any thread. Errors: those of the reader calls above.
 */
int agent_tar_parse(const void *buf, size_t len, const struct agent_tar_cb *cb,
		    const struct agent_tar_limits *limits, stk_err *err);

/*
 * Checks one entry path `path[0, len)` (not NUL-terminated; may contain NUL bytes, which
 * are refused) against the rules at the top of this file. On success sets *is_dir when
 * it ends with '/', which is then not part of the path proper. Pure, no allocation, any
 * thread. Errors: STK_EINVAL, the message naming the path and the rule it breaks.
 */
int agent_tar_check_path(const char *path, size_t len, bool *is_dir, stk_err *err);

/* ---- unpacking a downloaded artifact ---------------------------------------------- */

struct agent_unpack_opts {
	const char *archive;	   /* path of the downloaded .tar.gz */
	const char *expect_digest; /* "sha256:<64 hex>" of the archive bytes; NULL: unchecked */
	const char *dest;     /* directory to create and fill: must not exist, its parent must */
	uint64_t max_bytes;   /* cap on the sum of file sizes (0: AGENT_UNPACK_MAX_BYTES) */
	uint64_t max_entries; /* cap on files plus directories (0: AGENT_UNPACK_MAX_ENTRIES) */
	const volatile sig_atomic_t *stop; /* optional: set asynchronously to stop early */
};

#define AGENT_UNPACK_OPTS_INIT               \
	{                                    \
		NULL, NULL, NULL, 0, 0, NULL \
	}

struct agent_unpack_result {
	char digest[AGENT_DIGEST_SIZE]; /* "sha256:<64 hex>" of the archive bytes */
	uint64_t files;			/* regular files written */
	uint64_t dirs;			/* directories created, `dest` itself not counted */
	uint64_t bytes;			/* sum of the files' sizes */
};

/*
 * Unpacks `o->archive` into the new directory `o->dest`.
 *
 * With `expect_digest`, the archive is first read once to hash it, and nothing is parsed
 * or written unless the digest matches; the extraction pass hashes the bytes again and
 * fails if they changed in between. Entries go into a temporary sibling directory
 * "<dest>.tmp-XXXXXX", created with openat/mkdirat relative to directory descriptors,
 * O_NOFOLLOW and O_EXCL (no symlink is ever followed or created), files with mode 0755
 * when the header has an execute bit and 0644 otherwise, directories 0755 (`dest` too),
 * missing parent directories implicitly. Only after the whole archive was valid and
 * written is the directory renamed to `dest` (without replacing anything that appeared
 * there meanwhile). On any error the temporary directory is removed and `dest` does not
 * exist. Files are not fsynced: the unpacked tree is a scratch copy that the sync engine
 * reads (and makes durable where it writes). Memory is bounded as for the reader.
 *
 * `*res` is written only on success. Any thread; blocking (disk I/O, inflate).
 * Errors: STK_EINVAL (bad options, digest mismatch — "artifact digest mismatch: expected
 * …, got …" —, a malformed or hostile archive: the message names the entry and the rule,
 * e.g. an absolute or ".." path, a link or device, a file where a directory is, a
 * duplicate file, a truncated archive), STK_ETOOBIG (more than `max_bytes` or
 * `max_entries`; implicitly created directories count as entries), STK_ENOTFOUND (no
 * archive file), STK_EEXIST (`dest` exists), STK_EIO (any filesystem error, or the
 * archive changed while it was read; the message carries strerror), STK_ECANCELED
 * (`*stop` was set).
 */
int agent_unpack(const struct agent_unpack_opts *o, struct agent_unpack_result *res, stk_err *err);

#endif
