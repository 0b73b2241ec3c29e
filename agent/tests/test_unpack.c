/*
 * The artifact reader (unpack.h): each case writes a .tar.gz built here block by block
 * (ustar headers, PAX records, zlib's gzip) or by GNU tar, unpacks it with agent_unpack
 * into a mkdtemp directory, and looks at what a sync would then read: the files, their
 * modes, and — for every refused archive — that neither the destination nor a temporary
 * directory is left behind.
 */
/* mkdtemp, nftw, posix_spawn */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "stk/alloc.h"
#include "stk/buf.h"
#include "unpack.h"

#define T_PATH 8192

extern char **environ;

struct fx {
	char root[256];
	char archive[T_PATH], dest[T_PATH];
	stk_buf tar; /* the tar stream being built */
};

/* ---- building archives ------------------------------------------------------------------ */

/* Header fields a case may spoil; zero values mean "as a correct writer would". */
struct hdr_opts {
	const char *prefix;	/* ustar prefix field */
	const char *linkname;	/* for links */
	const char *magic;	/* 8 bytes of magic + version; default POSIX "ustar\0" "00" */
	const char *size_field; /* raw 12-byte size field */
	int checksum_delta;	/* added to the correct checksum */
};

static void octal(unsigned char *field, size_t width, unsigned long long v)
{
	field[width - 1] = '\0';
	for (size_t i = width - 1; i-- > 0;) {
		field[i] = (unsigned char)('0' + (v & 7));
		v >>= 3;
	}
}

static void tar_header(stk_buf *b, const char *name, char type, unsigned mode,
		       unsigned long long size, const struct hdr_opts *o)
{
	unsigned char h[512];
	unsigned sum = 0;
	size_t nl = strlen(name);

	memset(h, 0, sizeof(h));
	memcpy(h, name, nl < 100 ? nl : 100);
	octal(h + 100, 8, mode);
	octal(h + 108, 8, 0);
	octal(h + 116, 8, 0);
	octal(h + 124, 12, size);
	if (o && o->size_field)
		memcpy(h + 124, o->size_field, 12);
	octal(h + 136, 12, 0);
	memset(h + 148, ' ', 8);
	h[156] = (unsigned char)type;
	if (o && o->linkname)
		memcpy(h + 157, o->linkname, strlen(o->linkname));
	memcpy(h + 257,
	       o && o->magic ? o->magic
			     : "ustar\0"
			       "00",
	       8);
	if (o && o->prefix)
		memcpy(h + 345, o->prefix, strlen(o->prefix));
	for (size_t i = 0; i < sizeof(h); i++)
		sum += h[i];
	if (o)
		sum = (unsigned)((int)sum + o->checksum_delta);
	octal(h + 148, 7, sum);
	h[155] = ' ';
	assert_int_equal(stk_buf_put(b, h, sizeof(h)), 0);
}

static void tar_pad(stk_buf *b)
{
	static const char zeros[512];

	if (b->len % 512)
		assert_int_equal(stk_buf_put(b, zeros, 512 - b->len % 512), 0);
}

static void tar_data(stk_buf *b, const void *data, size_t len)
{
	assert_int_equal(stk_buf_put(b, data, len), 0);
	tar_pad(b);
}

static void tar_file(stk_buf *b, const char *name, const char *content, unsigned mode)
{
	tar_header(b, name, '0', mode, strlen(content), NULL);
	tar_data(b, content, strlen(content));
}

static void tar_dir(stk_buf *b, const char *name)
{
	tar_header(b, name, '5', 0755, 0, NULL);
}

/* A PAX header of the given type holding `records` verbatim. */
static void tar_pax_raw(stk_buf *b, char type, const char *records, size_t len)
{
	tar_header(b, "@PaxHeader", type, 0644, len, NULL);
	tar_data(b, records, len);
}

/* A PAX 'x' header "<len> path=<path>\n", the length counting its own digits. */
static void tar_pax_path(stk_buf *b, const char *path)
{
	char rec[T_PATH];
	size_t base = strlen(path) + strlen(" path=\n"), len = base + 1;
	int n;

	while ((size_t)snprintf(NULL, 0, "%zu", len) + base != len)
		len++;
	n = snprintf(rec, sizeof(rec), "%zu path=%s\n", len, path);
	assert_int_equal((size_t)n, len);
	tar_pax_raw(b, 'x', rec, len);
}

/* Two zero blocks, padded to a 10240-byte record as tar(1) does. */
static void tar_end(stk_buf *b)
{
	static const char zeros[1024];

	assert_int_equal(stk_buf_put(b, zeros, sizeof(zeros)), 0);
	while (b->len % 10240)
		assert_int_equal(stk_buf_put(b, zeros, 512), 0);
}

static unsigned char *gzip(const void *in, size_t len, size_t *out_len)
{
	z_stream zs;
	size_t cap = compressBound((uLong)len) + 64;
	unsigned char *out = stk_malloc(cap);

	memset(&zs, 0, sizeof(zs));
	assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
			 Z_OK);
	zs.next_in = (unsigned char *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*out_len = zs.total_out;
	deflateEnd(&zs);
	return out;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Writes f->tar, gzipped, to f->archive (plus `extra` bytes after the gzip stream). */
static void fx_write_extra(struct fx *f, const void *extra, size_t extra_len)
{
	size_t n;
	unsigned char *gz = gzip(f->tar.ptr, f->tar.len, &n);

	gz = stk_realloc(gz, n + extra_len + 1);
	if (extra_len)
		memcpy(gz + n, extra, extra_len);
	write_file(f->archive, gz, n + extra_len);
	free(gz);
}

static void fx_write(struct fx *f)
{
	fx_write_extra(f, NULL, 0);
}

static void sha256_file(const char *path, char out[AGENT_DIGEST_SIZE])
{
	unsigned char buf[4096], md[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	FILE *f = fopen(path, "re");
	size_t n;

	assert_non_null(f);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		EVP_DigestUpdate(ctx, buf, n);
	fclose(f);
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

/* ---- looking at the result --------------------------------------------------------------- */

static void path_of(char *out, const char *dir, const char *rel)
{
	int n = snprintf(out, T_PATH, "%s/%s", dir, rel);

	assert_true(n > 0 && n < T_PATH);
}

static bool exists(const char *dir, const char *rel)
{
	char p[T_PATH];
	struct stat st;

	path_of(p, dir, rel);
	return lstat(p, &st) == 0;
}

static mode_t mode_of(const char *dir, const char *rel)
{
	char p[T_PATH];
	struct stat st;

	path_of(p, dir, rel);
	if (lstat(p, &st))
		fail_msg("stat %s: %s", p, strerror(errno));
	return st.st_mode;
}

static void expect_file(const char *dir, const char *rel, const void *content, size_t len)
{
	char p[T_PATH];
	struct stat st;
	unsigned char *got;
	FILE *f;

	path_of(p, dir, rel);
	if (lstat(p, &st) || !S_ISREG(st.st_mode))
		fail_msg("%s: not a regular file", p);
	if ((size_t)st.st_size != len)
		fail_msg("%s: %lld bytes, expected %zu", p, (long long)st.st_size, len);
	got = stk_malloc(len + 1);
	f = fopen(p, "re");
	assert_non_null(f);
	assert_int_equal(fread(got, 1, len, f), len);
	fclose(f);
	if (memcmp(got, content, len))
		fail_msg("%s: content differs", p);
	free(got);
}

static void expect_text(const char *dir, const char *rel, const char *content)
{
	expect_file(dir, rel, content, strlen(content));
}

static void expect_contains(const char *text, const char *part)
{
	if (!strstr(text, part))
		fail_msg("'%s' does not mention '%s'", text, part);
}

/* Neither the destination nor a "<dest>.tmp-*" directory exists. */
static void expect_nothing_left(struct fx *f)
{
	DIR *d = opendir(f->root);
	struct dirent *de;

	assert_false(exists(f->root, "out"));
	assert_non_null(d);
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "out.tmp-", 8))
			fail_msg("temporary directory %s left behind", de->d_name);
	closedir(d);
}

/* ---- the fixture ------------------------------------------------------------------------ */

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int fx_setup(void **state)
{
	struct fx *f = stk_calloc(1, sizeof(*f));

	snprintf(f->root, sizeof(f->root), "/tmp/stk-test-unpack.XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	path_of(f->archive, f->root, "a.tar.gz");
	path_of(f->dest, f->root, "out");
	stk_buf_init(&f->tar, 64u << 20);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	nftw(f->root, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
	stk_buf_release(&f->tar);
	free(f);
	return 0;
}

struct run {
	const char *digest;
	uint64_t max_bytes, max_entries;
	const volatile sig_atomic_t *stop;
};

static int fx_unpack_ex(struct fx *f, const struct run *run, struct agent_unpack_result *res,
			stk_err *err)
{
	struct agent_unpack_opts o = AGENT_UNPACK_OPTS_INIT;

	o.archive = f->archive;
	o.dest = f->dest;
	if (run) {
		o.expect_digest = run->digest;
		o.max_bytes = run->max_bytes;
		o.max_entries = run->max_entries;
		o.stop = run->stop;
	}
	return agent_unpack(&o, res, err);
}

static void fx_unpack(struct fx *f, struct agent_unpack_result *res)
{
	stk_err err = STK_ERR_INIT;
	struct agent_unpack_result r;

	if (fx_unpack_ex(f, NULL, res ? res : &r, &err))
		fail_msg("unpack: %s", err.message);
}

/*
 * An unpack expected to fail with `code`, leaving nothing behind; returns the message
 * (static storage).
 */
static const char *fx_fails_ex(struct fx *f, const struct run *run, int code)
{
	static stk_err err;
	struct agent_unpack_result res;
	int rc;

	stk_err_clear(&err);
	memset(&res, 0x5a, sizeof(res));
	rc = fx_unpack_ex(f, run, &res, &err);
	if (rc != code)
		fail_msg("unpack returned %d (%s), expected %d", rc, err.message, code);
	assert_int_equal(err.code, code);
	assert_true(strlen(err.message) > 0 && strlen(err.message) < STK_ERR_MESSAGE_MAX);
	assert_null(strchr(err.message, '\n'));
	/* Outputs are written only on success. */
	assert_int_equal(res.files, 0x5a5a5a5a5a5a5a5aull);
	if (code != STK_EEXIST)
		expect_nothing_left(f);
	return err.message;
}

static const char *fx_fails(struct fx *f, int code)
{
	return fx_fails_ex(f, NULL, code);
}

/* A tar stream with one refused entry after a good one, gzipped, must fail naming it. */
static void refused(struct fx *f, const char *what)
{
	fx_write(f);
	expect_contains(fx_fails(f, STK_EINVAL), what);
}

/* ---- good archives ------------------------------------------------------------------------ */

static void test_unpack__files_dirs_and_modes(void **state)
{
	struct fx *f = *state;
	struct agent_unpack_result res;
	char digest[AGENT_DIGEST_SIZE];
	size_t big_len = 200000;
	char *big = stk_malloc(big_len);

	for (size_t i = 0; i < big_len; i++)
		big[i] = (char)('a' + i * 7 % 26);
	tar_dir(&f->tar, "config/");
	tar_file(&f->tar, "config/a.json", "{\"a\":1}", 0644);
	tar_file(&f->tar, "config/empty", "", 0600);
	tar_header(&f->tar, "config/big.bin", '0', 0644, big_len, NULL);
	tar_data(&f->tar, big, big_len);
	/* no directory entries for bin/ or x/y/: created implicitly */
	tar_file(&f->tar, "bin/run.sh", "#!/bin/sh\n", 0750);
	tar_file(&f->tar, "bin/other-exec", "x", 0001);
	tar_file(&f->tar, "x/y/z.txt", "deep", 0444);
	tar_file(&f->tar, "back\\slash name", "legal on Linux", 0644);
	tar_end(&f->tar);
	fx_write(f);
	sha256_file(f->archive, digest);

	fx_unpack(f, &res);
	expect_text(f->dest, "config/a.json", "{\"a\":1}");
	expect_text(f->dest, "config/empty", "");
	expect_file(f->dest, "config/big.bin", big, big_len);
	expect_text(f->dest, "bin/run.sh", "#!/bin/sh\n");
	expect_text(f->dest, "x/y/z.txt", "deep");
	expect_text(f->dest, "back\\slash name", "legal on Linux");
	assert_int_equal(mode_of(f->dest, "config/a.json"), S_IFREG | 0644);
	assert_int_equal(mode_of(f->dest, "config/empty"), S_IFREG | 0644);
	assert_int_equal(mode_of(f->dest, "x/y/z.txt"), S_IFREG | 0644);
	assert_int_equal(mode_of(f->dest, "bin/run.sh"), S_IFREG | 0755);
	assert_int_equal(mode_of(f->dest, "bin/other-exec"), S_IFREG | 0755);
	assert_int_equal(mode_of(f->root, "out"), S_IFDIR | 0755);
	assert_int_equal(mode_of(f->dest, "config"), S_IFDIR | 0755);
	assert_int_equal(mode_of(f->dest, "bin"), S_IFDIR | 0755);
	assert_int_equal(mode_of(f->dest, "x/y"), S_IFDIR | 0755);
	assert_int_equal(res.files, 7);
	assert_int_equal(res.dirs, 4); /* config, bin, x, x/y */
	assert_int_equal(res.bytes, 7 + big_len + 10 + 1 + 4 + 14);
	assert_string_equal(res.digest, digest);
	{
		DIR *d = opendir(f->root);
		struct dirent *de;
		while ((de = readdir(d)))
			assert_true(strncmp(de->d_name, "out.tmp-", 8) != 0);
		closedir(d);
	}
	free(big);
}

static void test_unpack__long_paths(void **state)
{
	struct fx *f = *state;
	char comp[201], pax_file[T_PATH], pax_dir[T_PATH], split[100], deep[T_PATH];
	char prefix[160];
	struct hdr_opts split_opts = {0};
	size_t dl = 0;

	memset(comp, 'n', 200);
	comp[200] = '\0';
	/* A 200-byte file name: no ustar split fits, so PAX; the ustar name is a fallback. */
	snprintf(pax_dir, sizeof(pax_dir), "d/%s/", comp);
	snprintf(pax_file, sizeof(pax_file), "d/%s/%s", comp, comp);
	tar_pax_path(&f->tar, pax_dir);
	tar_header(&f->tar, "nnnn/", '5', 0755, 0, NULL);
	tar_pax_path(&f->tar, pax_file);
	tar_header(&f->tar, "fallback", '0', 0644, 4, NULL);
	tar_data(&f->tar, "long", 4);
	/* prefix + name: 150 + 1 + 90 bytes */
	memset(prefix, 'p', 150);
	prefix[150] = '\0';
	memset(split, 'q', 90);
	split[90] = '\0';
	split_opts.prefix = prefix;
	tar_header(&f->tar, split, '0', 0644, 5, &split_opts);
	tar_data(&f->tar, "split", 5);
	/* A 4000-byte path of 40 components. */
	for (int i = 0; i < 40; i++)
		dl += (size_t)snprintf(deep + dl, sizeof(deep) - dl, "%s%099d", i ? "/" : "", i);
	assert_true(dl > 3000 && dl <= AGENT_TAR_PATH_MAX);
	tar_pax_path(&f->tar, deep);
	tar_header(&f->tar, "deep", '0', 0755, 4, NULL);
	tar_data(&f->tar, "deep", 4);
	tar_end(&f->tar);
	fx_write(f);

	fx_unpack(f, NULL);
	expect_text(f->dest, pax_file, "long");
	assert_false(exists(f->dest, "fallback"));
	assert_false(exists(f->dest, "nnnn"));
	{
		char p[T_PATH];
		snprintf(p, sizeof(p), "%s/%s", prefix, split);
		expect_text(f->dest, p, "split");
	}
	/* deep is longer than the dest-relative path a test can open in one go: walk it */
	{
		int fd = open(f->dest, O_RDONLY | O_DIRECTORY);
		char *copy = stk_strdup(deep), *c = copy, *s;
		while ((s = strchr(c, '/'))) {
			int next;
			*s = '\0';
			next = openat(fd, c, O_RDONLY | O_DIRECTORY);
			assert_true(next >= 0);
			close(fd);
			fd = next;
			c = s + 1;
		}
		{
			char got[8] = "";
			int ffd = openat(fd, c, O_RDONLY);
			struct stat st;
			assert_true(ffd >= 0);
			assert_int_equal(read(ffd, got, sizeof(got)), 4);
			assert_memory_equal(got, "deep", 4);
			assert_int_equal(fstat(ffd, &st), 0);
			assert_int_equal(st.st_mode, S_IFREG | 0755);
			close(ffd);
		}
		close(fd);
		free(copy);
	}
}

static void test_unpack__path_too_long(void **state)
{
	struct fx *f = *state;
	char p[AGENT_TAR_PATH_MAX + 2];

	for (size_t i = 0; i < AGENT_TAR_PATH_MAX + 1; i++)
		p[i] = i % 100 == 99 ? '/' : 'a';
	p[AGENT_TAR_PATH_MAX + 1] = '\0';
	tar_pax_path(&f->tar, p);
	tar_header(&f->tar, "a", '0', 0644, 0, NULL);
	tar_end(&f->tar);
	refused(f, "path longer than 4095 bytes");
}

static void test_unpack__digest_checked_first(void **state)
{
	struct fx *f = *state;
	char digest[AGENT_DIGEST_SIZE], upper[AGENT_DIGEST_SIZE], msg[STK_ERR_MESSAGE_MAX];
	struct run run = {0};
	struct agent_unpack_result res;
	const char *wrong =
		"sha256:0000000000000000000000000000000000000000000000000000000000000000";

	tar_file(&f->tar, "a.txt", "a", 0644);
	tar_end(&f->tar);
	fx_write(f);
	sha256_file(f->archive, digest);

	run.digest = wrong;
	snprintf(msg, sizeof(msg), "%s", fx_fails_ex(f, &run, STK_EINVAL));
	expect_contains(msg, "artifact digest mismatch: expected ");
	expect_contains(msg, wrong);
	expect_contains(msg, digest);

	run.digest = "sha256:abc";
	expect_contains(fx_fails_ex(f, &run, STK_EINVAL), "bad expected digest");
	run.digest = "md5:0123";
	fx_fails_ex(f, &run, STK_EINVAL);

	/* The digest is checked before the archive is parsed: a mismatching bad archive
	 * reports the mismatch. */
	write_file(f->archive, "garbage", 7);
	run.digest = digest;
	expect_contains(fx_fails_ex(f, &run, STK_EINVAL), "artifact digest mismatch");

	fx_write(f);
	for (size_t i = 0; i < sizeof(upper); i++)
		upper[i] = i > 7 && digest[i] >= 'a' && digest[i] <= 'f'
				   ? (char)(digest[i] - 'a' + 'A')
				   : digest[i];
	run.digest = upper;
	assert_int_equal(fx_unpack_ex(f, &run, &res, NULL), 0);
	assert_string_equal(res.digest, digest);
	expect_text(f->dest, "a.txt", "a");
}

static void test_unpack__gnu_magic_pax_globals_and_size(void **state)
{
	struct fx *f = *state;
	struct hdr_opts gnu = {.magic = "ustar  "}; /* "ustar  \0" with the NUL */
	struct hdr_opts bogus_size = {.size_field = "77777777777"};
	static const char global[] = "20 comment=whatever\n";
	static const char sized[] = "24 mtime=1700000000.123\n"
				    "10 size=3\n";

	tar_pax_raw(&f->tar, 'g', global, strlen(global));
	tar_header(&f->tar, "gnu.txt", '0', 0644, 3, &gnu);
	tar_data(&f->tar, "gnu", 3);
	/* a PAX size overrides the ustar field (which a writer may fill with anything) */
	tar_pax_raw(&f->tar, 'x', sized, strlen(sized));
	tar_header(&f->tar, "sized.txt", '0', 0644, 0, &bogus_size);
	tar_data(&f->tar, "abc", 3);
	tar_end(&f->tar);
	fx_write(f);

	fx_unpack(f, NULL);
	expect_text(f->dest, "gnu.txt", "gnu");
	expect_text(f->dest, "sized.txt", "abc");
}

static void test_unpack__explicit_dir_after_implicit(void **state)
{
	struct fx *f = *state;
	struct agent_unpack_result res;

	tar_file(&f->tar, "a/b/c", "c", 0644);
	tar_dir(&f->tar, "a/b/");
	tar_dir(&f->tar, "a/");
	tar_dir(&f->tar, "a/"); /* listed twice: harmless */
	tar_end(&f->tar);
	fx_write(f);
	fx_unpack(f, &res);
	expect_text(f->dest, "a/b/c", "c");
	assert_int_equal(res.dirs, 2);
	assert_int_equal(res.files, 1);
}

/* An archive GNU tar writes the way the packer does (PAX, sorted, owner 0, mtime 0). */
static void test_unpack__gnu_tar_archive(void **state)
{
	struct fx *f = *state;
	char src[T_PATH], p[T_PATH], longdir[T_PATH], longfile[T_PATH];
	char comp[121];
	const char *argv[] = {"tar",	     "--format=pax",
			      "--sort=name", "--owner=0",
			      "--group=0",   "--numeric-owner",
			      "--mtime=@0",  "-czf",
			      f->archive,    "-C",
			      src,	     "config",
			      "bin",	     NULL};
	pid_t pid;
	int status;
	struct agent_unpack_result res;

	if (access("/usr/bin/tar", X_OK) && access("/bin/tar", X_OK))
		skip();
	path_of(src, f->root, "src");
	memset(comp, 'L', 120);
	comp[120] = '\0';
	assert_true(snprintf(longdir, sizeof(longdir), "%s/config/%s", src, comp) < T_PATH);
	snprintf(longfile, sizeof(longfile), "config/%s/%s.json", comp, comp);
	assert_int_equal(mkdir(src, 0755), 0);
	path_of(p, src, "config");
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(mkdir(longdir, 0755), 0);
	path_of(p, src, longfile);
	write_file(p, "{}", 2);
	path_of(p, src, "config/z.txt");
	write_file(p, "z", 1);
	path_of(p, src, "bin");
	assert_int_equal(mkdir(p, 0755), 0);
	path_of(p, src, "bin/tool");
	write_file(p, "#!/bin/sh\n", 10);
	assert_int_equal(chmod(p, 0755), 0);

	/* tar prints nothing on success; stdout/stderr are left to the test's */
	assert_int_equal(posix_spawnp(&pid, "tar", NULL, NULL, (char **)argv, environ), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	fx_unpack(f, &res);
	expect_text(f->dest, longfile, "{}");
	expect_text(f->dest, "config/z.txt", "z");
	expect_text(f->dest, "bin/tool", "#!/bin/sh\n");
	assert_int_equal(mode_of(f->dest, "bin/tool"), S_IFREG | 0755);
	assert_int_equal(mode_of(f->dest, "config/z.txt"), S_IFREG | 0644);
	assert_int_equal(res.files, 3);
	assert_int_equal(res.dirs, 3);
}

/* ---- hostile archives --------------------------------------------------------------------- */

static void test_unpack__dotdot_and_absolute_paths(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *name, *what;
	} cases[] = {
		{"../x", "'..' path component"},  {"a/../../x", "'..' path component"},
		{"a/..", "'..' path component"},  {"/abs", "absolute path"},
		{"/", "absolute path"},		  {"./a", "'.' path component"},
		{"a//b", "empty path component"}, {"a/./b", "'.' path component"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char msg[STK_ERR_MESSAGE_MAX];
		stk_buf_reset(&f->tar);
		tar_file(&f->tar, "ok.txt", "fine", 0644);
		tar_file(&f->tar, cases[i].name, "evil", 0644);
		tar_end(&f->tar);
		fx_write(f);
		snprintf(msg, sizeof(msg), "%s", fx_fails(f, STK_EINVAL));
		expect_contains(msg, cases[i].what);
		expect_contains(msg, cases[i].name);
	}
	/* Nothing was written outside either. */
	assert_false(exists(f->root, "x"));
}

/* A PAX path overrides an innocent ustar name: it is the one checked. */
static void test_unpack__pax_path_escaping(void **state)
{
	struct fx *f = *state;

	tar_pax_path(&f->tar, "../../etc/passwd");
	tar_file(&f->tar, "passwd", "root::0:0::/:/bin/sh\n", 0644);
	tar_end(&f->tar);
	refused(f, "'../../etc/passwd': '..' path component");
}

static void test_unpack__links_and_devices_refused(void **state)
{
	struct fx *f = *state;
	static const struct {
		char type;
		const char *what;
	} cases[] = {
		{'2', "unsupported tar entry type (symbolic link)"},
		{'1', "unsupported tar entry type (hard link)"},
		{'3', "unsupported tar entry type (character device)"},
		{'4', "unsupported tar entry type (block device)"},
		{'6', "unsupported tar entry type (FIFO)"},
		{'L', "unsupported tar entry type (GNU long name)"},
		{'K', "unsupported tar entry type (GNU long link name)"},
		{'S', "unsupported tar entry type (GNU sparse file)"},
		{'Z', "unsupported tar entry type 0x5a"},
	};
	struct hdr_opts link = {.linkname = "../../etc/passwd"};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char msg[STK_ERR_MESSAGE_MAX];
		stk_buf_reset(&f->tar);
		tar_dir(&f->tar, "etc/");
		tar_header(&f->tar, "etc/passwd", cases[i].type, 0777, 0, &link);
		tar_file(&f->tar, "after", "x", 0644);
		tar_end(&f->tar);
		fx_write(f);
		snprintf(msg, sizeof(msg), "%s", fx_fails(f, STK_EINVAL));
		expect_contains(msg, cases[i].what);
		expect_contains(msg, "etc/passwd");
	}
	/* GNU sparse files in PAX form */
	stk_buf_reset(&f->tar);
	tar_pax_raw(&f->tar, 'x', "22 GNU.sparse.major=1\n", 22);
	tar_file(&f->tar, "sparse", "x", 0644);
	tar_end(&f->tar);
	refused(f, "GNU sparse file");
}

static void test_unpack__shape_conflicts(void **state)
{
	struct fx *f = *state;

	tar_dir(&f->tar, "a/");
	tar_file(&f->tar, "a", "file over dir", 0644);
	tar_end(&f->tar);
	refused(f, "'a': file where a directory exists");

	stk_buf_reset(&f->tar);
	tar_file(&f->tar, "a", "x", 0644);
	tar_dir(&f->tar, "a/");
	tar_end(&f->tar);
	refused(f, "'a': directory where a file exists");

	stk_buf_reset(&f->tar);
	tar_file(&f->tar, "a", "x", 0644);
	tar_file(&f->tar, "a/b", "under a file", 0644);
	tar_end(&f->tar);
	refused(f, "'a/b': a parent path is a file");

	stk_buf_reset(&f->tar);
	tar_file(&f->tar, "d/a", "first", 0644);
	tar_file(&f->tar, "d/a", "second", 0644);
	tar_end(&f->tar);
	refused(f, "'d/a': duplicate file");

	stk_buf_reset(&f->tar);
	tar_file(&f->tar, "d/", "", 0644);
	tar_end(&f->tar);
	refused(f, "'d/': a file name cannot end with '/'");

	stk_buf_reset(&f->tar);
	tar_header(&f->tar, "d/", '5', 0755, 3, NULL);
	tar_data(&f->tar, "abc", 3);
	tar_end(&f->tar);
	refused(f, "'d/': directory with 3 data bytes");
}

static void test_unpack__malformed_headers(void **state)
{
	struct fx *f = *state;
	struct hdr_opts bad_sum = {.checksum_delta = 1};
	struct hdr_opts v7 = {.magic = "\0\0\0\0\0\0\0\0"};
	struct hdr_opts b256 = {.size_field = "\x80\0\0\0\0\0\0\0\0\0\0\x01"};
	struct hdr_opts junk = {.size_field = "12x45670000"};
	static const char *bad_pax[] = {
		"8 path=a\n",	/* length one short of the record */
		"09 path=ab\n", /* leading zero */
		"10 path=ab",	/* no newline where the length says */
		"99 path=a\n",	/* longer than the header data */
		"9 =value\n",	/* empty key */
		"10 pathab\n",	/* no '=' */
		"11 size=-1\n", /* not a number */
		"10 path=a\nX", /* followed by garbage */
		" 7 a=b\n",	/* leading space */
		"7a a=b\n",	/* no space after the length */
	};

	tar_file(&f->tar, "ok", "x", 0644);
	tar_header(&f->tar, "a", '0', 0644, 0, &bad_sum);
	tar_end(&f->tar);
	refused(f, "bad tar header checksum at byte 1024");

	stk_buf_reset(&f->tar);
	tar_header(&f->tar, "a", '0', 0644, 0, &v7);
	tar_end(&f->tar);
	refused(f, "not a ustar header");

	stk_buf_reset(&f->tar);
	tar_header(&f->tar, "a", '0', 0644, 1, &b256);
	tar_data(&f->tar, "x", 1);
	tar_end(&f->tar);
	refused(f, "'a': base-256 size field not supported");

	stk_buf_reset(&f->tar);
	tar_header(&f->tar, "a", '0', 0644, 1, &junk);
	tar_data(&f->tar, "x", 1);
	tar_end(&f->tar);
	refused(f, "'a': bad size field");

	for (size_t i = 0; i < sizeof(bad_pax) / sizeof(bad_pax[0]); i++) {
		stk_buf_reset(&f->tar);
		tar_pax_raw(&f->tar, 'x', bad_pax[i], strlen(bad_pax[i]));
		tar_file(&f->tar, "a", "x", 0644);
		tar_end(&f->tar);
		fx_write(f);
		expect_contains(fx_fails(f, STK_EINVAL), "PAX");
	}

	/* a PAX header must describe an entry */
	stk_buf_reset(&f->tar);
	tar_pax_path(&f->tar, "a");
	tar_end(&f->tar);
	refused(f, "PAX header not followed by an entry");
	stk_buf_reset(&f->tar);
	tar_pax_path(&f->tar, "a");
	tar_pax_path(&f->tar, "b");
	tar_file(&f->tar, "b", "x", 0644);
	tar_end(&f->tar);
	refused(f, "PAX header not followed by an entry");
}

static void test_unpack__truncated(void **state)
{
	struct fx *f = *state;
	unsigned char *gz;
	size_t n, len;
	char content[1000];

	memset(content, 'c', sizeof(content) - 1);
	content[sizeof(content) - 1] = '\0';

	/* the tar stream stops in the middle of a file (gzip itself complete) */
	tar_file(&f->tar, "a", content, 0644);
	len = f->tar.len;
	f->tar.len = 700;
	fx_write(f);
	expect_contains(fx_fails(f, STK_EINVAL), "truncated archive: tar entry 'a' ends after");

	/* no end-of-archive blocks */
	f->tar.len = len;
	fx_write(f);
	expect_contains(fx_fails(f, STK_EINVAL), "truncated archive");

	/* one zero block */
	assert_int_equal(stk_buf_put(&f->tar, content, 0), 0);
	{
		static const char zeros[512];
		assert_int_equal(stk_buf_put(&f->tar, zeros, 512), 0);
	}
	fx_write(f);
	expect_contains(fx_fails(f, STK_EINVAL), "truncated archive");

	/* the gzip stream cut short, at several places */
	stk_buf_reset(&f->tar);
	tar_file(&f->tar, "a", content, 0644);
	tar_end(&f->tar);
	gz = gzip(f->tar.ptr, f->tar.len, &n);
	for (size_t cut = 0; cut < n; cut += n / 7 + 1) {
		write_file(f->archive, gz, cut);
		expect_contains(fx_fails(f, STK_EINVAL), "truncated archive");
	}
	write_file(f->archive, gz, n - 1);
	expect_contains(fx_fails(f, STK_EINVAL), "truncated archive");
	/* a flipped bit in the CRC trailer */
	gz[n - 6] ^= 1;
	write_file(f->archive, gz, n);
	expect_contains(fx_fails(f, STK_EINVAL), "not a valid gzip stream");
	free(gz);
}

static void test_unpack__garbage_and_trailing_data(void **state)
{
	struct fx *f = *state;
	unsigned char *gz;
	size_t n;
	char both[4096];

	write_file(f->archive, "this is not gzip at all, just some text\n", 40);
	expect_contains(fx_fails(f, STK_EINVAL), "not a valid gzip stream");

	write_file(f->archive, "", 0);
	expect_contains(fx_fails(f, STK_EINVAL), "truncated archive");

	tar_file(&f->tar, "a", "x", 0644);
	tar_end(&f->tar);
	fx_write_extra(f, "junk", 4);
	expect_contains(fx_fails(f, STK_EINVAL), "trailing data after the gzip stream");

	/* a second gzip member is trailing data too */
	gz = gzip(f->tar.ptr, f->tar.len, &n);
	assert_true(2 * n <= sizeof(both));
	memcpy(both, gz, n);
	memcpy(both + n, gz, n);
	write_file(f->archive, both, 2 * n);
	expect_contains(fx_fails(f, STK_EINVAL), "trailing data after the gzip stream");
	free(gz);

	/* not zeros after the end-of-archive blocks */
	stk_buf_reset(&f->tar);
	tar_file(&f->tar, "a", "x", 0644);
	tar_end(&f->tar);
	f->tar.ptr[f->tar.len - 1] = 'x';
	refused(f, "data after the end-of-archive blocks");

	/* zero padding after the end is fine up to a limit */
	stk_buf_reset(&f->tar);
	tar_file(&f->tar, "a", "x", 0644);
	tar_end(&f->tar);
	{
		/* exactly the limit: 2048 bytes of header, data and end blocks before it */
		char *zeros = stk_calloc(1, AGENT_TAR_TAIL_MAX);
		f->tar.len = 2048;
		assert_int_equal(stk_buf_put(&f->tar, zeros, AGENT_TAR_TAIL_MAX), 0);
		free(zeros);
	}
	fx_write(f);
	fx_unpack(f, NULL);
	assert_int_equal(rmdir(f->dest), -1); /* not empty */
	{
		char p[T_PATH];
		path_of(p, f->dest, "a");
		assert_int_equal(unlink(p), 0);
		assert_int_equal(rmdir(f->dest), 0);
	}
	assert_int_equal(stk_buf_put(&f->tar, "", 1), 0); /* one zero byte more */
	refused(f, "more than 1048576 bytes of padding after the end-of-archive blocks");

	/* a lone zero block in the middle */
	stk_buf_reset(&f->tar);
	{
		static const char zeros[512];
		assert_int_equal(stk_buf_put(&f->tar, zeros, 512), 0);
	}
	tar_file(&f->tar, "a", "x", 0644);
	tar_end(&f->tar);
	refused(f, "lone zero block");
}

static void test_unpack__limits(void **state)
{
	struct fx *f = *state;
	struct run run = {0};
	struct agent_unpack_result res;

	tar_dir(&f->tar, "d/");
	tar_file(&f->tar, "d/a", "12345", 0644);
	tar_file(&f->tar, "d/b", "678", 0644);
	tar_end(&f->tar);
	fx_write(f);

	run.max_entries = 2;
	expect_contains(fx_fails_ex(f, &run, STK_ETOOBIG), "more than 2 entries");
	run.max_entries = 0;
	run.max_bytes = 7;
	expect_contains(fx_fails_ex(f, &run, STK_ETOOBIG), "more than 7 bytes");

	/* PAX headers are held in memory: capped */
	stk_buf_reset(&f->tar);
	tar_header(&f->tar, "@PaxHeader", 'x', 0644, AGENT_TAR_PAX_MAX + 1, NULL);
	fx_write(f);
	expect_contains(fx_fails(f, STK_ETOOBIG), "PAX header of 65537 bytes");
	stk_buf_reset(&f->tar);
	tar_dir(&f->tar, "d/");
	tar_file(&f->tar, "d/a", "12345", 0644);
	tar_file(&f->tar, "d/b", "678", 0644);
	tar_end(&f->tar);
	fx_write(f);

	/* exactly at the limits */
	run.max_entries = 3;
	run.max_bytes = 8;
	assert_int_equal(fx_unpack_ex(f, &run, &res, NULL), 0);
	assert_int_equal(res.bytes, 8);
	assert_int_equal(res.files + res.dirs, 3);
}

static void test_unpack__implicit_dirs_count(void **state)
{
	struct fx *f = *state;
	struct run run = {.max_entries = 3};

	tar_file(&f->tar, "a/b/c/d", "x", 0644); /* 1 entry, 4 objects */
	tar_end(&f->tar);
	fx_write(f);
	expect_contains(fx_fails_ex(f, &run, STK_ETOOBIG), "more than 3 entries");
	run.max_entries = 4;
	assert_int_equal(fx_unpack_ex(f, &run, &(struct agent_unpack_result){0}, NULL), 0);
	expect_text(f->dest, "a/b/c/d", "x");
}

static void test_unpack__dest_and_archive_errors(void **state)
{
	struct fx *f = *state;
	char p[T_PATH];

	tar_file(&f->tar, "a", "x", 0644);
	tar_end(&f->tar);
	fx_write(f);

	/* dest exists: left alone */
	assert_int_equal(mkdir(f->dest, 0700), 0);
	path_of(p, f->dest, "mine");
	write_file(p, "keep", 4);
	expect_contains(fx_fails(f, STK_EEXIST), "already exists");
	expect_text(f->dest, "mine", "keep");
	assert_int_equal(mode_of(f->root, "out"), S_IFDIR | 0700);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(rmdir(f->dest), 0);

	/* the archive is missing */
	path_of(f->archive, f->root, "missing.tar.gz");
	expect_contains(fx_fails(f, STK_ENOTFOUND), "missing.tar.gz");

	/* the dest's parent is missing */
	path_of(f->archive, f->root, "a.tar.gz");
	path_of(f->dest, f->root, "no/such/out");
	{
		stk_err err = STK_ERR_INIT;
		struct agent_unpack_result res;
		assert_int_equal(fx_unpack_ex(f, NULL, &res, &err), STK_EIO);
	}
	assert_false(exists(f->root, "no"));
}

static void test_unpack__stop(void **state)
{
	struct fx *f = *state;
	volatile sig_atomic_t stop = 1;
	struct run run = {.stop = &stop};

	tar_file(&f->tar, "a", "x", 0644);
	tar_end(&f->tar);
	fx_write(f);
	expect_contains(fx_fails_ex(f, &run, STK_ECANCELED), "stopped");
}

/* A directory where one is expected, created with a trailing slash on dest. */
static void test_unpack__dest_with_trailing_slash(void **state)
{
	struct fx *f = *state;

	tar_file(&f->tar, "a", "x", 0644);
	tar_end(&f->tar);
	fx_write(f);
	path_of(f->dest, f->root, "out/");
	fx_unpack(f, NULL);
	expect_text(f->root, "out/a", "x");
}

/* ---- the parser on its own ----------------------------------------------------------------- */

struct log {
	stk_buf b;
};

static int log_begin(void *arg, const struct agent_tar_entry *e, stk_err *err)
{
	struct log *l = arg;

	(void)err;
	stk_buf_printf(&l->b, "%s %s%s %llu\n", e->is_dir ? "D" : "F", e->path, e->exec ? " x" : "",
		       (unsigned long long)e->size);
	return 0;
}

static int log_data(void *arg, const void *buf, size_t len, stk_err *err)
{
	struct log *l = arg;

	(void)err;
	stk_buf_put(&l->b, buf, len);
	return 0;
}

static int log_end(void *arg, const struct agent_tar_entry *e, stk_err *err)
{
	struct log *l = arg;

	(void)err;
	stk_buf_printf(&l->b, "\nend %s\n", e->path);
	return 0;
}

static void test_unpack__slicing_does_not_matter(void **state)
{
	struct fx *f = *state;
	struct log whole = {STK_BUF_INIT(1 << 20)}, bytes = {STK_BUF_INIT(1 << 20)};
	struct agent_tar_cb cb = {log_begin, log_data, log_end, &whole};
	struct agent_tar_reader *r = NULL;
	unsigned char *gz;
	size_t n;
	stk_err err = STK_ERR_INIT;

	tar_dir(&f->tar, "d/");
	tar_file(&f->tar, "d/a", "alpha", 0755);
	tar_pax_path(&f->tar, "d/long-name");
	tar_file(&f->tar, "x", "beta", 0644);
	tar_end(&f->tar);
	gz = gzip(f->tar.ptr, f->tar.len, &n);

	assert_int_equal(agent_tar_parse(gz, n, &cb, NULL, &err), 0);
	assert_string_equal(whole.b.ptr, "D d x 0\nF d/a x 5\nalpha\nend d/a\n"
					 "F d/long-name 4\nbeta\nend d/long-name\n");
	cb.arg = &bytes;
	assert_int_equal(agent_tar_reader_new(&r, &cb, NULL, &err), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(agent_tar_reader_feed(r, gz + i, 1, &err), 0);
	assert_int_equal(agent_tar_reader_finish(r, &err), 0);
	agent_tar_reader_free(r);
	assert_string_equal(bytes.b.ptr, whole.b.ptr);

	/* the parser's own limits, without a filesystem behind it */
	{
		struct agent_tar_limits lim = {.max_entries = 2};
		assert_int_equal(agent_tar_parse(gz, n, &cb, &lim, &err), STK_ETOOBIG);
		expect_contains(err.message, "'d/long-name': the archive has more than 2 entries");
		lim.max_entries = 0;
		lim.max_bytes = 8;
		assert_int_equal(agent_tar_parse(gz, n, &cb, &lim, &err), STK_ETOOBIG);
		expect_contains(err.message, "more than 8 bytes");
	}

	/* an error is sticky */
	assert_int_equal(agent_tar_reader_new(&r, &cb, NULL, &err), 0);
	assert_int_equal(agent_tar_reader_feed(r, "nope", 4, &err), STK_EINVAL);
	stk_err_clear(&err);
	assert_int_equal(agent_tar_reader_feed(r, gz, n, &err), STK_EINVAL);
	expect_contains(err.message, "not a valid gzip stream");
	assert_int_equal(agent_tar_reader_finish(r, NULL), STK_EINVAL);
	agent_tar_reader_free(r);

	free(gz);
	stk_buf_release(&whole.b);
	stk_buf_release(&bytes.b);
}

static void test_unpack__check_path(void **state)
{
	bool dir = true;
	stk_err err = STK_ERR_INIT;

	(void)state;
	assert_int_equal(agent_tar_check_path("a/b", 3, &dir, &err), 0);
	assert_false(dir);
	assert_int_equal(agent_tar_check_path("a/b/", 4, &dir, &err), 0);
	assert_true(dir);
	assert_int_equal(agent_tar_check_path("..a/b..", 7, &dir, NULL), 0);
	assert_int_equal(agent_tar_check_path("a\\..\\b", 6, &dir, NULL), 0);
	assert_int_equal(agent_tar_check_path("", 0, &dir, NULL), STK_EINVAL);
	assert_int_equal(agent_tar_check_path("a//", 3, &dir, NULL), STK_EINVAL);
	assert_int_equal(agent_tar_check_path("a\0b", 3, &dir, &err), STK_EINVAL);
	expect_contains(err.message, "'a\\x00b': path contains a NUL byte");
	assert_int_equal(agent_tar_check_path("a\nb/..", 6, &dir, &err), STK_EINVAL);
	expect_contains(err.message, "'a\\x0ab/..'");
	{
		char deep[2 * (AGENT_TAR_DEPTH_MAX + 1)];
		for (size_t i = 0; i < sizeof(deep); i += 2) {
			deep[i] = 'a';
			deep[i + 1] = '/';
		}
		assert_int_equal(agent_tar_check_path(deep, sizeof(deep) - 3, &dir, NULL), 0);
		assert_int_equal(agent_tar_check_path(deep, sizeof(deep) - 1, &dir, &err),
				 STK_EINVAL);
		expect_contains(err.message, "nested path components");
	}
}

#define T(name) cmocka_unit_test_setup_teardown(test_unpack__##name, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(files_dirs_and_modes),
		T(long_paths),
		T(path_too_long),
		T(digest_checked_first),
		T(gnu_magic_pax_globals_and_size),
		T(explicit_dir_after_implicit),
		T(gnu_tar_archive),
		T(dotdot_and_absolute_paths),
		T(pax_path_escaping),
		T(links_and_devices_refused),
		T(shape_conflicts),
		T(malformed_headers),
		T(truncated),
		T(garbage_and_trailing_data),
		T(limits),
		T(implicit_dirs_count),
		T(dest_and_archive_errors),
		T(stop),
		T(dest_with_trailing_slash),
		T(slicing_does_not_matter),
		T(check_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
