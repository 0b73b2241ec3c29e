/*
 * libFuzzer target for the artifact reader's parser (unpack.h), in memory. The first
 * input byte is a mode: bit 0 set means the rest is a raw tar stream, which the target
 * gzips itself (so mutations reach the tar parser instead of dying in inflate), bit 1
 * appends the two end-of-archive blocks to it; bits 2-7 choose how the second parse
 * slices its input. Besides never crashing or leaking, the parser must:
 *  - give the same result, message and callback sequence whether the archive is fed in
 *    one piece or in slices (agent_tar_parse against agent_tar_reader_feed);
 *  - report only paths that are relative, without empty, "." or ".." components and
 *    within the length limit (checked by an independent oracle, and by
 *    agent_tar_check_path), directories without their trailing '/';
 *  - hand each file exactly `size` data bytes between begin and end, nothing to a
 *    directory, never overlap two entries, and stay within the limits;
 *  - on success, have ended every file it began.
 * The raw input is also fed to agent_tar_check_path and compared with the oracle.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "unpack.h"

#define MAX_BYTES   (1u << 20)
#define MAX_ENTRIES 1000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

/* The path rules of unpack.h, written independently of agent_tar_check_path. */
static bool oracle_path(const char *p, size_t len, bool *is_dir)
{
	size_t start = 0, depth = 0;

	*is_dir = false;
	if (len == 0 || memchr(p, '\0', len) || p[0] == '/')
		return false;
	if (p[len - 1] == '/') {
		*is_dir = true;
		len--;
	}
	if (len > AGENT_TAR_PATH_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && p[i] != '/')
			continue;
		if (i == start || (i - start == 1 && p[start] == '.') ||
		    (i - start == 2 && p[start] == '.' && p[start + 1] == '.'))
			return false;
		depth++;
		start = i + 1;
	}
	return depth <= AGENT_TAR_DEPTH_MAX;
}

struct trace {
	uint64_t hash; /* FNV-1a over every event */
	uint64_t entries, bytes, left;
	bool in_file;
};

static void mix(struct trace *t, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++) {
		t->hash ^= p[i];
		t->hash *= 0x100000001b3ull;
	}
}

static int on_begin(void *arg, const struct agent_tar_entry *e, stk_err *err)
{
	struct trace *t = arg;
	bool dir, slash;

	check(!t->in_file);
	check(strlen(e->path) == e->path_len);
	check(oracle_path(e->path, e->path_len, &slash) && !slash);
	check(agent_tar_check_path(e->path, e->path_len, &dir, err) == 0 && !dir);
	check(!e->is_dir || e->size == 0);
	check(++t->entries <= MAX_ENTRIES);
	t->bytes += e->size;
	check(t->bytes <= MAX_BYTES);
	mix(t, "B", 1);
	mix(t, e->path, e->path_len + 1);
	mix(t, &e->is_dir, sizeof(e->is_dir));
	mix(t, &e->exec, sizeof(e->exec));
	mix(t, &e->size, sizeof(e->size));
	if (!e->is_dir) {
		t->in_file = true;
		t->left = e->size;
	}
	return 0;
}

static int on_data(void *arg, const void *buf, size_t len, stk_err *err)
{
	struct trace *t = arg;

	(void)err;
	check(t->in_file && len > 0 && len <= t->left);
	t->left -= len;
	mix(t, buf, len);
	return 0;
}

static int on_end(void *arg, const struct agent_tar_entry *e, stk_err *err)
{
	struct trace *t = arg;

	(void)err;
	check(t->in_file && t->left == 0 && !e->is_dir);
	t->in_file = false;
	mix(t, "E", 1);
	return 0;
}

static unsigned char *gzip(const unsigned char *in, size_t len, size_t *out_len)
{
	z_stream zs;
	size_t cap = compressBound((uLong)len) + 64;
	unsigned char *out = malloc(cap);

	memset(&zs, 0, sizeof(zs));
	check(out &&
	      deflateInit2(&zs, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
	zs.next_in = (unsigned char *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	check(deflate(&zs, Z_FINISH) == Z_STREAM_END);
	*out_len = zs.total_out;
	deflateEnd(&zs);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct agent_tar_limits lim = {MAX_BYTES, MAX_ENTRIES};
	struct trace whole = {0xcbf29ce484222325ull, 0, 0, 0, false}, sliced = whole;
	struct agent_tar_cb cb = {on_begin, on_data, on_end, &whole};
	struct agent_tar_reader *r = NULL;
	stk_err e1 = STK_ERR_INIT, e2 = STK_ERR_INIT;
	unsigned char *owned = NULL;
	const unsigned char *in;
	size_t in_len, step;
	bool dir, odir;
	int rc1, rc2;

	if (size == 0)
		return 0;
	/* The path checker against the oracle, on the raw bytes. */
	rc1 = agent_tar_check_path((const char *)data + 1, size - 1, &dir, &e1);
	check((rc1 == 0) == oracle_path((const char *)data + 1, size - 1, &odir));
	check(rc1 != 0 || dir == odir);
	check(rc1 == 0 || (rc1 == STK_EINVAL && e1.message[0]));
	stk_err_clear(&e1);

	in = data + 1;
	in_len = size - 1;
	if (data[0] & 1) {
		unsigned char *tar = calloc(1, in_len + 1024 + 1);
		size_t tar_len = in_len + (data[0] & 2 ? 1024 : 0);
		check(tar != NULL);
		memcpy(tar, in, in_len);
		owned = gzip(tar, tar_len, &in_len);
		free(tar);
		in = owned;
	}

	rc1 = agent_tar_parse(in, in_len, &cb, &lim, &e1);
	check(rc1 == 0 || rc1 == STK_EINVAL || rc1 == STK_ETOOBIG);
	check(rc1 == 0 || (e1.code == rc1 && e1.message[0]));
	check(rc1 != 0 || !whole.in_file);

	cb.arg = &sliced;
	step = (size_t)(data[0] >> 2) * 37 + 1;
	rc2 = agent_tar_reader_new(&r, &cb, &lim, &e2);
	check(rc2 == 0);
	for (size_t off = 0, n; off < in_len && rc2 == 0; off += n) {
		n = in_len - off < step ? in_len - off : step;
		rc2 = agent_tar_reader_feed(r, in + off, n, &e2);
		step = step * 5 % 4093 + 1;
	}
	if (rc2 == 0)
		rc2 = agent_tar_reader_finish(r, &e2);
	agent_tar_reader_free(r);

	check(rc1 == rc2);
	check(!strcmp(e1.message, e2.message));
	check(whole.hash == sliced.hash && whole.entries == sliced.entries);
	free(owned);
	return 0;
}
