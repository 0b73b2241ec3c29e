/* openat and friends, renameat2 */
#define _GNU_SOURCE
#include "unpack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "stk/alloc.h"

#define TAR_BLOCK     512u
#define SLICE	      (64u * 1024) /* inflate output and file read slices */
#define SHOW_MAX      200	   /* an entry name as quoted in a message */
#define FEED_MAX_IN   (1u << 30)   /* zlib counts input in uInt */
#define RM_MAX_PASS   4		   /* readdir passes when emptying a directory */
#define DIGEST_PREFIX "sha256:"

/* ---- small helpers ------------------------------------------------------------------ */

/*
 * `p[0, len)` made fit for a one-line message: control bytes as \xNN, cut with "..."
 * when long. Entry names come from the archive and end up in logs and conditions.
 */
static const char *show(char out[SHOW_MAX], const char *p, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (o + 8 >= SHOW_MAX) {
			memcpy(out + o, "...", 4);
			return out;
		}
		if (c < 0x20 || c == 0x7f) {
			snprintf(out + o, 5, "\\x%02x", c);
			o += 4;
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return out;
}

static uint64_t pad_of(uint64_t size)
{
	return (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
}

static void hex_digest(const unsigned char md[32], char out[AGENT_DIGEST_SIZE])
{
	static const char digits[] = "0123456789abcdef";
	size_t o = sizeof(DIGEST_PREFIX) - 1;

	memcpy(out, DIGEST_PREFIX, o);
	for (int i = 0; i < 32; i++) {
		out[o++] = digits[md[i] >> 4];
		out[o++] = digits[md[i] & 15];
	}
	out[o] = '\0';
}

/* ---- paths ---------------------------------------------------------------------------- */

int agent_tar_check_path(const char *path, size_t len, bool *is_dir, stk_err *err)
{
	char sh[SHOW_MAX];
	size_t n = len, depth = 0;
	bool dir = false;

	if (!path || len == 0)
		return stk_err_set(err, STK_EINVAL, "tar entry with an empty path");
	show(sh, path, len);
	if (memchr(path, '\0', len))
		return stk_err_set(err, STK_EINVAL, "tar entry '%s': path contains a NUL byte", sh);
	if (path[0] == '/')
		return stk_err_set(err, STK_EINVAL, "tar entry '%s': absolute path", sh);
	if (path[n - 1] == '/') {
		dir = true;
		n--;
	}
	if (n > AGENT_TAR_PATH_MAX)
		return stk_err_set(err, STK_EINVAL, "tar entry '%s': path longer than %u bytes", sh,
				   AGENT_TAR_PATH_MAX);
	for (size_t i = 0; i <= n;) {
		const char *c = path + i;
		const char *slash = memchr(c, '/', n - i);
		size_t cl = slash ? (size_t)(slash - c) : n - i;

		if (cl == 0)
			return stk_err_set(err, STK_EINVAL, "tar entry '%s': empty path component",
					   sh);
		if (cl == 1 && c[0] == '.')
			return stk_err_set(err, STK_EINVAL, "tar entry '%s': '.' path component",
					   sh);
		if (cl == 2 && c[0] == '.' && c[1] == '.')
			return stk_err_set(err, STK_EINVAL, "tar entry '%s': '..' path component",
					   sh);
		if (++depth > AGENT_TAR_DEPTH_MAX)
			return stk_err_set(err, STK_EINVAL,
					   "tar entry '%s': more than %u nested path components",
					   sh, AGENT_TAR_DEPTH_MAX);
		i += cl + 1;
	}
	if (is_dir)
		*is_dir = dir;
	return 0;
}

/* ---- the tar + gzip reader ----------------------------------------------------------- */

enum tar_state {
	ST_HEADER, /* collecting a header block */
	ST_PAX,	   /* collecting PAX records */
	ST_DATA,   /* handing a file's data to the callbacks */
	ST_PAD,	   /* skipping the padding after a member */
	ST_END1,   /* one zero block seen: the next one must be zero too */
	ST_END	   /* after the end-of-archive blocks: only zero padding */
};

struct agent_tar_reader {
	struct agent_tar_cb cb;
	uint64_t max_bytes, max_entries;
	stk_err err; /* the first error, repeated by every later call */
	int rc;

	z_stream zs;
	bool zs_ready, gz_done;
	unsigned char *out; /* SLICE bytes of inflated tar stream */

	enum tar_state st;
	uint64_t off; /* tar stream bytes consumed */
	unsigned char hdr[TAR_BLOCK];
	size_t hlen;
	uint64_t left; /* bytes left in the current member's data (or PAX records) */
	uint64_t pad;  /* padding after them */
	uint64_t tail; /* zero bytes after the end-of-archive blocks */
	uint64_t entries, bytes;

	/* PAX records being collected, and what an 'x' header says about the next entry */
	char pax_type;
	unsigned char *pax; /* AGENT_TAR_PAX_MAX bytes, allocated on first use */
	size_t pax_len;
	bool pax_pending; /* an 'x' header was read: the next header must be an entry */
	bool pax_has_path, pax_has_size;
	size_t pax_path_len;
	uint64_t pax_size;
	char pax_path[AGENT_TAR_PATH_MAX + 2];

	/* the current entry */
	char path[AGENT_TAR_PATH_MAX + 2];
	struct agent_tar_entry cur;
};

static int fail(struct agent_tar_reader *r, int rc)
{
	if (!r->rc) {
		r->rc = rc;
		if (!r->err.code)
			r->err.code = rc;
	}
	return r->rc;
}

/* Records a parse error (the first one sticks) and returns its code. */
__attribute__((format(printf, 3, 4))) static int reader_fail(struct agent_tar_reader *r, int code,
							     const char *fmt, ...)
{
	char msg[STK_ERR_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	stk_err_set(&r->err, code, "%s", msg);
	return fail(r, code);
}

/*
 * An octal numeric field: optional leading spaces, at least one digit, then only NULs and
 * spaces. Base-256 (high bit of the first byte) and overflow are refused.
 */
static bool parse_octal(const unsigned char *f, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	bool any = false;

	if (n && (f[0] & 0x80))
		return false;
	while (i < n && f[i] == ' ')
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v > (UINT64_MAX >> 3))
			return false;
		v = v << 3 | (uint64_t)(f[i] - '0');
		any = true;
	}
	for (; i < n; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return false;
	if (!any)
		return false;
	*out = v;
	return true;
}

/* A PAX decimal value: digits only, no sign, no overflow. */
static bool parse_decimal(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)((unsigned char)s[i] - '0');
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/*
 * Parses the PAX records "<len> <key>=<value>\n" collected in r->pax. Every length must
 * be exact (no leading zero, the record ending in '\n' where it says). For an 'x' header,
 * `path` and `size` are kept for the next entry; GNU.sparse.* is refused (the data would
 * be a sparse map, not the file); other keys are ignored, as are all of a 'g' header's.
 */
static int pax_parse(struct agent_tar_reader *r)
{
	const char *p = (const char *)r->pax, *end = p + r->pax_len;
	uint64_t at = r->off - r->pax_len;

	while (p < end) {
		size_t avail = (size_t)(end - p), n = 0, i = 0, rest, klen, vlen;
		const char *key, *eq, *val;

		if (p[0] < '1' || p[0] > '9')
			goto bad;
		for (; i < avail && p[i] >= '0' && p[i] <= '9'; i++) {
			n = n * 10 + (size_t)(p[i] - '0');
			if (n > avail)
				goto bad;
		}
		if (i == avail || p[i] != ' ' || n < i + 4 || p[n - 1] != '\n')
			goto bad;
		key = p + i + 1;
		rest = n - i - 2;
		eq = memchr(key, '=', rest);
		if (!eq || eq == key)
			goto bad;
		klen = (size_t)(eq - key);
		val = eq + 1;
		vlen = rest - klen - 1;
		if (r->pax_type == 'x') {
			if (klen == 4 && !memcmp(key, "path", 4)) {
				bool dir;
				if (agent_tar_check_path(val, vlen, &dir, &r->err))
					return fail(r, STK_EINVAL);
				memcpy(r->pax_path, val, vlen);
				r->pax_path[vlen] = '\0';
				r->pax_path_len = vlen;
				r->pax_has_path = true;
			} else if (klen == 4 && !memcmp(key, "size", 4)) {
				if (!parse_decimal(val, vlen, &r->pax_size))
					return reader_fail(r, STK_EINVAL,
							   "bad PAX size record at byte "
							   "%llu of the tar stream",
							   (unsigned long long)at);
				r->pax_has_size = true;
			} else if (klen > 11 && !memcmp(key, "GNU.sparse.", 11)) {
				return reader_fail(r, STK_EINVAL,
						   "unsupported tar entry type (GNU sparse "
						   "file) at byte %llu of the tar stream",
						   (unsigned long long)at);
			}
		}
		p += n;
	}
	return 0;
bad:
	return reader_fail(r, STK_EINVAL,
			   "malformed PAX record in the header at byte %llu of the tar stream",
			   (unsigned long long)at);
}

static const char *type_name(unsigned char t)
{
	switch (t) {
	case '1':
		return "hard link";
	case '2':
		return "symbolic link";
	case '3':
		return "character device";
	case '4':
		return "block device";
	case '6':
		return "FIFO";
	case '7':
		return "contiguous file";
	case 'L':
		return "GNU long name";
	case 'K':
		return "GNU long link name";
	case 'S':
		return "GNU sparse file";
	case 'D':
		return "GNU directory dump";
	case 'M':
		return "GNU multi-volume continuation";
	case 'V':
		return "GNU volume label";
	default:
		return NULL;
	}
}

/* The name a header gives its entry (the PAX path, else prefix "/" name), for messages. */
static size_t header_name(struct agent_tar_reader *r, bool posix, char *out)
{
	size_t nl, pl;

	if (r->pax_has_path) {
		memcpy(out, r->pax_path, r->pax_path_len + 1);
		return r->pax_path_len;
	}
	nl = strnlen((const char *)r->hdr, 100);
	pl = posix ? strnlen((const char *)r->hdr + 345, 155) : 0;
	if (pl) {
		memcpy(out, r->hdr + 345, pl);
		out[pl] = '/';
		memcpy(out + pl + 1, r->hdr, nl);
		out[pl + 1 + nl] = '\0';
		return pl + 1 + nl;
	}
	memcpy(out, r->hdr, nl);
	out[nl] = '\0';
	return nl;
}

static void pax_reset(struct agent_tar_reader *r)
{
	r->pax_pending = false;
	r->pax_has_path = false;
	r->pax_has_size = false;
	r->pax_path_len = 0;
	r->pax_size = 0;
}

/* A file or directory header: validate, apply the limits, report it. */
static int tar_entry(struct agent_tar_reader *r, bool posix, bool is_dir)
{
	char sh[SHOW_MAX];
	uint64_t size, mode;
	size_t len;
	bool slash = false;
	int rc;

	len = header_name(r, posix, r->path);
	if (agent_tar_check_path(r->path, len, &slash, &r->err))
		return fail(r, STK_EINVAL);
	show(sh, r->path, len);
	if (slash && !is_dir)
		return reader_fail(r, STK_EINVAL, "tar entry '%s': a file name cannot end with '/'",
				   sh);
	if (slash)
		r->path[--len] = '\0';
	if (r->pax_has_size) {
		size = r->pax_size;
	} else if (r->hdr[124] & 0x80) {
		return reader_fail(r, STK_EINVAL,
				   "tar entry '%s': base-256 size field not supported", sh);
	} else if (!parse_octal(r->hdr + 124, 12, &size)) {
		return reader_fail(r, STK_EINVAL, "tar entry '%s': bad size field", sh);
	}
	if (!parse_octal(r->hdr + 100, 8, &mode))
		return reader_fail(r, STK_EINVAL, "tar entry '%s': bad mode field", sh);
	if (is_dir && size)
		return reader_fail(r, STK_EINVAL, "tar entry '%s': directory with %llu data bytes",
				   sh, (unsigned long long)size);
	if (++r->entries > r->max_entries)
		return reader_fail(r, STK_ETOOBIG,
				   "tar entry '%s': the archive has more than %llu entries", sh,
				   (unsigned long long)r->max_entries);
	if (size > r->max_bytes - r->bytes)
		return reader_fail(r, STK_ETOOBIG,
				   "tar entry '%s': the files add up to more than %llu bytes", sh,
				   (unsigned long long)r->max_bytes);
	r->bytes += size;
	pax_reset(r);

	r->cur.path = r->path;
	r->cur.path_len = len;
	r->cur.is_dir = is_dir;
	r->cur.exec = (mode & 0111) != 0;
	r->cur.size = size;
	if (r->cb.begin && (rc = r->cb.begin(r->cb.arg, &r->cur, &r->err)))
		return fail(r, rc);
	if (is_dir) {
		r->st = ST_HEADER;
		return 0;
	}
	if (size == 0) {
		r->st = ST_HEADER;
		if (r->cb.end && (rc = r->cb.end(r->cb.arg, &r->cur, &r->err)))
			return fail(r, rc);
		return 0;
	}
	r->left = size;
	r->pad = pad_of(size);
	r->st = ST_DATA;
	return 0;
}

/* One complete header block in r->hdr (at tar offset r->off - TAR_BLOCK). */
static int tar_block(struct agent_tar_reader *r)
{
	const unsigned char *h = r->hdr;
	unsigned long long at = (unsigned long long)(r->off - TAR_BLOCK);
	uint64_t stored, usum = 0, size;
	int64_t ssum = 0;
	unsigned char type;
	bool zero = true, posix;

	for (size_t i = 0; i < TAR_BLOCK && zero; i++)
		zero = h[i] == 0;
	if (zero) {
		if (r->pax_pending)
			return reader_fail(r, STK_EINVAL,
					   "PAX header not followed by an entry at byte "
					   "%llu of the tar stream",
					   at);
		r->st = r->st == ST_END1 ? ST_END : ST_END1;
		return 0;
	}
	if (r->st == ST_END1)
		return reader_fail(r, STK_EINVAL,
				   "lone zero block before byte %llu of the tar stream", at);

	for (size_t i = 0; i < TAR_BLOCK; i++) {
		unsigned char c = i >= 148 && i < 156 ? ' ' : h[i];
		usum += c;
		ssum += (signed char)c;
	}
	if (!parse_octal(h + 148, 8, &stored) ||
	    (stored != usum && (ssum < 0 || stored != (uint64_t)ssum)))
		return reader_fail(r, STK_EINVAL,
				   "bad tar header checksum at byte %llu of the tar stream", at);
	if (!memcmp(h + 257, "ustar\0", 6) && !memcmp(h + 263, "00", 2))
		posix = true;
	else if (!memcmp(h + 257, "ustar  \0", 8))
		posix = false;
	else
		return reader_fail(r, STK_EINVAL,
				   "not a ustar header at byte %llu of the tar stream", at);

	type = h[156];
	switch (type) {
	case '0':
	case '\0':
		return tar_entry(r, posix, false);
	case '5':
		return tar_entry(r, posix, true);
	case 'x':
	case 'g':
		if (r->pax_pending)
			return reader_fail(r, STK_EINVAL,
					   "PAX header not followed by an entry at byte "
					   "%llu of the tar stream",
					   at);
		if (!parse_octal(h + 124, 12, &size))
			return reader_fail(r, STK_EINVAL,
					   "bad PAX header size at byte %llu of the tar stream",
					   at);
		if (size > AGENT_TAR_PAX_MAX)
			return reader_fail(r, STK_ETOOBIG,
					   "PAX header of %llu bytes (more than %u) at byte "
					   "%llu of the tar stream",
					   (unsigned long long)size, AGENT_TAR_PAX_MAX, at);
		if (type == 'g' && ++r->entries > r->max_entries)
			return reader_fail(r, STK_ETOOBIG, "the archive has more than %llu entries",
					   (unsigned long long)r->max_entries);
		if (!r->pax)
			r->pax = stk_malloc(AGENT_TAR_PAX_MAX);
		r->pax_type = (char)type;
		r->pax_len = 0;
		r->pax_pending = type == 'x';
		r->left = size;
		r->pad = pad_of(size);
		r->st = size ? ST_PAX : ST_HEADER;
		return 0;
	default: {
		char name[AGENT_TAR_PATH_MAX + 2], sh[SHOW_MAX];
		const char *what = type_name(type);
		size_t len = header_name(r, posix, name);

		show(sh, name, len);
		if (what)
			return reader_fail(r, STK_EINVAL,
					   "tar entry '%s': unsupported tar entry type (%s)", sh,
					   what);
		return reader_fail(r, STK_EINVAL,
				   "tar entry '%s': unsupported tar entry type 0x%02x", sh, type);
	}
	}
}

/* The next `len` bytes of the tar stream. */
static int tar_feed(struct agent_tar_reader *r, const unsigned char *p, size_t len)
{
	int rc;

	while (len > 0) {
		size_t n;

		switch (r->st) {
		case ST_HEADER:
		case ST_END1:
			n = TAR_BLOCK - r->hlen;
			n = n < len ? n : len;
			memcpy(r->hdr + r->hlen, p, n);
			r->hlen += n;
			r->off += n;
			if (r->hlen == TAR_BLOCK) {
				r->hlen = 0;
				if ((rc = tar_block(r)))
					return rc;
			}
			break;
		case ST_PAX:
			n = r->left < len ? (size_t)r->left : len;
			memcpy(r->pax + r->pax_len, p, n);
			r->pax_len += n;
			r->left -= n;
			r->off += n;
			if (r->left == 0) {
				if ((rc = pax_parse(r)))
					return rc;
				r->st = r->pad ? ST_PAD : ST_HEADER;
			}
			break;
		case ST_DATA:
			n = r->left < len ? (size_t)r->left : len;
			if (r->cb.data && (rc = r->cb.data(r->cb.arg, p, n, &r->err)))
				return fail(r, rc);
			r->left -= n;
			r->off += n;
			if (r->left == 0) {
				r->st = r->pad ? ST_PAD : ST_HEADER;
				if (r->cb.end && (rc = r->cb.end(r->cb.arg, &r->cur, &r->err)))
					return fail(r, rc);
			}
			break;
		case ST_PAD:
			n = r->pad < len ? (size_t)r->pad : len;
			r->pad -= n;
			r->off += n;
			if (r->pad == 0)
				r->st = ST_HEADER;
			break;
		case ST_END:
		default:
			/* Byte by byte, so the error does not depend on the slicing. */
			n = len < AGENT_TAR_TAIL_MAX - r->tail
				    ? len
				    : (size_t)(AGENT_TAR_TAIL_MAX - r->tail);
			for (size_t i = 0; i < n; i++)
				if (p[i])
					return reader_fail(
						r, STK_EINVAL,
						"data after the end-of-archive blocks at "
						"byte %llu of the tar stream",
						(unsigned long long)(r->off + i));
			r->off += n;
			r->tail += n;
			if (n < len)
				return reader_fail(r, STK_EINVAL,
						   "more than %u bytes of padding after the "
						   "end-of-archive blocks",
						   AGENT_TAR_TAIL_MAX);
			break;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static int reader_out(struct agent_tar_reader *r, stk_err *err)
{
	if (r->rc && err)
		*err = r->err;
	return r->rc;
}

int agent_tar_reader_new(struct agent_tar_reader **out, const struct agent_tar_cb *cb,
			 const struct agent_tar_limits *limits, stk_err *err)
{
	struct agent_tar_reader *r;
	int zrc;

	if (!out || !cb)
		return stk_err_set(err, STK_EINVAL, "agent_tar_reader_new: NULL argument");
	r = stk_calloc(1, sizeof(*r));
	r->cb = *cb;
	r->max_bytes = limits && limits->max_bytes ? limits->max_bytes : AGENT_UNPACK_MAX_BYTES;
	r->max_entries =
		limits && limits->max_entries ? limits->max_entries : AGENT_UNPACK_MAX_ENTRIES;
	/* 16 + window bits: gzip only (no zlib or raw deflate), the largest window. */
	zrc = inflateInit2(&r->zs, 16 + MAX_WBITS);
	if (zrc != Z_OK) {
		free(r);
		return stk_err_set(err, STK_EIO, "cannot initialise zlib: %s", zError(zrc));
	}
	r->zs_ready = true;
	r->out = stk_malloc(SLICE);
	*out = r;
	return 0;
}

void agent_tar_reader_free(struct agent_tar_reader *r)
{
	if (!r)
		return;
	if (r->zs_ready)
		inflateEnd(&r->zs);
	free(r->out);
	free(r->pax);
	free(r);
}

int agent_tar_reader_feed(struct agent_tar_reader *r, const void *buf, size_t len, stk_err *err)
{
	const unsigned char *p = buf;

	if (r->rc)
		return reader_out(r, err);
	while (len > 0) {
		size_t chunk = len < FEED_MAX_IN ? len : FEED_MAX_IN;

		if (r->gz_done) {
			reader_fail(r, STK_EINVAL,
				    "trailing data after the gzip stream (%llu tar bytes)",
				    (unsigned long long)r->off);
			return reader_out(r, err);
		}
		r->zs.next_in = (unsigned char *)p;
		r->zs.avail_in = (uInt)chunk;
		for (;;) {
			uInt in_before = r->zs.avail_in;
			size_t produced;
			int zrc;

			r->zs.next_out = r->out;
			r->zs.avail_out = SLICE;
			zrc = inflate(&r->zs, Z_NO_FLUSH);
			/*
			 * What inflate produced before an error goes to the tar parser first, so
			 * that the outcome does not depend on how the input was sliced.
			 */
			produced = SLICE - r->zs.avail_out;
			if (produced && tar_feed(r, r->out, produced))
				return reader_out(r, err);
			if (zrc != Z_OK && zrc != Z_STREAM_END && zrc != Z_BUF_ERROR) {
				reader_fail(r, STK_EINVAL, "not a valid gzip stream: %s",
					    r->zs.msg ? r->zs.msg : zError(zrc));
				return reader_out(r, err);
			}
			if (zrc == Z_STREAM_END) {
				r->gz_done = true;
				break;
			}
			if (r->zs.avail_out && !r->zs.avail_in)
				break; /* all input used, no output pending */
			if (!produced && r->zs.avail_in == in_before) {
				reader_fail(r, STK_EINVAL,
					    "not a valid gzip stream: inflate made no "
					    "progress");
				return reader_out(r, err);
			}
		}
		/* What inflate did not take after the end of the gzip member is trailing data. */
		chunk -= r->zs.avail_in;
		p += chunk;
		len -= chunk;
		r->zs.next_in = NULL;
		r->zs.avail_in = 0;
	}
	return 0;
}

int agent_tar_reader_finish(struct agent_tar_reader *r, stk_err *err)
{
	char sh[SHOW_MAX];

	if (r->rc)
		return reader_out(r, err);
	switch (r->st) {
	case ST_END:
		break;
	case ST_DATA:
		reader_fail(r, STK_EINVAL,
			    "truncated archive: tar entry '%s' ends after %llu of %llu bytes",
			    show(sh, r->cur.path, r->cur.path_len),
			    (unsigned long long)(r->cur.size - r->left),
			    (unsigned long long)r->cur.size);
		return reader_out(r, err);
	case ST_END1:
		reader_fail(r, STK_EINVAL,
			    "truncated archive: one end-of-archive block instead of two");
		return reader_out(r, err);
	default:
		reader_fail(r, STK_EINVAL,
			    "truncated archive: no end-of-archive blocks after %llu tar bytes",
			    (unsigned long long)r->off);
		return reader_out(r, err);
	}
	if (!r->gz_done) {
		reader_fail(r, STK_EINVAL, "truncated archive: the gzip stream ends early");
		return reader_out(r, err);
	}
	return 0;
}

int agent_tar_parse(const void *buf, size_t len, const struct agent_tar_cb *cb,
		    const struct agent_tar_limits *limits, stk_err *err)
{
	struct agent_tar_reader *r = NULL;
	int rc;

	rc = agent_tar_reader_new(&r, cb, limits, err);
	if (rc == 0)
		rc = agent_tar_reader_feed(r, buf, len, err);
	if (rc == 0)
		rc = agent_tar_reader_finish(r, err);
	agent_tar_reader_free(r);
	return rc;
}

/* ---- writing the entries ------------------------------------------------------------- */

struct extract {
	int root;  /* the temporary directory */
	int dirfd; /* the directory of the last entry, -1 when none (never `root`) */
	size_t dirlen;
	int fd; /* the file being written, -1 when none */
	uint64_t max_entries, files, dirs, bytes;
	const volatile sig_atomic_t *stop;
	char name[SHOW_MAX]; /* the current entry, for messages */
	char dir[AGENT_TAR_PATH_MAX + 1];
	char walk[AGENT_TAR_PATH_MAX + 1];
};

/* A filesystem error on entry `sh`; a name the filesystem finds too long is the archive's. */
static int fs_error(stk_err *err, int errnum, const char *what, const char *sh)
{
	if (errnum == ENAMETOOLONG)
		return stk_err_set(err, STK_EINVAL,
				   "tar entry '%s': name too long for the filesystem", sh);
	return stk_err_errno(err, errnum, "cannot %s '%s'", what, sh);
}

static int count_created(struct extract *x, bool dir, stk_err *err)
{
	if (dir)
		x->dirs++;
	else
		x->files++;
	if (x->files + x->dirs > x->max_entries)
		return stk_err_set(err, STK_ETOOBIG,
				   "tar entry '%s': the archive has more than %llu entries",
				   x->name, (unsigned long long)x->max_entries);
	return 0;
}

/* Opens the directory `name` under `at`, creating it (0755) when missing. */
static int dir_step(struct extract *x, int at, const char *name, int *out, stk_err *err)
{
	int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	bool created = false;
	int fd = openat(at, name, flags);

	if (fd < 0 && errno == ENOENT) {
		if (mkdirat(at, name, 0755) == 0)
			created = true;
		else if (errno != EEXIST)
			return fs_error(err, errno, "create a directory for", x->name);
		fd = openat(at, name, flags);
	}
	if (fd < 0) {
		if (errno == ENOTDIR || errno == ELOOP)
			return stk_err_set(
				err, STK_EINVAL,
				"tar entry '%s': a parent path is a file, not a directory",
				x->name);
		return fs_error(err, errno, "open a directory for", x->name);
	}
	if (created && fchmod(fd, 0755)) {
		int e = errno;
		close(fd);
		return fs_error(err, e, "chmod a directory for", x->name);
	}
	if (created && count_created(x, true, err)) {
		close(fd);
		return STK_ETOOBIG;
	}
	*out = fd;
	return 0;
}

static void cache_dir(struct extract *x, int fd, const char *path, size_t len)
{
	if (x->dirfd >= 0 && x->dirfd != fd)
		close(x->dirfd);
	x->dirfd = fd;
	memcpy(x->dir, path, len);
	x->dirlen = len;
}

/*
 * The directory `path[0, len)` (relative to the root; "" is the root), created with its
 * missing parents. The result is owned by `x` (the root or the cached directory). Starts
 * from the cached directory when it is an ancestor: archives list a directory's entries
 * together, so most entries need one openat or none.
 */
static int dir_open(struct extract *x, const char *path, size_t len, int *out, stk_err *err)
{
	int cur = x->root, next = -1, rc;
	size_t i = 0;

	if (len == 0) {
		*out = x->root;
		return 0;
	}
	if (x->dirfd >= 0 && x->dirlen == len && !memcmp(x->dir, path, len)) {
		*out = x->dirfd;
		return 0;
	}
	if (x->dirfd >= 0 && x->dirlen < len && path[x->dirlen] == '/' &&
	    !memcmp(x->dir, path, x->dirlen)) {
		cur = x->dirfd;
		i = x->dirlen + 1;
	}
	memcpy(x->walk, path, len);
	x->walk[len] = '\0';
	while (i < len) {
		size_t j = i;
		while (j < len && x->walk[j] != '/')
			j++;
		x->walk[j] = '\0';
		rc = dir_step(x, cur, x->walk + i, &next, err);
		if (cur != x->root && cur != x->dirfd)
			close(cur);
		if (rc)
			return rc;
		cur = next;
		i = j + 1;
	}
	cache_dir(x, cur, path, len);
	*out = cur;
	return 0;
}

static int on_begin(void *arg, const struct agent_tar_entry *e, stk_err *err)
{
	struct extract *x = arg;
	const char *slash = strrchr(e->path, '/');
	const char *base = slash ? slash + 1 : e->path;
	size_t plen = slash ? (size_t)(slash - e->path) : 0;
	struct stat st;
	int pfd, fd, rc;

	if (x->stop && *x->stop)
		return stk_err_set(err, STK_ECANCELED, "unpack stopped");
	show(x->name, e->path, e->path_len);
	if ((rc = dir_open(x, e->path, plen, &pfd, err)))
		return rc;
	if (e->is_dir) {
		if (mkdirat(pfd, base, 0755)) {
			if (errno != EEXIST)
				return fs_error(err, errno, "create directory", x->name);
			if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW))
				return fs_error(err, errno, "stat", x->name);
			if (!S_ISDIR(st.st_mode))
				return stk_err_set(err, STK_EINVAL,
						   "tar entry '%s': directory where a file exists",
						   x->name);
			return 0; /* listed again, or created implicitly before */
		}
		fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return fs_error(err, errno, "open directory", x->name);
		if (fchmod(fd, 0755)) {
			int en = errno;
			close(fd);
			return fs_error(err, en, "chmod directory", x->name);
		}
		/* Its entries come next in an archive in tar order. */
		cache_dir(x, fd, e->path, e->path_len);
		return count_created(x, true, err);
	}
	fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno != EEXIST)
			return fs_error(err, errno, "create file", x->name);
		if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW))
			return fs_error(err, errno, "stat", x->name);
		if (S_ISDIR(st.st_mode))
			return stk_err_set(err, STK_EINVAL,
					   "tar entry '%s': file where a directory exists",
					   x->name);
		return stk_err_set(err, STK_EINVAL, "tar entry '%s': duplicate file", x->name);
	}
	x->fd = fd;
	if (fchmod(fd, e->exec ? 0755 : 0644))
		return fs_error(err, errno, "chmod file", x->name);
	x->bytes += e->size;
	return count_created(x, false, err);
}

static int on_data(void *arg, const void *buf, size_t len, stk_err *err)
{
	struct extract *x = arg;
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(x->fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fs_error(err, errno, "write", x->name);
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int on_end(void *arg, const struct agent_tar_entry *e, stk_err *err)
{
	struct extract *x = arg;
	int fd = x->fd;

	(void)e;
	x->fd = -1;
	if (close(fd))
		return fs_error(err, errno, "write", x->name);
	return 0;
}

/*
 * Empties the directory open as `fd` (taken: closed on return), never following a
 * symlink. Recursion depth is bounded by AGENT_TAR_DEPTH_MAX, one descriptor per level.
 */
static void rm_contents(int fd)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;

	if (!d) {
		close(fd);
		return;
	}
	/* Removing entries while reading may hide others from readdir: pass again. */
	for (int pass = 0; pass < RM_MAX_PASS; pass++) {
		bool any = false;

		rewinddir(d);
		while ((de = readdir(d))) {
			int sub;
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			any = true;
			if (unlinkat(dirfd(d), de->d_name, 0) == 0)
				continue;
			sub = openat(dirfd(d), de->d_name,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				rm_contents(sub);
			unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
		}
		if (!any)
			break;
	}
	closedir(d);
}

/* ---- the artifact ---------------------------------------------------------------------- */

/* "sha256:<64 hex>" in either case, lower-cased into `out`. */
static bool parse_digest(const char *s, char out[AGENT_DIGEST_SIZE])
{
	size_t pl = sizeof(DIGEST_PREFIX) - 1;

	if (strlen(s) != pl + 64 || strncmp(s, DIGEST_PREFIX, pl))
		return false;
	memcpy(out, s, pl);
	for (size_t i = pl; i < pl + 64; i++) {
		char c = s[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		out[i] = c;
	}
	out[pl + 64] = '\0';
	return true;
}

static bool stopped(const struct agent_unpack_opts *o)
{
	return o->stop && *o->stop;
}

/* Reads what is left of `fd` in SLICE pieces into the hash and, when `r`, the reader. */
static int read_all(const struct agent_unpack_opts *o, int fd, unsigned char *buf, EVP_MD_CTX *md,
		    struct agent_tar_reader *r, char digest[AGENT_DIGEST_SIZE], stk_err *err)
{
	unsigned char bin[EVP_MAX_MD_SIZE];

	if (!EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		return stk_err_set(err, STK_EIO, "cannot initialise sha256");
	for (;;) {
		ssize_t n;
		int rc;

		if (stopped(o))
			return stk_err_set(err, STK_ECANCELED, "unpack stopped");
		n = read(fd, buf, SLICE);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return stk_err_errno(err, errno, "cannot read %s", o->archive);
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(md, buf, (size_t)n);
		if (r && (rc = agent_tar_reader_feed(r, buf, (size_t)n, err)))
			return rc;
	}
	EVP_DigestFinal_ex(md, bin, NULL);
	hex_digest(bin, digest);
	return 0;
}

/* Renames `from` to `to` unless `to` exists (then STK_EEXIST). */
static int rename_new(const char *from, const char *to, stk_err *err)
{
	struct stat st;

	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		goto fail;
	/* A filesystem without RENAME_NOREPLACE: check, then rename (a small race). */
	if (lstat(to, &st) == 0)
		errno = EEXIST;
	else if (rename(from, to) == 0)
		return 0;
fail:
	if (errno == EEXIST || errno == ENOTEMPTY)
		return stk_err_set(err, STK_EEXIST, "%s appeared while the artifact was unpacked",
				   to);
	return stk_err_errno(err, errno, "cannot rename %s to %s", from, to);
}

int agent_unpack(const struct agent_unpack_opts *o, struct agent_unpack_result *res, stk_err *err)
{
	char want[AGENT_DIGEST_SIZE], first[AGENT_DIGEST_SIZE], got[AGENT_DIGEST_SIZE];
	char dest[PATH_MAX], tmp[PATH_MAX];
	struct agent_tar_limits lim;
	struct agent_tar_reader *r = NULL;
	struct agent_tar_cb cb;
	struct extract *x = NULL;
	unsigned char *buf = NULL;
	EVP_MD_CTX *md = NULL;
	struct stat st;
	bool have_tmp = false;
	size_t dl;
	int fd = -1, rc = 0, n;

	if (!o || !res || !o->archive || !o->dest || !*o->dest)
		return stk_err_set(err, STK_EINVAL, "agent_unpack: archive and dest are required");
	if (o->expect_digest && !parse_digest(o->expect_digest, want))
		return stk_err_set(err, STK_EINVAL,
				   "bad expected digest '%.80s': want sha256:<64 hex digits>",
				   o->expect_digest);
	dl = strlen(o->dest);
	while (dl > 1 && o->dest[dl - 1] == '/')
		dl--;
	if (dl == 1 && o->dest[0] == '/')
		return stk_err_set(err, STK_EINVAL, "agent_unpack: dest cannot be /");
	n = snprintf(tmp, sizeof(tmp), "%.*s.tmp-XXXXXX", (int)dl, o->dest);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return stk_err_set(err, STK_EINVAL, "agent_unpack: dest path too long");
	memcpy(dest, o->dest, dl);
	dest[dl] = '\0';

	fd = open(o->archive, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return stk_err_set(err, STK_ENOTFOUND, "artifact %s not found", o->archive);
		return stk_err_errno(err, errno, "cannot open %s", o->archive);
	}
	if (fstat(fd, &st)) {
		rc = stk_err_errno(err, errno, "cannot stat %s", o->archive);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = stk_err_set(err, STK_EIO, "%s is not a regular file", o->archive);
		goto out;
	}
	if (lstat(dest, &st) == 0) {
		rc = stk_err_set(err, STK_EEXIST, "%s already exists", dest);
		goto out;
	}
	if (errno != ENOENT) {
		rc = stk_err_errno(err, errno, "cannot stat %s", dest);
		goto out;
	}
	buf = stk_malloc(SLICE);
	md = EVP_MD_CTX_new();
	if (!md) {
		rc = stk_err_set(err, STK_EIO, "cannot allocate a sha256 context");
		goto out;
	}

	/* Nothing reaches the parser before the digest matched. */
	if (o->expect_digest) {
		if ((rc = read_all(o, fd, buf, md, NULL, first, err)))
			goto out;
		if (strcmp(first, want)) {
			rc = stk_err_set(err, STK_EINVAL,
					 "artifact digest mismatch: expected %s, got %s", want,
					 first);
			goto out;
		}
		if (lseek(fd, 0, SEEK_SET) != 0) {
			rc = stk_err_errno(err, errno, "cannot rewind %s", o->archive);
			goto out;
		}
	}

	if (!mkdtemp(tmp)) {
		rc = stk_err_errno(err, errno, "cannot create a directory beside %s", dest);
		goto out;
	}
	have_tmp = true;
	x = stk_calloc(1, sizeof(*x));
	x->dirfd = -1;
	x->fd = -1;
	x->stop = o->stop;
	x->max_entries = o->max_entries ? o->max_entries : AGENT_UNPACK_MAX_ENTRIES;
	x->root = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (x->root < 0) {
		rc = stk_err_errno(err, errno, "cannot open %s", tmp);
		goto out;
	}
	/* mkdtemp made it 0700; the tree is read by the sync engine like a checkout. */
	if (fchmod(x->root, 0755)) {
		rc = stk_err_errno(err, errno, "cannot chmod %s", tmp);
		goto out;
	}
	lim.max_bytes = o->max_bytes;
	lim.max_entries = o->max_entries;
	cb.begin = on_begin;
	cb.data = on_data;
	cb.end = on_end;
	cb.arg = x;
	if ((rc = agent_tar_reader_new(&r, &cb, &lim, err)))
		goto out;
	if ((rc = read_all(o, fd, buf, md, r, got, err)))
		goto out;
	if ((rc = agent_tar_reader_finish(r, err)))
		goto out;
	if (o->expect_digest && strcmp(got, first)) {
		rc = stk_err_set(err, STK_EIO, "%s changed while it was unpacked", o->archive);
		goto out;
	}
	if ((rc = rename_new(tmp, dest, err)))
		goto out;
	have_tmp = false;
	memcpy(res->digest, got, sizeof(res->digest));
	res->files = x->files;
	res->dirs = x->dirs;
	res->bytes = x->bytes;
out:
	agent_tar_reader_free(r);
	if (x) {
		if (x->fd >= 0)
			close(x->fd);
		if (x->dirfd >= 0)
			close(x->dirfd);
		if (have_tmp && x->root >= 0)
			rm_contents(x->root);
		else if (x->root >= 0)
			close(x->root);
		free(x);
	}
	if (have_tmp)
		rmdir(tmp);
	EVP_MD_CTX_free(md);
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}
