/* mkostemp (an O_CLOEXEC temporary file, so a posix_spawn elsewhere cannot inherit it). */
#define _GNU_SOURCE
#include "artifact.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "stk/alloc.h"
#include "stk/buf.h"

#define TAR_BLOCK      512u
#define TAR_RECORD     (20u * TAR_BLOCK)
#define TAR_NAME_MAX   100u
#define TAR_PREFIX_MAX 155u
/* ustar's 11 octal digits of size. */
#define TAR_SIZE_MAX	UINT64_C(077777777777)
#define PAX_HEADER_NAME "@PaxHeader"
/* The tar stream reaches deflate in slices of exactly this size (see artifact.h). */
#define STAGE_SIZE	 (64u * 1024)
#define ZOUT_SIZE	 (64u * 1024)
#define READ_SIZE	 (64u * 1024)
#define GZIP_LEVEL	 6
#define GZIP_WINDOW_BITS (15 + 16) /* 32 KiB window, gzip wrapper */
#define GZIP_MEM_LEVEL	 8
#define GZIP_OS_UNIX	 3

/* ---------------------------------------------------------------------------------- */
/* Ignore patterns                                                                     */
/* ---------------------------------------------------------------------------------- */

/* One parsed pattern: a slice of the caller's string plus its flags. */
struct ign_pat {
	const char *p;
	size_t len; /* glob without '!', anchoring '/', trailing '/' and trailing spaces */
	bool negate, dir_only, anchored;
};

static bool ign_isclass(const char *name, size_t len, unsigned char c, bool *known)
{
	bool hit = false;

	/* ASCII only and locale-independent, so matching is the same on every machine. */
	*known = true;
	if (len == 5 && memcmp(name, "alnum", 5) == 0)
		hit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
	else if (len == 5 && memcmp(name, "alpha", 5) == 0)
		hit = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
	else if (len == 5 && memcmp(name, "blank", 5) == 0)
		hit = c == ' ' || c == '\t';
	else if (len == 5 && memcmp(name, "cntrl", 5) == 0)
		hit = c < 0x20 || c == 0x7f;
	else if (len == 5 && memcmp(name, "digit", 5) == 0)
		hit = c >= '0' && c <= '9';
	else if (len == 5 && memcmp(name, "graph", 5) == 0)
		hit = c > 0x20 && c < 0x7f;
	else if (len == 5 && memcmp(name, "lower", 5) == 0)
		hit = c >= 'a' && c <= 'z';
	else if (len == 5 && memcmp(name, "print", 5) == 0)
		hit = c >= 0x20 && c < 0x7f;
	else if (len == 5 && memcmp(name, "punct", 5) == 0)
		hit = (c > 0x20 && c < 0x7f) &&
		      !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
	else if (len == 5 && memcmp(name, "space", 5) == 0)
		hit = c == ' ' || (c >= '\t' && c <= '\r');
	else if (len == 5 && memcmp(name, "upper", 5) == 0)
		hit = c >= 'A' && c <= 'Z';
	else if (len == 6 && memcmp(name, "xdigit", 6) == 0)
		hit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
	else
		*known = false;
	return hit;
}

/*
 * Matches the bracket expression at p[0] == '[' against byte `c`. Returns 1 (match),
 * 0 (no match) or -1 (malformed); *adv receives the expression's length.
 */
static int ign_bracket(const char *p, size_t n, unsigned char c, size_t *adv)
{
	size_t i = 1;
	bool negate = false, matched = false, first = true;
	int prev = -1; /* last single byte, usable as the start of a range */

	if (i < n && (p[i] == '!' || p[i] == '^')) {
		negate = true;
		i++;
	}
	for (;;) {
		unsigned char lit;

		if (i >= n)
			return -1;
		if (p[i] == ']' && !first) {
			i++;
			break;
		}
		first = false;
		if (p[i] == '[' && i + 1 < n && p[i + 1] == ':') {
			size_t j = i + 2;
			bool known;

			while (j < n && p[j] != ']')
				j++;
			if (j >= n)
				return -1;
			if (j >= i + 3 && p[j - 1] == ':') {
				if (ign_isclass(p + i + 2, j - 1 - (i + 2), c, &known))
					matched = true;
				if (!known)
					return -1;
				i = j + 1;
				prev = -1;
				continue;
			}
			/* "[:" without ":]": the '[' is an ordinary member. */
			lit = '[';
			i++;
		} else if (p[i] == '\\') {
			if (i + 1 >= n)
				return -1;
			lit = (unsigned char)p[i + 1];
			i += 2;
		} else if (p[i] == '-' && prev >= 0 && i + 1 < n && p[i + 1] != ']') {
			unsigned char hi = (unsigned char)p[i + 1];

			i += 2;
			if (hi == '\\') {
				if (i >= n)
					return -1;
				hi = (unsigned char)p[i++];
			}
			if (c >= (unsigned char)prev && c <= hi)
				matched = true;
			prev = -1;
			continue;
		} else {
			lit = (unsigned char)p[i++];
		}
		if (lit == c)
			matched = true;
		prev = lit;
	}
	*adv = i;
	return matched != negate ? 1 : 0;
}

/*
 * Matches the single-byte token at p (not '*') against `c`: 1, 0 or -1 (malformed), with
 * the token's length in *adv.
 */
static int ign_one(const char *p, size_t n, unsigned char c, size_t *adv)
{
	switch (p[0]) {
	case '?':
		*adv = 1;
		return 1;
	case '[':
		return ign_bracket(p, n, c, adv);
	case '\\':
		if (n < 2)
			return -1;
		*adv = 2;
		return (unsigned char)p[1] == c;
	default:
		*adv = 1;
		return (unsigned char)p[0] == c;
	}
}

/* Checks that every token of one component pattern parses. */
static bool ign_seg_valid(const char *p, size_t n)
{
	size_t i = 0, adv;

	while (i < n) {
		if (p[i] == '*') {
			i++;
			continue;
		}
		if (ign_one(p + i, n - i, 0, &adv) < 0)
			return false;
		i += adv;
	}
	return true;
}

/*
 * Glob-matches one component pattern against one path component (neither contains '/').
 * Classic single-backtrack matching: on a mismatch only the most recent '*' takes one
 * more byte, which is enough because every other token consumes exactly one byte. The
 * pattern was validated, so tokens parse. O(n * m) worst case, no recursion.
 */
static bool ign_seg_glob(const char *p, size_t pn, const char *t, size_t tn)
{
	size_t pi = 0, ti = 0, star_pi = SIZE_MAX, star_ti = 0, adv;

	while (ti < tn) {
		if (pi < pn && p[pi] == '*') {
			while (pi < pn && p[pi] == '*')
				pi++;
			star_pi = pi;
			star_ti = ti;
			continue;
		}
		if (pi < pn && ign_one(p + pi, pn - pi, (unsigned char)t[ti], &adv) == 1) {
			pi += adv;
			ti++;
			continue;
		}
		if (star_pi == SIZE_MAX)
			return false;
		pi = star_pi;
		ti = ++star_ti;
	}
	while (pi < pn && p[pi] == '*')
		pi++;
	return pi == pn;
}

/*
 * The pattern component starting at offset i: its text is p[i, *end) and the next one
 * starts at *next, which is n + 1 after the last. An escaped slash ("\/") separates like
 * a plain one.
 */
static void ign_pat_seg(const char *p, size_t n, size_t i, size_t *end, size_t *next)
{
	while (i < n) {
		if (p[i] == '/') {
			*end = i;
			*next = i + 1;
			return;
		}
		if (p[i] == '\\' && i + 1 < n) {
			if (p[i + 1] == '/') {
				*end = i;
				*next = i + 2;
				return;
			}
			i += 2;
			continue;
		}
		i++;
	}
	*end = n;
	*next = n + 1;
}

/* The path component starting at offset i: t[i, *end), next at *next (n + 1 after last). */
static void ign_path_seg(const char *t, size_t n, size_t i, size_t *end, size_t *next)
{
	const char *slash = memchr(t + i, '/', n - i);

	*end = slash ? (size_t)(slash - t) : n;
	*next = *end + 1;
}

static bool ign_is_globstar(const char *p, size_t n)
{
	if (n < 2)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '*')
			return false;
	}
	return true;
}

/*
 * Matches an anchored pattern against a whole path, component by component. "**"
 * components match zero or more path components, with the same single-backtrack scheme
 * as ign_seg_glob one level up; a trailing "**" after other components needs at least
 * one component (git: "a/" + "**" matches inside a, not a itself).
 */
static bool ign_path_glob(const char *p, size_t pn, const char *t, size_t tn)
{
	size_t pi = 0, ti = 0, star_pi = SIZE_MAX, star_ti = 0;
	size_t pe, pnext, te, tnext;

	while (ti <= tn) {
		if (pi <= pn) {
			ign_pat_seg(p, pn, pi, &pe, &pnext);
			if (ign_is_globstar(p + pi, pe - pi)) {
				if (pnext > pn && pi > 0)
					return true; /* trailing: at least one component is left */
				pi = pnext;
				star_pi = pi;
				star_ti = ti;
				continue;
			}
			ign_path_seg(t, tn, ti, &te, &tnext);
			if (ign_seg_glob(p + pi, pe - pi, t + ti, te - ti)) {
				pi = pnext;
				ti = tnext;
				continue;
			}
		}
		if (star_pi == SIZE_MAX)
			return false;
		/* star_ti <= tn here; absorbing the last component ends the path. */
		ign_path_seg(t, tn, star_ti, &te, &tnext);
		star_ti = tnext;
		pi = star_pi;
		ti = star_ti;
	}
	while (pi <= pn) {
		ign_pat_seg(p, pn, pi, &pe, &pnext);
		if (!ign_is_globstar(p + pi, pe - pi) || (pnext > pn && pi > 0))
			break;
		pi = pnext;
	}
	return pi > pn;
}

/* Parses one pattern line; false when it matches nothing (blank, comment, malformed). */
static bool ign_compile(const char *s, struct ign_pat *out)
{
	size_t len, keep = 0, i, pe, pnext;
	struct ign_pat pt = {0};

	if (!s)
		return false;
	len = strlen(s);
	/* Drop trailing spaces, except one quoted by a backslash. */
	for (i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len) {
			i++;
			keep = i + 1;
		} else if (s[i] != ' ') {
			keep = i + 1;
		}
	}
	len = keep;
	if (len == 0 || s[0] == '#')
		return false;
	if (s[0] == '!') {
		pt.negate = true;
		s++;
		len--;
	}
	if (len > 0 && s[len - 1] == '/') {
		pt.dir_only = true;
		len--;
	}
	pt.anchored = memchr(s, '/', len) != NULL;
	if (pt.anchored && s[0] == '/') {
		s++;
		len--;
	}
	if (len == 0)
		return false;
	for (i = 0; i <= len; i = pnext) {
		ign_pat_seg(s, len, i, &pe, &pnext);
		if (!ign_seg_valid(s + i, pe - i))
			return false;
	}
	pt.p = s;
	pt.len = len;
	*out = pt;
	return true;
}

static bool ign_pat_match(const struct ign_pat *pt, const char *path, size_t plen, bool is_dir)
{
	const char *base;

	if (pt->dir_only && !is_dir)
		return false;
	if (pt->anchored)
		return ign_path_glob(pt->p, pt->len, path, plen);
	base = path + plen;
	while (base > path && base[-1] != '/')
		base--;
	return ign_seg_glob(pt->p, pt->len, base, (size_t)(path + plen - base));
}

/* The decision for the path itself (its ancestors are not consulted): last match wins. */
static bool ign_excluded_compiled(const struct ign_pat *pats, size_t n, const char *path,
				  size_t plen, bool is_dir)
{
	for (size_t i = n; i-- > 0;) {
		if (ign_pat_match(&pats[i], path, plen, is_dir))
			return !pats[i].negate;
	}
	return false;
}

/* Same as ign_excluded_compiled, parsing the patterns as it goes (no allocation). */
static bool ign_excluded_raw(const char *const *patterns, size_t n, const char *path, size_t plen,
			     bool is_dir)
{
	struct ign_pat pt;

	for (size_t i = n; i-- > 0;) {
		if (ign_compile(patterns[i], &pt) && ign_pat_match(&pt, path, plen, is_dir))
			return !pt.negate;
	}
	return false;
}

bool srcctl_ignore_match(const char *const *patterns, size_t n, const char *path, bool is_dir)
{
	size_t plen;

	if (!patterns || n == 0 || !path || path[0] == '\0')
		return false;
	plen = strlen(path);
	/* An excluded directory excludes everything below it, whatever later patterns say. */
	for (size_t i = 1; i < plen; i++) {
		if (path[i] == '/' && ign_excluded_raw(patterns, n, path, i, true))
			return true;
	}
	return ign_excluded_raw(patterns, n, path, plen, is_dir);
}

/* ---------------------------------------------------------------------------------- */
/* Output: tar bytes -> staging slice -> deflate -> file + sha256                      */
/* ---------------------------------------------------------------------------------- */

/* One directory being walked: its entries in archive order. */
struct pack_frame {
	git_tree *tree;
	size_t *order; /* entry indices sorted as the archive lists them */
	size_t count, next;
	size_t prefix_len; /* bytes of the directory's path including its '/' (0: root) */
};

struct pack {
	const struct srcctl_pack_opts *opts;
	stk_err *err;
	git_odb *odb;
	EVP_MD_CTX *oid_sha; /* re-hashes streamed blobs against their id */
	struct ign_pat *ignore;
	size_t ignore_count;

	int fd;
	z_stream z;
	bool z_ready;
	EVP_MD_CTX *sha;
	unsigned char *stage; /* tar bytes not yet handed to deflate */
	size_t stage_len;
	unsigned char *zout;
	unsigned char *rbuf; /* blob read buffer */
	uint64_t written;    /* artifact bytes produced so far */
	uint64_t tar_len;    /* tar bytes produced so far */

	struct pack_frame *frames;
	size_t depth, frames_cap;

	struct srcctl_pack_result res;
	char path[SRCCTL_ARTIFACT_PATH_MAX + 2]; /* current entry, room for '/' and NUL */
};

static int pack_git_error(struct pack *pk, int code, const char *what, const char *path)
{
	const git_error *ge = git_error_last();

	return stk_err_set(pk->err, code, "%s%s%s: %s", what, path ? " " : "", path ? path : "",
			   ge && ge->message ? ge->message : "libgit2 error");
}

static int write_all(int fd, const unsigned char *p, size_t n, stk_err *err)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return stk_err_errno(err, errno, "write artifact");
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Writes what deflate produced, counting it against the cap and into the digest. */
static int pack_emit(struct pack *pk, size_t n)
{
	if (n == 0)
		return 0;
	if (n > pk->opts->max_size - pk->written)
		return stk_err_set(pk->err, STK_ETOOBIG, "artifact exceeds the cap of %llu bytes",
				   (unsigned long long)pk->opts->max_size);
	pk->written += n;
	if (EVP_DigestUpdate(pk->sha, pk->zout, n) != 1)
		return stk_err_set(pk->err, STK_EIO, "sha256 update failed");
	return write_all(pk->fd, pk->zout, n, pk->err);
}

/* Runs deflate over the staged bytes with `flush` (Z_NO_FLUSH or Z_FINISH). */
static int pack_deflate(struct pack *pk, int flush)
{
	int zrc, rc;

	pk->z.next_in = pk->stage;
	pk->z.avail_in = (uInt)pk->stage_len;
	for (;;) {
		pk->z.next_out = pk->zout;
		pk->z.avail_out = ZOUT_SIZE;
		zrc = deflate(&pk->z, flush);
		if (zrc != Z_OK && zrc != Z_STREAM_END && zrc != Z_BUF_ERROR)
			return stk_err_set(pk->err, STK_EIO, "deflate failed (%d)", zrc);
		rc = pack_emit(pk, ZOUT_SIZE - pk->z.avail_out);
		if (rc < 0)
			return rc;
		if (flush == Z_FINISH ? zrc == Z_STREAM_END
				      : (pk->z.avail_in == 0 && pk->z.avail_out != 0))
			break;
	}
	pk->stage_len = 0;
	return 0;
}

/* Appends tar bytes; deflate only ever sees full STAGE_SIZE slices until the end. */
static int pack_put(struct pack *pk, const void *data, size_t n)
{
	const unsigned char *p = data;
	int rc;

	pk->tar_len += n;
	while (n > 0) {
		size_t room = STAGE_SIZE - pk->stage_len, c = n < room ? n : room;

		memcpy(pk->stage + pk->stage_len, p, c);
		pk->stage_len += c;
		p += c;
		n -= c;
		if (pk->stage_len == STAGE_SIZE) {
			rc = pack_deflate(pk, Z_NO_FLUSH);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

static int pack_zeros(struct pack *pk, size_t n)
{
	static const unsigned char zero[TAR_BLOCK];
	int rc;

	while (n > 0) {
		size_t c = n < sizeof(zero) ? n : sizeof(zero);

		rc = pack_put(pk, zero, c);
		if (rc < 0)
			return rc;
		n -= c;
	}
	return 0;
}

/* Pads the current member's data to a whole block. */
static int pack_pad(struct pack *pk)
{
	size_t r = (size_t)(pk->tar_len % TAR_BLOCK);

	return r ? pack_zeros(pk, TAR_BLOCK - r) : 0;
}

/* ---------------------------------------------------------------------------------- */
/* ustar headers                                                                       */
/* ---------------------------------------------------------------------------------- */

/* Writes `v` as `width - 1` zero-padded octal digits and a NUL. */
static void tar_octal(char *field, size_t width, uint64_t v)
{
	field[width - 1] = '\0';
	for (size_t i = width - 1; i-- > 0;) {
		field[i] = (char)('0' + (v & 7));
		v >>= 3;
	}
}

/* Fills a ustar header block: name (and prefix), fixed owner/time, mode, size, checksum. */
static void tar_fill(unsigned char h[TAR_BLOCK], const char *prefix, size_t prefix_len,
		     const char *name, size_t name_len, char type, unsigned mode, uint64_t size)
{
	unsigned sum = 0;

	memset(h, 0, TAR_BLOCK);
	memcpy(h, name, name_len);	      /* name[100] */
	tar_octal((char *)h + 100, 8, mode);  /* mode */
	tar_octal((char *)h + 108, 8, 0);     /* uid */
	tar_octal((char *)h + 116, 8, 0);     /* gid */
	tar_octal((char *)h + 124, 12, size); /* size */
	tar_octal((char *)h + 136, 12, 0);    /* mtime */
	memset(h + 148, ' ', 8);	      /* chksum, spaces while summing */
	h[156] = (unsigned char)type;	      /* typeflag; linkname[100] empty */
	memcpy(h + 257, "ustar", 6);	      /* magic, NUL-terminated */
	memcpy(h + 263, "00", 2);	      /* version; uname, gname empty */
	/* devmajor/devminor stay NUL: unspecified for non-devices, as Python writes them. */
	memcpy(h + 345, prefix, prefix_len); /* prefix[155] */
	for (size_t i = 0; i < TAR_BLOCK; i++)
		sum += h[i];
	tar_octal((char *)h + 148, 7, sum); /* six digits, NUL ... */
	h[155] = ' ';			    /* ... and a space */
}

static size_t dec_digits(size_t v)
{
	size_t d = 1;

	while (v >= 10) {
		v /= 10;
		d++;
	}
	return d;
}

/*
 * Writes the header(s) of one member named name[0, len) (a directory's name ends with
 * '/'): plain ustar when the name fits name[100] or splits at a '/' into prefix[155] and
 * name[100], else a PAX 'x' header with the full path followed by a ustar header holding
 * the base name cut to 100 bytes.
 */
static int tar_member(struct pack *pk, const char *name, size_t len, char type, unsigned mode,
		      uint64_t size)
{
	unsigned char h[TAR_BLOCK];
	char rec[32];
	size_t base, digits, rec_len, rl = 0, blen, i;
	const char *b;
	int rc;

	if (size > TAR_SIZE_MAX)
		return stk_err_set(pk->err, STK_ETOOBIG,
				   "%.*s is 8 GiB or larger, which ustar cannot describe", (int)len,
				   name);
	if (len <= TAR_NAME_MAX) {
		tar_fill(h, "", 0, name, len, type, mode, size);
		return pack_put(pk, h, TAR_BLOCK);
	}
	/* Split at the first '/' that leaves at most 100 bytes (and at least one) for name. */
	for (i = len - TAR_NAME_MAX - 1; i <= TAR_PREFIX_MAX && i + 1 < len; i++) {
		if (name[i] == '/' && i > 0) {
			tar_fill(h, name, i, name + i + 1, len - i - 1, type, mode, size);
			return pack_put(pk, h, TAR_BLOCK);
		}
	}
	/* PAX record "<len> path=<name>\n", where <len> counts its own digits. */
	base = len + sizeof(" path=\n") - 1;
	digits = dec_digits(base);
	while (dec_digits(base + digits) != digits)
		digits = dec_digits(base + digits);
	rec_len = base + digits;
	for (size_t v = rec_len, d = digits; d-- > 0; v /= 10)
		rec[d] = (char)('0' + v % 10);
	rl = digits;
	memcpy(rec + rl, " path=", 6);
	rl += 6;
	tar_fill(h, "", 0, PAX_HEADER_NAME, sizeof(PAX_HEADER_NAME) - 1, 'x', 0644, rec_len);
	rc = pack_put(pk, h, TAR_BLOCK);
	if (rc == 0)
		rc = pack_put(pk, rec, rl);
	if (rc == 0)
		rc = pack_put(pk, name, len);
	if (rc == 0)
		rc = pack_put(pk, "\n", 1);
	if (rc == 0)
		rc = pack_pad(pk);
	if (rc < 0)
		return rc;
	/* Fallback name for readers without PAX: the base name, never a path. */
	blen = len;
	if (type == '5')
		blen--; /* trailing '/' */
	b = name + blen;
	while (b > name && b[-1] != '/')
		b--;
	blen = (size_t)(name + blen - b);
	{
		char fb[TAR_NAME_MAX];
		size_t room = type == '5' ? TAR_NAME_MAX - 1 : TAR_NAME_MAX;
		size_t fl = blen < room ? blen : room;

		memcpy(fb, b, fl);
		if (type == '5')
			fb[fl++] = '/';
		tar_fill(h, "", 0, fb, fl, type, mode, size);
	}
	return pack_put(pk, h, TAR_BLOCK);
}

/* ---------------------------------------------------------------------------------- */
/* Tree walk                                                                           */
/* ---------------------------------------------------------------------------------- */

/* Archive order: byte-wise on the name, a directory's name followed by '/' (git order). */
static int entry_cmp_archive(const git_tree_entry *a, const git_tree_entry *b)
{
	const char *na = git_tree_entry_name(a), *nb = git_tree_entry_name(b);
	size_t la = strlen(na), lb = strlen(nb), n = la < lb ? la : lb;
	int c = memcmp(na, nb, n);
	unsigned ca, cb;

	if (c != 0)
		return c;
	ca = la > n						     ? (unsigned char)na[n]
	     : (git_tree_entry_filemode_raw(a) & 0170000) == 0040000 ? '/'
								     : 0;
	cb = lb > n						     ? (unsigned char)nb[n]
	     : (git_tree_entry_filemode_raw(b) & 0170000) == 0040000 ? '/'
								     : 0;
	return (ca > cb) - (ca < cb);
}

/* An entry and its index in the tree, so sorting keeps the way back to the tree. */
struct sort_item {
	const git_tree_entry *e;
	size_t index;
};

static int sort_archive(const void *a, const void *b)
{
	return entry_cmp_archive(((const struct sort_item *)a)->e,
				 ((const struct sort_item *)b)->e);
}

static int sort_name(const void *a, const void *b)
{
	return strcmp(git_tree_entry_name(((const struct sort_item *)a)->e),
		      git_tree_entry_name(((const struct sort_item *)b)->e));
}

/* Rejects entry names git would refuse to check out. */
static bool entry_name_ok(const char *name)
{
	if (name[0] == '\0' || strchr(name, '/'))
		return false;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	if (strlen(name) == 4 && name[0] == '.' && (name[1] | 0x20) == 'g' &&
	    (name[2] | 0x20) == 'i' && (name[3] | 0x20) == 't')
		return false;
	return true;
}

/* Pushes a directory: validates its entries' names and sorts them into archive order. */
static int pack_push(struct pack *pk, git_tree *tree, size_t prefix_len)
{
	size_t n = git_tree_entrycount(tree);
	struct sort_item *items = NULL;
	struct pack_frame *f;
	int rc = 0;

	if (pk->depth == pk->frames_cap) {
		pk->frames_cap = pk->frames_cap ? pk->frames_cap * 2 : 16;
		pk->frames = stk_reallocarray(pk->frames, pk->frames_cap, sizeof(*pk->frames));
	}
	items = stk_calloc(n ? n : 1, sizeof(*items));
	for (size_t i = 0; i < n; i++) {
		items[i].e = git_tree_entry_byindex(tree, i);
		items[i].index = i;
		if (!entry_name_ok(git_tree_entry_name(items[i].e))) {
			rc = stk_err_set(
				pk->err, STK_EINVAL, "malformed tree: entry \"%s\" in \"%.*s\"",
				git_tree_entry_name(items[i].e), (int)prefix_len, pk->path);
			goto out;
		}
	}
	qsort(items, n, sizeof(*items), sort_name);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(git_tree_entry_name(items[i - 1].e), git_tree_entry_name(items[i].e)) ==
		    0) {
			rc = stk_err_set(pk->err, STK_EINVAL,
					 "malformed tree: duplicate entry \"%s\" in \"%.*s\"",
					 git_tree_entry_name(items[i].e), (int)prefix_len,
					 pk->path);
			goto out;
		}
	}
	qsort(items, n, sizeof(*items), sort_archive);
	f = &pk->frames[pk->depth];
	f->order = stk_calloc(n ? n : 1, sizeof(*f->order));
	for (size_t i = 0; i < n; i++)
		f->order[i] = items[i].index;
	f->tree = tree;
	f->count = n;
	f->next = 0;
	f->prefix_len = prefix_len;
	pk->depth++;
	tree = NULL;
out:
	git_tree_free(tree); /* adopted: freed here on failure */
	free(items);
	return rc;
}

static void pack_pop(struct pack *pk)
{
	struct pack_frame *f = &pk->frames[--pk->depth];

	git_tree_free(f->tree);
	free(f->order);
	f->tree = NULL;
	f->order = NULL;
}

/*
 * Streams one blob's bytes: through an odb read stream when the backend has one (loose
 * objects), else from the inflated object. Either way the archive sees `size` bytes. A
 * streamed object is hashed as git does ("blob <size>\0" + data) and checked against its
 * id, so a corrupt loose object fails the pack instead of reaching the gateways; the
 * whole-object path is verified by libgit2 itself (strict hash verification).
 */
static int pack_blob_data(struct pack *pk, const git_oid *id, uint64_t size)
{
	git_odb_stream *st = NULL;
	git_blob *blob = NULL;
	size_t slen;
	git_object_t type;
	uint64_t done = 0;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hdr[32];
	int rc = 0, hl;

	if (git_odb_open_rstream(&st, &slen, &type, pk->odb, id) == 0) {
		if (type != GIT_OBJECT_BLOB || slen != size) {
			rc = stk_err_set(pk->err, STK_EIO, "object of %s changed under the read",
					 pk->path);
			goto out;
		}
		hl = snprintf(hdr, sizeof(hdr), "blob %llu", (unsigned long long)size);
		if (EVP_DigestInit_ex(pk->oid_sha, EVP_sha1(), NULL) != 1 ||
		    EVP_DigestUpdate(pk->oid_sha, hdr, (size_t)hl + 1) != 1) {
			rc = stk_err_set(pk->err, STK_EIO, "sha1 unavailable");
			goto out;
		}
		while (done < size) {
			size_t want = size - done < READ_SIZE ? (size_t)(size - done) : READ_SIZE;
			int got = git_odb_stream_read(st, (char *)pk->rbuf, want);

			if (got < 0) {
				rc = pack_git_error(pk, STK_EIO, "read blob", pk->path);
				goto out;
			}
			if (got == 0 || (size_t)got > want) {
				rc = stk_err_set(pk->err, STK_EIO, "blob of %s is truncated",
						 pk->path);
				goto out;
			}
			if (EVP_DigestUpdate(pk->oid_sha, pk->rbuf, (size_t)got) != 1) {
				rc = stk_err_set(pk->err, STK_EIO, "sha1 update failed");
				goto out;
			}
			rc = pack_put(pk, pk->rbuf, (size_t)got);
			if (rc < 0)
				goto out;
			done += (size_t)got;
		}
		if (EVP_DigestFinal_ex(pk->oid_sha, md, &mdlen) != 1 || mdlen != GIT_OID_RAWSZ ||
		    memcmp(md, id->id, GIT_OID_RAWSZ) != 0)
			rc = stk_err_set(pk->err, STK_EIO,
					 "blob of %s does not match its id: corrupt object",
					 pk->path);
		goto out;
	}
	/* Packed objects: libgit2 has no streaming reader; hand the inflated blob out in
	 * slices all the same. */
	git_error_clear();
	if (git_blob_lookup(&blob, pk->opts->repo, id) < 0) {
		rc = pack_git_error(pk, STK_EIO, "read blob", pk->path);
		goto out;
	}
	if ((uint64_t)git_blob_rawsize(blob) != size) {
		rc = stk_err_set(pk->err, STK_EIO, "object of %s changed under the read", pk->path);
		goto out;
	}
	rc = pack_put(pk, git_blob_rawcontent(blob), (size_t)size);
out:
	git_odb_stream_free(st);
	git_blob_free(blob);
	if (rc == 0)
		rc = pack_pad(pk);
	return rc;
}

static int pack_file(struct pack *pk, const git_tree_entry *e, size_t plen, bool exec)
{
	size_t size;
	git_object_t type;
	int rc;

	if (git_odb_read_header(&size, &type, pk->odb, git_tree_entry_id(e)) < 0)
		return pack_git_error(pk, STK_EIO, "read blob", pk->path);
	if (type != GIT_OBJECT_BLOB)
		return stk_err_set(pk->err, STK_EINVAL, "malformed tree: %s is not a blob",
				   pk->path);
	rc = tar_member(pk, pk->path, plen, '0', exec ? 0755 : 0644, size);
	if (rc < 0)
		return rc;
	rc = pack_blob_data(pk, git_tree_entry_id(e), size);
	if (rc == 0)
		pk->res.files++;
	return rc;
}

/* Handles one entry of the top frame; may push a frame for a subdirectory. */
static int pack_entry(struct pack *pk, const git_tree_entry *e, size_t prefix_len)
{
	const char *name = git_tree_entry_name(e);
	size_t nlen = strlen(name), plen;
	unsigned raw = (unsigned)git_tree_entry_filemode_raw(e);
	bool is_dir = (raw & 0170000) == 0040000;
	git_tree *sub = NULL;
	int rc;

	if (nlen > SRCCTL_ARTIFACT_PATH_MAX - prefix_len)
		return stk_err_set(pk->err, STK_EINVAL, "path longer than %u bytes: %.*s%s...",
				   SRCCTL_ARTIFACT_PATH_MAX,
				   (int)(prefix_len < 200 ? prefix_len : 200), pk->path,
				   prefix_len < 200 ? "" : "...");
	memcpy(pk->path + prefix_len, name, nlen + 1);
	plen = prefix_len + nlen;
	if (ign_excluded_compiled(pk->ignore, pk->ignore_count, pk->path, plen, is_dir)) {
		pk->res.ignored++;
		return 0;
	}
	switch (raw & 0170000) {
	case 0040000:
		if (raw != 0040000)
			break;
		pk->path[plen] = '/';
		pk->path[plen + 1] = '\0';
		rc = tar_member(pk, pk->path, plen + 1, '5', 0755, 0);
		if (rc < 0)
			return rc;
		pk->res.dirs++;
		if (git_tree_lookup(&sub, pk->opts->repo, git_tree_entry_id(e)) < 0)
			return pack_git_error(pk, STK_EIO, "read tree", pk->path);
		return pack_push(pk, sub, plen + 1);
	case 0100000:
		/* git writes 100644 and 100755 (and historically 100664); any x bit is exec. */
		if ((raw & 07000) != 0)
			break;
		return pack_file(pk, e, plen, (raw & 0111) != 0);
	case 0120000:
		pk->res.skipped_symlinks++;
		return 0;
	case 0160000:
		pk->res.skipped_submodules++;
		return 0;
	default:
		break;
	}
	return stk_err_set(pk->err, STK_EINVAL, "malformed tree: %s has mode %06o", pk->path, raw);
}

static int pack_walk(struct pack *pk, git_tree *root)
{
	int rc = pack_push(pk, root, 0);

	while (rc == 0 && pk->depth > 0) {
		struct pack_frame *f = &pk->frames[pk->depth - 1];

		if (f->next == f->count) {
			pack_pop(pk);
			continue;
		}
		rc = pack_entry(pk, git_tree_entry_byindex(f->tree, f->order[f->next++]),
				f->prefix_len);
	}
	return rc;
}

/* Ends the tar stream (two zero blocks, whole record) and the gzip stream. */
static int pack_finish(struct pack *pk)
{
	int rc = pack_zeros(pk, 2 * TAR_BLOCK);

	if (rc == 0 && pk->tar_len % TAR_RECORD)
		rc = pack_zeros(pk, TAR_RECORD - (size_t)(pk->tar_len % TAR_RECORD));
	if (rc == 0)
		rc = pack_deflate(pk, Z_FINISH);
	return rc;
}

static void hex_digest(const unsigned char *md, char out[SRCCTL_DIGEST_SIZE])
{
	static const char hex[] = "0123456789abcdef";

	memcpy(out, "sha256:", 7);
	for (size_t i = 0; i < 32; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[8 + 2 * i] = hex[md[i] & 15];
	}
	out[7 + 64] = '\0';
}

static int pack_check_opts(const struct srcctl_pack_opts *o, git_oid *id, stk_err *err)
{
	if (!o || !o->repo || !o->dest_path || !o->commit)
		return stk_err_set(err, STK_EINVAL,
				   "pack: repository, commit and destination "
				   "are required");
	if (o->dest_path[0] == '\0' || o->dest_path[strlen(o->dest_path) - 1] == '/')
		return stk_err_set(err, STK_EINVAL, "pack: destination \"%s\" is not a file path",
				   o->dest_path);
	if (o->max_size == 0)
		return stk_err_set(err, STK_EINVAL, "pack: max_size must be positive");
	if (o->ignore_count > 0 && !o->ignore)
		return stk_err_set(err, STK_EINVAL, "pack: %zu ignore patterns but no array",
				   o->ignore_count);
	if (strlen(o->commit) != GIT_OID_HEXSZ ||
	    strspn(o->commit, "0123456789abcdef") != GIT_OID_HEXSZ ||
	    git_oid_fromstrn(id, o->commit, GIT_OID_HEXSZ) < 0)
		return stk_err_set(err, STK_EINVAL,
				   "pack: commit \"%.64s\" is not 40 lowercase "
				   "hex digits",
				   o->commit);
	return 0;
}

/* Creates ".<name>.tmp-XXXXXX" beside `dest`; the path goes to *tmp_out (caller frees). */
static int pack_tempfile(const char *dest, char **tmp_out, char **dir_out, int *fd_out,
			 stk_err *err)
{
	const char *slash = strrchr(dest, '/');
	stk_buf b = STK_BUF_INIT(8192);
	char *dir = NULL;
	int fd, rc;

	if (slash)
		dir = stk_strndup(dest, slash == dest ? 1 : (size_t)(slash - dest));
	else
		dir = stk_strdup(".");
	if (slash)
		rc = stk_buf_printf(&b, "%.*s/.%s.tmp-XXXXXX", (int)(slash - dest), dest,
				    slash + 1);
	else
		rc = stk_buf_printf(&b, ".%s.tmp-XXXXXX", dest);
	if (rc < 0) {
		rc = stk_err_set(err, STK_EINVAL, "pack: destination path too long");
		goto out;
	}
	fd = mkostemp(b.ptr, O_CLOEXEC);
	if (fd < 0) {
		rc = stk_err_errno(err, errno, "create temporary artifact in %s", dir);
		goto out;
	}
	*fd_out = fd;
	*tmp_out = stk_buf_detach(&b, NULL);
	*dir_out = dir;
	dir = NULL;
	rc = 0;
out:
	stk_buf_release(&b);
	free(dir);
	return rc;
}

/* Best effort: makes the rename durable. See artifact.h for why failures are dropped. */
static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

int srcctl_artifact_pack(const struct srcctl_pack_opts *opts, struct srcctl_pack_result *out,
			 stk_err *err)
{
	struct pack pk;
	git_oid id;
	git_commit *commit = NULL;
	git_tree *root = NULL;
	char *tmp = NULL, *dir = NULL;
	unsigned char md[32];
	unsigned int mdlen = 0;
	gz_header gzh;
	int rc;

	memset(&pk, 0, sizeof(pk));
	pk.fd = -1;
	pk.opts = opts;
	pk.err = err;
	if (!out) {
		rc = stk_err_set(err, STK_EINVAL, "pack: no result");
		goto out;
	}
	rc = pack_check_opts(opts, &id, err);
	if (rc < 0)
		goto out;

	pk.ignore = stk_calloc(opts->ignore_count ? opts->ignore_count : 1, sizeof(*pk.ignore));
	for (size_t i = 0; i < opts->ignore_count; i++) {
		if (ign_compile(opts->ignore[i], &pk.ignore[pk.ignore_count]))
			pk.ignore_count++;
	}

	rc = git_commit_lookup(&commit, opts->repo, &id);
	if (rc < 0) {
		rc = pack_git_error(&pk, rc == GIT_ENOTFOUND ? STK_ENOTFOUND : STK_EIO,
				    "look up commit", opts->commit);
		goto out;
	}
	if (git_commit_tree(&root, commit) < 0 || git_repository_odb(&pk.odb, opts->repo) < 0) {
		rc = pack_git_error(&pk, STK_EIO, "read tree of commit", opts->commit);
		goto out;
	}

	pk.stage = stk_malloc(STAGE_SIZE);
	pk.zout = stk_malloc(ZOUT_SIZE);
	pk.rbuf = stk_malloc(READ_SIZE);
	pk.sha = EVP_MD_CTX_new();
	pk.oid_sha = EVP_MD_CTX_new();
	if (!pk.sha || !pk.oid_sha || EVP_DigestInit_ex(pk.sha, EVP_sha256(), NULL) != 1) {
		rc = stk_err_set(err, STK_EIO, "sha256 unavailable");
		goto out;
	}
	if (deflateInit2(&pk.z, GZIP_LEVEL, Z_DEFLATED, GZIP_WINDOW_BITS, GZIP_MEM_LEVEL,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		rc = stk_err_set(err, STK_EIO, "deflateInit2 failed");
		goto out;
	}
	pk.z_ready = true;
	/* Fixed gzip header: no name or comment, mtime 0, OS byte independent of the build. */
	memset(&gzh, 0, sizeof(gzh));
	gzh.os = GZIP_OS_UNIX;
	if (deflateSetHeader(&pk.z, &gzh) != Z_OK) {
		rc = stk_err_set(err, STK_EIO, "deflateSetHeader failed");
		goto out;
	}

	rc = pack_tempfile(opts->dest_path, &tmp, &dir, &pk.fd, err);
	if (rc < 0)
		goto out;
	rc = pack_walk(&pk, root);
	root = NULL; /* adopted by the walk */
	if (rc == 0)
		rc = pack_finish(&pk);
	if (rc < 0)
		goto out;
	if (EVP_DigestFinal_ex(pk.sha, md, &mdlen) != 1 || mdlen != sizeof(md)) {
		rc = stk_err_set(err, STK_EIO, "sha256 final failed");
		goto out;
	}
	if (fsync(pk.fd) < 0) {
		rc = stk_err_errno(err, errno, "fsync %s", tmp);
		goto out;
	}
	rc = close(pk.fd);
	pk.fd = -1;
	if (rc < 0) {
		rc = stk_err_errno(err, errno, "close %s", tmp);
		goto out;
	}
	if (rename(tmp, opts->dest_path) < 0) {
		rc = stk_err_errno(err, errno, "rename %s to %s", tmp, opts->dest_path);
		goto out;
	}
	free(tmp);
	tmp = NULL; /* renamed: nothing to remove */
	fsync_dir(dir);

	hex_digest(md, pk.res.digest);
	pk.res.size = pk.written;
	*out = pk.res;
	rc = 0;
out:
	if (pk.fd >= 0)
		close(pk.fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(dir);
	while (pk.depth > 0)
		pack_pop(&pk);
	free(pk.frames);
	if (pk.z_ready)
		deflateEnd(&pk.z);
	EVP_MD_CTX_free(pk.sha);
	EVP_MD_CTX_free(pk.oid_sha);
	free(pk.stage);
	free(pk.zout);
	free(pk.rbuf);
	free(pk.ignore);
	git_odb_free(pk.odb);
	git_tree_free(root);
	git_commit_free(commit);
	return rc;
}

int srcctl_artifact_digest_file(const char *path, char out[SRCCTL_DIGEST_SIZE], stk_err *err)
{
	EVP_MD_CTX *sha = NULL;
	unsigned char *buf = NULL, md[32];
	unsigned int mdlen = 0;
	struct stat st;
	int fd = -1, rc;

	if (!path || !out)
		return stk_err_set(err, STK_EINVAL, "digest: path and output are required");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? stk_err_set(err, STK_ENOTFOUND, "%s: no such file", path)
				     : stk_err_errno(err, errno, "open %s", path);
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = stk_err_set(err, STK_EIO, "%s is not a regular file", path);
		goto out;
	}
	buf = stk_malloc(READ_SIZE);
	sha = EVP_MD_CTX_new();
	if (!sha || EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1) {
		rc = stk_err_set(err, STK_EIO, "sha256 unavailable");
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, READ_SIZE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = stk_err_errno(err, errno, "read %s", path);
			goto out;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(sha, buf, (size_t)n) != 1) {
			rc = stk_err_set(err, STK_EIO, "sha256 update failed");
			goto out;
		}
	}
	if (EVP_DigestFinal_ex(sha, md, &mdlen) != 1 || mdlen != sizeof(md)) {
		rc = stk_err_set(err, STK_EIO, "sha256 final failed");
		goto out;
	}
	hex_digest(md, out);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(sha);
	free(buf);
	return rc;
}
