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
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
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
	struct stk_map_iter it = {0};
	struct stk_map_entry *e;

	while ((e = stk_map_next(&m->files, &it)))
		free(e->value);
	stk_map_release(&m->files);
	for (size_t i = 0; i < m->nroots; i++)
		free(m->roots[i]);
	free(m->roots);
	for (size_t i = 0; i < m->nexcludes; i++)
		free(m->excludes[i]);
	free(m->excludes);
	memset(m, 0, sizeof(*m));
}

/* Format: "stoker-manifest 1\trepo\n", "root\t<path>\n"…, then one line per file:
 * "<sha> <size> <mtime_s> <mtime_ns> <src_size> <src_mtime_s> <src_mtime_ns>\t<path>\n". */
static int manifest_load(struct manifest *m, const char *state, stk_err *err)
{
	char path[ENG_PATH_MAX];
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;
	int rc = 0;

	memset(m, 0, sizeof(*m));
	if (join(path, state, ENG_MANIFEST, err))
		return STK_EINVAL;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? STK_ENOTFOUND
				       : stk_err_errno(err, errno, "cannot read %s", path);
	while ((n = getline(&line, &cap, f)) > 0) {
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
			m->roots = stk_reallocarray(m->roots, m->nroots + 1, sizeof(char *));
			m->roots[m->nroots++] = stk_strdup(tab);
		} else {
			struct ment *e = stk_calloc(1, sizeof(*e));
			char hexsha[65];
			if (sscanf(line, "%64s %lld %lld %lld %lld %lld %lld", hexsha, &e->size,
				   &e->mtime_s, &e->mtime_ns, &e->src_size, &e->src_mtime_s,
				   &e->src_mtime_ns) != 7 ||
			    !unhex(hexsha, e->sha)) {
				free(e);
				continue; /* a damaged line only costs a re-hash */
			}
			free(stk_map_put(&m->files, tab, e));
		}
	}
	free(line);
	fclose(f);
	return rc;
}

static bool strv_same(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]))
			return false;
	return true;
}

/*
 * True when the new manifest would be written exactly as the old one was: every old
 * entry was moved over unchanged (compare's fast path), nothing else was recorded, and
 * the repository, roots and excludes are the same.
 */
static bool manifest_same(const struct manifest *a, const struct manifest *b, size_t moved)
{
	return !strcmp(a->repo, b->repo) && a->files.len == 0 && b->files.len == moved &&
	       strv_same(a->roots, a->nroots, b->roots, b->nroots) &&
	       strv_same(a->excludes, a->nexcludes, b->excludes, b->nexcludes);
}

static int manifest_save(const struct manifest *m, const char *state, stk_err *err)
{
	char path[ENG_PATH_MAX], tmp[ENG_PATH_MAX];
	struct stk_map_iter it = {0};
	struct stk_map_entry *e;
	FILE *f;
	int fd;

	if (mkdir(state, 0750) && errno != EEXIST)
		return stk_err_errno(err, errno, "cannot create %s", state);
	if (join(path, state, ENG_MANIFEST, err) || join(tmp, state, ENG_MANIFEST ".tmp", err))
		return STK_EINVAL;
	f = fopen(tmp, "we");
	if (!f)
		return stk_err_errno(err, errno, "cannot write %s", tmp);
	fprintf(f, "stoker-manifest 1\t%s\n", m->repo);
	for (size_t i = 0; i < m->nroots; i++)
		fprintf(f, "root\t%s\n", m->roots[i]);
	for (size_t i = 0; i < m->nexcludes; i++)
		if (!strchr(m->excludes[i], '\n'))
			fprintf(f, "exclude\t%s\n", m->excludes[i]);
	while ((e = stk_map_next(&m->files, &it))) {
		const struct ment *v = e->value;
		char hexsha[65];
		hex(v->sha, hexsha);
		fprintf(f, "%s %lld %lld %lld %lld %lld %lld\t%s\n", hexsha, v->size, v->mtime_s,
			v->mtime_ns, v->src_size, v->src_mtime_s, v->src_mtime_ns, e->key);
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

/* ---- what the plan asks for --------------------------------------------------------------- */

/*
 * Fix (bench/agent/run.sh, peak RSS): `src` and `tmp` were char[ENG_PATH_MAX] arrays,
 * 8 KiB per wanted file, about 400 MiB resident for the 50k-file tree of the 32 MiB
 * target. Both are now allocated to size; `tmp` only while the file is being merged.
 */
/* What a wanted file needs of its source's stat (a struct stat is 144 bytes per file). */
struct src_meta {
	long long size, mtime_s;
	long mtime_ns;
	unsigned mode;
};

struct want {
	char *src;	       /* absolute source path */
	struct src_meta st;    /* of the source */
	unsigned char sha[32]; /* of the source, once known */
	enum {
		W_SAME,
		W_ADD,
		W_MODIFY
	} action;
	char *tmp; /* temporary file while merging, else NULL */
};

static void want_free(struct want *w)
{
	if (w) {
		free(w->src);
		free(w->tmp);
		free(w);
	}
}

struct sync {
	const struct agent_sync_opts *o;
	struct agent_result *res;
	stk_map want; /* data path -> struct want */
	char **roots; /* managed roots (data paths, "" = the data root) */
	size_t nroots;
	struct manifest old, new;
	stk_map checked_dirs; /* data-relative directories known to be safe to write into */
	stk_map want_dirs;    /* every ancestor directory of a wanted file */
	size_t moved;	      /* unchanged entries moved from old.files to new.files */
};

static bool excluded(const struct sync *s, const char *repo_rel, const char *data_rel, bool dir)
{
	const struct agent_plan *p = s->o->plan;
	const char *const *ex = (const char *const *)p->excludes;

	return in_resources(data_rel) || in_resources(repo_rel) ||
	       stk_glob_excluded(ex, p->nexcludes, data_rel, dir) ||
	       stk_glob_excluded(ex, p->nexcludes, repo_rel, dir);
}

static int want_file(struct sync *s, const char *src_abs, const struct stat *st,
		     const char *data_rel, stk_err *err)
{
	struct want *w;

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
	w = stk_calloc(1, sizeof(*w));
	w->src = stk_strdup(src_abs);
	w->st.size = st->st_size;
	w->st.mtime_s = st->st_mtim.tv_sec;
	w->st.mtime_ns = st->st_mtim.tv_nsec;
	w->st.mode = st->st_mode;
	/* a later mapping overlays an earlier one */
	want_free(stk_map_put(&s->want, data_rel, w));
	return 0;
}

/* Walks source directory `abs` (repository path `repo_rel`) onto data path `data_rel`. */
static int walk_source(struct sync *s, const char *abs, const char *repo_rel, const char *data_rel,
		       int depth, stk_err *err)
{
	char a[ENG_PATH_MAX], r[ENG_PATH_MAX], d[ENG_PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int rc = 0;

	if (depth > 256)
		return stk_err_set(err, STK_EINVAL, "directories nest too deep under %s", abs);
	dir = opendir(abs);
	if (!dir)
		return stk_err_errno(err, errno, "cannot read %s", abs);
	while (!rc && (de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((rc = join(a, abs, de->d_name, err)) ||
		    (rc = join(r, repo_rel, de->d_name, err)))
			break;
		if ((rc = join(d, data_rel, de->d_name, err)))
			break;
		if (*repo_rel == '\0')
			snprintf(r, sizeof(r), "%s", de->d_name);
		if (*data_rel == '\0')
			snprintf(d, sizeof(d), "%s", de->d_name);
		if (lstat(a, &st)) {
			rc = stk_err_errno(err, errno, "cannot stat %s", a);
			break;
		}
		if (S_ISLNK(st.st_mode)) {
			if (excluded(s, r, d, false))
				continue;
			rc = stk_err_set(err, STK_EINVAL,
					 "symlink %s in the repository refused: links are never "
					 "followed or copied",
					 r);
		} else if (S_ISDIR(st.st_mode)) {
			if (!excluded(s, r, d, true))
				rc = walk_source(s, a, r, d, depth + 1, err);
		} else if (S_ISREG(st.st_mode)) {
			if (!excluded(s, r, d, false))
				rc = want_file(s, a, &st, d, err);
		} else if (!excluded(s, r, d, false)) {
			rc = stk_err_set(err, STK_EINVAL, "%s is not a regular file or directory",
					 r);
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
			    (rc = want_file(s, abs, &st, m->dest, err)))
				return rc;
			continue;
		}
		if (!S_ISDIR(st.st_mode))
			return stk_err_set(err, STK_EINVAL,
					   "mapping %zu: source '%s' is not a directory", i,
					   m->source);
		if (!m->overlay)
			add_root(s, m->dest);
		if ((rc = walk_source(s, abs, m->source, m->dest, 0, err)))
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
static int validate_config(const struct want *w, const char *rel, stk_err *err)
{
	unsigned char buf[1 << 16];
	unsigned long long line = 1, col = 1;
	yajl_status st = yajl_status_ok;
	yajl_handle h;
	ssize_t n = 0;
	int fd, rc = 0;

	if ((size_t)w->st.size > ENG_MAX_CONFIG)
		return stk_err_set(err, STK_EINVAL, "%s is larger than %u bytes", rel,
				   ENG_MAX_CONFIG);
	fd = open(w->src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return stk_err_errno(err, errno, "cannot read %s", w->src);
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
		rc = stk_err_errno(err, errno, "cannot read %s", w->src);
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
		if (stk_map_get(&s->want, sub))
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
			if (!managed(s, sub) && !stk_map_get(&s->old.files, sub))
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

static bool src_matches(const struct ment *m, const struct src_meta *st)
{
	return m->src_size == st->size && m->src_mtime_s == st->mtime_s &&
	       m->src_mtime_ns == (long long)st->mtime_ns;
}

static struct ment *record(struct sync *s, const char *rel, const struct want *w,
			   const struct stat *live, const unsigned char *sha)
{
	struct ment *m = stk_calloc(1, sizeof(*m));

	memcpy(m->sha, sha, 32);
	m->size = live->st_size;
	m->mtime_s = live->st_mtim.tv_sec;
	m->mtime_ns = live->st_mtim.tv_nsec;
	m->src_size = w->st.size;
	m->src_mtime_s = w->st.mtime_s;
	m->src_mtime_ns = w->st.mtime_ns;
	free(stk_map_put(&s->new.files, rel, m));
	return m;
}

/* Decides add / modify / same for one wanted file. */
static int compare(struct sync *s, const char *rel, struct want *w, stk_err *err)
{
	char abs[ENG_PATH_MAX];
	unsigned char live_sha[32];
	const struct ment *old = stk_map_get(&s->old.files, rel);
	bool same_repo = !strcmp(s->old.repo, s->o->repo);
	struct stat st;
	int rc;

	if ((rc = join(abs, s->o->data, rel, err)))
		return rc;
	if (lstat(abs, &st)) {
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
	/* Fast path: the live file is as we left it, and so is its source. */
	if (old && stat_matches(old, &st) && same_repo && src_matches(old, &w->st)) {
		/* The entry is the same in the new manifest: moved, not copied (memory). */
		struct ment *m = stk_map_del(&s->old.files, rel);
		memcpy(w->sha, m->sha, 32);
		free(stk_map_put(&s->new.files, rel, m));
		s->moved++;
		w->action = W_SAME;
		return 0;
	}
	if ((rc = hash_file(w->src, w->sha, err)))
		return rc;
	if ((long long)st.st_size != (long long)w->st.size) {
		w->action = W_MODIFY;
		return 0;
	}
	if (old && stat_matches(old, &st))
		memcpy(live_sha, old->sha, 32);
	else if ((rc = hash_file(abs, live_sha, err)))
		return rc;
	if (memcmp(live_sha, w->sha, 32)) {
		w->action = W_MODIFY;
		return 0;
	}
	record(s, rel, w, &st, w->sha);
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
	struct stk_map_iter it = {0};
	struct stk_map_entry *e;
	char d[ENG_PATH_MAX];

	while ((e = stk_map_next(&s->want, &it))) {
		snprintf(d, sizeof(d), "%s", e->key);
		for (char *slash = strrchr(d, '/'); slash; slash = strrchr(d, '/')) {
			*slash = '\0';
			if (stk_map_get(&s->want_dirs, d))
				break; /* its ancestors are in already */
			stk_map_put(&s->want_dirs, d, (void *)1);
		}
	}
}

/* Deletes (or counts) files under `rel` no mapping produced; returns true when the directory
 * is left empty. Never enters .resources or excluded paths. */
static bool orphans(struct orphan_walk *w, const char *rel, int depth)
{
	char abs[ENG_PATH_MAX], child[ENG_PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *dir;
	bool empty = true, is_dir;

	if (depth > 256 || join(abs, w->s->o->data, rel, w->err))
		return false;
	dir = opendir(abs);
	if (!dir)
		return false;
	while ((de = readdir(dir))) {
		char cabs[ENG_PATH_MAX];
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (join(child, rel, de->d_name, w->err) || join(cabs, abs, de->d_name, w->err)) {
			empty = false;
			continue;
		}
		if (!*rel)
			snprintf(child, sizeof(child), "%s", de->d_name);
		/* The entry's type from readdir where the filesystem gives it: one stat less
		 * per file, which is most of a no-op sync. */
		is_dir = de->d_type == DT_DIR;
		if (de->d_type == DT_UNKNOWN) {
			if (lstat(cabs, &st)) {
				empty = false;
				continue;
			}
			is_dir = S_ISDIR(st.st_mode);
		}
		if (!is_dir && stk_map_get(&w->s->want, child)) {
			empty = false; /* wanted, so neither excluded nor an orphan */
			continue;
		}
		if (!strcmp(de->d_name, ".resources") || excluded(w->s, child, child, is_dir)) {
			empty = false;
			continue;
		}
		if (is_dir) {
			if (orphans(w, child, depth + 1) && !stk_map_get(&w->s->want, child) &&
			    !wanted_below(w->s, child)) {
				if (w->apply && rmdir(cabs) && errno != ENOENT)
					empty = false;
			} else {
				empty = false;
			}
			continue;
		}
		if (stk_map_get(&w->s->want, child)) {
			empty = false;
			continue;
		}
		/* Leftover temporary files of an interrupted run go silently. */
		if (strncmp(de->d_name, ENG_TMP_PREFIX, strlen(ENG_TMP_PREFIX)))
			paths_add(&w->s->res->deleted, child);
		if (w->apply && unlink(cabs) && errno != ENOENT) {
			w->rc = stk_err_errno(w->err, errno, "cannot delete %s", cabs);
			empty = false;
		}
		if (!w->apply)
			empty = false;
	}
	closedir(dir);
	return empty;
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

/* Copies the source into a temporary file beside the destination; fills w->tmp and sha. */
static int write_temp(struct sync *s, const char *rel, struct want *w, stk_err *err)
{
	char tmp[ENG_PATH_MAX], buf[1 << 16];
	unsigned char md[32];
	EVP_MD_CTX *ctx;
	int in, out, rc = 0;
	ssize_t n;

	/* A fixed name per file: a leftover of an interrupted run is reused, not piled up. */
	if ((rc = make_parents(s, rel, err)) || (rc = tmp_name(tmp, s, rel, err)))
		return rc;
	free(w->tmp);
	w->tmp = stk_strdup(tmp);
	in = open(w->src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return stk_err_errno(err, errno, "cannot read %s", w->src);
	out = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		   (w->st.mode & 0111) ? 0755 : 0644);
	if (out < 0) {
		close(in);
		return stk_err_errno(err, errno, "cannot create %s", w->tmp);
	}
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
				rc = stk_err_errno(err, errno, "cannot write %s", w->tmp);
				break;
			}
			p += m;
			n -= m;
		}
		if (rc)
			break;
	}
	if (!rc && n < 0)
		rc = stk_err_errno(err, errno, "cannot read %s", w->src);
	/* The umask must not narrow the modes of DESIGN.md: 0644 / 0755. */
	if (!rc && fchmod(out, (w->st.mode & 0111) ? 0755 : 0644))
		rc = stk_err_errno(err, errno, "cannot chmod %s", w->tmp);
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	memcpy(w->sha, md, 32);
	close(in);
	if (close(out) && !rc)
		rc = stk_err_errno(err, errno, "cannot write %s", w->tmp);
	if (rc) {
		unlink(w->tmp);
		free(w->tmp);
		w->tmp = NULL;
	} else
		s->res->bytes_written += (uint64_t)w->st.size;
	return rc;
}

/* Renames a written temporary file over its destination and records it. */
static int commit_file(struct sync *s, const char *rel, struct want *w, stk_err *err)
{
	char abs[ENG_PATH_MAX];
	struct stat st;
	int rc;

	if ((rc = join(abs, s->o->data, rel, err)))
		return rc;
	if (!lstat(abs, &st) && S_ISDIR(st.st_mode) && remove_tree(abs, 0))
		return stk_err_errno(err, errno, "cannot replace directory %s", abs);
	if (rename(w->tmp, abs))
		return stk_err_errno(err, errno, "cannot rename onto %s", abs);
	free(w->tmp);
	w->tmp = NULL;
	if (lstat(abs, &st))
		return stk_err_errno(err, errno, "cannot stat %s", abs);
	record(s, rel, w, &st, w->sha);
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
static int flush_batch(struct sync *s, char **keys, size_t n, stk_err *err)
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
		struct want *w = stk_map_get(&s->want, keys[i]);
		if (!rc)
			rc = commit_file(s, keys[i], w, err);
		else if (w->tmp)
			unlink(w->tmp);
	}
	return rc;
}

/* ---- the sync ------------------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void sync_release(struct sync *s)
{
	struct stk_map_iter it = {0};
	struct stk_map_entry *e;

	while ((e = stk_map_next(&s->want, &it)))
		want_free(e->value);
	stk_map_release(&s->want);
	stk_map_release(&s->checked_dirs);
	stk_map_release(&s->want_dirs);
	for (size_t i = 0; i < s->nroots; i++)
		free(s->roots[i]);
	free(s->roots);
	manifest_release(&s->old);
	manifest_release(&s->new);
}

int agent_sync(const struct agent_sync_opts *o, struct agent_result *res, stk_err *err)
{
	struct sync s;
	struct stk_map_iter it = {0};
	struct stk_map_entry *e;
	char **keys = NULL, **batch = NULL;
	size_t nkeys = 0, nbatch = 0, batch_bytes = 0;
	double t0 = now_s();
	struct stat st;
	int rc;

	memset(&s, 0, sizeof(s));
	memset(res, 0, sizeof(*res));
	s.o = o;
	s.res = res;
	res->dry_run = o->dry_run;
	if (stat(o->data, &st) || !S_ISDIR(st.st_mode))
		return stk_err_set(err, STK_EINVAL, "data directory %s does not exist", o->data);
	if (stat(o->repo, &st) || !S_ISDIR(st.st_mode))
		return stk_err_set(err, STK_EINVAL, "repository %s does not exist", o->repo);
	rc = manifest_load(&s.old, o->state, err);
	if (rc == STK_ENOTFOUND)
		rc = 0;
	snprintf(s.new.repo, sizeof(s.new.repo), "%s", o->repo);
	/* 1. What the plan asks for, and the safety rules, before anything is touched. */
	if (!rc)
		rc = collect(&s, err);
	while (!rc && (e = stk_map_next(&s.want, &it))) {
		keys = stk_reallocarray(keys, nkeys + 1, sizeof(char *));
		keys[nkeys++] = e->key;
	}
	if (nkeys > 1)
		qsort(keys, nkeys, sizeof(char *), cmp_str);
	if (!rc)
		index_want_dirs(&s);
	for (size_t i = 0; !rc && i < nkeys; i++) {
		struct want *w = stk_map_get(&s.want, keys[i]);
		rc = check_parents(&s, keys[i], err);
		if (!rc && !strcmp(base_name(keys[i]), "config.json"))
			rc = validate_config(w, keys[i], err);
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
	for (size_t i = 0; !rc && i < nkeys; i++) {
		struct want *w = stk_map_get(&s.want, keys[i]);
		rc = compare(&s, keys[i], w, err);
		if (rc)
			break;
		if (w->action == W_ADD)
			paths_add(&res->added, keys[i]);
		else if (w->action == W_MODIFY)
			paths_add(&res->modified, keys[i]);
		else
			res->unchanged++;
		if (w->action != W_SAME)
			note_project(res, keys[i]);
	}
	if (rc || o->dry_run) {
		if (!rc) {
			struct orphan_walk ow = {&s, false, 0, err};
			for (size_t i = 0; i < s.nroots; i++)
				orphans(&ow, s.roots[i], 0);
		}
		goto out;
	}
	/* 3. Merge: changed files, in batches made durable before their renames. */
	batch = stk_calloc(ENG_BATCH_FILES, sizeof(char *));
	for (size_t i = 0; !rc && i < nkeys; i++) {
		struct want *w = stk_map_get(&s.want, keys[i]);
		if (w->action == W_SAME)
			continue;
		if (o->stop && *o->stop) {
			rc = flush_batch(&s, batch, nbatch, err);
			nbatch = 0;
			if (!rc)
				rc = stk_err_set(err, STK_ECANCELED, "stopped");
			break;
		}
		rc = write_temp(&s, keys[i], w, err);
		if (rc)
			break;
		batch[nbatch++] = keys[i];
		batch_bytes += (size_t)w->st.size;
		if (nbatch == ENG_BATCH_FILES || batch_bytes >= ENG_BATCH_BYTES) {
			rc = flush_batch(&s, batch, nbatch, err);
			nbatch = 0;
			batch_bytes = 0;
		}
	}
	if (!rc)
		rc = flush_batch(&s, batch, nbatch, err);
	else
		for (size_t i = 0; i < nbatch; i++) {
			struct want *w = stk_map_get(&s.want, batch[i]);
			if (w->tmp)
				unlink(w->tmp);
		}
	/* 4. Orphans under managed roots, then the directories left empty. */
	if (!rc) {
		struct orphan_walk ow = {&s, true, 0, err};
		for (size_t i = 0; i < s.nroots; i++)
			orphans(&ow, s.roots[i], 0);
		rc = ow.rc;
	}
	/*
	 * Fix: the orphan walk removes leftover temporary files only under managed roots. A
	 * run killed before renaming a file outside them (a root-level file mapping) left
	 * its temporary file for good when the next run found that file unchanged.
	 */
	for (size_t i = 0; !rc && i < nkeys; i++) {
		struct want *w = stk_map_get(&s.want, keys[i]);
		char tmp[ENG_PATH_MAX];
		if (w->action == W_SAME && !managed(&s, keys[i]) &&
		    !tmp_name(tmp, &s, keys[i], NULL))
			unlink(tmp); /* mostly ENOENT */
	}
	/* 5. Durability of the names, and the manifest for the next run. */
	if (!rc) {
		char abs[ENG_PATH_MAX];
		stk_map dirs = STK_MAP_INIT;
		for (size_t i = 0; i < nkeys; i++) {
			struct want *w = stk_map_get(&s.want, keys[i]);
			const char *slash = strrchr(keys[i], '/');
			char d[ENG_PATH_MAX];
			if (w->action == W_SAME)
				continue;
			snprintf(d, sizeof(d), "%.*s", slash ? (int)(slash - keys[i]) : 0, keys[i]);
			stk_map_put(&dirs, d, (void *)1);
		}
		it = (struct stk_map_iter){0};
		while ((e = stk_map_next(&dirs, &it)))
			if (!join(abs, o->data, e->key, err))
				fsync_dir(abs);
		stk_map_release(&dirs);
		for (size_t i = 0; i < s.nroots; i++) {
			s.new.roots =
				stk_reallocarray(s.new.roots, s.new.nroots + 1, sizeof(char *));
			s.new.roots[s.new.nroots++] = stk_strdup(s.roots[i]);
		}
		for (size_t i = 0; i < o->plan->nexcludes; i++)
			strv_add(&s.new.excludes, &s.new.nexcludes, o->plan->excludes[i]);
		/* A no-op sync leaves the manifest as it was: no rewrite, no fsync. */
		if (!manifest_same(&s.old, &s.new, s.moved))
			rc = manifest_save(&s.new, o->state, err);
	}
out:
	res->seconds = now_s() - t0;
	free(keys);
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
