/*
 * The artifact packer against repositories built with libgit2 in a temporary directory:
 * the archive is read back with zlib and a small tar reader written here (independent of
 * the packer), and extracted with Python's tarfile ("data" filter) and GNU tar.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <git2.h>
#include <zlib.h>

#include "artifact.h"

extern char **environ;

/* ------------------------------------------------------------------------------------ */
/* The repository under test                                                            */
/* ------------------------------------------------------------------------------------ */

struct file {
	char *path;
	unsigned mode; /* GIT_FILEMODE_* */
	char *data;    /* blob content, or the link target */
	size_t len;
};

struct spec {
	struct file *f;
	size_t n;
};

struct fixture {
	char root[256];
	char repo_path[300];
	char store[300]; /* where artifacts go */
	git_repository *repo;
	struct spec s1, s2;
	char c1[41], c2[41];
};

static void spec_add(struct spec *s, const char *path, unsigned mode, const void *data, size_t len)
{
	s->f = realloc(s->f, (s->n + 1) * sizeof(*s->f));
	assert_non_null(s->f);
	s->f[s->n].path = strdup(path);
	s->f[s->n].mode = mode;
	s->f[s->n].data = malloc(len ? len : 1);
	assert_non_null(s->f[s->n].path);
	assert_non_null(s->f[s->n].data);
	memcpy(s->f[s->n].data, data, len);
	s->f[s->n].len = len;
	s->n++;
}

static void spec_text(struct spec *s, const char *path, unsigned mode, const char *text)
{
	spec_add(s, path, mode, text, strlen(text));
}

static void spec_free(struct spec *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->f[i].path);
		free(s->f[i].data);
	}
	free(s->f);
	s->f = NULL;
	s->n = 0;
}

static void spec_copy(struct spec *dst, const struct spec *src)
{
	for (size_t i = 0; i < src->n; i++)
		spec_add(dst, src->f[i].path, src->f[i].mode, src->f[i].data, src->f[i].len);
}

static const char *long_split_path(void)
{
	/* 120 bytes that fit ustar by splitting at the last '/': "long/" + 50 + "/" + 64. */
	static char p[121];
	memcpy(p, "long/", 5);
	memset(p + 5, 'd', 50);
	p[55] = '/';
	memset(p + 56, 'f', 64);
	p[120] = '\0';
	return p;
}

static const char *long_base_path(void)
{
	/* A 120-byte file name at the root: needs a PAX header. */
	static char p[121];
	memset(p, 'n', 116);
	memcpy(p + 116, ".txt", 5);
	return p;
}

static const char *deep_path(void)
{
	/* ~270 bytes: more than ustar's prefix + name can hold. */
	static char p[400];
	size_t o = 0;
	o += (size_t)snprintf(p + o, sizeof(p) - o, "deep");
	for (int i = 0; i < 20; i++)
		o += (size_t)snprintf(p + o, sizeof(p) - o, "/component-%02d", i);
	snprintf(p + o, sizeof(p) - o, "/leaf.txt");
	return p;
}

/* Pseudo-random, incompressible content (rand(3) is banned; xorshift is enough). */
static void fill_random(unsigned char *b, size_t n, uint32_t seed)
{
	uint32_t x = seed;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (unsigned char)x;
	}
}

#define BIG_SIZE (3u * 1024 * 1024 + 123)

static void build_spec1(struct spec *s)
{
	unsigned char *big = malloc(BIG_SIZE);
	const unsigned char bin[] = {0, 1, 2, 0xff, 0xfe, '\n', 0};

	assert_non_null(big);
	fill_random(big, BIG_SIZE, 0x9e3779b9u);
	spec_text(s, "README.md", GIT_FILEMODE_BLOB, "# hello\n");
	spec_text(s, "docs/README.md", GIT_FILEMODE_BLOB, "docs readme\n");
	spec_text(s, "docs/guide.md", GIT_FILEMODE_BLOB, "guide\n");
	spec_add(s, "build/out.o", GIT_FILEMODE_BLOB, bin, sizeof(bin));
	spec_text(s, "src/build/x.o", GIT_FILEMODE_BLOB, "object\n");
	spec_text(s, "src/main.c", GIT_FILEMODE_BLOB, "int main(void) { return 0; }\n");
	spec_text(s, "top.txt", GIT_FILEMODE_BLOB, "top\n");
	spec_text(s, "sub/top.txt", GIT_FILEMODE_BLOB, "sub top\n");
	spec_text(s, "config/a.json", GIT_FILEMODE_BLOB, "{\"a\":1}\n");
	spec_text(s, "config/b.json", GIT_FILEMODE_BLOB, "{\"b\":1}\n");
	spec_text(s, "config/sub/deep/b.json", GIT_FILEMODE_BLOB, "{\"deep\":true}\n");
	spec_text(s, "notes/build", GIT_FILEMODE_BLOB, "a file named build\n");
	spec_text(s, "bin/run.sh", GIT_FILEMODE_BLOB_EXECUTABLE, "#!/bin/sh\necho run\n");
	spec_text(s, "a-b.txt", GIT_FILEMODE_BLOB, "sorts before a/\n");
	spec_text(s, "a/inner.txt", GIT_FILEMODE_BLOB, "inner\n");
	spec_text(s, "empty.txt", GIT_FILEMODE_BLOB, "");
	spec_add(s, "big.bin", GIT_FILEMODE_BLOB, big, BIG_SIZE);
	spec_text(s, long_split_path(), GIT_FILEMODE_BLOB, "long split\n");
	spec_text(s, long_base_path(), GIT_FILEMODE_BLOB, "long base\n");
	spec_text(s, deep_path(), GIT_FILEMODE_BLOB, "deep\n");
	spec_text(s, "caf\xc3\xa9/na\xc3\xafve.txt", GIT_FILEMODE_BLOB, "unicode\n");
	spec_text(s, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.txt", GIT_FILEMODE_BLOB, "nihongo\n");
	spec_text(s, "link-inside", GIT_FILEMODE_LINK, "config/a.json");
	spec_text(s, "config/link-outside", GIT_FILEMODE_LINK, "/etc/passwd");
	spec_text(s, "vendor/sub", GIT_FILEMODE_COMMIT, "");
	free(big);
}

/* Commits `s` as the new HEAD (parent: the previous HEAD, if any). */
static void commit_spec(git_repository *r, const struct spec *s, char out[41])
{
	git_index *idx = NULL;
	git_oid tree_id, commit_id, parent_id;
	git_tree *tree = NULL;
	git_signature *sig = NULL;
	git_commit *parent = NULL;
	const git_commit *parents[1];
	size_t nparents = 0;

	assert_int_equal(git_repository_index(&idx, r), 0);
	assert_int_equal(git_index_clear(idx), 0);
	for (size_t i = 0; i < s->n; i++) {
		git_index_entry e;
		memset(&e, 0, sizeof(e));
		e.path = s->f[i].path;
		e.mode = s->f[i].mode;
		if (s->f[i].mode == GIT_FILEMODE_COMMIT) {
			assert_int_equal(
				git_oid_fromstr(&e.id, "0123456789abcdef0123456789abcdef01234567"),
				0);
			assert_int_equal(git_index_add(idx, &e), 0);
		} else {
			assert_int_equal(
				git_index_add_from_buffer(idx, &e, s->f[i].data, s->f[i].len), 0);
		}
	}
	assert_int_equal(git_index_write_tree(&tree_id, idx), 0);
	assert_int_equal(git_tree_lookup(&tree, r, &tree_id), 0);
	assert_int_equal(git_signature_new(&sig, "Test", "t@example.com", 1700000000, 0), 0);
	if (git_reference_name_to_id(&parent_id, r, "HEAD") == 0) {
		assert_int_equal(git_commit_lookup(&parent, r, &parent_id), 0);
		parents[0] = parent;
		nparents = 1;
	}
	assert_int_equal(git_commit_create(&commit_id, r, "HEAD", sig, sig, NULL, "commit", tree,
					   nparents, parents),
			 0);
	git_oid_tostr(out, 41, &commit_id);
	git_commit_free(parent);
	git_signature_free(sig);
	git_tree_free(tree);
	git_index_free(idx);
}

/* Writes a raw tree object (entries "<mode> <name>\0<oid>") and a commit of it. */
struct raw_entry {
	const char *mode, *name;
	const git_oid *id;
};

static void raw_commit(git_repository *r, const struct raw_entry *e, size_t n, char out[41])
{
	unsigned char buf[4096];
	char text[512], hex[41];
	size_t o = 0;
	git_odb *odb = NULL;
	git_oid tree_id, commit_id;

	for (size_t i = 0; i < n; i++) {
		size_t ml = strlen(e[i].mode), nl = strlen(e[i].name);
		assert_true(o + ml + nl + 2 + GIT_OID_RAWSZ < sizeof(buf));
		memcpy(buf + o, e[i].mode, ml);
		o += ml;
		buf[o++] = ' ';
		memcpy(buf + o, e[i].name, nl + 1);
		o += nl + 1;
		memcpy(buf + o, e[i].id->id, GIT_OID_RAWSZ);
		o += GIT_OID_RAWSZ;
	}
	assert_int_equal(git_repository_odb(&odb, r), 0);
	assert_int_equal(git_odb_write(&tree_id, odb, buf, o, GIT_OBJECT_TREE), 0);
	git_oid_tostr(hex, sizeof(hex), &tree_id);
	snprintf(text, sizeof(text),
		 "tree %s\nauthor T <t@example.com> 0 +0000\ncommitter T <t@example.com> 0 "
		 "+0000\n\nraw\n",
		 hex);
	assert_int_equal(git_odb_write(&commit_id, odb, text, strlen(text), GIT_OBJECT_COMMIT), 0);
	git_oid_tostr(out, 41, &commit_id);
	git_odb_free(odb);
}

static int run(const char *const argv[], char **out, size_t *out_len)
{
	posix_spawn_file_actions_t fa;
	int fds[2], status = -1;
	pid_t pid;
	char *buf = NULL;
	size_t len = 0, cap = 0;

	assert_int_equal(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	assert_int_equal(posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	for (;;) {
		ssize_t n;
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = read(fds[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (buf)
		buf[len] = '\0';
	if (out) {
		*out = buf ? buf : strdup("");
		*out_len = len;
	} else {
		free(buf);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void rm_rf(const char *path)
{
	const char *argv[] = {"rm", "-rf", path, NULL};
	assert_int_equal(run(argv, NULL, NULL), 0);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	git_libgit2_init();
	snprintf(fx->root, sizeof(fx->root), "/tmp/stoker-artifact-XXXXXX");
	assert_non_null(mkdtemp(fx->root));
	snprintf(fx->repo_path, sizeof(fx->repo_path), "%s/repo", fx->root);
	snprintf(fx->store, sizeof(fx->store), "%s/store", fx->root);
	assert_int_equal(mkdir(fx->store, 0700), 0);
	assert_int_equal(git_repository_init(&fx->repo, fx->repo_path, 0), 0);
	build_spec1(&fx->s1);
	commit_spec(fx->repo, &fx->s1, fx->c1);
	/* The second commit changes one file. */
	spec_copy(&fx->s2, &fx->s1);
	for (size_t i = 0; i < fx->s2.n; i++) {
		if (strcmp(fx->s2.f[i].path, "config/a.json") == 0) {
			free(fx->s2.f[i].data);
			fx->s2.f[i].data = strdup("{\"a\":2}\n");
			fx->s2.f[i].len = strlen(fx->s2.f[i].data);
		}
	}
	commit_spec(fx->repo, &fx->s2, fx->c2);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	git_repository_free(fx->repo);
	rm_rf(fx->root);
	spec_free(&fx->s1);
	spec_free(&fx->s2);
	free(fx);
	git_libgit2_shutdown();
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Reading an artifact back: gunzip + a minimal ustar/PAX reader                         */
/* ------------------------------------------------------------------------------------ */

struct entry {
	char *name;
	char type;
	unsigned mode;
	uint64_t size;
	const unsigned char *data;
};

struct archive {
	unsigned char *tar;
	size_t tar_len;
	struct entry *e;
	size_t n;
	size_t pax_headers;
};

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *b = NULL;
	size_t n = 0, cap = 0, r;

	assert_non_null(f);
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			b = realloc(b, cap);
			assert_non_null(b);
		}
		r = fread(b + n, 1, cap - n, f);
		if (r == 0)
			break;
		n += r;
	}
	fclose(f);
	*len = n;
	return b;
}

static uint64_t octal(const unsigned char *f, size_t width)
{
	uint64_t v = 0;
	size_t i = 0;
	for (; i < width && f[i] >= '0' && f[i] <= '7'; i++)
		v = v * 8 + (uint64_t)(f[i] - '0');
	return v;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i])
			return false;
	}
	return true;
}

static void read_archive(const char *path, struct archive *ar)
{
	static const unsigned char gz_header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
	size_t gz_len, off = 0, cap = 0;
	unsigned char *gz = read_file(path, &gz_len);
	char *pending = NULL;
	z_stream z;
	int zrc;

	memset(ar, 0, sizeof(*ar));
	/* Fixed gzip header: deflate, no flags, mtime 0, no extra flags, OS 3 (Unix). */
	assert_true(gz_len > sizeof(gz_header));
	assert_memory_equal(gz, gz_header, sizeof(gz_header));
	memset(&z, 0, sizeof(z));
	assert_int_equal(inflateInit2(&z, 16 + 15), Z_OK);
	z.next_in = gz;
	z.avail_in = (uInt)gz_len;
	do {
		if (ar->tar_len == cap) {
			cap = cap ? cap * 2 : 1 << 20;
			ar->tar = realloc(ar->tar, cap);
			assert_non_null(ar->tar);
		}
		z.next_out = ar->tar + ar->tar_len;
		z.avail_out = (uInt)(cap - ar->tar_len);
		zrc = inflate(&z, Z_NO_FLUSH);
		assert_true(zrc == Z_OK || zrc == Z_STREAM_END);
		ar->tar_len = cap - z.avail_out;
	} while (zrc != Z_STREAM_END);
	assert_int_equal(z.avail_in, 0); /* one gzip member, nothing after it */
	inflateEnd(&z);
	free(gz);

	assert_int_equal(ar->tar_len % 10240, 0);
	for (;;) {
		const unsigned char *h = ar->tar + off;
		unsigned sum = 0;
		char name[256 + 2];
		size_t nl, pl;
		uint64_t size;
		struct entry *e;

		assert_true(off + 512 <= ar->tar_len);
		if (all_zero(h, 512)) {
			/* End: a second zero block, then only padding. */
			assert_true(all_zero(h, ar->tar_len - off));
			assert_true(ar->tar_len - off >= 1024);
			break;
		}
		for (size_t i = 0; i < 512; i++)
			sum += (i >= 148 && i < 156) ? ' ' : h[i];
		assert_int_equal(octal(h + 148, 8), sum);
		assert_memory_equal(h + 257,
				    "ustar\0"
				    "00",
				    8);
		assert_memory_equal(h + 108, "0000000\0", 8);	   /* uid */
		assert_memory_equal(h + 116, "0000000\0", 8);	   /* gid */
		assert_memory_equal(h + 136, "00000000000\0", 12); /* mtime */
		assert_true(all_zero(h + 157, 100));		   /* linkname */
		assert_true(all_zero(h + 265, 64));		   /* uname, gname */
		assert_true(all_zero(h + 329, 16));		   /* devmajor, devminor */
		size = octal(h + 124, 12);
		nl = strnlen((const char *)h, 100);
		pl = strnlen((const char *)h + 345, 155);
		if (pl) {
			memcpy(name, h + 345, pl);
			name[pl] = '/';
			memcpy(name + pl + 1, h, nl);
			name[pl + 1 + nl] = '\0';
		} else {
			memcpy(name, h, nl);
			name[nl] = '\0';
		}
		off += 512;
		assert_true(off + size <= ar->tar_len);
		if (h[156] == 'x') {
			/* PAX records "<len> key=value\n"; we only expect path=. */
			const unsigned char *r = ar->tar + off, *end = r + size;
			assert_string_equal(name, "@PaxHeader");
			while (r < end) {
				char *sp;
				unsigned long rl = strtoul((const char *)r, &sp, 10);
				assert_true(rl > 0 && r + rl <= end && *sp == ' ');
				assert_int_equal(r[rl - 1], '\n');
				assert_memory_equal(sp + 1, "path=", 5);
				free(pending);
				pending = strndup(sp + 6,
						  (size_t)((const char *)r + rl - 1 - (sp + 6)));
				r += rl;
			}
			ar->pax_headers++;
			off += (size + 511) / 512 * 512;
			continue;
		}
		ar->e = realloc(ar->e, (ar->n + 1) * sizeof(*ar->e));
		assert_non_null(ar->e);
		e = &ar->e[ar->n++];
		if (pending) {
			/* The ustar name behind a PAX path is the base name, never a path. */
			size_t bl = strlen(name), pl2 = strlen(pending);
			const char *base = pending + pl2 - (pending[pl2 - 1] == '/');
			assert_true(bl > 0 && pl == 0);
			assert_null(memchr(name, '/', bl - (name[bl - 1] == '/')));
			while (base > pending && base[-1] != '/')
				base--;
			assert_memory_equal(name, base, bl - (name[bl - 1] == '/'));
		}
		e->name = pending ? pending : strdup(name);
		pending = NULL;
		e->type = (char)h[156];
		e->mode = (unsigned)octal(h + 100, 8);
		/* Exactly "0000644\0" or "0000755\0": no other permission bits, no high bits. */
		assert_true(memcmp(h + 100, "0000644\0", 8) == 0 ||
			    memcmp(h + 100, "0000755\0", 8) == 0);
		e->size = size;
		e->data = ar->tar + off;
		off += (size + 511) / 512 * 512;
	}
	assert_null(pending);
}

static void archive_free(struct archive *ar)
{
	for (size_t i = 0; i < ar->n; i++)
		free(ar->e[i].name);
	free(ar->e);
	free(ar->tar);
}

static const struct entry *archive_find(const struct archive *ar, const char *name)
{
	for (size_t i = 0; i < ar->n; i++) {
		if (strcmp(ar->e[i].name, name) == 0)
			return &ar->e[i];
	}
	return NULL;
}

static long archive_index(const struct archive *ar, const char *name)
{
	for (size_t i = 0; i < ar->n; i++) {
		if (strcmp(ar->e[i].name, name) == 0)
			return (long)i;
	}
	return -1;
}

/* ------------------------------------------------------------------------------------ */
/* Expectations computed from the spec, independently of the packer                     */
/* ------------------------------------------------------------------------------------ */

struct names {
	char **v;
	size_t n;
};

static void names_add(struct names *ns, const char *s)
{
	for (size_t i = 0; i < ns->n; i++) {
		if (strcmp(ns->v[i], s) == 0)
			return;
	}
	ns->v = realloc(ns->v, (ns->n + 1) * sizeof(*ns->v));
	assert_non_null(ns->v);
	ns->v[ns->n] = strdup(s);
	assert_non_null(ns->v[ns->n]);
	ns->n++;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
}

static bool spec_is_file(const struct spec *s, const char *name, const struct file **out)
{
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->f[i].path, name) == 0) {
			*out = &s->f[i];
			return s->f[i].mode == GIT_FILEMODE_BLOB ||
			       s->f[i].mode == GIT_FILEMODE_BLOB_EXECUTABLE;
		}
	}
	*out = NULL;
	return false;
}

/*
 * Every regular file of the spec and every directory holding anything (dirs with a
 * trailing '/'), minus what `patterns` exclude, sorted with strcmp. Exclusion is decided
 * with the hand-checked expectations of each test, passed in `excluded`.
 */
static void expected_names(const struct spec *s, const char *const *excluded, size_t nex,
			   struct names *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < s->n; i++) {
		char buf[4200];
		const char *p = s->f[i].path;
		bool skip = false;

		for (const char *q = strchr(p, '/'); q; q = strchr(q + 1, '/')) {
			snprintf(buf, sizeof(buf), "%.*s/", (int)(q - p + 0), p);
			for (size_t k = 0; k < nex; k++) {
				if (strcmp(excluded[k], buf) == 0)
					skip = true;
			}
			if (skip)
				break;
			names_add(out, buf);
		}
		for (size_t k = 0; k < nex; k++) {
			if (strcmp(excluded[k], p) == 0)
				skip = true;
		}
		if (!skip && (s->f[i].mode == GIT_FILEMODE_BLOB ||
			      s->f[i].mode == GIT_FILEMODE_BLOB_EXECUTABLE))
			names_add(out, p);
	}
	qsort(out->v, out->n, sizeof(*out->v), cmp_str);
}

static void check_entries(const struct archive *ar, const struct spec *s, const struct names *want)
{
	assert_int_equal(ar->n, want->n);
	for (size_t i = 0; i < ar->n; i++) {
		const struct entry *e = &ar->e[i];
		const struct file *f;
		size_t nl = strlen(e->name);

		assert_string_equal(e->name, want->v[i]);
		/* Relative, no "..", no "./", strictly increasing byte-wise. */
		assert_true(e->name[0] != '/' && strncmp(e->name, "./", 2) != 0);
		assert_null(strstr(e->name, "/../"));
		assert_true(strncmp(e->name, "../", 3) != 0);
		if (i > 0)
			assert_true(strcmp(ar->e[i - 1].name, e->name) < 0);
		if (e->name[nl - 1] == '/') {
			assert_int_equal(e->type, '5');
			assert_int_equal(e->mode, 0755);
			assert_int_equal(e->size, 0);
			continue;
		}
		assert_int_equal(e->type, '0');
		assert_true(spec_is_file(s, e->name, &f));
		assert_int_equal(e->mode, f->mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644);
		assert_int_equal(e->size, f->len);
		assert_memory_equal(e->data, f->data, f->len);
	}
}

static void pack_ok(struct fixture *fx, const char *commit, const char *const *ignore, size_t n,
		    const char *dest, struct srcctl_pack_result *res)
{
	struct srcctl_pack_opts o = SRCCTL_PACK_OPTS_INIT;
	stk_err err = STK_ERR_INIT;
	char digest[SRCCTL_DIGEST_SIZE];
	struct stat st;
	int rc;

	o.repo = fx->repo;
	o.commit = commit;
	o.ignore = ignore;
	o.ignore_count = n;
	o.dest_path = dest;
	rc = srcctl_artifact_pack(&o, res, &err);
	if (rc != 0)
		fail_msg("pack: %s", err.message);
	/* The digest is that of the bytes on disk, and size is their count. */
	assert_int_equal(srcctl_artifact_digest_file(dest, digest, &err), 0);
	assert_string_equal(digest, res->digest);
	assert_int_equal(stat(dest, &st), 0);
	assert_int_equal((uint64_t)st.st_size, res->size);
	assert_int_equal(strlen(res->digest), 71);
	assert_memory_equal(res->digest, "sha256:", 7);
}

/* Names in `dir` other than `keep` (temporary files left behind show up here). */
static size_t stray_files(const char *dir, const char *keep)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (keep && strcmp(de->d_name, keep) == 0)
			continue;
		n++;
	}
	closedir(d);
	return n;
}

/* ------------------------------------------------------------------------------------ */
/* Tests                                                                                 */
/* ------------------------------------------------------------------------------------ */

static void test_artifact__lists_sorted_normalised_entries(void **state)
{
	struct fixture *fx = *state;
	struct srcctl_pack_result res;
	struct archive ar;
	struct names want;
	char dest[400];
	size_t files = 0, dirs = 0;

	snprintf(dest, sizeof(dest), "%s/c1.tar.gz", fx->store);
	pack_ok(fx, fx->c1, NULL, 0, dest, &res);
	read_archive(dest, &ar);
	expected_names(&fx->s1, NULL, 0, &want);
	check_entries(&ar, &fx->s1, &want);
	for (size_t i = 0; i < want.n; i++) {
		if (want.v[i][strlen(want.v[i]) - 1] == '/')
			dirs++;
		else
			files++;
	}
	assert_int_equal(res.files, files);
	assert_int_equal(res.dirs, dirs);
	assert_int_equal(res.skipped_symlinks, 2);
	assert_int_equal(res.skipped_submodules, 1);
	assert_int_equal(res.ignored, 0);

	/* Directories sort with their '/', so "a-b.txt" < "a/" < "a/inner.txt". */
	assert_true(archive_index(&ar, "a-b.txt") >= 0);
	assert_true(archive_index(&ar, "a-b.txt") < archive_index(&ar, "a/"));
	assert_true(archive_index(&ar, "a/") < archive_index(&ar, "a/inner.txt"));
	/* Symlinks (inside and outside) and the submodule are absent; its parent stays. */
	assert_null(archive_find(&ar, "link-inside"));
	assert_null(archive_find(&ar, "config/link-outside"));
	assert_null(archive_find(&ar, "vendor/sub"));
	assert_non_null(archive_find(&ar, "vendor/"));
	/* The executable, the empty file, long and non-ASCII names. */
	assert_int_equal(archive_find(&ar, "bin/run.sh")->mode, 0755);
	assert_int_equal(archive_find(&ar, "empty.txt")->size, 0);
	assert_non_null(archive_find(&ar, long_split_path()));
	assert_non_null(archive_find(&ar, long_base_path()));
	assert_non_null(archive_find(&ar, deep_path()));
	assert_non_null(archive_find(&ar, "caf\xc3\xa9/na\xc3\xafve.txt"));
	/* The 120-byte base name and the deepest entries needed PAX; the split one did not. */
	assert_true(ar.pax_headers >= 2);
	names_free(&want);
	archive_free(&ar);
}

static void test_artifact__same_commit_same_digest_from_any_clone(void **state)
{
	struct fixture *fx = *state;
	struct srcctl_pack_result r1, r2, r3;
	char d1[400], d2[400], clone_path[400], objects[450];
	git_repository *clone = NULL, *saved = fx->repo;
	git_remote *remote = NULL;
	git_remote_create_options ro;
	char *specs[] = {(char *)"+refs/heads/*:refs/heads/*"};
	git_strarray refspecs = {specs, 1};
	unsigned char *b1, *b2;
	size_t l1, l2;
	char url[400];
	DIR *d;
	struct dirent *de;

	snprintf(d1, sizeof(d1), "%s/same1.tar.gz", fx->store);
	snprintf(d2, sizeof(d2), "%s/same2.tar.gz", fx->store);
	pack_ok(fx, fx->c1, NULL, 0, d1, &r1);
	pack_ok(fx, fx->c1, NULL, 0, d2, &r2);
	assert_string_equal(r1.digest, r2.digest);
	b1 = read_file(d1, &l1);
	b2 = read_file(d2, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	free(b1);
	free(b2);

	/*
	 * A second repository filled over the transport, as the controller fetches: objects
	 * arrive in a pack, not loose. (No insteadOf lookup: its config regex leaks pcre2
	 * match data inside libgit2 1.5.1, libgit2 PR #6382.)
	 */
	snprintf(clone_path, sizeof(clone_path), "%s/clone.git", fx->root);
	snprintf(url, sizeof(url), "file://%s", fx->repo_path);
	assert_int_equal(git_repository_init(&clone, clone_path, 1), 0);
	assert_int_equal(git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION), 0);
	ro.repository = clone;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
	assert_int_equal(git_remote_create_with_opts(&remote, url, &ro), 0);
	assert_int_equal(git_remote_fetch(remote, &refspecs, NULL, NULL), 0);
	git_remote_free(remote);
	snprintf(objects, sizeof(objects), "%s/objects", clone_path);
	d = opendir(objects);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		assert_false(strlen(de->d_name) == 2 && strcmp(de->d_name, "..") != 0);
	closedir(d);

	fx->repo = clone;
	pack_ok(fx, fx->c1, NULL, 0, d2, &r3);
	fx->repo = saved;
	git_repository_free(clone);
	assert_string_equal(r3.digest, r1.digest);
	assert_int_equal(r3.size, r1.size);
}

static void test_artifact__different_commit_different_digest(void **state)
{
	struct fixture *fx = *state;
	struct srcctl_pack_result r1, r2;
	struct archive ar;
	struct names want;
	char d1[400], d2[400];

	snprintf(d1, sizeof(d1), "%s/diff1.tar.gz", fx->store);
	snprintf(d2, sizeof(d2), "%s/diff2.tar.gz", fx->store);
	pack_ok(fx, fx->c1, NULL, 0, d1, &r1);
	pack_ok(fx, fx->c2, NULL, 0, d2, &r2);
	assert_string_not_equal(r1.digest, r2.digest);
	read_archive(d2, &ar);
	expected_names(&fx->s2, NULL, 0, &want);
	check_entries(&ar, &fx->s2, &want);
	assert_memory_equal(archive_find(&ar, "config/a.json")->data, "{\"a\":2}\n", 8);
	names_free(&want);
	archive_free(&ar);
}

/*
 * A small fixed tree, packed here and built independently by Python (tarfile in ustar
 * format, zlib's gzip wrapper at level 6): the bytes must agree, and the digest is pinned
 * so a change of format or of the deflate implementation cannot go unnoticed.
 */
#define GOLDEN_DIGEST "sha256:7de6f61e1bc1f4cae6e527cb54fedd9150ffa25f3c144c0a9e14832868e9489d"

static void test_artifact__golden_digest_matches_independent_build(void **state)
{
	struct fixture *fx = *state;
	static const char script[] =
		"import hashlib, io, sys, tarfile, zlib\n"
		"members = [('a.txt', b'alpha\\n', 0o644), ('dir', None, 0o755),\n"
		"           ('dir/b.sh', b'#!/bin/sh\\n', 0o755), ('dir/d.txt', b'delta\\n', "
		"0o644)]\n"
		"buf = io.BytesIO()\n"
		"with tarfile.open(fileobj=buf, mode='w', format=tarfile.USTAR_FORMAT) as t:\n"
		"    for name, data, mode in members:\n"
		"        ti = tarfile.TarInfo(name)\n"
		"        ti.mode, ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = mode, 0, 0, 0, "
		"'', ''\n"
		"        if data is None:\n"
		"            ti.type = tarfile.DIRTYPE\n"
		"            t.addfile(ti)\n"
		"        else:\n"
		"            ti.size = len(data)\n"
		"            t.addfile(ti, io.BytesIO(data))\n"
		"c = zlib.compressobj(6, zlib.DEFLATED, 31, 8)\n"
		"gz = c.compress(buf.getvalue()) + c.flush()\n"
		"open(sys.argv[1], 'wb').write(gz)\n";
	struct srcctl_pack_result res;
	git_oid a, b, d, sub, top, cid;
	git_treebuilder *tb = NULL;
	git_signature *sig = NULL;
	git_tree *tree = NULL;
	char commit[41], dest[400], py[400];
	unsigned char *mine, *theirs;
	size_t mine_len, theirs_len;

	assert_int_equal(git_blob_create_from_buffer(&a, fx->repo, "alpha\n", 6), 0);
	assert_int_equal(git_blob_create_from_buffer(&b, fx->repo, "#!/bin/sh\n", 10), 0);
	assert_int_equal(git_blob_create_from_buffer(&d, fx->repo, "delta\n", 6), 0);
	assert_int_equal(git_treebuilder_new(&tb, fx->repo, NULL), 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, "d.txt", &d, GIT_FILEMODE_BLOB), 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, "b.sh", &b, GIT_FILEMODE_BLOB_EXECUTABLE),
			 0);
	assert_int_equal(git_treebuilder_write(&sub, tb), 0);
	git_treebuilder_free(tb);
	assert_int_equal(git_treebuilder_new(&tb, fx->repo, NULL), 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, "a.txt", &a, GIT_FILEMODE_BLOB), 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, "dir", &sub, GIT_FILEMODE_TREE), 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, "link", &a, GIT_FILEMODE_LINK), 0);
	assert_int_equal(git_treebuilder_write(&top, tb), 0);
	git_treebuilder_free(tb);
	assert_int_equal(git_tree_lookup(&tree, fx->repo, &top), 0);
	assert_int_equal(git_signature_new(&sig, "Golden", "g@example.com", 1, 0), 0);
	assert_int_equal(
		git_commit_create(&cid, fx->repo, NULL, sig, sig, NULL, "golden", tree, 0, NULL),
		0);
	git_oid_tostr(commit, sizeof(commit), &cid);
	git_signature_free(sig);
	git_tree_free(tree);

	snprintf(dest, sizeof(dest), "%s/golden.tar.gz", fx->store);
	snprintf(py, sizeof(py), "%s/golden-python.tar.gz", fx->root);
	pack_ok(fx, commit, NULL, 0, dest, &res);
	assert_int_equal(res.files, 3);
	assert_int_equal(res.dirs, 1);
	assert_int_equal(res.skipped_symlinks, 1);
	{
		const char *argv[] = {"python3", "-c", script, py, NULL};
		assert_int_equal(run(argv, NULL, NULL), 0);
	}
	mine = read_file(dest, &mine_len);
	theirs = read_file(py, &theirs_len);
	assert_int_equal(mine_len, theirs_len);
	assert_memory_equal(mine, theirs, mine_len);
	free(mine);
	free(theirs);
	assert_string_equal(res.digest, GOLDEN_DIGEST);
}

static void test_artifact__ignore_patterns_exclude_entries(void **state)
{
	struct fixture *fx = *state;
	static const char *const ignore[] = {
		"*.md",		  /* every Markdown file ... */
		"!README.md",	  /* ... except READMEs, at any depth */
		"build/",	  /* directories named build, not the file notes/build */
		"!src/build/x.o", /* cannot re-include below an excluded directory */
		"/top.txt",	  /* only at the root */
		"config/**/b.json",
		"bin",
		"big.bin",
		"# a comment",
		"",
	};
	/* Worked out by hand from gitignore(5) (and checked against git check-ignore). */
	static const char *const excluded[] = {
		"docs/guide.md",	  "build/", "src/build/", "top.txt", "config/b.json",
		"config/sub/deep/b.json", "bin/",   "big.bin",
	};
	struct srcctl_pack_result res;
	struct archive ar;
	struct names want;
	char dest[400];

	snprintf(dest, sizeof(dest), "%s/ignored.tar.gz", fx->store);
	pack_ok(fx, fx->c1, ignore, sizeof(ignore) / sizeof(ignore[0]), dest, &res);
	read_archive(dest, &ar);
	expected_names(&fx->s1, excluded, sizeof(excluded) / sizeof(excluded[0]), &want);
	check_entries(&ar, &fx->s1, &want);
	assert_int_equal(res.ignored, 8);
	assert_non_null(archive_find(&ar, "README.md"));
	assert_non_null(archive_find(&ar, "docs/README.md"));
	assert_non_null(archive_find(&ar, "notes/build"));
	assert_non_null(archive_find(&ar, "sub/top.txt"));
	assert_non_null(archive_find(&ar, "config/sub/deep/")); /* emptied, still listed */
	assert_null(archive_find(&ar, "src/build/x.o"));
	assert_null(archive_find(&ar, "bin/run.sh"));

	/* The walk and the public matcher agree on every entry of the archive. */
	for (size_t i = 0; i < ar.n; i++) {
		char name[4200];
		size_t nl = strlen(ar.e[i].name);
		bool dir = ar.e[i].name[nl - 1] == '/';
		snprintf(name, sizeof(name), "%.*s", (int)(dir ? nl - 1 : nl), ar.e[i].name);
		assert_false(
			srcctl_ignore_match(ignore, sizeof(ignore) / sizeof(ignore[0]), name, dir));
	}
	for (size_t i = 0; i < sizeof(excluded) / sizeof(excluded[0]); i++) {
		char name[256];
		size_t nl = strlen(excluded[i]);
		bool dir = excluded[i][nl - 1] == '/';
		snprintf(name, sizeof(name), "%.*s", (int)(dir ? nl - 1 : nl), excluded[i]);
		assert_true(
			srcctl_ignore_match(ignore, sizeof(ignore) / sizeof(ignore[0]), name, dir));
	}
	names_free(&want);
	archive_free(&ar);
}

struct ign_case {
	const char *patterns[3];
	const char *path;
	bool is_dir, want;
};

/* Every expectation below was checked against `git check-ignore --no-index` (git 2.39). */
static const struct ign_case ign_cases[] = {
	{{"*.md"}, "README.md", false, true},
	{{"*.md"}, "docs/guide.md", false, true},
	{{"*.md", "!README.md"}, "README.md", false, false},
	{{"*.md", "!README.md"}, "docs/README.md", false, false},
	{{"!README.md", "*.md"}, "README.md", false, true},
	{{"build/"}, "build", true, true},
	{{"build/"}, "build", false, false},
	{{"build/"}, "src/build", true, true},
	{{"build/"}, "src/build/x.o", false, true},
	{{"/top.txt"}, "top.txt", false, true},
	{{"/top.txt"}, "sub/top.txt", false, false},
	{{"doc/frotz/"}, "doc/frotz", true, true},
	{{"doc/frotz/"}, "a/doc/frotz", true, false},
	{{"frotz/"}, "a/frotz", true, true},
	{{"**/foo"}, "foo", false, true},
	{{"**/foo"}, "a/b/foo", false, true},
	{{"**/foo/bar"}, "x/foo/bar", false, true},
	{{"**/foo/bar"}, "foo/bar", false, true},
	{{"abc/**"}, "abc", true, false},
	{{"abc/**"}, "abc/x", false, true},
	{{"abc/**"}, "abc/x/y", false, true},
	{{"a/**/b"}, "a/b", false, true},
	{{"a/**/b"}, "a/x/b", false, true},
	{{"a/**/b"}, "a/x/y/b", false, true},
	{{"a/**/b"}, "a/x/y/c", false, false},
	{{"*"}, "anything/deep", false, true},
	{{"?.txt"}, "a.txt", false, true},
	{{"?.txt"}, "ab.txt", false, false},
	{{"[a-c].txt"}, "b.txt", false, true},
	{{"[a-c].txt"}, "d.txt", false, false},
	{{"[!a-c].txt"}, "d.txt", false, true},
	{{"[!a-c].txt"}, "a.txt", false, false},
	{{"[^a-c].txt"}, "a.txt", false, false},
	{{"[[:digit:]]*"}, "9lives", false, true},
	{{"[[:digit:]]*"}, "nine", false, false},
	{{"[[:bogus:]]*"}, "nine", false, false},
	{{"[]x].txt"}, "].txt", false, true},
	{{"\\#hash"}, "#hash", false, true},
	{{"#hash"}, "#hash", false, false},
	{{"\\!bang"}, "!bang", false, true},
	{{"trail  "}, "trail", false, true},
	{{"trail\\ "}, "trail ", false, true},
	{{"trail\\ "}, "trail", false, false},
	{{"build/", "!build/keep.txt"}, "build/keep.txt", false, true},
	{{"/*", "!/deploy"}, "deploy/a.yaml", false, false},
	{{"/*", "!/deploy"}, "other/a.yaml", false, true},
	{{"/*", "!/deploy"}, "root.txt", false, true},
	{{"a/*.txt"}, "a/b.txt", false, true},
	{{"a/*.txt"}, "a/b/c.txt", false, false},
	{{"*.txt", "!important/*.txt"}, "important/x.txt", false, false},
	{{"[a-"}, "[a-", false, false},
	{{"foo\\"}, "foo", false, false},
	{{"**"}, "x/y", false, true},
	{{"*.o", "!*.o"}, "x.o", false, false},
	{{"caf\xc3\xa9/*.txt"}, "caf\xc3\xa9/na\xc3\xafve.txt", false, true},
	{{"a/b"}, "a/b/c", false, true},
	{{"a**b"}, "axxb", false, true},
	{{"a**b"}, "ax/xb", false, false},
	{{"*/b"}, "a/b", false, true},
	{{"*/b"}, "x/a/b", false, false},
	{{"*.MD"}, "README.md", false, false},
	{{"docs/**/*.tmp"}, "docs/x.tmp", false, true},
	{{"docs/**/*.tmp"}, "docs/a/b/x.tmp", false, true},
	{{"/**"}, "a/b", false, true},
	{{"a/**/**/b"}, "a/b", false, true},
	{{"**/.resources/**"}, "p/.resources/x/y.bin", false, true},
	{{"**/.resources/**"}, "p/.resources", true, false},
	{{"x/**/"}, "x/y", true, true},
	{{"x/**/"}, "x/y", false, false},
	{{"x/**/"}, "x/y/z", false, true},
	{{"a\\/b"}, "a/b", false, true},
};

static void test_artifact__ignore_match_follows_gitignore(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ign_cases) / sizeof(ign_cases[0]); i++) {
		const struct ign_case *c = &ign_cases[i];
		size_t n = 0;
		while (n < 3 && c->patterns[n])
			n++;
		if (srcctl_ignore_match(c->patterns, n, c->path, c->is_dir) != c->want)
			fail_msg("case %zu: patterns [%s, %s] path \"%s\" dir=%d: want %d", i,
				 c->patterns[0], n > 1 ? c->patterns[1] : "", c->path, c->is_dir,
				 c->want);
	}
	/* No patterns, NULL or empty path: nothing is excluded. */
	assert_false(srcctl_ignore_match(NULL, 0, "a", false));
	assert_false(srcctl_ignore_match(ign_cases[0].patterns, 1, NULL, false));
	assert_false(srcctl_ignore_match(ign_cases[0].patterns, 1, "", false));
}

static void test_artifact__size_cap_fails_cleanly(void **state)
{
	struct fixture *fx = *state;
	struct srcctl_pack_opts o = SRCCTL_PACK_OPTS_INIT;
	struct srcctl_pack_result prev, res, sentinel;
	stk_err err = STK_ERR_INIT;
	char dir[400], dest[450], digest[SRCCTL_DIGEST_SIZE];

	snprintf(dir, sizeof(dir), "%s/cap", fx->root);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(dest, sizeof(dest), "%s/art.tar.gz", dir);

	/* No previous artifact: nothing is left behind. */
	o.repo = fx->repo;
	o.commit = fx->c1;
	o.dest_path = dest;
	o.max_size = 64 * 1024; /* big.bin alone is 3 MiB of random bytes */
	memset(&res, 0xab, sizeof(res));
	sentinel = res;
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_ETOOBIG);
	assert_int_equal(err.code, STK_ETOOBIG);
	assert_non_null(strstr(err.message, "65536"));
	assert_memory_equal(&res, &sentinel, sizeof(res));
	assert_int_equal(stray_files(dir, NULL), 0);

	/* With a previous artifact: it stays, byte for byte. */
	pack_ok(fx, fx->c2, NULL, 0, dest, &prev);
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_ETOOBIG);
	assert_int_equal(srcctl_artifact_digest_file(dest, digest, &err), 0);
	assert_string_equal(digest, prev.digest);
	assert_int_equal(stray_files(dir, "art.tar.gz"), 0);

	/* The cap is inclusive: exactly the artifact's size passes, one byte less fails. */
	o.commit = fx->c2;
	o.max_size = prev.size;
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), 0);
	assert_string_equal(res.digest, prev.digest);
	o.max_size = prev.size - 1;
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_ETOOBIG);
	assert_int_equal(stray_files(dir, "art.tar.gz"), 0);
}

static void test_artifact__failure_keeps_previous_artifact(void **state)
{
	struct fixture *fx = *state;
	struct srcctl_pack_opts o = SRCCTL_PACK_OPTS_INIT;
	struct srcctl_pack_result prev, res, sentinel;
	stk_err err = STK_ERR_INIT;
	char dir[400], dest[450], digest[SRCCTL_DIGEST_SIZE], bad[41];
	git_oid blob;
	struct raw_entry dotdot[2];

	snprintf(dir, sizeof(dir), "%s/keep", fx->root);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(dest, sizeof(dest), "%s/art.tar.gz", dir);
	pack_ok(fx, fx->c1, NULL, 0, dest, &prev);

	/* A tree with a ".." entry, after a good one: the walk has started writing. */
	assert_int_equal(git_blob_create_from_buffer(&blob, fx->repo, "x", 1), 0);
	dotdot[0] = (struct raw_entry){"100644", "..", &blob};
	dotdot[1] = (struct raw_entry){"100644", "ok.txt", &blob};
	raw_commit(fx->repo, dotdot, 2, bad);
	o.repo = fx->repo;
	o.commit = bad;
	o.dest_path = dest;
	memset(&res, 0xab, sizeof(res));
	sentinel = res;
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, ".."));
	assert_memory_equal(&res, &sentinel, sizeof(res));
	assert_int_equal(srcctl_artifact_digest_file(dest, digest, &err), 0);
	assert_string_equal(digest, prev.digest);
	assert_int_equal(stray_files(dir, "art.tar.gz"), 0);

	/* A commit that is not in the repository. */
	o.commit = "0000000000000000000000000000000000000001";
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_ENOTFOUND);
	assert_int_equal(err.code, STK_ENOTFOUND);
	assert_memory_equal(&res, &sentinel, sizeof(res));
	assert_int_equal(srcctl_artifact_digest_file(dest, digest, &err), 0);
	assert_string_equal(digest, prev.digest);
	assert_int_equal(stray_files(dir, "art.tar.gz"), 0);

	/* A blob id given as the commit. */
	git_oid_tostr(bad, sizeof(bad), &blob);
	o.commit = bad;
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_ENOTFOUND);
	assert_int_equal(stray_files(dir, "art.tar.gz"), 0);
}

static void test_artifact__malformed_trees_are_rejected(void **state)
{
	struct fixture *fx = *state;
	struct srcctl_pack_opts o = SRCCTL_PACK_OPTS_INIT;
	struct srcctl_pack_result res;
	stk_err err = STK_ERR_INIT;
	char dir[400], dest[450], commit[41];
	git_oid blob, sub_tree;
	static const char *const bad_names[] = {".", "..", ".git", ".GiT", "a/b"};
	struct raw_entry e[2];

	snprintf(dir, sizeof(dir), "%s/malformed", fx->root);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(dest, sizeof(dest), "%s/art.tar.gz", dir);
	o.repo = fx->repo;
	o.dest_path = dest;
	assert_int_equal(git_blob_create_from_buffer(&blob, fx->repo, "x", 1), 0);

	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		e[0] = (struct raw_entry){"100644", bad_names[i], &blob};
		raw_commit(fx->repo, e, 1, commit);
		o.commit = commit;
		assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_EINVAL);
		assert_int_equal(stray_files(dir, NULL), 0);
	}
	/* Duplicate names, even when one is a directory. */
	e[0] = (struct raw_entry){"100644", "dup", &blob};
	e[1] = (struct raw_entry){"100644", "dup", &blob};
	raw_commit(fx->repo, e, 2, commit);
	o.commit = commit;
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "duplicate"));

	/* A bad name deeper down, below good entries already written. */
	e[0] = (struct raw_entry){"100644", "..", &blob};
	{
		git_odb *odb = NULL;
		unsigned char raw[64];
		size_t o2 = 0;
		memcpy(raw, "100644 ..", 9);
		o2 = 9;
		raw[o2++] = '\0';
		memcpy(raw + o2, blob.id, GIT_OID_RAWSZ);
		o2 += GIT_OID_RAWSZ;
		assert_int_equal(git_repository_odb(&odb, fx->repo), 0);
		assert_int_equal(git_odb_write(&sub_tree, odb, raw, o2, GIT_OBJECT_TREE), 0);
		git_odb_free(odb);
	}
	e[0] = (struct raw_entry){"100644", "a.txt", &blob};
	e[1] = (struct raw_entry){"40000", "sub", &sub_tree};
	raw_commit(fx->repo, e, 2, commit);
	o.commit = commit;
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "sub/"));
	assert_int_equal(stray_files(dir, NULL), 0);

	/* A path past SRCCTL_ARTIFACT_PATH_MAX (40 levels of 120-byte names). */
	{
		git_oid cur = blob;
		git_filemode_t mode = GIT_FILEMODE_BLOB;
		char name[121];
		memset(name, 'p', 120);
		name[120] = '\0';
		for (int level = 0; level < 40; level++) {
			git_treebuilder *tb = NULL;
			assert_int_equal(git_treebuilder_new(&tb, fx->repo, NULL), 0);
			assert_int_equal(git_treebuilder_insert(NULL, tb, name, &cur, mode), 0);
			assert_int_equal(git_treebuilder_write(&cur, tb), 0);
			git_treebuilder_free(tb);
			mode = GIT_FILEMODE_TREE;
		}
		e[0] = (struct raw_entry){"40000", "top", &cur};
		raw_commit(fx->repo, e, 1, commit);
		o.commit = commit;
		assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_EINVAL);
		assert_non_null(strstr(err.message, "path longer than 4095"));
		assert_int_equal(stray_files(dir, NULL), 0);
	}

	/* Odd but valid modes: a symlink with x bits stays a symlink (never an executable
	 * file), and the historical 100664 is a plain file. */
	e[0] = (struct raw_entry){"100664", "old.txt", &blob};
	e[1] = (struct raw_entry){"120755", "sneaky", &blob};
	raw_commit(fx->repo, e, 2, commit);
	o.commit = commit;
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), 0);
	assert_int_equal(res.files, 1);
	assert_int_equal(res.skipped_symlinks, 1);
	{
		struct archive ar;
		read_archive(dest, &ar);
		assert_int_equal(ar.n, 1);
		assert_string_equal(ar.e[0].name, "old.txt");
		assert_int_equal(ar.e[0].mode, 0644);
		archive_free(&ar);
	}
}

/* A tree whose entries are out of git order (hand-written objects can be): sorted anyway. */
static void test_artifact__unsorted_tree_is_sorted(void **state)
{
	struct fixture *fx = *state;
	struct srcctl_pack_result res;
	struct archive ar;
	char dest[400], commit[41];
	git_oid blob, sub;
	git_treebuilder *tb = NULL;
	struct raw_entry e[4];

	assert_int_equal(git_blob_create_from_buffer(&blob, fx->repo, "s", 1), 0);
	assert_int_equal(git_treebuilder_new(&tb, fx->repo, NULL), 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, "in.txt", &blob, GIT_FILEMODE_BLOB), 0);
	assert_int_equal(git_treebuilder_write(&sub, tb), 0);
	git_treebuilder_free(tb);
	e[0] = (struct raw_entry){"100644", "z.txt", &blob};
	e[1] = (struct raw_entry){"40000", "a", &sub};
	e[2] = (struct raw_entry){"100644", "a-b", &blob};
	e[3] = (struct raw_entry){"100644", "A", &blob};
	raw_commit(fx->repo, e, 4, commit);
	snprintf(dest, sizeof(dest), "%s/unsorted.tar.gz", fx->store);
	pack_ok(fx, commit, NULL, 0, dest, &res);
	read_archive(dest, &ar);
	assert_int_equal(ar.n, 5);
	assert_string_equal(ar.e[0].name, "A");
	assert_string_equal(ar.e[1].name, "a-b");
	assert_string_equal(ar.e[2].name, "a/");
	assert_string_equal(ar.e[3].name, "a/in.txt");
	assert_string_equal(ar.e[4].name, "z.txt");
	archive_free(&ar);
}

/* A loose object whose bytes do not hash to its id never reaches an artifact. */
static void test_artifact__corrupt_object_fails_the_pack(void **state)
{
	struct fixture *fx = *state;
	struct srcctl_pack_opts o = SRCCTL_PACK_OPTS_INIT;
	struct srcctl_pack_result prev, res;
	stk_err err = STK_ERR_INIT;
	char dir[400], dest[450], commit[41], hex[41], obj[600], digest[SRCCTL_DIGEST_SIZE];
	static const char forged[] = "blob 8\0corrupt!";
	unsigned char z[128];
	uLongf zl = sizeof(z);
	git_oid blob;
	struct raw_entry e[1];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/corrupt", fx->root);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(dest, sizeof(dest), "%s/art.tar.gz", dir);
	pack_ok(fx, fx->c1, NULL, 0, dest, &prev);

	assert_int_equal(git_blob_create_from_buffer(&blob, fx->repo, "genuine\n", 8), 0);
	git_oid_tostr(hex, sizeof(hex), &blob);
	snprintf(obj, sizeof(obj), "%s/.git/objects/%.2s/%s", fx->repo_path, hex, hex + 2);
	/* Same type and size, different content: only the hash can tell. */
	assert_int_equal(compress2(z, &zl, (const Bytef *)forged, sizeof(forged) - 1, 6), Z_OK);
	assert_int_equal(chmod(obj, 0644), 0);
	f = fopen(obj, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(z, 1, zl, f), zl);
	fclose(f);
	e[0] = (struct raw_entry){"100644", "c.txt", &blob};
	raw_commit(fx->repo, e, 1, commit);

	o.repo = fx->repo;
	o.commit = commit;
	o.dest_path = dest;
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_EIO);
	assert_non_null(strstr(err.message, "corrupt"));
	assert_int_equal(srcctl_artifact_digest_file(dest, digest, &err), 0);
	assert_string_equal(digest, prev.digest);
	assert_int_equal(stray_files(dir, "art.tar.gz"), 0);
}

static void test_artifact__invalid_options_are_rejected(void **state)
{
	struct fixture *fx = *state;
	struct srcctl_pack_opts o = SRCCTL_PACK_OPTS_INIT, good = SRCCTL_PACK_OPTS_INIT;
	struct srcctl_pack_result res;
	stk_err err = STK_ERR_INIT;
	char dest[400], upper[41], missing_dir[450];

	snprintf(dest, sizeof(dest), "%s/opts.tar.gz", fx->store);
	good.repo = fx->repo;
	good.commit = fx->c1;
	good.dest_path = dest;
	assert_int_equal(good.max_size, SRCCTL_ARTIFACT_MAX_SIZE);

	o = good;
	o.repo = NULL;
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_EINVAL);
	assert_int_equal(err.code, STK_EINVAL);
	assert_true(err.message[0] != '\0');
	o = good;
	o.commit = "abc";
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_EINVAL);
	o = good;
	for (size_t i = 0; i < 41; i++)
		upper[i] =
			(char)(fx->c1[i] >= 'a' && fx->c1[i] <= 'f' ? fx->c1[i] - 32 : fx->c1[i]);
	o.commit = upper;
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_EINVAL);
	o = good;
	o.dest_path = "";
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_EINVAL);
	o = good;
	snprintf(missing_dir, sizeof(missing_dir), "%s/", fx->store);
	o.dest_path = missing_dir;
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_EINVAL);
	o = good;
	o.max_size = 0;
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_EINVAL);
	o = good;
	o.ignore_count = 2;
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_EINVAL);
	assert_int_equal(srcctl_artifact_pack(&good, NULL, &err), STK_EINVAL);
	assert_int_equal(srcctl_artifact_pack(NULL, &res, &err), STK_EINVAL);
	/* The destination's directory must exist: an I/O error, no file created. */
	o = good;
	snprintf(missing_dir, sizeof(missing_dir), "%s/nope/art.tar.gz", fx->root);
	o.dest_path = missing_dir;
	assert_int_equal(srcctl_artifact_pack(&o, &res, &err), STK_EIO);
	assert_non_null(strstr(err.message, "nope"));
	/* A NULL error record is allowed: only the code comes back. */
	o = good;
	o.commit = "abc";
	assert_int_equal(srcctl_artifact_pack(&o, &res, NULL), STK_EINVAL);
}

static void test_artifact__digest_file_hashes_bytes(void **state)
{
	struct fixture *fx = *state;
	stk_err err = STK_ERR_INIT;
	char path[400], digest[SRCCTL_DIGEST_SIZE];
	FILE *f;

	snprintf(path, sizeof(path), "%s/abc", fx->root);
	f = fopen(path, "wb");
	assert_non_null(f);
	fputs("abc", f);
	fclose(f);
	/* FIPS 180-2 test vector. */
	assert_int_equal(srcctl_artifact_digest_file(path, digest, &err), 0);
	assert_string_equal(digest, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb41"
				    "0ff61f20015ad");
	snprintf(path, sizeof(path), "%s/missing", fx->root);
	memset(digest, 'x', sizeof(digest));
	assert_int_equal(srcctl_artifact_digest_file(path, digest, &err), STK_ENOTFOUND);
	assert_int_equal(digest[0], 'x');
	assert_int_equal(srcctl_artifact_digest_file(fx->root, digest, &err), STK_EIO);
	assert_int_equal(srcctl_artifact_digest_file(NULL, digest, &err), STK_EINVAL);
}

/* Lists every path below `dir` (relative, dirs with '/'), failing on anything else. */
static void list_tree(const char *dir, const char *rel, struct names *out)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char full[4400], r[4400];
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(full, sizeof(full), "%s/%s", dir, de->d_name);
		assert_int_equal(lstat(full, &st), 0);
		snprintf(r, sizeof(r), "%s%s%s", rel, de->d_name, S_ISDIR(st.st_mode) ? "/" : "");
		if (S_ISDIR(st.st_mode)) {
			names_add(out, r);
			list_tree(full, r, out);
		} else {
			assert_true(S_ISREG(st.st_mode));
			names_add(out, r);
		}
	}
	closedir(d);
}

static void check_extracted(const char *dir, const struct spec *s, const struct names *want)
{
	struct names got = {0};

	list_tree(dir, "", &got);
	qsort(got.v, got.n, sizeof(*got.v), cmp_str);
	assert_int_equal(got.n, want->n);
	for (size_t i = 0; i < got.n; i++) {
		const struct file *f;
		char full[4400];
		unsigned char *data;
		size_t len;
		struct stat st;

		assert_string_equal(got.v[i], want->v[i]);
		if (got.v[i][strlen(got.v[i]) - 1] == '/')
			continue;
		assert_true(spec_is_file(s, got.v[i], &f));
		snprintf(full, sizeof(full), "%s/%s", dir, got.v[i]);
		data = read_file(full, &len);
		assert_int_equal(len, f->len);
		assert_memory_equal(data, f->data, len);
		free(data);
		assert_int_equal(stat(full, &st), 0);
		assert_int_equal((st.st_mode & 0111) != 0, f->mode == GIT_FILEMODE_BLOB_EXECUTABLE);
	}
	names_free(&got);
}

static void test_artifact__python_and_gnu_tar_extract_cleanly(void **state)
{
	struct fixture *fx = *state;
	static const char script[] =
		"import os, sys, tarfile\n"
		"with tarfile.open(sys.argv[1], 'r:gz') as t:\n"
		"    for m in t.getmembers():\n"
		"        assert m.isreg() or m.isdir(), m.name\n"
		"        assert not m.name.startswith(('/', './')), m.name\n"
		"        assert '..' not in m.name.split('/'), m.name\n"
		"        assert m.mtime == 0 and m.uid == 0 and m.gid == 0, m.name\n"
		"        assert m.uname == '' and m.gname == '', m.name\n"
		"        sys.stdout.buffer.write(os.fsencode(m.name) + b'\\n')\n"
		"    t.extractall(sys.argv[2], filter='data')\n";
	struct srcctl_pack_result res;
	struct names want;
	char dest[400], py_out[400], tar_out[400], *out = NULL, *line;
	size_t out_len, i = 0;

	snprintf(dest, sizeof(dest), "%s/compat.tar.gz", fx->store);
	snprintf(py_out, sizeof(py_out), "%s/py", fx->root);
	snprintf(tar_out, sizeof(tar_out), "%s/gnutar", fx->root);
	assert_int_equal(mkdir(py_out, 0700), 0);
	assert_int_equal(mkdir(tar_out, 0700), 0);
	pack_ok(fx, fx->c1, NULL, 0, dest, &res);
	expected_names(&fx->s1, NULL, 0, &want);

	{
		const char *argv[] = {"python3", "-c", script, dest, py_out, NULL};
		assert_int_equal(run(argv, &out, &out_len), 0);
	}
	/* Python lists the members in archive order (directories without their '/'). */
	for (line = out; *line; i++) {
		char *nl = strchr(line, '\n');
		size_t wl;
		assert_non_null(nl);
		assert_true(i < want.n);
		wl = strlen(want.v[i]);
		if (want.v[i][wl - 1] == '/')
			wl--;
		assert_int_equal((size_t)(nl - line), wl);
		assert_memory_equal(line, want.v[i], wl);
		line = nl + 1;
	}
	assert_int_equal(i, want.n);
	free(out);
	check_extracted(py_out, &fx->s1, &want);

	{
		const char *argv[] = {"tar", "-xzf", dest, "-C", tar_out, NULL};
		assert_int_equal(run(argv, NULL, NULL), 0);
	}
	check_extracted(tar_out, &fx->s1, &want);
	names_free(&want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_artifact__lists_sorted_normalised_entries),
		cmocka_unit_test(test_artifact__same_commit_same_digest_from_any_clone),
		cmocka_unit_test(test_artifact__different_commit_different_digest),
		cmocka_unit_test(test_artifact__golden_digest_matches_independent_build),
		cmocka_unit_test(test_artifact__ignore_patterns_exclude_entries),
		cmocka_unit_test(test_artifact__ignore_match_follows_gitignore),
		cmocka_unit_test(test_artifact__size_cap_fails_cleanly),
		cmocka_unit_test(test_artifact__failure_keeps_previous_artifact),
		cmocka_unit_test(test_artifact__malformed_trees_are_rejected),
		cmocka_unit_test(test_artifact__unsorted_tree_is_sorted),
		cmocka_unit_test(test_artifact__corrupt_object_fails_the_pack),
		cmocka_unit_test(test_artifact__invalid_options_are_rejected),
		cmocka_unit_test(test_artifact__digest_file_hashes_bytes),
		cmocka_unit_test(test_artifact__python_and_gnu_tar_extract_cleanly),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
