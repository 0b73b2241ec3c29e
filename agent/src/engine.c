/* openat and friends, syncfs */
#define _GNU_SOURCE
#include "engine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "stk/alloc.h"
#include "stk/api/glob.h"
#include "stk/json.h"
#include "stk/map.h"
#include <yajl/yajl_parse.h>

#define ENG_PATH_MAX	4096
#define ENG_BATCH_FILES 512	       /* temp files written before one syncfs */
#define ENG_BATCH_BYTES (64u << 20)    /* or this many bytes */
#define ENG_MANIFEST	"manifest"     /* in the state directory */
#define ENG_UNSETTLED	"unsettled"    /* in the state directory while a sync changes data */
#define ENG_TMP_PREFIX	".stoker-tmp-" /* temporary files in the data directory */
#define ENG_MAX_CONFIG	(64u << 20)    /* config.json files validated up to this size */

/* ---- small helpers ------------------------------------------------------------------ */

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int join(char *out, const char *a, const char *b, stk_err *err)
{
	int n = *b ? snprintf(out, ENG_PATH_MAX, "%s/%s", a, b)
		   : snprintf(out, ENG_PATH_MAX, "%s", a);

	if (n < 0 || n >= ENG_PATH_MAX)
		return stk_err_set(err, STK_EINVAL, "path too long: %s/%s", a, b);
	return 0;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

/* True when a segment of `rel` is ".resources". */
static bool in_resources(const char *rel)
{
	for (const char *p = rel; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 10 && !memcmp(p, ".resources", 10))
			return true;
		p += n;
		if (*p)
			p++;
	}
	return false;
}

static void paths_add(struct agent_paths *ps, const char *p)
{
	ps->count++;
	if (ps->len >= AGENT_DIFF_PATHS)
		return;
	ps->items = stk_reallocarray(ps->items, ps->len + 1, sizeof(char *));
	ps->items[ps->len++] = stk_strdup(p);
}

static void paths_release(struct agent_paths *ps)
{
	for (size_t i = 0; i < ps->len; i++)
		free(ps->items[i]);
	free(ps->items);
	memset(ps, 0, sizeof(*ps));
}

void agent_result_release(struct agent_result *r)
{
	paths_release(&r->added);
	paths_release(&r->modified);
	paths_release(&r->deleted);
	paths_release(&r->skipped);
	paths_release(&r->projects);
}

static void note_project(struct agent_result *r, const char *rel)
{
	char name[256];
	size_t n;

	if (strncmp(rel, "projects/", 9))
		return;
	n = strcspn(rel + 9, "/");
	if (!n || n >= sizeof(name) || !rel[9 + n])
		return;
	memcpy(name, rel + 9, n);
	name[n] = '\0';
	for (size_t i = 0; i < r->projects.len; i++)
		if (!strcmp(r->projects.items[i], name))
			return;
	paths_add(&r->projects, name);
}

static void hex(const unsigned char *md, char out[65])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[64] = '\0';
}

/* 64 hex digits into 32 bytes; false when `in` is not that. */
static bool unhex(const char *in, unsigned char out[32])
{
	for (int i = 0; i < 32; i++) {
		unsigned v = 0;
		for (int j = 0; j < 2; j++) {
			char c = in[2 * i + j];
			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				return false;
		}
		out[i] = (unsigned char)v;
	}
	return in[64] == '\0';
}

static int hash_file(const char *path, unsigned char out[32], stk_err *err)
{
	unsigned char buf[1 << 16], md[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0 || !ctx) {
		EVP_MD_CTX_free(ctx);
		if (fd >= 0)
			close(fd);
		return stk_err_errno(err, errno, "cannot read %s", path);
	}
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	close(fd);
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	if (n < 0)
		return stk_err_errno(err, errno, "cannot read %s", path);
	memcpy(out, md, 32);
	return 0;
}

/* ---- interned paths ----------------------------------------------------------------- */

/*
 * Fix (bench/agent/run.sh, peak RSS of the 50k-file tree): every wanted file cost a
 * stk_map entry, a copy of its data path in it, a heap struct want, a copy of its source
 * path, and a second map entry, path copy and struct ment in the new manifest: about
 * 600 bytes and seven allocations per file. Paths are now copied once, end to end into
 * large chunks, and found through an open-addressing index of 32-bit item numbers; the
 * items themselves (struct want) live in an array of blocks indexed by the same number.
 */
#define ENG_CHUNK (64u << 10) /* bytes of paths per arena chunk */

struct strtab {
	char **chunks; /* the arena */
	size_t nchunks;
	char *cur; /* free space in the last chunk */
	size_t left;
	const char **keys; /* item i's string */
	size_t len, cap;
	uint32_t *slots; /* item + 1, 0 when free; a power of two, at most half full */
	size_t nslots;
};

#define STRTAB_NONE SIZE_MAX

/* FNV-1a, as stk_map. */
static size_t strtab_hash(const char *s)
{
	size_t h = (size_t)1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * (size_t)1099511628211ull;
	return h;
}

static void strtab_release(struct strtab *t)
{
	for (size_t i = 0; i < t->nchunks; i++)
		free(t->chunks[i]);
	free(t->chunks);
	free(t->keys);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* The item holding `key`, or STRTAB_NONE. */
static size_t strtab_find(const struct strtab *t, const char *key)
{
	size_t mask = t->nslots - 1, i;

	if (!t->nslots)
		return STRTAB_NONE;
	for (i = strtab_hash(key) & mask; t->slots[i]; i = (i + 1) & mask)
		if (!strcmp(t->keys[t->slots[i] - 1], key))
			return t->slots[i] - 1;
	return STRTAB_NONE;
}

static void strtab_grow(struct strtab *t)
{
	size_t n = t->nslots ? t->nslots * 2 : 1024, mask = n - 1;
	uint32_t *slots = stk_calloc(n, sizeof(*slots));

	for (size_t k = 0; k < t->len; k++) {
		size_t i = strtab_hash(t->keys[k]) & mask;
		while (slots[i])
			i = (i + 1) & mask;
		slots[i] = (uint32_t)(k + 1);
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = n;
}

static const char *strtab_copy(struct strtab *t, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p;

	if (n > t->left) {
		size_t size = n > ENG_CHUNK ? n : ENG_CHUNK;
		t->chunks = stk_reallocarray(t->chunks, t->nchunks + 1, sizeof(char *));
		t->chunks[t->nchunks++] = t->cur = stk_malloc(size);
		t->left = size;
	}
	p = t->cur;
	memcpy(p, s, n);
	t->cur += n;
	t->left -= n;
	return p;
}

/* The item holding `key`, added (as item t->len - 1) when there was none. */
static size_t strtab_add(struct strtab *t, const char *key)
{
	size_t i, mask;

	if ((t->len + 1) * 2 > t->nslots)
		strtab_grow(t);
	if (t->len >= UINT32_MAX - 1)
		abort(); /* 4 billion paths: as out of memory */
	mask = t->nslots - 1;
	for (i = strtab_hash(key) & mask; t->slots[i]; i = (i + 1) & mask)
		if (!strcmp(t->keys[t->slots[i] - 1], key))
			return t->slots[i] - 1;
	if (t->len == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 1024;
		t->keys = stk_reallocarray(t->keys, t->cap, sizeof(char *));
	}
	t->keys[t->len] = strtab_copy(t, key);
	t->slots[i] = (uint32_t)(t->len + 1);
	return t->len++;
}

/* ---- the manifest ------------------------------------------------------------------ */

/* Hashes are kept as 32 raw bytes (not 65 of hex): three per file in a sync. */
struct ment {
	unsigned char sha[32];
	long long size, mtime_s, mtime_ns;	       /* the live file as written */
	long long src_size, src_mtime_s, src_mtime_ns; /* its source then */
	bool seen;
};

struct manifest {
	char repo[ENG_PATH_MAX];
	stk_map files; /* data path -> struct ment */
	char **roots;  /* managed roots of the sync that wrote it */
	size_t nroots;
	/*
	 * Fix (test_engine__drift): the plan's excludes, so that drift, like the orphan
	 * walk, leaves excluded paths alone; it reported e.g. a *.log file or a .git
	 * directory under a managed root as added although no sync would ever touch it.
	 * Saved as "exclude\t<pattern>" lines, which older loaders skip.
	 */
	char **excludes;
	size_t nexcludes;
};

static void strv_add(char ***v, size_t *n, const char *s)
{
	*v = stk_reallocarray(*v, *n + 1, sizeof(char *));
	(*v)[(*n)++] = stk_strdup(s);
}

static void manifest_release(struct manifest *m)
{
	stk_map_release_free(&m->files);
	for (size_t i = 0; i < m->nroots; i++)
		free(m->roots[i]);
	free(m->roots);
	for (size_t i = 0; i < m->nexcludes; i++)
		free(m->excludes[i]);
	free(m->excludes);
	memset(m, 0, sizeof(*m));
}

/* A signed decimal, as strtoll reads it (leading blanks, a sign); false when there is none. */
static bool parse_ll(const char **p, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(*p, &end, 10);
	if (end == *p || errno)
		return false;
	*p = end;
	return true;
}

/*
 * One file line without its path: "<sha> <size> <mtime_s> <mtime_ns> <src_size>
 * <src_mtime_s> <src_mtime_ns>". Fix (bench/agent/run.sh, no-op sync): this was sscanf,
 * most of the time the manifest took to load; the same fields are now read by unhex and
 * strtoll.
 */
static bool parse_entry(const char *line, struct ment *e)
{
	long long *f[] = {&e->size,	&e->mtime_s,	 &e->mtime_ns,
			  &e->src_size, &e->src_mtime_s, &e->src_mtime_ns};
	const char *p = line + 64;
	char hexsha[65];

	if (strnlen(line, 64) != 64 || (*p != ' ' && *p != '\0'))
		return false;
	memcpy(hexsha, line, 64);
	hexsha[64] = '\0';
	if (!unhex(hexsha, e->sha))
		return false;
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (!parse_ll(&p, f[i]))
			return false;
	return true;
}

/*
 * Format: "stoker-manifest 1\trepo\n", "root\t<path>\n"…, "exclude\t<pattern>\n"…, then
 * one line per file:
 * "<sha> <size> <mtime_s> <mtime_ns> <src_size> <src_mtime_s> <src_mtime_ns>\t<path>\n".
 * Reads the header into `m` and hands every file line to `on_file` (m->files is left to
 * it). STK_ENOTFOUND when there is no manifest.
 */
static int manifest_read(struct manifest *m, const char *state,
			 void (*on_file)(void *arg, const char *path, const struct ment *e),
			 void *arg, stk_err *err)
{
	char path[ENG_PATH_MAX];
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	memset(m, 0, sizeof(*m));
	if (join(path, state, ENG_MANIFEST, err))
		return STK_EINVAL;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? STK_ENOTFOUND
				       : stk_err_errno(err, errno, "cannot read %s", path);
	while ((n = getline(&line, &cap, f)) > 0) {
		struct ment e;
		char *tab;
		if (line[n - 1] == '\n')
			line[--n] = '\0';
		tab = strchr(line, '\t');
		if (!tab)
			continue;
		*tab++ = '\0';
		if (!strcmp(line, "stoker-manifest 1")) {
			snprintf(m->repo, sizeof(m->repo), "%s", tab);
		} else if (!strcmp(line, "exclude")) {
			strv_add(&m->excludes, &m->nexcludes, tab);
		} else if (!strcmp(line, "root")) {
			strv_add(&m->roots, &m->nroots, tab);
		} else {
			memset(&e, 0, sizeof(e));
			if (parse_entry(line, &e))
				on_file(arg, tab, &e);
			/* else a damaged line: it only costs a re-hash */
		}
	}
	free(line);
	fclose(f);
	return 0;
}

static void manifest_put(void *arg, const char *path, const struct ment *e)
{
	stk_map *files = arg;
	struct ment *v = stk_malloc(sizeof(*v));

	*v = *e;
	free(stk_map_put(files, path, v));
}

/* The whole manifest, files in m->files (agent_drift). */
static int manifest_load(struct manifest *m, const char *state, stk_err *err)
{
	stk_map files = STK_MAP_INIT;
	int rc = manifest_read(m, state, manifest_put, &files, err);

	m->files = files;
	if (rc)
		manifest_release(m);
	return rc;
}

static bool strv_same(char **a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]))
			return false;
	return true;
}

/* ---- what the plan asks for --------------------------------------------------------------- */

/* What the diff and the manifest need of a file's stat (a struct stat is 144 bytes). */
struct stamp {
	long long size, mtime_s, mtime_ns;
};

#define WF_EXEC	    0x01 /* the source has an execute bit */
#define WF_OLD	    0x02 /* the last manifest has the file: sha, live and old_src are its */
#define WF_TMP	    0x04 /* its temporary file is written, not yet renamed */
#define WF_RECORDED 0x08 /* sha and live are what the new manifest says */

enum {
	W_SAME,
	W_ADD,
	W_MODIFY
};

/*
 * A wanted file: item i of sync.paths (its data path) is want i. The source path is not
 * kept (src_path derives it from the mapping), nor the temporary file's (tmp_name).
 */
struct want {
	struct stamp src;      /* the source, as the walk found it */
	struct stamp old_src;  /* the source at the last sync (WF_OLD) */
	struct stamp live;     /* the live file per the manifest (WF_OLD), then as left */
	unsigned char sha[32]; /* per the manifest (WF_OLD), then of the source once known */
	uint32_t map;	       /* the mapping that produced it (a later one overlays) */
	uint8_t action;	       /* W_SAME, W_ADD, W_MODIFY */
	uint8_t flags;	       /* WF_* */
};

#define WANT_BLOCK 1024 /* wants per block: the array grows without moving (or copying) them */

/* An exclude pattern `**`/N/`**` with N a plain name: matched segment by segment. */
struct seg_exclude {
	char *name;
	size_t len;
};

struct sync {
	const struct agent_sync_opts *o;
	struct agent_result *res;
	struct strtab paths;  /* data paths of the wanted files */
	struct want **blocks; /* want i is blocks[i / WANT_BLOCK][i % WANT_BLOCK] */
	size_t nblocks;
	uint32_t *order; /* want numbers in data path order */
	char **roots;	 /* managed roots (data paths, "" = the data root) */
	size_t nroots;
	struct manifest old;	/* the last sync's header: repo, roots, excludes */
	struct strtab old_only; /* files of the last manifest that are not wanted now */
	stk_map checked_dirs;	/* data-relative directories known to be safe to write into */
	stk_map want_dirs;	/* every ancestor directory of a wanted file */
	size_t moved;		/* unchanged files whose manifest entry carries over as it was */
	struct seg_exclude *seg_ex; /* the plan's excludes, split: `**`/N/`**` ones */
	size_t nseg_ex;
	const char **glob_ex; /* and every other one */
	size_t nglob_ex;
	int live_fd; /* compare: an O_PATH descriptor of data directory live_dir, or -1 */
	char live_dir[ENG_PATH_MAX];
	size_t live_dir_len;
	bool unsettled; /* this run wrote the ENG_UNSETTLED marker */
};

static void fsync_dir(const char *abs);

/*
 * Before a run's first change to the data directory (a temporary file, a deletion): the
 * marker ENG_UNSETTLED in the state directory, durable before that change, says that the
 * data may lie between two syncs until one completes (agent_data_settled). 0, or the
 * error; nothing has been changed then.
 */
static int mark_unsettled(struct sync *s, stk_err *err)
{
	char path[ENG_PATH_MAX];
	int fd;

	if (s->unsettled)
		return 0;
	if (mkdir(s->o->state, 0750) && errno != EEXIST)
		return stk_err_errno(err, errno, "cannot create %s", s->o->state);
	if (join(path, s->o->state, ENG_UNSETTLED, err))
		return STK_EINVAL;
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0)
		return stk_err_errno(err, errno, "cannot write %s", path);
	close(fd);
	fsync_dir(s->o->state);
	s->unsettled = true;
	return 0;
}

bool agent_data_settled(const char *state)
{
	char path[ENG_PATH_MAX];
	struct stat st;

	if (snprintf(path, sizeof(path), "%s/" ENG_MANIFEST, state) >= (int)sizeof(path) ||
	    lstat(path, &st) || !S_ISREG(st.st_mode))
		return false;
	snprintf(path, sizeof(path), "%s/" ENG_UNSETTLED, state);
	return lstat(path, &st) && errno == ENOENT;
}

static struct want *want_at(const struct sync *s, size_t i)
{
	return &s->blocks[i / WANT_BLOCK][i % WANT_BLOCK];
}

static const char *want_path(const struct sync *s, size_t i)
{
	return s->paths.keys[i];
}

static bool want_has(const struct sync *s, const char *rel)
{
	return strtab_find(&s->paths, rel) != STRTAB_NONE;
}

/*
 * Fix (bench/agent/run.sh, no-op sync): stk_glob_excluded, four times per file and
 * directory of both walks, was a seventh of a no-op sync, nearly all of it for the three
 * mandatory patterns. A pattern `**`/N/`**` whose N has no wildcard, class, brace or
 * escape matches a path exactly when one of its segments but the last is N (the first
 * globstar takes zero or more segments, the last one or more), and then so does every
 * path below it: such patterns are matched here segment by segment, the others by
 * stk_glob_excluded as before.
 */
static void split_excludes(struct sync *s)
{
	const struct agent_plan *p = s->o->plan;

	s->seg_ex = stk_calloc(p->nexcludes ? p->nexcludes : 1, sizeof(*s->seg_ex));
	s->glob_ex = stk_calloc(p->nexcludes ? p->nexcludes : 1, sizeof(*s->glob_ex));
	for (size_t i = 0; i < p->nexcludes; i++) {
		const char *x = p->excludes[i];
		size_t n = strlen(x);
		if (n > 6 && !strncmp(x, "**/", 3) && !strcmp(x + n - 3, "/**") &&
		    strcspn(x + 3, "/*?[]{},\\") >= n - 6) {
			s->seg_ex[s->nseg_ex].name = stk_strndup(x + 3, n - 6);
			s->seg_ex[s->nseg_ex++].len = n - 6;
		} else {
			s->glob_ex[s->nglob_ex++] = x;
		}
	}
}

static bool seg_excluded(const struct sync *s, const char *rel)
{
	for (const char *p = rel; s->nseg_ex && *p;) {
		size_t n = strcspn(p, "/");
		if (!p[n])
			break; /* the last segment: the pattern wants one more below it */
		for (size_t i = 0; i < s->nseg_ex; i++)
			if (s->seg_ex[i].len == n && !memcmp(p, s->seg_ex[i].name, n))
				return true;
		p += n + 1;
	}
	return false;
}

static bool excluded(const struct sync *s, const char *repo_rel, const char *data_rel, bool dir)
{
	return in_resources(data_rel) || in_resources(repo_rel) || seg_excluded(s, data_rel) ||
	       seg_excluded(s, repo_rel) ||
	       stk_glob_excluded(s->glob_ex, s->nglob_ex, data_rel, dir) ||
	       stk_glob_excluded(s->glob_ex, s->nglob_ex, repo_rel, dir);
}

/*
 * The source of want i: the repository, its mapping's source and, for a `dir` mapping,
 * the data path below the mapping's destination (the walk made the data path that way).
 */
static int src_path(char *out, const struct sync *s, size_t i, stk_err *err)
{
	const struct want *w = want_at(s, i);
	const struct agent_mapping *m = &s->o->plan->maps[w->map];
	const char *rel = want_path(s, i);
	char base[ENG_PATH_MAX];

	if (m->file)
		return join(out, s->o->repo, m->source, err);
	rel += *m->dest ? strlen(m->dest) + 1 : 0;
	if (join(base, s->o->repo, m->source, err))
		return STK_EINVAL;
	return join(out, base, rel, err);
}

static int want_file(struct sync *s, uint32_t map, const char *src_abs, const struct stat *st,
		     const char *data_rel, stk_err *err)
{
	struct want *w;
	size_t i;

	if (strchr(data_rel, '\n') || strchr(data_rel, '\t'))
		return stk_err_set(err, STK_EINVAL, "file name with a tab or newline refused: %s",
				   src_abs);
	/*
	 * Fix: a repository file named like a temporary file (".stoker-tmp-x" beside "x")
	 * was clobbered by x's temporary copy and renamed onto x, on every run. The names
	 * are the agent's own.
	 */
	if (!strncmp(base_name(data_rel), ENG_TMP_PREFIX, strlen(ENG_TMP_PREFIX)))
		return stk_err_set(err, STK_EINVAL,
				   "%s: names starting with " ENG_TMP_PREFIX
				   " are reserved for the agent's temporary files",
				   src_abs);
	i = strtab_add(&s->paths, data_rel);
	if (i / WANT_BLOCK >= s->nblocks) {
		s->blocks = stk_reallocarray(s->blocks, s->nblocks + 1, sizeof(*s->blocks));
		s->blocks[s->nblocks++] = stk_malloc(WANT_BLOCK * sizeof(struct want));
	}
	/* a later mapping overlays an earlier one */
	w = want_at(s, i);
	memset(w, 0, sizeof(*w));
	w->src.size = st->st_size;
	w->src.mtime_s = st->st_mtim.tv_sec;
	w->src.mtime_ns = st->st_mtim.tv_nsec;
	w->map = map;
	if (st->st_mode & 0111)
		w->flags |= WF_EXEC;
	return 0;
}

/* Appends "/name" (just "name" to an empty path) to the path of `len` bytes in `buf`. */
static bool path_push(char *buf, size_t len, const char *name, size_t *out)
{
	size_t n = strlen(name), at = len ? len + 1 : 0;

	if (at + n >= ENG_PATH_MAX)
		return false;
	if (len)
		buf[len] = '/';
	memcpy(buf + at, name, n + 1);
	*out = at + n;
	return true;
}

/* The paths of the entry being looked at: absolute source, repository, data. */
struct walk_paths {
	char a[ENG_PATH_MAX], r[ENG_PATH_MAX], d[ENG_PATH_MAX];
};

/*
 * Walks source directory `name` of directory `at` (paths p->a, p->r, p->d of alen, rlen,
 * dlen bytes) for mapping `map`. Fix (bench/agent/run.sh, no-op sync): every entry was
 * lstat'ed and every directory opened by its absolute path, the kernel walking the whole
 * path each time; both are now relative to the open directory (with O_NOFOLLOW, so a
 * symlink swapped in after the check is refused, not followed), and an entry readdir
 * says is a directory is not stat'ed at all.
 */
static int walk_source(struct sync *s, uint32_t map, int at, const char *name, struct walk_paths *p,
		       size_t alen, size_t rlen, size_t dlen, int depth, stk_err *err)
{
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int fd, rc = 0;

	if (depth > 256)
		return stk_err_set(err, STK_EINVAL, "directories nest too deep under %s", p->a);
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		rc = stk_err_errno(err, errno, "cannot read %s", p->a);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	while (!rc && (de = readdir(dir))) {
		size_t al, rl, dl;
		mode_t mode = S_IFDIR;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		p->a[alen] = p->r[rlen] = p->d[dlen] = '\0';
		if (!path_push(p->a, alen, de->d_name, &al) ||
		    !path_push(p->r, rlen, de->d_name, &rl) ||
		    !path_push(p->d, dlen, de->d_name, &dl)) {
			p->a[alen] = '\0';
			rc = stk_err_set(err, STK_EINVAL, "path too long: %s/%s", p->a, de->d_name);
			break;
		}
		if (de->d_type != DT_DIR) {
			if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
				rc = stk_err_errno(err, errno, "cannot stat %s", p->a);
				break;
			}
			mode = st.st_mode;
		}
		if (S_ISLNK(mode)) {
			if (excluded(s, p->r, p->d, false))
				continue;
			rc = stk_err_set(err, STK_EINVAL,
					 "symlink %s in the repository refused: links are never "
					 "followed or copied",
					 p->r);
		} else if (S_ISDIR(mode)) {
			if (!excluded(s, p->r, p->d, true))
				rc = walk_source(s, map, dirfd(dir), de->d_name, p, al, rl, dl,
						 depth + 1, err);
		} else if (S_ISREG(mode)) {
			if (!excluded(s, p->r, p->d, false))
				rc = want_file(s, map, p->a, &st, p->d, err);
		} else if (!excluded(s, p->r, p->d, false)) {
			rc = stk_err_set(err, STK_EINVAL, "%s is not a regular file or directory",
					 p->r);
		}
	}
	closedir(dir);
	return rc;
}

static void add_root(struct sync *s, const char *dest)
{
	s->roots = stk_reallocarray(s->roots, s->nroots + 1, sizeof(char *));
	s->roots[s->nroots++] = stk_strdup(dest);
}

/*
 * Fix (test_engine__repo_symlink_refused): lstat of the source alone followed a symlinked
 * directory on the way to it ("out/dir" with out -> ../outside) and read files from
 * outside the repository. Every directory on the way must be a real one.
 */
static int check_source_parents(const struct sync *s, size_t i, const char *source, stk_err *err)
{
	char sub[ENG_PATH_MAX], abs[ENG_PATH_MAX];
	struct stat st;
	const char *p = source;

	while ((p = strchr(p, '/'))) {
		size_t n = (size_t)(p - source);
		memcpy(sub, source, n);
		sub[n] = '\0';
		p++;
		if (join(abs, s->o->repo, sub, err))
			return STK_EINVAL;
		if (lstat(abs, &st))
			return 0; /* the source is missing: collect decides what that means */
		if (S_ISLNK(st.st_mode))
			return stk_err_set(err, STK_EINVAL,
					   "mapping %zu: '%s', on the way to source '%s', is a "
					   "symlink; links are refused",
					   i, sub, source);
	}
	return 0;
}

static int collect(struct sync *s, stk_err *err)
{
	const struct agent_plan *p = s->o->plan;
	struct walk_paths paths, *wp = &paths;
	char abs[ENG_PATH_MAX];
	struct stat st;
	int rc;

	for (size_t i = 0; i < p->nmaps; i++) {
		const struct agent_mapping *m = &p->maps[i];
		if ((rc = join(abs, s->o->repo, m->source, err)))
			return rc;
		if (in_resources(m->dest))
			return stk_err_set(err, STK_EINVAL,
					   "mapping %zu: destination '%s' is inside .resources", i,
					   m->dest);
		if ((rc = check_source_parents(s, i, m->source, err)))
			return rc;
		if (lstat(abs, &st)) {
			/* ENOTDIR: a file on the way, so the source is just as missing. */
			if (errno != ENOENT && errno != ENOTDIR)
				return stk_err_errno(err, errno, "cannot stat %s", abs);
			if (m->required)
				return stk_err_set(
					err, STK_ENOTFOUND,
					"mapping %zu: required source '%s' is not in the "
					"repository",
					i, m->source);
			paths_add(&s->res->skipped, m->source);
			continue;
		}
		if (S_ISLNK(st.st_mode))
			return stk_err_set(
				err, STK_EINVAL,
				"mapping %zu: source '%s' is a symlink; links are refused", i,
				m->source);
		if (m->file) {
			if (!S_ISREG(st.st_mode))
				return stk_err_set(err, STK_EINVAL,
						   "mapping %zu: source '%s' is not a regular file",
						   i, m->source);
			if (!excluded(s, m->source, m->dest, false) &&
			    (rc = want_file(s, (uint32_t)i, abs, &st, m->dest, err)))
				return rc;
			continue;
		}
		if (!S_ISDIR(st.st_mode))
			return stk_err_set(err, STK_EINVAL,
					   "mapping %zu: source '%s' is not a directory", i,
					   m->source);
		if (!m->overlay)
			add_root(s, m->dest);
		if (snprintf(wp->a, sizeof(wp->a), "%s", abs) >= (int)sizeof(wp->a) ||
		    snprintf(wp->r, sizeof(wp->r), "%s", m->source) >= (int)sizeof(wp->r) ||
		    snprintf(wp->d, sizeof(wp->d), "%s", m->dest) >= (int)sizeof(wp->d))
			return stk_err_set(err, STK_EINVAL, "path too long: %s", abs);
		if ((rc = walk_source(s, (uint32_t)i, AT_FDCWD, abs, wp, strlen(wp->a),
				      strlen(wp->r), strlen(wp->d), 0, err)))
			return rc;
	}
	return 0;
}

/* ---- safety checks before anything is written --------------------------------------------- */

/*
 * Fix (test_engine__invalid_config_json_changes_nothing): the message must give the
 * position of the error, and yajl's one-line message (all stk_json_parse keeps) has none.
 * The file is now streamed through a tree-less yajl parser with yajl_tree_parse's options
 * (comments allowed), which also keeps memory flat, and the offset of the error becomes
 * a line and column.
 */
static int validate_config(const struct sync *s, size_t wi, stk_err *err)
{
	const struct want *w = want_at(s, wi);
	const char *rel = want_path(s, wi);
	char src[ENG_PATH_MAX];
	unsigned char buf[1 << 16];
	unsigned long long line = 1, col = 1;
	yajl_status st = yajl_status_ok;
	yajl_handle h;
	ssize_t n = 0;
	int fd, rc = 0;

	if ((size_t)w->src.size > ENG_MAX_CONFIG)
		return stk_err_set(err, STK_EINVAL, "%s is larger than %u bytes", rel,
				   ENG_MAX_CONFIG);
	if (src_path(src, s, wi, err))
		return STK_EINVAL;
	fd = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return stk_err_errno(err, errno, "cannot read %s", src);
	h = yajl_alloc(NULL, NULL, NULL);
	if (!h)
		abort(); /* out of memory: as the allocation wrappers do */
	yajl_config(h, yajl_allow_comments, 1);
	while (st == yajl_status_ok && (n = read(fd, buf, sizeof(buf))) > 0) {
		size_t upto;
		st = yajl_parse(h, buf, (size_t)n);
		upto = st == yajl_status_ok ? (size_t)n : yajl_get_bytes_consumed(h);
		/* The error's position: the last byte yajl consumed. */
		for (size_t i = 0; i < upto; i++) {
			if (i + 1 == upto && st != yajl_status_ok)
				break;
			if (buf[i] == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
	}
	close(fd);
	if (n < 0) {
		rc = stk_err_errno(err, errno, "cannot read %s", src);
	} else {
		if (st == yajl_status_ok)
			st = yajl_complete_parse(h);
		if (st != yajl_status_ok) {
			unsigned char *msg = yajl_get_error(h, 0, NULL, 0);
			const char *m = msg ? (const char *)msg : "parse error";
			rc = stk_err_set(err, STK_EINVAL,
					 "invalid JSON in %s at line %llu, column %llu: %.*s", rel,
					 line, col, (int)strcspn(m, "\n"), m);
			if (msg)
				yajl_free_error(h, msg);
		}
	}
	yajl_free(h);
	return rc;
}

static bool under(const char *rel, const char *root);

/* True when data path `rel` is a managed root or below one. */
static bool managed(const struct sync *s, const char *rel)
{
	for (size_t i = 0; i < s->nroots; i++)
		if (under(rel, s->roots[i]))
			return true;
	return false;
}

/*
 * Every directory on the way to data path `rel` is a real directory (or absent), never a
 * symlink that would lead out of the data directory.
 *
 * Fixes (test_engine__file_and_directory_at_one_path_refused,
 * test_engine__shape_change_outside_managed_roots_refused): the plan may not make one
 * path both a file and a directory (the merge failed half-way, on every run); and a
 * regular file on the way is replaced (make_parents) only under a managed root or when
 * the last sync wrote it, else refused here, before anything is touched — make_parents
 * used to delete any file in the way, unmanaged ones included. Every component is now
 * checked (the first absent one used to end the walk) and cached once checked.
 */
static int check_parents(struct sync *s, const char *rel, stk_err *err)
{
	char sub[ENG_PATH_MAX], abs[ENG_PATH_MAX];
	struct stat st;
	const char *p = rel;
	bool absent = false;

	while ((p = strchr(p, '/'))) {
		size_t n = (size_t)(p - rel);
		memcpy(sub, rel, n);
		sub[n] = '\0';
		p++;
		if (stk_map_get(&s->checked_dirs, sub))
			continue;
		if (want_has(s, sub))
			return stk_err_set(err, STK_EINVAL,
					   "the mappings make %s both a file and a directory (%s)",
					   sub, rel);
		if (join(abs, s->o->data, sub, err))
			return STK_EINVAL;
		if (absent) {
			/* below an absent directory: created later, as a directory */
		} else if (lstat(abs, &st)) {
			if (errno != ENOENT)
				return stk_err_errno(err, errno, "cannot stat %s", abs);
			absent = true;
		} else if (S_ISLNK(st.st_mode)) {
			return stk_err_set(
				err, STK_EINVAL,
				"%s in the data directory is a symlink; refusing to write "
				"through it",
				sub);
		} else if (!S_ISDIR(st.st_mode)) {
			/* (sub is not wanted: old_only has the last manifest's files) */
			if (!managed(s, sub) && strtab_find(&s->old_only, sub) == STRTAB_NONE)
				return stk_err_set(err, STK_EINVAL,
						   "%s in the data directory is a file outside the "
						   "managed roots; refusing to replace it with a "
						   "directory",
						   sub);
			absent = true; /* replaced by make_parents */
		}
		stk_map_put(&s->checked_dirs, sub, (void *)1);
	}
	return 0;
}

/*
 * Fix (test_engine__shape_change_outside_managed_roots_refused): commit_file removes a
 * directory that sits where this commit has a file, with everything in it — .resources
 * and excluded files included, even outside the managed roots. Such a directory is now
 * replaced only under a managed root and only when nothing in it is protected; this runs
 * in the diff, before anything is written.
 */
static int check_replaceable(const struct sync *s, const char *rel, int depth, stk_err *err)
{
	char abs[ENG_PATH_MAX], child[ENG_PATH_MAX], cabs[ENG_PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int rc = 0;

	if (depth == 0 && !managed(s, rel))
		return stk_err_set(err, STK_EINVAL,
				   "%s in the data directory is a directory outside the managed "
				   "roots; refusing to replace it with a file",
				   rel);
	if (depth > 256)
		return stk_err_set(err, STK_EINVAL, "directories nest too deep under %s", rel);
	if ((rc = join(abs, s->o->data, rel, err)))
		return rc;
	if (!(dir = opendir(abs)))
		return stk_err_errno(err, errno, "cannot read %s", abs);
	while (!rc && (de = readdir(dir))) {
		bool d;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((rc = join(child, rel, de->d_name, err)) ||
		    (rc = join(cabs, abs, de->d_name, err)))
			break;
		if (lstat(cabs, &st)) {
			rc = stk_err_errno(err, errno, "cannot stat %s", cabs);
			break;
		}
		d = S_ISDIR(st.st_mode);
		if (!strcmp(de->d_name, ".resources") || excluded(s, child, child, d))
			rc = stk_err_set(err, STK_EINVAL,
					 "refusing to replace directory %s with a file: it holds "
					 "%s, which a sync never deletes",
					 rel, child);
		else if (d)
			rc = check_replaceable(s, child, depth + 1, err);
	}
	closedir(dir);
	return rc;
}

/* ---- comparing with the live directory ---------------------------------------------------- */

static bool stat_matches(const struct ment *m, const struct stat *st)
{
	return m->size == (long long)st->st_size && m->mtime_s == (long long)st->st_mtim.tv_sec &&
	       m->mtime_ns == (long long)st->st_mtim.tv_nsec;
}

static bool stamp_is(const struct stamp *a, const struct stat *st)
{
	return a->size == (long long)st->st_size && a->mtime_s == (long long)st->st_mtim.tv_sec &&
	       a->mtime_ns == (long long)st->st_mtim.tv_nsec;
}

static bool stamp_same(const struct stamp *a, const struct stamp *b)
{
	return a->size == b->size && a->mtime_s == b->mtime_s && a->mtime_ns == b->mtime_ns;
}

/* The new manifest's entry of `w`: `sha`, the live file's `st` and the source's stamp. */
static void record(struct want *w, const struct stat *live, const unsigned char *sha)
{
	memmove(w->sha, sha, 32);
	w->live.size = live->st_size;
	w->live.mtime_s = live->st_mtim.tv_sec;
	w->live.mtime_ns = live->st_mtim.tv_nsec;
	w->flags |= WF_RECORDED;
}

/*
 * lstat of data path `rel` (whose full path `abs` fits ENG_PATH_MAX), relative to its
 * directory. Fix (bench/agent/run.sh, no-op sync): the kernel walked the whole absolute
 * path for every file; the diff goes through the files in path order, so the directory
 * is opened (O_PATH, resolved as lstat resolved it: check_parents has refused symlinks on
 * the way) once per run of files in it. Nothing is written while the diff runs.
 */
static int live_lstat(struct sync *s, const char *rel, struct stat *st)
{
	const char *slash = strrchr(rel, '/');
	size_t n = slash ? (size_t)(slash - rel) : 0;
	char abs[ENG_PATH_MAX];

	if (s->live_fd < 0 || n != s->live_dir_len || memcmp(rel, s->live_dir, n)) {
		if (s->live_fd >= 0)
			close(s->live_fd);
		s->live_fd = -1;
		if (snprintf(abs, sizeof(abs), "%s/%.*s", s->o->data, (int)n, rel) >=
		    (int)sizeof(abs)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		s->live_fd = open(abs, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (s->live_fd < 0)
			return -1;
		memcpy(s->live_dir, rel, n);
		s->live_dir_len = n;
	}
	return fstatat(s->live_fd, slash ? slash + 1 : rel, st, AT_SYMLINK_NOFOLLOW);
}

static void live_close(struct sync *s)
{
	if (s->live_fd >= 0)
		close(s->live_fd);
	s->live_fd = -1;
}

/* Decides add / modify / same for want i. */
static int compare(struct sync *s, size_t i, stk_err *err)
{
	struct want *w = want_at(s, i);
	const char *rel = want_path(s, i);
	char abs[ENG_PATH_MAX], src[ENG_PATH_MAX];
	unsigned char src_sha[32], live_sha[32];
	bool old = w->flags & WF_OLD;
	bool same_repo = !strcmp(s->old.repo, s->o->repo);
	struct stat st;
	int rc;

	if ((rc = join(abs, s->o->data, rel, err)))
		return rc;
	if (live_lstat(s, rel, &st)) {
		/*
		 * Fix (test_engine__file_and_directory_swap): ENOTDIR is a file of the last
		 * commit where this one has a directory (check_parents allowed it); it used
		 * to fail every sync after such a commit.
		 */
		if (errno != ENOENT && errno != ENOTDIR)
			return stk_err_errno(err, errno, "cannot stat %s", abs);
		w->action = W_ADD;
		return 0;
	}
	if (S_ISDIR(st.st_mode) && (rc = check_replaceable(s, rel, 0, err)))
		return rc;
	if (!S_ISREG(st.st_mode)) {
		w->action = W_MODIFY; /* a directory or link in the way: replaced */
		return 0;
	}
	/*
	 * Fast path: the live file is as we left it, and so is its source. The manifest's
	 * entry carries over as it is (sha and live are already its).
	 */
	if (old && stamp_is(&w->live, &st) && same_repo && stamp_same(&w->old_src, &w->src)) {
		w->flags |= WF_RECORDED;
		s->moved++;
		w->action = W_SAME;
		return 0;
	}
	if ((rc = src_path(src, s, i, err)) || (rc = hash_file(src, src_sha, err)))
		return rc;
	if ((long long)st.st_size != w->src.size) {
		memcpy(w->sha, src_sha, 32);
		w->action = W_MODIFY;
		return 0;
	}
	if (old && stamp_is(&w->live, &st))
		memcpy(live_sha, w->sha, 32);
	else if ((rc = hash_file(abs, live_sha, err)))
		return rc;
	memcpy(w->sha, src_sha, 32);
	if (memcmp(live_sha, src_sha, 32)) {
		w->action = W_MODIFY;
		return 0;
	}
	record(w, &st, src_sha);
	w->action = W_SAME;
	return 0;
}

/* ---- orphans ------------------------------------------------------------------------------- */

struct orphan_walk {
	struct sync *s;
	bool apply;
	int rc;
	stk_err *err;
};

/* mark_unsettled for the walk: true (w->rc set) when the marker cannot be written. */
static bool unsettle(struct orphan_walk *w)
{
	if (!w->rc)
		w->rc = mark_unsettled(w->s, w->err);
	return w->rc != 0;
}

static bool under(const char *rel, const char *root)
{
	size_t n = strlen(root);

	return !n || (!strncmp(rel, root, n) && (rel[n] == '/' || rel[n] == '\0'));
}

/* True when some wanted file lies below directory `dir_rel` (s->want_dirs holds every
 * ancestor directory of every wanted file). */
static bool wanted_below(struct sync *s, const char *dir_rel)
{
	return stk_map_get(&s->want_dirs, dir_rel) != NULL;
}

static void index_want_dirs(struct sync *s)
{
	char d[ENG_PATH_MAX];

	for (size_t i = 0; i < s->paths.len; i++) {
		snprintf(d, sizeof(d), "%s", want_path(s, i));
		for (char *slash = strrchr(d, '/'); slash; slash = strrchr(d, '/')) {
			*slash = '\0';
			if (stk_map_get(&s->want_dirs, d))
				break; /* its ancestors are in already */
			stk_map_put(&s->want_dirs, d, (void *)1);
		}
	}
}

/*
 * Deletes (or counts) files under data directory `rel` (rlen bytes of a buffer of
 * ENG_PATH_MAX, reused below it), which is `name` in directory `at`, that no mapping
 * produced; returns true when the directory is left empty. Never enters .resources or
 * excluded paths. Fix (bench/agent/run.sh, no-op sync): every directory was opened, and
 * every orphan deleted, by its absolute path; now relative to the open parent, and a
 * subdirectory is opened with O_NOFOLLOW (only a managed root itself may be reached
 * through the data directory's own path, which check_parents has vetted).
 */
static bool orphans(struct orphan_walk *w, int at, const char *name, char *rel, size_t rlen,
		    int depth)
{
	size_t data_len = strlen(w->s->o->data);
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int fd;
	bool empty = true, is_dir;

	if (depth > 256)
		return false;
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (depth ? O_NOFOLLOW : 0));
	if (fd < 0)
		return false;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return false;
	}
	while ((de = readdir(dir))) {
		size_t clen;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		rel[rlen] = '\0';
		/* (the absolute path must fit too, as it did when it was built) */
		if (!path_push(rel, rlen, de->d_name, &clen) ||
		    data_len + 1 + clen >= ENG_PATH_MAX) {
			rel[rlen] = '\0';
			empty = false;
			continue;
		}
		/* The entry's type from readdir where the filesystem gives it: one stat less
		 * per file, which is most of a no-op sync. */
		is_dir = de->d_type == DT_DIR;
		if (de->d_type == DT_UNKNOWN) {
			if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
				empty = false;
				continue;
			}
			is_dir = S_ISDIR(st.st_mode);
		}
		if (!is_dir && want_has(w->s, rel)) {
			empty = false; /* wanted, so neither excluded nor an orphan */
			continue;
		}
		if (!strcmp(de->d_name, ".resources") || excluded(w->s, rel, rel, is_dir)) {
			empty = false;
			continue;
		}
		if (is_dir) {
			bool gone = orphans(w, dirfd(dir), de->d_name, rel, clen, depth + 1);
			rel[clen] = '\0';
			if (gone && !want_has(w->s, rel) && !wanted_below(w->s, rel)) {
				if (w->apply && (unsettle(w) ||
						 (unlinkat(dirfd(dir), de->d_name, AT_REMOVEDIR) &&
						  errno != ENOENT)))
					empty = false;
			} else {
				empty = false;
			}
			continue;
		}
		if (want_has(w->s, rel)) {
			empty = false;
			continue;
		}
		/* Leftover temporary files of an interrupted run go silently. */
		if (strncmp(de->d_name, ENG_TMP_PREFIX, strlen(ENG_TMP_PREFIX)))
			paths_add(&w->s->res->deleted, rel);
		if (w->apply && unsettle(w)) {
			empty = false;
			continue;
		}
		if (w->apply && unlinkat(dirfd(dir), de->d_name, 0) && errno != ENOENT) {
			w->rc = stk_err_errno(w->err, errno, "cannot delete %s/%s", w->s->o->data,
					      rel);
			empty = false;
		}
		if (!w->apply)
			empty = false;
	}
	closedir(dir);
	return empty;
}

/* The orphan walk of managed root `root`. */
static void orphans_under(struct orphan_walk *w, const char *root)
{
	char abs[ENG_PATH_MAX], rel[ENG_PATH_MAX];

	if (join(abs, w->s->o->data, root, w->err) ||
	    snprintf(rel, sizeof(rel), "%s", root) >= (int)sizeof(rel))
		return;
	orphans(w, AT_FDCWD, abs, rel, strlen(rel), 0);
}

/* ---- writing ------------------------------------------------------------------------------- */

/* mkdir -p of data path `rel`'s parent; a regular file in the way (a file replaced by a
 * directory between commits) is removed when it is under a managed root. */
static int make_parents(struct sync *s, const char *rel, stk_err *err)
{
	char sub[ENG_PATH_MAX], abs[ENG_PATH_MAX];
	const char *p = rel;
	struct stat st;

	while ((p = strchr(p, '/'))) {
		size_t n = (size_t)(p - rel);
		memcpy(sub, rel, n);
		sub[n] = '\0';
		p++;
		if (join(abs, s->o->data, sub, err))
			return STK_EINVAL;
		if (!lstat(abs, &st)) {
			if (S_ISDIR(st.st_mode))
				continue;
			if (S_ISLNK(st.st_mode))
				return stk_err_set(err, STK_EINVAL, "%s became a symlink", sub);
			if (unlink(abs))
				return stk_err_errno(err, errno, "cannot replace %s", abs);
		}
		if (mkdir(abs, 0755) && errno != EEXIST)
			return stk_err_errno(err, errno, "cannot create %s", abs);
	}
	return 0;
}

static int remove_tree(const char *abs, int depth)
{
	DIR *dir;
	struct dirent *de;
	char child[ENG_PATH_MAX];
	struct stat st;

	if (lstat(abs, &st))
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(abs);
	if (depth > 256 || !(dir = opendir(abs)))
		return -1;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(child, sizeof(child), "%s/%s", abs, de->d_name) < (int)sizeof(child))
			remove_tree(child, depth + 1);
	}
	closedir(dir);
	return rmdir(abs);
}

/* The temporary file of data path `rel`: a fixed name per file, in its own directory. */
static int tmp_name(char *out, const struct sync *s, const char *rel, stk_err *err)
{
	const char *slash = strrchr(rel, '/');

	if (snprintf(out, ENG_PATH_MAX, "%s/%.*s%s" ENG_TMP_PREFIX "%s", s->o->data,
		     slash ? (int)(slash - rel) : 0, rel, slash ? "/" : "",
		     base_name(rel)) >= ENG_PATH_MAX)
		return stk_err_set(err, STK_EINVAL, "path too long: %s/%s", s->o->data, rel);
	return 0;
}

/* Copies want i's source into a temporary file beside the destination; fills w->sha. */
static int write_temp(struct sync *s, size_t i, stk_err *err)
{
	struct want *w = want_at(s, i);
	const char *rel = want_path(s, i);
	mode_t mode = (w->flags & WF_EXEC) ? 0755 : 0644;
	char tmp[ENG_PATH_MAX], src[ENG_PATH_MAX], buf[1 << 16];
	unsigned char md[32];
	EVP_MD_CTX *ctx;
	int in, out, rc = 0;
	ssize_t n;

	/* A fixed name per file: a leftover of an interrupted run is reused, not piled up. */
	if ((rc = make_parents(s, rel, err)) || (rc = tmp_name(tmp, s, rel, err)) ||
	    (rc = src_path(src, s, i, err)))
		return rc;
	in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return stk_err_errno(err, errno, "cannot read %s", src);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (out < 0) {
		close(in);
		return stk_err_errno(err, errno, "cannot create %s", tmp);
	}
	w->flags |= WF_TMP;
	ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		char *p = buf;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		while (n > 0) {
			ssize_t m = write(out, p, (size_t)n);
			if (m < 0) {
				if (errno == EINTR)
					continue;
				rc = stk_err_errno(err, errno, "cannot write %s", tmp);
				break;
			}
			p += m;
			n -= m;
		}
		if (rc)
			break;
	}
	if (!rc && n < 0)
		rc = stk_err_errno(err, errno, "cannot read %s", src);
	/* The umask must not narrow the modes of DESIGN.md: 0644 / 0755. */
	if (!rc && fchmod(out, mode))
		rc = stk_err_errno(err, errno, "cannot chmod %s", tmp);
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	memcpy(w->sha, md, 32);
	close(in);
	if (close(out) && !rc)
		rc = stk_err_errno(err, errno, "cannot write %s", tmp);
	if (rc) {
		unlink(tmp);
		w->flags &= (uint8_t)~WF_TMP;
	} else
		s->res->bytes_written += (uint64_t)w->src.size;
	return rc;
}

/* Removes want i's temporary file, if it wrote one. */
static void drop_temp(struct sync *s, size_t i)
{
	struct want *w = want_at(s, i);
	char tmp[ENG_PATH_MAX];

	if ((w->flags & WF_TMP) && !tmp_name(tmp, s, want_path(s, i), NULL))
		unlink(tmp);
	w->flags &= (uint8_t)~WF_TMP;
}

/* Renames want i's written temporary file over its destination and records it. */
static int commit_file(struct sync *s, size_t i, stk_err *err)
{
	struct want *w = want_at(s, i);
	const char *rel = want_path(s, i);
	char abs[ENG_PATH_MAX], tmp[ENG_PATH_MAX];
	struct stat st;
	int rc;

	if ((rc = join(abs, s->o->data, rel, err)) || (rc = tmp_name(tmp, s, rel, err)))
		return rc;
	if (!lstat(abs, &st) && S_ISDIR(st.st_mode) && remove_tree(abs, 0))
		return stk_err_errno(err, errno, "cannot replace directory %s", abs);
	if (rename(tmp, abs))
		return stk_err_errno(err, errno, "cannot rename onto %s", abs);
	w->flags &= (uint8_t)~WF_TMP;
	if (lstat(abs, &st))
		return stk_err_errno(err, errno, "cannot stat %s", abs);
	record(w, &st, w->sha);
	return 0;
}

static void fsync_dir(const char *abs)
{
	int fd = open(abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Writes the batch's temporary files, makes them durable with one syncfs, renames them. */
static int flush_batch(struct sync *s, const uint32_t *batch, size_t n, stk_err *err)
{
	int fd, rc = 0;

	if (!n)
		return 0;
	fd = open(s->o->data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		syncfs(fd);
		close(fd);
	}
	for (size_t i = 0; i < n; i++) {
		if (!rc)
			rc = commit_file(s, batch[i], err);
		else
			drop_temp(s, batch[i]);
	}
	return rc;
}

/* ---- the sync ------------------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_want(const void *a, const void *b, void *arg)
{
	const struct sync *s = arg;

	return strcmp(want_path(s, *(const uint32_t *)a), want_path(s, *(const uint32_t *)b));
}

/* True when data paths `a` and `b` are in the same directory. */
static bool same_dir(const char *a, const char *b)
{
	const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
	size_t na = sa ? (size_t)(sa - a) : 0, nb = sb ? (size_t)(sb - b) : 0;

	return na == nb && !memcmp(a, b, na);
}

/* A file line of the last manifest: onto its want, or kept aside when it is not wanted. */
static void old_entry(void *arg, const char *path, const struct ment *e)
{
	struct sync *s = arg;
	size_t i = strtab_find(&s->paths, path);
	struct want *w;

	if (i == STRTAB_NONE) {
		strtab_add(&s->old_only, path);
		return;
	}
	w = want_at(s, i);
	w->flags |= WF_OLD;
	memcpy(w->sha, e->sha, 32);
	w->live.size = e->size;
	w->live.mtime_s = e->mtime_s;
	w->live.mtime_ns = e->mtime_ns;
	w->old_src.size = e->src_size;
	w->old_src.mtime_s = e->src_mtime_s;
	w->old_src.mtime_ns = e->src_mtime_ns;
}

/*
 * True when the new manifest would be written exactly as the old one was: every wanted
 * file's entry carried over unchanged (compare's fast path), the old one has no other
 * file, and the repository, roots and excludes are the same.
 */
static bool manifest_same(const struct sync *s)
{
	const struct agent_plan *p = s->o->plan;

	return !strcmp(s->old.repo, s->o->repo) && s->old_only.len == 0 &&
	       s->moved == s->paths.len &&
	       strv_same(s->old.roots, s->old.nroots, s->roots, s->nroots) &&
	       strv_same(s->old.excludes, s->old.nexcludes, p->excludes, p->nexcludes);
}

/* Writes the manifest of this sync (the recorded wants, in path order), durably. */
static int manifest_save(const struct sync *s, const char *state, stk_err *err)
{
	const struct agent_plan *p = s->o->plan;
	char path[ENG_PATH_MAX], tmp[ENG_PATH_MAX];
	FILE *f;
	int fd;

	if (mkdir(state, 0750) && errno != EEXIST)
		return stk_err_errno(err, errno, "cannot create %s", state);
	if (join(path, state, ENG_MANIFEST, err) || join(tmp, state, ENG_MANIFEST ".tmp", err))
		return STK_EINVAL;
	f = fopen(tmp, "we");
	if (!f)
		return stk_err_errno(err, errno, "cannot write %s", tmp);
	fprintf(f, "stoker-manifest 1\t%.*s\n", ENG_PATH_MAX - 1, s->o->repo);
	for (size_t i = 0; i < s->nroots; i++)
		fprintf(f, "root\t%s\n", s->roots[i]);
	for (size_t i = 0; i < p->nexcludes; i++)
		if (!strchr(p->excludes[i], '\n'))
			fprintf(f, "exclude\t%s\n", p->excludes[i]);
	for (size_t k = 0; k < s->paths.len; k++) {
		const struct want *w = want_at(s, s->order[k]);
		char hexsha[65];
		if (!(w->flags & WF_RECORDED))
			continue;
		hex(w->sha, hexsha);
		fprintf(f, "%s %lld %lld %lld %lld %lld %lld\t%s\n", hexsha, w->live.size,
			w->live.mtime_s, w->live.mtime_ns, w->src.size, w->src.mtime_s,
			w->src.mtime_ns, want_path(s, s->order[k]));
	}
	fd = fileno(f);
	if (fflush(f) || fsync(fd)) {
		fclose(f);
		return stk_err_errno(err, errno, "cannot write %s", tmp);
	}
	fclose(f);
	if (rename(tmp, path))
		return stk_err_errno(err, errno, "cannot replace %s", path);
	return 0;
}

static void sync_release(struct sync *s)
{
	for (size_t i = 0; i < s->nblocks; i++)
		free(s->blocks[i]);
	free(s->blocks);
	free(s->order);
	strtab_release(&s->paths);
	strtab_release(&s->old_only);
	stk_map_release(&s->checked_dirs);
	stk_map_release(&s->want_dirs);
	for (size_t i = 0; i < s->nroots; i++)
		free(s->roots[i]);
	free(s->roots);
	manifest_release(&s->old);
	for (size_t i = 0; i < s->nseg_ex; i++)
		free(s->seg_ex[i].name);
	free(s->seg_ex);
	free(s->glob_ex);
	live_close(s);
}

int agent_sync(const struct agent_sync_opts *o, struct agent_result *res, stk_err *err)
{
	struct sync s;
	struct stk_map_iter it = {0};
	struct stk_map_entry *e;
	uint32_t *batch = NULL;
	size_t n = 0, nbatch = 0, batch_bytes = 0;
	double t0 = now_s();
	struct stat st;
	int rc;

	memset(&s, 0, sizeof(s));
	memset(res, 0, sizeof(*res));
	s.o = o;
	s.res = res;
	s.live_fd = -1;
	res->dry_run = o->dry_run;
	if (stat(o->data, &st) || !S_ISDIR(st.st_mode))
		return stk_err_set(err, STK_EINVAL, "data directory %s does not exist", o->data);
	if (stat(o->repo, &st) || !S_ISDIR(st.st_mode))
		return stk_err_set(err, STK_EINVAL, "repository %s does not exist", o->repo);
	split_excludes(&s);
	/* 1. What the plan asks for, and the safety rules, before anything is touched. */
	rc = collect(&s, err);
	n = s.paths.len;
	if (!rc && n) {
		s.order = stk_calloc(n, sizeof(*s.order));
		for (size_t i = 0; i < n; i++)
			s.order[i] = (uint32_t)i;
		qsort_r(s.order, n, sizeof(*s.order), cmp_want, &s);
	}
	/* The last sync's manifest, onto the wanted files (no copy of their paths). */
	if (!rc) {
		rc = manifest_read(&s.old, o->state, old_entry, &s, err);
		if (rc == STK_ENOTFOUND)
			rc = 0;
	}
	if (!rc)
		index_want_dirs(&s);
	for (size_t k = 0; !rc && k < n; k++) {
		const char *rel = want_path(&s, s.order[k]);
		/*
		 * The files of a directory come one after another, and the first one's
		 * check cached every directory on its way: the others' would find them all
		 * in checked_dirs and do nothing.
		 */
		if (!k || !same_dir(want_path(&s, s.order[k - 1]), rel))
			rc = check_parents(&s, rel, err);
		if (!rc && !strcmp(base_name(rel), "config.json"))
			rc = validate_config(&s, s.order[k], err);
	}
	/*
	 * Fix (test_engine__data_symlink_on_the_way_refused): the orphan walk opens every
	 * managed root, so a root that is, or lies below, a symlink led it out of the data
	 * directory (deleting there) whenever no wanted file went through the link.
	 */
	for (size_t i = 0; !rc && i < s.nroots; i++) {
		char r[ENG_PATH_MAX];
		if (!*s.roots[i])
			continue;
		if (snprintf(r, sizeof(r), "%s/", s.roots[i]) >= (int)sizeof(r))
			rc = stk_err_set(err, STK_EINVAL, "path too long: %s", s.roots[i]);
		else
			rc = check_parents(&s, r, err);
	}
	/* 2. The diff. */
	for (size_t k = 0; !rc && k < n; k++) {
		struct want *w = want_at(&s, s.order[k]);
		const char *rel = want_path(&s, s.order[k]);
		rc = compare(&s, s.order[k], err);
		if (rc)
			break;
		if (w->action == W_ADD)
			paths_add(&res->added, rel);
		else if (w->action == W_MODIFY)
			paths_add(&res->modified, rel);
		else
			res->unchanged++;
		if (w->action != W_SAME)
			note_project(res, rel);
	}
	live_close(&s);
	if (rc || o->dry_run) {
		if (!rc) {
			struct orphan_walk ow = {&s, false, 0, err};
			for (size_t i = 0; i < s.nroots; i++)
				orphans_under(&ow, s.roots[i]);
		}
		goto out;
	}
	/* 3. Merge: changed files, in batches made durable before their renames. */
	batch = stk_calloc(ENG_BATCH_FILES, sizeof(*batch));
	for (size_t k = 0; !rc && k < n; k++) {
		struct want *w = want_at(&s, s.order[k]);
		if (w->action == W_SAME)
			continue;
		if (o->stop && *o->stop) {
			rc = flush_batch(&s, batch, nbatch, err);
			nbatch = 0;
			if (!rc)
				rc = stk_err_set(err, STK_ECANCELED, "stopped");
			break;
		}
		rc = mark_unsettled(&s, err);
		if (!rc)
			rc = write_temp(&s, s.order[k], err);
		if (rc)
			break;
		batch[nbatch++] = s.order[k];
		batch_bytes += (size_t)w->src.size;
		if (nbatch == ENG_BATCH_FILES || batch_bytes >= ENG_BATCH_BYTES) {
			rc = flush_batch(&s, batch, nbatch, err);
			nbatch = 0;
			batch_bytes = 0;
		}
	}
	if (!rc)
		rc = flush_batch(&s, batch, nbatch, err);
	else
		for (size_t i = 0; i < nbatch; i++)
			drop_temp(&s, batch[i]);
	/* 4. Orphans under managed roots, then the directories left empty. */
	if (!rc) {
		struct orphan_walk ow = {&s, true, 0, err};
		for (size_t i = 0; i < s.nroots; i++)
			orphans_under(&ow, s.roots[i]);
		rc = ow.rc;
	}
	/*
	 * Fix: the orphan walk removes leftover temporary files only under managed roots. A
	 * run killed before renaming a file outside them (a root-level file mapping) left
	 * its temporary file for good when the next run found that file unchanged.
	 */
	for (size_t k = 0; !rc && k < n; k++) {
		const char *rel = want_path(&s, s.order[k]);
		char tmp[ENG_PATH_MAX];
		if (want_at(&s, s.order[k])->action == W_SAME && !managed(&s, rel) &&
		    !tmp_name(tmp, &s, rel, NULL))
			unlink(tmp); /* mostly ENOENT */
	}
	/* 5. Durability of the names, and the manifest for the next run. */
	if (!rc) {
		char abs[ENG_PATH_MAX];
		stk_map dirs = STK_MAP_INIT;
		for (size_t k = 0; k < n; k++) {
			const char *rel = want_path(&s, s.order[k]);
			const char *slash = strrchr(rel, '/');
			char d[ENG_PATH_MAX];
			if (want_at(&s, s.order[k])->action == W_SAME)
				continue;
			snprintf(d, sizeof(d), "%.*s", slash ? (int)(slash - rel) : 0, rel);
			stk_map_put(&dirs, d, (void *)1);
		}
		while ((e = stk_map_next(&dirs, &it)))
			if (!join(abs, o->data, e->key, err))
				fsync_dir(abs);
		stk_map_release(&dirs);
		/* A no-op sync leaves the manifest as it was: no rewrite, no fsync. */
		if (!manifest_same(&s))
			rc = manifest_save(&s, o->state, err);
		/* Settled, also after an earlier run that was interrupted: the marker goes. */
		if (!rc && !join(abs, o->state, ENG_UNSETTLED, NULL))
			unlink(abs);
	}
out:
	res->seconds = now_s() - t0;
	free(batch);
	sync_release(&s);
	return rc;
}

/* ---- drift ----------------------------------------------------------------------------------- */

struct drift_walk {
	struct manifest *m;
	struct agent_result *res;
	const char *data;
};

static void drift_new_files(struct drift_walk *w, const char *rel, int depth)
{
	char abs[ENG_PATH_MAX], child[ENG_PATH_MAX], cabs[ENG_PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *dir;

	if (depth > 256 ||
	    snprintf(abs, sizeof(abs), "%s%s%s", w->data, *rel ? "/" : "", rel) >= (int)sizeof(abs))
		return;
	if (!(dir = opendir(abs)))
		return;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, ".resources") ||
		    !strncmp(de->d_name, ENG_TMP_PREFIX, strlen(ENG_TMP_PREFIX)))
			continue;
		if (snprintf(child, sizeof(child), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
			    (int)sizeof(child) ||
		    snprintf(cabs, sizeof(cabs), "%s/%s", abs, de->d_name) >= (int)sizeof(cabs))
			continue; /* too long to be one of ours */
		if (lstat(cabs, &st))
			continue;
		if (stk_glob_excluded((const char *const *)w->m->excludes, w->m->nexcludes, child,
				      S_ISDIR(st.st_mode)))
			continue;
		if (S_ISDIR(st.st_mode))
			drift_new_files(w, child, depth + 1);
		else if (!stk_map_get(&w->m->files, child))
			paths_add(&w->res->added, child);
	}
	closedir(dir);
}

int agent_drift(const char *data, const char *state, struct agent_result *res, stk_err *err)
{
	struct manifest m;
	struct stk_map_iter it = {0};
	struct stk_map_entry *e;
	char abs[ENG_PATH_MAX];
	unsigned char sha[32];
	double t0 = now_s();
	char **keys = NULL;
	size_t n = 0;
	struct stat st;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = manifest_load(&m, state, err);
	if (rc == STK_ENOTFOUND)
		return stk_err_set(err, STK_ENOTFOUND, "no manifest in %s: nothing synced yet",
				   state);
	if (rc)
		return rc;
	while ((e = stk_map_next(&m.files, &it))) {
		keys = stk_reallocarray(keys, n + 1, sizeof(char *));
		keys[n++] = e->key;
	}
	if (n > 1)
		qsort(keys, n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < n; i++) {
		const struct ment *v = stk_map_get(&m.files, keys[i]);
		if (join(abs, data, keys[i], err))
			continue;
		if (lstat(abs, &st)) {
			paths_add(&res->deleted, keys[i]);
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			paths_add(&res->modified, keys[i]);
			continue;
		}
		if (stat_matches(v, &st)) {
			res->unchanged++;
			continue;
		}
		if (hash_file(abs, sha, err) || memcmp(sha, v->sha, 32))
			paths_add(&res->modified, keys[i]);
		else
			res->unchanged++;
	}
	{
		struct drift_walk w = {&m, res, data};
		for (size_t i = 0; i < m.nroots; i++)
			drift_new_files(&w, m.roots[i], 0);
	}
	res->seconds = now_s() - t0;
	free(keys);
	manifest_release(&m);
	return 0;
}

/* ---- the result as JSON ------------------------------------------------------------------ */

static void put_paths(stk_buf *b, const struct agent_paths *p)
{
	stk_buf_putc(b, '[');
	for (size_t i = 0; i < p->len; i++) {
		if (i)
			stk_buf_putc(b, ',');
		stk_buf_put_json_string(b, p->items[i], strlen(p->items[i]));
	}
	stk_buf_putc(b, ']');
}

void agent_result_json(const struct agent_result *r, stk_buf *b)
{
	stk_buf_printf(b,
		       "{\"dryRun\":%s,\"filesAdded\":%llu,\"filesModified\":%llu,"
		       "\"filesDeleted\":%llu,\"filesChanged\":%llu,\"filesUnchanged\":%llu,"
		       "\"bytesWritten\":%llu,\"duration\":\"%.3fs\",\"projectsSynced\":",
		       r->dry_run ? "true" : "false", (unsigned long long)r->added.count,
		       (unsigned long long)r->modified.count, (unsigned long long)r->deleted.count,
		       (unsigned long long)(r->added.count + r->modified.count + r->deleted.count),
		       (unsigned long long)r->unchanged, (unsigned long long)r->bytes_written,
		       r->seconds);
	put_paths(b, &r->projects);
	stk_buf_puts(b, ",\"skipped\":");
	put_paths(b, &r->skipped);
	stk_buf_puts(b, ",\"diff\":{\"added\":");
	put_paths(b, &r->added);
	stk_buf_puts(b, ",\"modified\":");
	put_paths(b, &r->modified);
	stk_buf_puts(b, ",\"deleted\":");
	put_paths(b, &r->deleted);
	stk_buf_printf(b, ",\"addedCount\":%llu,\"modifiedCount\":%llu,\"deletedCount\":%llu}}",
		       (unsigned long long)r->added.count, (unsigned long long)r->modified.count,
		       (unsigned long long)r->deleted.count);
}
