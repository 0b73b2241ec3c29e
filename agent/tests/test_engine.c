/*
 * The sync engine (engine.h) against real trees: each case builds a small repository and
 * data directory under a mkdtemp directory, builds a plan with agent_plan_build and runs
 * agent_sync / agent_drift, then looks at the files a gateway would see.
 */
/* nftw, mkdtemp, lstat's st_mtim */
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
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "engine.h"
#include "stk/alloc.h"
#include "stk/api/api.h"
#include "stk/json.h"

#define T_PATH 4096

struct fx {
	char root[256];
	char repo[T_PATH], data[T_PATH], state[T_PATH], out[T_PATH];
	struct stk_syncprofile_spec spec;
	struct agent_plan plan;
	bool have_plan;
};

/* ---- files ------------------------------------------------------------------------------ */

static void path_of(char *out, const char *dir, const char *rel)
{
	int n = snprintf(out, T_PATH, "%s/%s", dir, rel);

	assert_true(n > 0 && n < T_PATH);
}

static void mkdir_p(const char *dir, const char *rel)
{
	char p[T_PATH];

	path_of(p, dir, rel);
	for (char *s = p + strlen(dir) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		if (mkdir(p, 0755) && errno != EEXIST)
			fail_msg("mkdir %s: %s", p, strerror(errno));
		*s = '/';
	}
	if (mkdir(p, 0755) && errno != EEXIST)
		fail_msg("mkdir %s: %s", p, strerror(errno));
}

static void put_mode(const char *dir, const char *rel, const char *content, mode_t mode)
{
	char p[T_PATH];
	const char *slash = strrchr(rel, '/');
	FILE *f;

	if (slash) {
		char parent[T_PATH];
		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - rel), rel);
		mkdir_p(dir, parent);
	}
	path_of(p, dir, rel);
	f = fopen(p, "we");
	if (!f)
		fail_msg("create %s: %s", p, strerror(errno));
	fputs(content, f);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
}

static void put(const char *dir, const char *rel, const char *content)
{
	put_mode(dir, rel, content, 0644);
}

static void link_at(const char *dir, const char *rel, const char *target)
{
	char p[T_PATH];

	path_of(p, dir, rel);
	assert_int_equal(symlink(target, p), 0);
}

/* The content of dir/rel (caller frees), or NULL when it is not a regular file. */
static char *slurp(const char *dir, const char *rel)
{
	char p[T_PATH];
	struct stat st;
	char *buf;
	FILE *f;
	size_t n;

	path_of(p, dir, rel);
	if (lstat(p, &st) || !S_ISREG(st.st_mode))
		return NULL;
	f = fopen(p, "re");
	assert_non_null(f);
	buf = calloc(1, (size_t)st.st_size + 1);
	n = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	assert_int_equal(n, (size_t)st.st_size);
	return buf;
}

static void expect_file(const char *dir, const char *rel, const char *content)
{
	char *got = slurp(dir, rel);

	if (!got)
		fail_msg("%s/%s: not a regular file", dir, rel);
	if (strcmp(got, content))
		fail_msg("%s/%s: '%s', expected '%s'", dir, rel, got, content);
	free(got);
}

static bool exists(const char *dir, const char *rel)
{
	char p[T_PATH];
	struct stat st;

	path_of(p, dir, rel);
	return lstat(p, &st) == 0;
}

static bool is_dir(const char *dir, const char *rel)
{
	char p[T_PATH];
	struct stat st;

	path_of(p, dir, rel);
	return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static struct stat stat_of(const char *dir, const char *rel)
{
	char p[T_PATH];
	struct stat st;

	path_of(p, dir, rel);
	if (lstat(p, &st))
		fail_msg("stat %s: %s", p, strerror(errno));
	return st;
}

static void rm_at(const char *dir, const char *rel)
{
	char p[T_PATH];

	path_of(p, dir, rel);
	if (unlink(p))
		fail_msg("unlink %s: %s", p, strerror(errno));
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void rm_rf(const char *p)
{
	nftw(p, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

/*
 * A byte-for-byte picture of a tree: every entry (sorted) with its type and mode, the
 * content of every file and the target of every link.
 */
static void snap_dir(stk_buf *b, const char *dir, const char *rel)
{
	char p[T_PATH];
	struct dirent **ents;
	int n;

	snprintf(p, sizeof(p), "%s%s%s", dir, *rel ? "/" : "", rel);
	n = scandir(p, &ents, NULL, alphasort);
	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		char child[T_PATH], cabs[T_PATH], target[T_PATH];
		struct stat st;
		const char *name = ents[i]->d_name;
		if (strcmp(name, ".") && strcmp(name, "..")) {
			snprintf(child, sizeof(child), "%s%s%s", rel, *rel ? "/" : "", name);
			path_of(cabs, dir, child);
			assert_int_equal(lstat(cabs, &st), 0);
			stk_buf_printf(b, "%s %o %lld\n", child, (unsigned)st.st_mode,
				       (long long)st.st_size);
			if (S_ISDIR(st.st_mode)) {
				snap_dir(b, dir, child);
			} else if (S_ISLNK(st.st_mode)) {
				ssize_t len = readlink(cabs, target, sizeof(target) - 1);
				assert_true(len >= 0);
				target[len] = '\0';
				stk_buf_printf(b, "-> %s\n", target);
			} else {
				char *c = slurp(dir, child);
				stk_buf_printf(b, "[%s]\n", c);
				free(c);
			}
		}
		free(ents[i]);
	}
	free(ents);
}

static char *snapshot(const char *dir)
{
	stk_buf b = STK_BUF_INIT(1 << 24);

	char *s;

	snap_dir(&b, dir, "");
	s = stk_buf_detach(&b, NULL);
	return s ? s : stk_strdup("");
}

static void expect_same_tree(const char *dir, const char *before)
{
	char *after = snapshot(dir);

	if (strcmp(before, after))
		fail_msg("%s changed:\n--- before\n%s--- after\n%s", dir, before, after);
	free(after);
}

static void expect_contains(const char *text, const char *part)
{
	if (!strstr(text, part))
		fail_msg("'%s' does not mention '%s'", text, part);
}

static bool paths_have(const struct agent_paths *ps, const char *p)
{
	for (size_t i = 0; i < ps->len; i++)
		if (!strcmp(ps->items[i], p))
			return true;
	return false;
}

/* ---- the fixture ------------------------------------------------------------------------ */

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->root, sizeof(f->root), "/tmp/stk-test-engine.XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	snprintf(f->repo, sizeof(f->repo), "%s/repo", f->root);
	snprintf(f->data, sizeof(f->data), "%s/data", f->root);
	snprintf(f->state, sizeof(f->state), "%s/state", f->root);
	snprintf(f->out, sizeof(f->out), "%s/outside", f->root);
	if (mkdir(f->repo, 0755) || mkdir(f->data, 0755) || mkdir(f->out, 0755))
		return -1;
	*state = f;
	return 0;
}

static void fx_plan_release(struct fx *f)
{
	if (f->have_plan)
		agent_plan_release(&f->plan);
	f->have_plan = false;
	stk_api_release(&stk_api_syncprofile_spec_type, &f->spec);
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	fx_plan_release(f);
	rm_rf(f->root);
	free(f);
	return 0;
}

static const char *const test_labels[] = {"area", "north", "app.kubernetes.io/part-of", "plant",
					  NULL};

static const char *label_of(const char *key, void *arg)
{
	(void)arg;
	for (size_t i = 0; test_labels[i]; i += 2)
		if (!strcmp(test_labels[i], key))
			return test_labels[i + 1];
	return NULL;
}

static const char *var_of(const char *name, void *arg)
{
	const struct stk_syncprofile_spec *spec = arg;

	for (size_t i = 0; i < spec->vars.len; i++)
		if (!strcmp(spec->vars.keys[i], name))
			return spec->vars.values[i];
	return NULL;
}

struct excl {
	const char *const *stoker;
	size_t nstoker;
	const char *const *pod;
	size_t npod;
};

/*
 * Builds f->plan from a SyncProfile spec in JSON (NULL for 2-tier mode with service_path),
 * the way the agent does: decode, default, then agent_plan_build.
 */
static int fx_plan_ex(struct fx *f, const char *spec_json, const char *service_path,
		      const struct excl *ex, stk_err *err)
{
	struct stk_template_vars tv = {"gw-0", "gw-0",	 "0",	   "site1", "plant",
				       "main", "abc123", label_of, var_of,  &f->spec};
	yajl_val v = NULL;
	int rc;

	fx_plan_release(f);
	if (spec_json) {
		stk_err e = STK_ERR_INIT;
		if (stk_json_parse(&v, spec_json, strlen(spec_json), 1 << 20, &e))
			fail_msg("bad test spec: %s", e.message);
		assert_int_equal(
			stk_api_decode(&stk_api_syncprofile_spec_type, &f->spec, v, "spec", &e), 0);
		stk_api_default(&stk_api_syncprofile_spec_type, &f->spec);
		yajl_tree_free(v);
	}
	rc = agent_plan_build(&f->plan, spec_json ? &f->spec : NULL, service_path, &tv,
			      ex ? ex->stoker : NULL, ex ? ex->nstoker : 0, ex ? ex->pod : NULL,
			      ex ? ex->npod : 0, err);
	f->have_plan = rc == 0;
	return rc;
}

static void fx_plan(struct fx *f, const char *spec_json, const char *service_path)
{
	stk_err err = STK_ERR_INIT;

	if (fx_plan_ex(f, spec_json, service_path, NULL, &err))
		fail_msg("plan: %s", err.message);
}

static int fx_sync_ex(struct fx *f, const char *repo, bool dry_run,
		      const volatile sig_atomic_t *stop, struct agent_result *res, stk_err *err)
{
	struct agent_sync_opts o;

	memset(&o, 0, sizeof(o));
	o.repo = repo ? repo : f->repo;
	o.data = f->data;
	o.state = f->state;
	o.dry_run = dry_run;
	o.plan = &f->plan;
	o.stop = stop;
	return agent_sync(&o, res, err);
}

/* A sync expected to succeed; the result is released unless the caller wants it. */
static void fx_sync(struct fx *f, struct agent_result *keep)
{
	struct agent_result res;
	stk_err err = STK_ERR_INIT;

	if (fx_sync_ex(f, NULL, false, NULL, &res, &err))
		fail_msg("sync: %s", err.message);
	if (keep)
		*keep = res;
	else
		agent_result_release(&res);
}

/* A sync expected to fail with `code`; returns the message (static storage). */
static const char *fx_sync_fails(struct fx *f, int code)
{
	static stk_err err;
	struct agent_result res;
	int rc;

	stk_err_clear(&err);
	rc = fx_sync_ex(f, NULL, false, NULL, &res, &err);
	agent_result_release(&res);
	if (rc != code)
		fail_msg("sync returned %d (%s), expected %d", rc, err.message, code);
	return err.message;
}

static bool manifest_exists(const struct fx *f)
{
	return exists(f->state, "manifest");
}

/* ---- mappings ----------------------------------------------------------------------------- */

static void test_engine__later_mapping_overlays_earlier(void **state)
{
	struct fx *f = *state;
	struct agent_result res;

	put(f->repo, "base/p/a.txt", "base-a");
	put(f->repo, "base/p/b.txt", "base-b");
	put(f->repo, "site/p/a.txt", "site-a");
	put(f->repo, "site/p/c.txt", "site-c");
	fx_plan(f,
		"{\"mappings\":[{\"source\":\"base\",\"destination\":\"projects\"},"
		"{\"source\":\"site\",\"destination\":\"projects\"}]}",
		NULL);
	fx_sync(f, &res);
	expect_file(f->data, "projects/p/a.txt", "site-a");
	expect_file(f->data, "projects/p/b.txt", "base-b");
	expect_file(f->data, "projects/p/c.txt", "site-c");
	assert_int_equal(res.added.count, 3);
	assert_true(paths_have(&res.projects, "p"));
	agent_result_release(&res);

	/* The same mappings the other way round: now base's a.txt wins. */
	fx_plan(f,
		"{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"},"
		"{\"source\":\"base\",\"destination\":\"projects\"}]}",
		NULL);
	fx_sync(f, &res);
	expect_file(f->data, "projects/p/a.txt", "base-a");
	assert_int_equal(res.modified.count, 1);
	assert_true(paths_have(&res.modified, "projects/p/a.txt"));
	assert_int_equal(res.unchanged, 2);
	agent_result_release(&res);
}

static void test_engine__file_mapping(void **state)
{
	struct fx *f = *state;
	struct agent_result res;

	put(f->repo, "files/gateway.xml", "<gw/>");
	put(f->repo, "files/other.xml", "<other/>");
	put(f->repo, "cfg/core/a.json", "{\"from\":\"dir\"}");
	put(f->repo, "alt/a.json", "{\"from\":\"file\"}");
	fx_plan(f,
		"{\"mappings\":[{\"source\":\"files/gateway.xml\",\"destination\":\"config/"
		"gw.xml\","
		"\"type\":\"file\"},"
		"{\"source\":\"cfg\",\"destination\":\"config/resources\"},"
		"{\"source\":\"alt/a.json\",\"destination\":\"config/resources/core/a.json\","
		"\"type\":\"file\"}]}",
		NULL);
	fx_sync(f, &res);
	expect_file(f->data, "config/gw.xml", "<gw/>");
	assert_false(exists(f->data, "config/other.xml"));
	assert_false(exists(f->data, "config/gateway.xml"));
	/* A file mapping after a dir mapping replaces one file of it. */
	expect_file(f->data, "config/resources/core/a.json", "{\"from\":\"file\"}");
	assert_int_equal(res.added.count, 2);
	agent_result_release(&res);
}

static void test_engine__required_source_missing_changes_nothing(void **state)
{
	struct fx *f = *state;
	char *before;
	const char *msg;

	put(f->repo, "site/p/a.txt", "new");
	put(f->data, "projects/p/a.txt", "old");
	put(f->data, "projects/p/orphan.txt", "would be deleted");
	before = snapshot(f->data);
	fx_plan(f,
		"{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"},"
		"{\"source\":\"tags/missing\",\"destination\":\"tags\",\"required\":true}]}",
		NULL);
	msg = fx_sync_fails(f, STK_ENOTFOUND);
	expect_contains(msg, "tags/missing");
	expect_same_tree(f->data, before);
	assert_false(manifest_exists(f));
	free(before);
}

static void test_engine__optional_source_missing_is_skipped(void **state)
{
	struct fx *f = *state;
	struct agent_result res;
	stk_buf json = STK_BUF_INIT(1 << 20);

	put(f->repo, "site/p/a.txt", "a");
	fx_plan(f,
		"{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"},"
		"{\"source\":\"extras\",\"destination\":\"extras\"},"
		"{\"source\":\"files/opt.xml\",\"destination\":\"opt.xml\",\"type\":\"file\","
		"\"required\":false}]}",
		NULL);
	fx_sync(f, &res);
	expect_file(f->data, "projects/p/a.txt", "a");
	assert_false(exists(f->data, "extras"));
	assert_false(exists(f->data, "opt.xml"));
	assert_int_equal(res.skipped.count, 2);
	assert_true(paths_have(&res.skipped, "extras"));
	assert_true(paths_have(&res.skipped, "files/opt.xml"));
	agent_result_json(&res, &json);
	expect_contains(json.ptr, "\"skipped\":[\"extras\",\"files/opt.xml\"]");
	expect_contains(json.ptr, "\"filesAdded\":1");
	expect_contains(json.ptr, "\"projectsSynced\":[\"p\"]");
	stk_buf_release(&json);
	agent_result_release(&res);
}

static void test_engine__templates_expand(void **state)
{
	struct fx *f = *state;

	put(f->repo, "sites/gw-0/p/a.txt", "gw");
	put(f->repo, "areas/north/t.json", "{}");
	put(f->repo, "shared/plant/x.txt", "x");
	fx_plan(f,
		"{\"vars\":{\"proj\":\"main-proj\"},\"mappings\":["
		"{\"source\":\"sites/{{.GatewayName}}\",\"destination\":\"projects/"
		"{{.Vars.proj}}\"},"
		"{\"source\":\"areas/{{ .Labels.area }}\","
		"\"destination\":\"config/{{.Namespace}}-{{.PodOrdinal}}\"},"
		"{\"source\":\"shared/{{index .Labels \\\"app.kubernetes.io/part-of\\\"}}/x.txt\","
		"\"destination\":\"x-{{.Commit}}-{{.Ref}}.txt\",\"type\":\"file\"}]}",
		NULL);
	assert_string_equal(f->plan.maps[0].source, "sites/gw-0");
	assert_string_equal(f->plan.maps[0].dest, "projects/main-proj");
	fx_sync(f, NULL);
	expect_file(f->data, "projects/main-proj/p/a.txt", "gw");
	expect_file(f->data, "config/site1-0/t.json", "{}");
	expect_file(f->data, "x-abc123-main.txt", "x");
}

static void test_engine__unknown_template_variable_names_it(void **state)
{
	struct fx *f = *state;
	stk_err err = STK_ERR_INIT;

	assert_int_equal(fx_plan_ex(f,
				    "{\"mappings\":[{\"source\":\"a\",\"destination\":\"a\"},"
				    "{\"source\":\"b/{{.Vars.nope}}\",\"destination\":\"b\"}]}",
				    NULL, NULL, &err),
			 STK_EINVAL);
	expect_contains(err.message, "spec.mappings[1].source");
	expect_contains(err.message, "nope");
	assert_false(f->have_plan);

	assert_int_equal(fx_plan_ex(f,
				    "{\"mappings\":[{\"source\":\"a\","
				    "\"destination\":\"p/{{.Labels.missing}}\"}]}",
				    NULL, NULL, &err),
			 STK_EINVAL);
	expect_contains(err.message, "spec.mappings[0].destination");
	expect_contains(err.message, "missing");

	assert_int_equal(fx_plan_ex(f,
				    "{\"mappings\":[{\"source\":\"{{.Hostname}}\","
				    "\"destination\":\"p\"}]}",
				    NULL, NULL, &err),
			 STK_EINVAL);
	expect_contains(err.message, "spec.mappings[0].source");
	expect_contains(err.message, "Hostname");
}

/* ---- excludes ------------------------------------------------------------------------------- */

static void test_engine__excludes_from_every_tier(void **state)
{
	struct fx *f = *state;
	const char *stoker[] = {"**/*.tmp"};
	const char *pod[] = {"**/secret.txt", "site/p/by-repo-path.txt"};
	struct excl ex = {stoker, 1, pod, 2};
	stk_err err = STK_ERR_INIT;

	put(f->repo, "site/p/a.txt", "a");
	put(f->repo, "site/p/b.log", "profile tier");
	put(f->repo, "site/p/deep/d.log", "profile tier");
	put(f->repo, "site/p/c.tmp", "stoker tier");
	put(f->repo, "site/p/secret.txt", "annotation tier");
	put(f->repo, "site/p/by-repo-path.txt", "annotation tier, repository path");
	put(f->repo, "site/p/by-data-path.txt", "profile tier, data path");
	put(f->data, "projects/p/keep.log", "excluded, so never deleted");
	put(f->data, "projects/p/old.txt", "orphan");
	assert_int_equal(
		fx_plan_ex(f,
			   "{\"excludePatterns\":[\"**/*.log\","
			   "\"projects/p/by-data-path.txt\"],"
			   "\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"}]}",
			   NULL, &ex, &err),
		0);
	fx_sync(f, NULL);
	expect_file(f->data, "projects/p/a.txt", "a");
	assert_false(exists(f->data, "projects/p/b.log"));
	assert_false(exists(f->data, "projects/p/deep"));
	assert_false(exists(f->data, "projects/p/c.tmp"));
	assert_false(exists(f->data, "projects/p/secret.txt"));
	assert_false(exists(f->data, "projects/p/by-repo-path.txt"));
	assert_false(exists(f->data, "projects/p/by-data-path.txt"));
	expect_file(f->data, "projects/p/keep.log", "excluded, so never deleted");
	assert_false(exists(f->data, "projects/p/old.txt"));
}

static void test_engine__mandatory_excludes(void **state)
{
	struct fx *f = *state;
	struct agent_result res;

	put(f->repo, "site/p/a.txt", "a");
	put(f->repo, "site/.git/config", "[core]");
	put(f->repo, "site/p/.git/HEAD", "ref: x");
	put(f->repo, "site/.sync-staging/x", "staging");
	put(f->repo, "site/p/.sync-staging/y", "staging");
	put(f->repo, "site/p/.resources/r.bin", "cache");
	put(f->data, "projects/.git/keep", "live git");
	put(f->data, "projects/p/.sync-staging/keep", "live staging");
	fx_plan(f, "{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"}]}", NULL);
	for (const char *m = "**/.resources/**\0**/.git/**\0**/.sync-staging/**\0"; *m;
	     m += strlen(m) + 1) {
		bool found = false;
		for (size_t i = 0; i < f->plan.nexcludes; i++)
			found = found || !strcmp(f->plan.excludes[i], m);
		assert_true(found);
	}
	fx_sync(f, &res);
	assert_int_equal(res.added.count, 1);
	assert_int_equal(res.deleted.count, 0);
	expect_file(f->data, "projects/p/a.txt", "a");
	assert_false(exists(f->data, "projects/config"));
	assert_false(exists(f->data, "projects/p/.git/HEAD"));
	assert_false(exists(f->data, "projects/.sync-staging/x"));
	assert_false(exists(f->data, "projects/p/.sync-staging/y"));
	assert_false(exists(f->data, "projects/p/.resources/r.bin"));
	expect_file(f->data, "projects/.git/keep", "live git");
	expect_file(f->data, "projects/p/.sync-staging/keep", "live staging");
	agent_result_release(&res);
}

static void test_engine__every_glob_form_excludes(void **state)
{
	struct fx *f = *state;
	const char *pod[] = {"projects/*.bak",	     "projects/a?.txt",	       "projects/k[12].cfg",
			     "projects/n[!0-8].cfg", "projects/img.{jpg,png}", "**/*.swp",
			     "projects/**/cache/"};
	struct excl ex = {NULL, 0, pod, sizeof(pod) / sizeof(pod[0])};
	stk_err err = STK_ERR_INIT;
	const char *gone[] = {"x.bak",	 "a1.txt",    "ab.txt",	    "k1.cfg",  "k2.cfg",
			      "n9.cfg",	 "img.jpg",   "img.png",    "top.swp", "deep/er/z.swp",
			      "cache/c", "q/cache/c", "q/r/cache/c"};
	const char *kept[] = {"sub/y.bak", "abc.txt", "a.txt",	  "k3.cfg",	"n1.cfg",
			      "img.gif",   "swp.txt", "cachex/c", "q/cache.txt"};
	char rel[256];

	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
		snprintf(rel, sizeof(rel), "site/%s", gone[i]);
		put(f->repo, rel, "excluded");
	}
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		snprintf(rel, sizeof(rel), "site/%s", kept[i]);
		put(f->repo, rel, "kept");
	}
	assert_int_equal(
		fx_plan_ex(f, "{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"}]}",
			   NULL, &ex, &err),
		0);
	fx_sync(f, NULL);
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
		snprintf(rel, sizeof(rel), "projects/%s", gone[i]);
		if (exists(f->data, rel))
			fail_msg("%s was not excluded", rel);
	}
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		snprintf(rel, sizeof(rel), "projects/%s", kept[i]);
		expect_file(f->data, rel, "kept");
	}
}

static void test_engine__malformed_exclude_names_its_tier(void **state)
{
	struct fx *f = *state;
	const char *bad_stoker[] = {"[z-a]"};
	const char *bad_pod[] = {"ok/*", "{a,b"};
	struct excl ex1 = {bad_stoker, 1, NULL, 0};
	struct excl ex2 = {NULL, 0, bad_pod, 2};
	stk_err err = STK_ERR_INIT;
	const char *spec = "{\"mappings\":[{\"source\":\"s\",\"destination\":\"d\"}]}";

	assert_int_equal(fx_plan_ex(f, spec, NULL, &ex1, &err), STK_EINVAL);
	expect_contains(err.message, "Stoker");
	expect_contains(err.message, "[z-a]");
	assert_int_equal(fx_plan_ex(f, spec, NULL, &ex2, &err), STK_EINVAL);
	expect_contains(err.message, "annotation");
	expect_contains(err.message, "{a,b");
	assert_int_equal(
		fx_plan_ex(f,
			   "{\"excludePatterns\":[\"a//b\"],\"mappings\":[{\"source\":\"s\","
			   "\"destination\":\"d\"}]}",
			   NULL, NULL, &err),
		STK_EINVAL);
	expect_contains(err.message, "SyncProfile");
	expect_contains(err.message, "a//b");
}

/* ---- deployment mode ------------------------------------------------------------------------ */

static void test_engine__deployment_mode_overlays_last(void **state)
{
	struct fx *f = *state;
	struct agent_result res;

	put(f->repo, "config/resources/core/a.json", "{\"v\":\"base\"}");
	put(f->repo, "config/resources/core/b.json", "{\"v\":\"base\"}");
	put(f->repo, "late/a.json", "{\"v\":\"late\"}");
	put(f->repo, "modes/prod/a.json", "{\"v\":\"prod\"}");
	put(f->repo, "modes/prod/sub/new.json", "{\"v\":\"prod\"}");
	fx_plan(f,
		"{\"deploymentMode\":{\"name\":\"prod\",\"source\":\"modes/prod\"},"
		"\"mappings\":[{\"source\":\"config\",\"destination\":\"config\"},"
		"{\"source\":\"late\",\"destination\":\"config/resources/core\"}]}",
		NULL);
	assert_int_equal(f->plan.nmaps, 3);
	assert_true(f->plan.maps[2].overlay);
	assert_string_equal(f->plan.maps[2].dest, "config/resources/core");
	fx_sync(f, &res);
	/* After every mapping, even one listed later onto the same directory. */
	expect_file(f->data, "config/resources/core/a.json", "{\"v\":\"prod\"}");
	expect_file(f->data, "config/resources/core/b.json", "{\"v\":\"base\"}");
	expect_file(f->data, "config/resources/core/sub/new.json", "{\"v\":\"prod\"}");
	assert_int_equal(res.added.count, 3);
	agent_result_release(&res);
}

static void test_engine__deployment_mode_deletes_nothing(void **state)
{
	struct fx *f = *state;
	struct agent_result res;

	put(f->repo, "site/p/a.txt", "a");
	put(f->repo, "modes/dev/gateway.json", "{\"mode\":\"dev\"}");
	put(f->data, "config/resources/core/local.json", "{\"local\":true}");
	put(f->data, "config/resources/core/sub/other.txt", "other");
	put(f->data, "config/resources/core/gateway.json", "{\"mode\":\"old\"}");
	fx_plan(f,
		"{\"deploymentMode\":{\"name\":\"dev\",\"source\":\"modes/dev\"},"
		"\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"}]}",
		NULL);
	fx_sync(f, &res);
	expect_file(f->data, "config/resources/core/gateway.json", "{\"mode\":\"dev\"}");
	expect_file(f->data, "config/resources/core/local.json", "{\"local\":true}");
	expect_file(f->data, "config/resources/core/sub/other.txt", "other");
	assert_int_equal(res.deleted.count, 0);
	assert_int_equal(res.modified.count, 1);
	agent_result_release(&res);
}

/* ---- orphans and managed roots -------------------------------------------------------------- */

static void test_engine__orphans_deleted_only_under_managed_roots(void **state)
{
	struct fx *f = *state;
	struct agent_result res;

	put(f->repo, "site/p/a.txt", "a");
	mkdir_p(f->repo, "empty");
	put(f->data, "projects/p/orphan.txt", "orphan");
	put(f->data, "projects/gone/deep/x.txt", "orphan in a directory left empty");
	put(f->data, "tags/old.json", "orphan under an empty source");
	put(f->data, "config/unmanaged.txt", "not under a managed root");
	put(f->data, "top.txt", "not under a managed root");
	fx_plan(f,
		"{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"},"
		"{\"source\":\"empty\",\"destination\":\"tags\"}]}",
		NULL);
	fx_sync(f, &res);
	expect_file(f->data, "projects/p/a.txt", "a");
	assert_false(exists(f->data, "projects/p/orphan.txt"));
	assert_false(exists(f->data, "projects/gone"));
	assert_false(exists(f->data, "tags/old.json"));
	assert_true(is_dir(f->data, "tags")); /* the managed root itself stays */
	expect_file(f->data, "config/unmanaged.txt", "not under a managed root");
	expect_file(f->data, "top.txt", "not under a managed root");
	assert_int_equal(res.deleted.count, 3);
	assert_true(paths_have(&res.deleted, "projects/gone/deep/x.txt"));
	agent_result_release(&res);
}

static void test_engine__root_file_mapping_leaves_data_root_alone(void **state)
{
	struct fx *f = *state;
	struct agent_result res;
	stk_err err = STK_ERR_INIT;

	put(f->repo, "docs/README.md", "v1");
	put(f->data, "other.txt", "unmanaged");
	put(f->data, "dir/x.txt", "unmanaged");
	fx_plan(f,
		"{\"mappings\":[{\"source\":\"docs/README.md\",\"destination\":\"README.md\","
		"\"type\":\"file\"}]}",
		NULL);
	fx_sync(f, NULL);
	put(f->repo, "docs/README.md", "v2");
	fx_sync(f, &res);
	assert_int_equal(res.modified.count, 1);
	assert_int_equal(res.deleted.count, 0);
	agent_result_release(&res);
	expect_file(f->data, "README.md", "v2");
	expect_file(f->data, "other.txt", "unmanaged");
	expect_file(f->data, "dir/x.txt", "unmanaged");
	/* Nor does drift count the unmanaged files as new. */
	assert_int_equal(agent_drift(f->data, f->state, &res, &err), 0);
	assert_int_equal(res.added.count, 0);
	assert_int_equal(res.unchanged, 1);
	agent_result_release(&res);
}

static void test_engine__nested_managed_roots(void **state)
{
	struct fx *f = *state;
	struct agent_result res;

	put(f->repo, "a/p1/x.txt", "x");
	put(f->repo, "a/shared/from-a.txt", "from a");
	put(f->repo, "b/s.txt", "s");
	put(f->data, "projects/shared/orphan.txt", "orphan");
	put(f->data, "projects/orphan2.txt", "orphan");
	fx_plan(f,
		"{\"mappings\":[{\"source\":\"a\",\"destination\":\"projects\"},"
		"{\"source\":\"b\",\"destination\":\"projects/shared\"}]}",
		NULL);
	fx_sync(f, &res);
	expect_file(f->data, "projects/p1/x.txt", "x");
	expect_file(f->data, "projects/shared/from-a.txt", "from a");
	expect_file(f->data, "projects/shared/s.txt", "s");
	assert_false(exists(f->data, "projects/shared/orphan.txt"));
	assert_false(exists(f->data, "projects/orphan2.txt"));
	assert_int_equal(res.deleted.count, 2);
	agent_result_release(&res);

	/* The next commit drops b/s.txt: the inner root loses it, the outer keeps its own. */
	rm_at(f->repo, "b/s.txt");
	fx_sync(f, &res);
	assert_false(exists(f->data, "projects/shared/s.txt"));
	expect_file(f->data, "projects/shared/from-a.txt", "from a");
	expect_file(f->data, "projects/p1/x.txt", "x");
	assert_int_equal(res.deleted.count, 1);
	assert_int_equal(res.unchanged, 2);
	agent_result_release(&res);
}

/* ---- .resources -------------------------------------------------------------------------------
 */

static void test_engine__resources_untouched(void **state)
{
	struct fx *f = *state;
	struct agent_result res;
	char *live_before, *live_p_before, path[T_PATH];
	stk_err err = STK_ERR_INIT;

	put(f->repo, "svc/.resources/evil.bin", "from git");
	put(f->repo, "svc/projects/p/.resources/cache.bin", "from git");
	put(f->repo, "svc/projects/p/view.json", "{}");
	/* Never read: a link in there would otherwise fail the sync. */
	link_at(f->repo, "svc/.resources/link", "/etc/passwd");
	put(f->data, ".resources/live.bin", "live");
	put(f->data, ".resources/sub/deep.bin", "live deep");
	put(f->data, "projects/p/.resources/live2.bin", "live2");
	path_of(path, f->data, "projects/p/.resources");
	live_before = snapshot(path);
	path_of(path, f->data, ".resources");
	live_p_before = snapshot(path);
	fx_plan(f, NULL, "svc");
	fx_sync(f, &res);
	expect_file(f->data, "projects/p/view.json", "{}");
	assert_false(exists(f->data, ".resources/evil.bin"));
	assert_false(exists(f->data, ".resources/link"));
	assert_false(exists(f->data, "projects/p/.resources/cache.bin"));
	expect_same_tree(path, live_p_before);
	path_of(path, f->data, "projects/p/.resources");
	expect_same_tree(path, live_before);
	assert_int_equal(res.added.count, 1);
	assert_int_equal(res.deleted.count, 0);
	agent_result_release(&res);

	/* The next commit drops project p: its files go, its .resources stays. */
	rm_at(f->repo, "svc/projects/p/view.json");
	fx_sync(f, &res);
	assert_false(exists(f->data, "projects/p/view.json"));
	expect_file(f->data, "projects/p/.resources/live2.bin", "live2");
	expect_file(f->data, ".resources/live.bin", "live");
	expect_file(f->data, ".resources/sub/deep.bin", "live deep");
	agent_result_release(&res);

	/* Drift does not report them either. */
	assert_int_equal(agent_drift(f->data, f->state, &res, &err), 0);
	assert_int_equal(res.added.count, 0);
	agent_result_release(&res);

	/* A mapping may not point into .resources. */
	fx_plan(f,
		"{\"mappings\":[{\"source\":\"svc/projects\","
		"\"destination\":\"projects/p/.resources\"}]}",
		NULL);
	expect_contains(fx_sync_fails(f, STK_EINVAL), ".resources");
	expect_file(f->data, "projects/p/.resources/live2.bin", "live2");
	free(live_before);
	free(live_p_before);
}

/* ---- unchanged files, dry run, drift -----------------------------------------------------------
 */

static void test_engine__unchanged_files_not_rewritten(void **state)
{
	struct fx *f = *state;
	struct agent_result res;
	const char *files[] = {"projects/p/a.txt", "projects/p/b.txt", "projects/q/c.txt"};
	struct stat before[3], st;
	char repo2[T_PATH];

	put(f->repo, "site/p/a.txt", "a");
	put(f->repo, "site/p/b.txt", "b");
	put(f->repo, "site/q/c.txt", "c");
	fx_plan(f, "{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"}]}", NULL);
	fx_sync(f, NULL);
	for (int i = 0; i < 3; i++)
		before[i] = stat_of(f->data, files[i]);
	usleep(20000); /* past the filesystem's timestamp granularity */
	fx_sync(f, &res);
	assert_int_equal(res.unchanged, 3);
	assert_int_equal(res.added.count + res.modified.count + res.deleted.count, 0);
	assert_int_equal(res.bytes_written, 0);
	agent_result_release(&res);
	for (int i = 0; i < 3; i++) {
		st = stat_of(f->data, files[i]);
		assert_int_equal(st.st_ino, before[i].st_ino);
		assert_int_equal(st.st_mtim.tv_sec, before[i].st_mtim.tv_sec);
		assert_int_equal(st.st_mtim.tv_nsec, before[i].st_mtim.tv_nsec);
	}

	/* Another checkout of the same content (new mtimes): compared by hash, not rewritten. */
	path_of(repo2, f->root, "repo2");
	assert_int_equal(mkdir(repo2, 0755), 0);
	put(repo2, "site/p/a.txt", "a");
	put(repo2, "site/p/b.txt", "b");
	put(repo2, "site/q/c.txt", "c");
	{
		stk_err err = STK_ERR_INIT;
		assert_int_equal(fx_sync_ex(f, repo2, false, NULL, &res, &err), 0);
	}
	assert_int_equal(res.unchanged, 3);
	assert_int_equal(res.added.count + res.modified.count + res.deleted.count, 0);
	agent_result_release(&res);
	for (int i = 0; i < 3; i++) {
		st = stat_of(f->data, files[i]);
		assert_int_equal(st.st_ino, before[i].st_ino);
		assert_int_equal(st.st_mtim.tv_nsec, before[i].st_mtim.tv_nsec);
	}

	/* A hand edit of the same size is noticed and undone. */
	put(f->data, "projects/p/a.txt", "A");
	fx_sync(f, &res);
	assert_int_equal(res.modified.count, 1);
	assert_true(paths_have(&res.modified, "projects/p/a.txt"));
	agent_result_release(&res);
	expect_file(f->data, "projects/p/a.txt", "a");
}

static void test_engine__dry_run_changes_nothing(void **state)
{
	struct fx *f = *state;
	struct agent_result res;
	stk_err err = STK_ERR_INIT;
	stk_buf json = STK_BUF_INIT(1 << 20);
	char *before;

	put(f->repo, "site/p/new.txt", "new");
	put(f->repo, "site/p/mod.txt", "modified");
	put(f->repo, "site/p/same.txt", "same");
	put(f->data, "projects/p/mod.txt", "original");
	put(f->data, "projects/p/same.txt", "same");
	put(f->data, "projects/p/orphan.txt", "orphan");
	put(f->data, "projects/old/o.txt", "orphan");
	before = snapshot(f->data);
	fx_plan(f, "{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"}]}", NULL);
	assert_int_equal(fx_sync_ex(f, NULL, true, NULL, &res, &err), 0);
	expect_same_tree(f->data, before);
	assert_false(manifest_exists(f));
	assert_true(res.dry_run);
	assert_int_equal(res.added.count, 1);
	assert_true(paths_have(&res.added, "projects/p/new.txt"));
	assert_int_equal(res.modified.count, 1);
	assert_true(paths_have(&res.modified, "projects/p/mod.txt"));
	assert_int_equal(res.deleted.count, 2);
	assert_true(paths_have(&res.deleted, "projects/p/orphan.txt"));
	assert_true(paths_have(&res.deleted, "projects/old/o.txt"));
	assert_int_equal(res.unchanged, 1);
	agent_result_json(&res, &json);
	expect_contains(json.ptr, "\"dryRun\":true");
	expect_contains(json.ptr, "\"filesChanged\":4");
	stk_buf_release(&json);
	agent_result_release(&res);

	/* The real sync does what the dry run said. */
	fx_sync(f, &res);
	assert_false(res.dry_run);
	assert_int_equal(res.added.count, 1);
	assert_int_equal(res.modified.count, 1);
	assert_int_equal(res.deleted.count, 2);
	agent_result_release(&res);
	assert_false(exists(f->data, "projects/old"));
	free(before);
}

static void test_engine__drift(void **state)
{
	struct fx *f = *state;
	struct agent_result res;
	stk_err err = STK_ERR_INIT;
	const char *stoker[] = {"**/*.log"};
	struct excl ex = {stoker, 1, NULL, 0};

	assert_int_equal(agent_drift(f->data, f->state, &res, &err), STK_ENOTFOUND);
	agent_result_release(&res);
	put(f->repo, "site/p/a.txt", "a");
	put(f->repo, "site/p/b.txt", "b");
	put(f->repo, "site/p/c.txt", "c");
	put(f->repo, "docs/README.md", "readme");
	assert_int_equal(
		fx_plan_ex(f,
			   "{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"},"
			   "{\"source\":\"docs/README.md\",\"destination\":\"README.md\","
			   "\"type\":\"file\"}]}",
			   NULL, &ex, &err),
		0);
	fx_sync(f, NULL);
	assert_int_equal(agent_drift(f->data, f->state, &res, &err), 0);
	assert_int_equal(res.added.count + res.modified.count + res.deleted.count, 0);
	assert_int_equal(res.unchanged, 4);
	agent_result_release(&res);

	put(f->data, "projects/p/a.txt", "hand-modified");
	rm_at(f->data, "projects/p/b.txt");
	put(f->data, "projects/p/new.txt", "new");
	put(f->data, "projects/q/n.txt", "new in a new directory");
	put(f->data, "unmanaged.txt", "outside the managed roots");
	put(f->data, "projects/p/debug.log", "excluded: never synced, so not drift");
	put(f->data, "projects/.git/HEAD", "excluded: never synced, so not drift");
	assert_int_equal(agent_drift(f->data, f->state, &res, &err), 0);
	assert_int_equal(res.modified.count, 1);
	assert_true(paths_have(&res.modified, "projects/p/a.txt"));
	assert_int_equal(res.deleted.count, 1);
	assert_true(paths_have(&res.deleted, "projects/p/b.txt"));
	assert_int_equal(res.added.count, 2);
	assert_true(paths_have(&res.added, "projects/p/new.txt"));
	assert_true(paths_have(&res.added, "projects/q/n.txt"));
	assert_int_equal(res.unchanged, 2);
	agent_result_release(&res);

	/* Drift only reads. */
	expect_file(f->data, "projects/p/a.txt", "hand-modified");
	expect_file(f->data, "projects/p/new.txt", "new");
}

/* ---- 2-tier mode, modes ------------------------------------------------------------------------
 */

static void test_engine__service_path_mode(void **state)
{
	struct fx *f = *state;
	struct agent_result res;
	stk_err err = STK_ERR_INIT;

	put(f->repo, "services/gw1/projects/p/a.txt", "a");
	put(f->repo, "services/gw1/config/resources/core/config.json", "{\"x\":1}");
	put(f->repo, "services/gw2/projects/p/other.txt", "other gateway");
	put(f->data, "stray.txt", "orphan at the data root");
	put(f->data, ".resources/keep.bin", "live");
	fx_plan(f, NULL, "services/gw1");
	assert_int_equal(f->plan.nmaps, 1);
	assert_string_equal(f->plan.maps[0].dest, "");
	fx_sync(f, &res);
	expect_file(f->data, "projects/p/a.txt", "a");
	expect_file(f->data, "config/resources/core/config.json", "{\"x\":1}");
	assert_false(exists(f->data, "projects/p/other.txt"));
	assert_false(exists(f->data, "stray.txt"));
	expect_file(f->data, ".resources/keep.bin", "live");
	assert_int_equal(res.added.count, 2);
	assert_int_equal(res.deleted.count, 1);
	agent_result_release(&res);

	/* A templated service path, and the errors of this mode. */
	fx_plan(f, NULL, "services/{{.GatewayName}}/");
	assert_string_equal(f->plan.maps[0].source, "services/gw-0");
	assert_int_equal(fx_plan_ex(f, NULL, "services/../../etc", NULL, &err), STK_EINVAL);
	expect_contains(err.message, "service-path");
	assert_int_equal(fx_plan_ex(f, NULL, NULL, NULL, &err), STK_EINVAL);
	assert_int_equal(fx_plan_ex(f, NULL, "/abs", NULL, &err), STK_EINVAL);
	expect_contains(err.message, "service-path");
}

static void test_engine__modes_follow_the_exec_bit(void **state)
{
	struct fx *f = *state;
	mode_t old;

	put_mode(f->repo, "site/plain.txt", "plain", 0600);
	put_mode(f->repo, "site/run.sh", "#!/bin/sh\n", 0700);
	put_mode(f->repo, "site/group-exec", "x", 0610);
	put_mode(f->repo, "site/wide.txt", "wide", 0666);
	put_mode(f->data, "projects/was-exec.txt", "old", 0755);
	put_mode(f->repo, "site/was-exec.txt", "new", 0644);
	fx_plan(f, "{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"}]}", NULL);
	old = umask(077); /* the modes must not depend on the umask */
	fx_sync(f, NULL);
	umask(old);
	assert_int_equal(stat_of(f->data, "projects/plain.txt").st_mode & 07777, 0644);
	assert_int_equal(stat_of(f->data, "projects/run.sh").st_mode & 07777, 0755);
	assert_int_equal(stat_of(f->data, "projects/group-exec").st_mode & 07777, 0755);
	assert_int_equal(stat_of(f->data, "projects/wide.txt").st_mode & 07777, 0644);
	assert_int_equal(stat_of(f->data, "projects/was-exec.txt").st_mode & 07777, 0644);
}

/* ---- hostile input --------------------------------------------------------------------------- */

static void test_engine__repo_symlink_refused(void **state)
{
	struct fx *f = *state;
	char *before;
	const char *msg;

	put(f->out, "secret", "outside the tree");
	put(f->repo, "site/p/a.txt", "a");
	put(f->repo, "site/p/z.txt", "z");
	link_at(f->repo, "site/p/evil", "../../../outside/secret");
	put(f->data, "projects/p/a.txt", "old");
	put(f->data, "projects/p/orphan.txt", "orphan");
	before = snapshot(f->data);
	fx_plan(f, "{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"}]}", NULL);
	msg = fx_sync_fails(f, STK_EINVAL);
	expect_contains(msg, "site/p/evil");
	expect_contains(msg, "symlink");
	expect_same_tree(f->data, before);
	assert_false(manifest_exists(f));

	/* A link inside the tree is refused too: links are never copied. */
	rm_at(f->repo, "site/p/evil");
	link_at(f->repo, "site/p/evil", "a.txt");
	msg = fx_sync_fails(f, STK_EINVAL);
	expect_contains(msg, "site/p/evil");
	expect_same_tree(f->data, before);

	/* The mapping's source itself, and a directory on the way to it. */
	link_at(f->repo, "linked", "site");
	fx_plan(f, "{\"mappings\":[{\"source\":\"linked\",\"destination\":\"projects\"}]}", NULL);
	expect_contains(fx_sync_fails(f, STK_EINVAL), "linked");
	put(f->out, "dir/p/a.txt", "outside the tree");
	link_at(f->repo, "out", "../outside");
	fx_plan(f, "{\"mappings\":[{\"source\":\"out/dir\",\"destination\":\"projects\"}]}", NULL);
	expect_contains(fx_sync_fails(f, STK_EINVAL), "out");
	fx_plan(f,
		"{\"mappings\":[{\"source\":\"out/secret\",\"destination\":\"s.txt\","
		"\"type\":\"file\"}]}",
		NULL);
	expect_contains(fx_sync_fails(f, STK_EINVAL), "out");
	expect_same_tree(f->data, before);
	free(before);
}

static void test_engine__unsafe_mapping_paths_refused(void **state)
{
	struct fx *f = *state;
	stk_err err = STK_ERR_INIT;

	assert_int_equal(
		fx_plan_ex(f, "{\"mappings\":[{\"source\":\"../etc\",\"destination\":\"x\"}]}",
			   NULL, NULL, &err),
		STK_EINVAL);
	expect_contains(err.message, "spec.mappings[0].source");
	assert_int_equal(fx_plan_ex(f,
				    "{\"mappings\":[{\"source\":\"a\",\"destination\":\"x\"},"
				    "{\"source\":\"b\",\"destination\":\"/etc\"}]}",
				    NULL, NULL, &err),
			 STK_EINVAL);
	expect_contains(err.message, "spec.mappings[1].destination");
	assert_int_equal(fx_plan_ex(f,
				    "{\"mappings\":[{\"source\":\"a\","
				    "\"destination\":\"projects/../../x\"}]}",
				    NULL, NULL, &err),
			 STK_EINVAL);
	expect_contains(err.message, "spec.mappings[0].destination");
	/* A value that expands to ".." is caught after expansion. */
	assert_int_equal(fx_plan_ex(f,
				    "{\"vars\":{\"up\":\"..\"},\"mappings\":[{\"source\":\"a\","
				    "\"destination\":\"{{.Vars.up}}/x\"}]}",
				    NULL, NULL, &err),
			 STK_EINVAL);
	expect_contains(err.message, "spec.mappings[0].destination");
	assert_int_equal(fx_plan_ex(f,
				    "{\"deploymentMode\":{\"name\":\"x\",\"source\":\"/modes/x\"},"
				    "\"mappings\":[{\"source\":\"a\",\"destination\":\"x\"}]}",
				    NULL, NULL, &err),
			 STK_EINVAL);
	expect_contains(err.message, "spec.deploymentMode.source");
	assert_int_equal(fx_plan_ex(f,
				    "{\"mappings\":[{\"source\":\"a.xml\",\"destination\":\"\","
				    "\"type\":\"file\"}]}",
				    NULL, NULL, &err),
			 STK_EINVAL);
	expect_contains(err.message, "spec.mappings[0].destination");
	/* Harmless spellings are normalised, not refused. */
	assert_int_equal(fx_plan_ex(f,
				    "{\"mappings\":[{\"source\":\"./a//b/\","
				    "\"destination\":\"projects/./x/\"}]}",
				    NULL, NULL, &err),
			 0);
	assert_string_equal(f->plan.maps[0].source, "a/b");
	assert_string_equal(f->plan.maps[0].dest, "projects/x");
}

static void test_engine__invalid_config_json_changes_nothing(void **state)
{
	struct fx *f = *state;
	char *before;
	const char *msg;

	put(f->repo, "svc/projects/p/a.txt", "new");
	put(f->repo, "svc/config/resources/core/ok/config.json", "{\"fine\": true}");
	put(f->repo, "svc/config/resources/core/config.json", "{\n  \"a\": 1,\n  \"b\": x\n}\n");
	put(f->data, "projects/p/a.txt", "old");
	put(f->data, "config/resources/core/config.json", "{\"valid\": \"before\"}");
	put(f->data, "orphan.txt", "orphan");
	before = snapshot(f->data);
	fx_plan(f, NULL, "svc");
	msg = fx_sync_fails(f, STK_EINVAL);
	expect_contains(msg, "config/resources/core/config.json");
	expect_contains(msg, "line 3");
	expect_same_tree(f->data, before);
	assert_false(manifest_exists(f));

	/* Truncated JSON: the position is the end of the file. */
	put(f->repo, "svc/config/resources/core/config.json", "{\"a\": [1, 2");
	msg = fx_sync_fails(f, STK_EINVAL);
	expect_contains(msg, "config/resources/core/config.json");
	expect_contains(msg, "line 1");
	expect_same_tree(f->data, before);

	/* Only files named config.json are parsed. */
	put(f->repo, "svc/config/resources/core/config.json", "{\"a\": 1}");
	put(f->repo, "svc/projects/p/notes.json", "not json at all");
	fx_sync(f, NULL);
	expect_file(f->data, "config/resources/core/config.json", "{\"a\": 1}");
	free(before);
}

static void test_engine__data_symlink_on_the_way_refused(void **state)
{
	struct fx *f = *state;
	char *outside, *before;
	const char *msg;

	put(f->repo, "site/p/a.txt", "a");
	mkdir_p(f->repo, "empty");
	put(f->out, "victim.txt", "outside the data directory");
	put(f->out, "p/victim2.txt", "outside the data directory");
	outside = snapshot(f->out);

	/* The managed root is a link. */
	link_at(f->data, "projects", "../outside");
	before = snapshot(f->data);
	fx_plan(f, "{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"}]}", NULL);
	msg = fx_sync_fails(f, STK_EINVAL);
	expect_contains(msg, "projects");
	expect_contains(msg, "symlink");
	expect_same_tree(f->out, outside);
	expect_same_tree(f->data, before);
	free(before);

	/* Even when no file goes through it: the orphan walk must not follow it. */
	fx_plan(f, "{\"mappings\":[{\"source\":\"empty\",\"destination\":\"projects\"}]}", NULL);
	expect_contains(fx_sync_fails(f, STK_EINVAL), "projects");
	expect_same_tree(f->out, outside);
	fx_plan(f, "{\"mappings\":[{\"source\":\"empty\",\"destination\":\"projects/sub\"}]}",
		NULL);
	expect_contains(fx_sync_fails(f, STK_EINVAL), "projects");
	expect_same_tree(f->out, outside);

	/* A link deeper down, on the way to a file. */
	rm_at(f->data, "projects");
	mkdir_p(f->data, "projects");
	link_at(f->data, "projects/p", "../../outside/p");
	before = snapshot(f->data);
	fx_plan(f, "{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"}]}", NULL);
	expect_contains(fx_sync_fails(f, STK_EINVAL), "projects/p");
	expect_same_tree(f->out, outside);
	expect_same_tree(f->data, before);
	free(before);

	/* A link on the way to a file mapping's destination. */
	link_at(f->data, "cfg", "../outside");
	fx_plan(f,
		"{\"mappings\":[{\"source\":\"site/p/a.txt\",\"destination\":\"cfg/victim.txt\","
		"\"type\":\"file\"}]}",
		NULL);
	expect_contains(fx_sync_fails(f, STK_EINVAL), "cfg");
	expect_same_tree(f->out, outside);
	free(outside);
}

static void test_engine__file_and_directory_swap(void **state)
{
	struct fx *f = *state;
	char a[T_PATH], b[T_PATH];
	stk_err err = STK_ERR_INIT;
	struct agent_result res;

	path_of(a, f->repo, "a");
	path_of(b, f->repo, "b");
	assert_int_equal(mkdir(a, 0755), 0);
	assert_int_equal(mkdir(b, 0755), 0);
	put(a, "site/p/x", "x is a file in A");
	put(a, "site/q/y/z.txt", "y is a directory in A");
	put(a, "site/keep.txt", "keep");
	put(b, "site/p/x/inner.txt", "x is a directory in B");
	put(b, "site/p/x/deeper/d.txt", "deeper");
	put(b, "site/q/y", "y is a file in B");
	put(b, "site/keep.txt", "keep");
	fx_plan(f, "{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"}]}", NULL);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(fx_sync_ex(f, a, false, NULL, &res, &err), 0);
		agent_result_release(&res);
		expect_file(f->data, "projects/p/x", "x is a file in A");
		expect_file(f->data, "projects/q/y/z.txt", "y is a directory in A");
		if (fx_sync_ex(f, b, false, NULL, &res, &err))
			fail_msg("sync to B: %s", err.message);
		agent_result_release(&res);
		expect_file(f->data, "projects/p/x/inner.txt", "x is a directory in B");
		expect_file(f->data, "projects/p/x/deeper/d.txt", "deeper");
		expect_file(f->data, "projects/q/y", "y is a file in B");
		expect_file(f->data, "projects/keep.txt", "keep");
	}
	/* A drift check after a swap finds nothing. */
	assert_int_equal(agent_drift(f->data, f->state, &res, &err), 0);
	assert_int_equal(res.added.count + res.modified.count + res.deleted.count, 0);
	agent_result_release(&res);
}

static void test_engine__shape_change_outside_managed_roots_refused(void **state)
{
	struct fx *f = *state;
	char *before;

	/* An unmanaged file where a file mapping needs a directory is not deleted. */
	put(f->repo, "files/f.txt", "f");
	put(f->data, "cfg", "an unmanaged file");
	before = snapshot(f->data);
	fx_plan(f,
		"{\"mappings\":[{\"source\":\"files/f.txt\",\"destination\":\"cfg/f.txt\","
		"\"type\":\"file\"}]}",
		NULL);
	expect_contains(fx_sync_fails(f, STK_EINVAL), "cfg");
	expect_same_tree(f->data, before);
	free(before);

	/* Nor is an unmanaged directory where a file mapping puts a file. */
	put(f->data, "README.md/notes.txt", "an unmanaged directory");
	put(f->repo, "docs/README.md", "readme");
	before = snapshot(f->data);
	fx_plan(f,
		"{\"mappings\":[{\"source\":\"docs/README.md\",\"destination\":\"README.md\","
		"\"type\":\"file\"}]}",
		NULL);
	expect_contains(fx_sync_fails(f, STK_EINVAL), "README.md");
	expect_same_tree(f->data, before);
	free(before);

	/* Under a managed root, a directory holding .resources is not replaced either. */
	put(f->repo, "site/p/x", "x is now a file");
	put(f->data, "projects/p/x/.resources/cache.bin", "live");
	before = snapshot(f->data);
	fx_plan(f, "{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"}]}", NULL);
	expect_contains(fx_sync_fails(f, STK_EINVAL), ".resources");
	expect_same_tree(f->data, before);
	free(before);
}

static void test_engine__file_and_directory_at_one_path_refused(void **state)
{
	struct fx *f = *state;
	char *before;
	const char *msg;

	put(f->repo, "site/p/a", "a file in the first mapping");
	put(f->repo, "files/b.txt", "b");
	before = snapshot(f->data);
	fx_plan(f,
		"{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"},"
		"{\"source\":\"files/b.txt\",\"destination\":\"projects/p/a/b.txt\","
		"\"type\":\"file\"}]}",
		NULL);
	msg = fx_sync_fails(f, STK_EINVAL);
	expect_contains(msg, "projects/p/a");
	expect_same_tree(f->data, before);
	free(before);
}

static void test_engine__stop_leaves_complete_files(void **state)
{
	struct fx *f = *state;
	volatile sig_atomic_t stop = 1;
	struct agent_result res;
	stk_err err = STK_ERR_INIT;
	char *before;

	put(f->repo, "site/p/a.txt", "a");
	put(f->repo, "site/p/b.txt", "b");
	put(f->data, "projects/p/a.txt", "old");
	before = snapshot(f->data);
	fx_plan(f, "{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"}]}", NULL);
	assert_int_equal(fx_sync_ex(f, NULL, false, &stop, &res, &err), STK_ECANCELED);
	agent_result_release(&res);
	expect_same_tree(f->data, before);
	stop = 0;
	fx_sync(f, NULL);
	expect_file(f->data, "projects/p/a.txt", "a");
	expect_file(f->data, "projects/p/b.txt", "b");
	free(before);
}

/*
 * agent_data_settled: the data is the whole result of a sync. A run that begins changing
 * the data leaves the "unsettled" marker until it completes (crash-sync.sh checks that
 * every SIGKILL leaving the data between two commits leaves it marked); a complete run,
 * even a no-op one, clears it. A dry run and a run stopped before its first change
 * leave it as it was.
 */
static void test_engine__data_settled(void **state)
{
	struct fx *f = *state;
	volatile sig_atomic_t stop = 1;
	struct agent_result res;
	stk_err err = STK_ERR_INIT;

	put(f->repo, "site/p/a.txt", "a");
	fx_plan(f, "{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"}]}", NULL);
	assert_false(agent_data_settled(f->state)); /* never synced */
	fx_sync(f, NULL);
	assert_true(agent_data_settled(f->state));
	assert_false(exists(f->state, "unsettled"));

	put(f->repo, "site/p/a.txt", "a, changed");
	assert_int_equal(fx_sync_ex(f, NULL, true, NULL, &res, &err), 0);
	agent_result_release(&res);
	assert_true(agent_data_settled(f->state)); /* a dry run changes nothing */
	assert_int_equal(fx_sync_ex(f, NULL, false, &stop, &res, &err), STK_ECANCELED);
	agent_result_release(&res);
	stk_err_clear(&err);
	assert_true(agent_data_settled(f->state)); /* stopped before its first change */

	put(f->state, "unsettled", ""); /* what a run killed mid-way leaves */
	assert_false(agent_data_settled(f->state));
	fx_sync(f, NULL);
	assert_true(agent_data_settled(f->state));
	put(f->state, "unsettled", "");
	fx_sync(f, &res); /* a no-op run settles it too */
	assert_int_equal(res.unchanged, 1);
	agent_result_release(&res);
	assert_true(agent_data_settled(f->state));
}

static void test_engine__leftover_temporary_files_removed(void **state)
{
	struct fx *f = *state;
	struct agent_result res;

	put(f->repo, "site/p/a.txt", "a");
	put(f->repo, "docs/README.md", "readme");
	fx_plan(f,
		"{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"},"
		"{\"source\":\"docs/README.md\",\"destination\":\"README.md\",\"type\":\"file\"}]}",
		NULL);
	fx_sync(f, NULL);
	/* What a run killed before its renames leaves behind, for files now unchanged. */
	put(f->data, "projects/p/.stoker-tmp-a.txt", "half of a");
	put(f->data, ".stoker-tmp-README.md", "half of the readme");
	fx_sync(f, &res);
	assert_false(exists(f->data, "projects/p/.stoker-tmp-a.txt"));
	assert_false(exists(f->data, ".stoker-tmp-README.md"));
	/* They are not reported as deletions: they were never files of a sync. */
	assert_int_equal(res.deleted.count, 0);
	assert_int_equal(res.unchanged, 2);
	agent_result_release(&res);
	expect_file(f->data, "projects/p/a.txt", "a");
	expect_file(f->data, "README.md", "readme");
}

static void test_engine__reserved_names_refused(void **state)
{
	struct fx *f = *state;
	char *before;

	put(f->repo, "site/p/a.txt", "a");
	put(f->repo, "site/p/.stoker-tmp-a.txt", "would be clobbered by a.txt's copy");
	put(f->data, "projects/p/a.txt", "old");
	before = snapshot(f->data);
	fx_plan(f, "{\"mappings\":[{\"source\":\"site\",\"destination\":\"projects\"}]}", NULL);
	expect_contains(fx_sync_fails(f, STK_EINVAL), ".stoker-tmp-a.txt");
	expect_same_tree(f->data, before);
	free(before);
}

/* ---- the command line ------------------------------------------------------------------- */

/* Runs agent_cli_main with stdout and stderr captured (caller frees both). */
static int run_cli(struct fx *f, const char *const *args, char **out, char **errs)
{
	char po[T_PATH], pe[T_PATH], *argv[32];
	int argc = 0, so, se, fo, fe, rc;

	for (; args[argc]; argc++) {
		assert_true(argc < 31);
		argv[argc] = stk_strdup(args[argc]);
	}
	argv[argc] = NULL;
	path_of(po, f->root, "cli.stdout");
	path_of(pe, f->root, "cli.stderr");
	fflush(stdout);
	fflush(stderr);
	so = dup(1);
	se = dup(2);
	fo = open(po, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(so >= 0 && se >= 0 && fo >= 0 && fe >= 0);
	dup2(fo, 1);
	dup2(fe, 2);
	close(fo);
	close(fe);
	rc = agent_cli_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	*out = slurp(f->root, "cli.stdout");
	*errs = slurp(f->root, "cli.stderr");
	return rc;
}

static void test_engine__cli_sync_and_drift(void **state)
{
	struct fx *f = *state;
	char data_slash[T_PATH], profile[T_PATH], *out, *errs;

	put(f->repo, "svc/projects/p/a.txt", "a");
	put(f->repo, "svc/projects/p/debug.log", "excluded");
	put(f->repo, "sites/north/x.json", "{}");
	path_of(data_slash, f->data, "");
	/* The default state directory is beside the data directory, even given as "data/". */
	{
		const char *args[] = {"agent",	   "sync",     "--repo",	 f->repo,
				      "--data",	   data_slash, "--service-path", "svc",
				      "--exclude", "**/*.log", "--dry-run",	 NULL};
		assert_int_equal(run_cli(f, args, &out, &errs), 0);
		expect_contains(out, "\"dryRun\":true");
		expect_contains(out, "\"filesAdded\":1,");
		assert_false(exists(f->data, "projects"));
		free(out);
		free(errs);
		args[10] = NULL;
		assert_int_equal(run_cli(f, args, &out, &errs), 0);
		expect_contains(out, "\"dryRun\":false");
		expect_contains(out, "\"added\":[\"projects/p/a.txt\"]");
		free(out);
		free(errs);
	}
	assert_true(exists(f->root, "data.stoker-state/manifest"));
	assert_false(exists(f->data, ".stoker-state"));
	expect_file(f->data, "projects/p/a.txt", "a");
	{
		const char *args[] = {"agent", "drift", "--data", data_slash, NULL};
		put(f->data, "projects/p/a.txt", "hand edit");
		assert_int_equal(run_cli(f, args, &out, &errs), 0);
		expect_contains(out, "\"modified\":[\"projects/p/a.txt\"]");
		free(out);
		free(errs);
	}
	/* A profile with vars and labels from the command line. */
	path_of(profile, f->root, "profile.yaml");
	put(f->root, "profile.yaml",
	    "apiVersion: stoker.io/v1alpha1\nkind: SyncProfile\nmetadata: {name: p}\n"
	    "spec:\n  vars: {site: south}\n  mappings:\n"
	    "  - {source: 'sites/{{.Labels.area}}/x.json',"
	    " destination: 'cfg/{{.Vars.site}}-{{.PodOrdinal}}.json', type: file}\n");
	{
		const char *args[] = {"agent", "sync",	    "--repo",	  f->repo,   "--data",
				      f->data, "--profile", profile,	  "--label", "area=north",
				      "--var", "site=east", "--pod-name", "gw-3",    NULL};
		assert_int_equal(run_cli(f, args, &out, &errs), 0);
		free(out);
		free(errs);
	}
	expect_file(f->data, "cfg/east-3.json", "{}");
}

static void test_engine__cli_errors(void **state)
{
	struct fx *f = *state;
	char profile[T_PATH], *out, *errs;
	const char *p;

	path_of(profile, f->root, "broken.yaml");
	put(f->root, "broken.yaml", "spec: {mappings: [{source: a, destination: b}\n");
	{
		const char *args[] = {"agent", "sync",	    "--repo", f->repo, "--data",
				      f->data, "--profile", profile,  NULL};
		assert_int_equal(run_cli(f, args, &out, &errs), 1);
		/* Names the file once, then the parser's position. */
		expect_contains(errs, "broken.yaml: ");
		p = strstr(errs, "broken.yaml");
		assert_null(strstr(p + 1, "broken.yaml"));
		expect_contains(errs, "line 2");
		free(out);
		free(errs);
	}
	{
		const char *args[] = {"agent", "sync",		 "--repo", f->repo, "--data",
				      f->data, "--service-path", "../up",  NULL};
		assert_int_equal(run_cli(f, args, &out, &errs), 1);
		expect_contains(errs, "service-path");
		free(out);
		free(errs);
	}
	{
		const char *args[] = {"agent",		"sync", "--data", f->data,
				      "--service-path", "x",	NULL};
		assert_int_equal(run_cli(f, args, &out, &errs), 2);
		expect_contains(errs, "--repo");
		free(out);
		free(errs);
	}
	{
		const char *args[] = {"agent",		"sync",	 "--repo",    f->repo,
				      "--data",		f->data, "--profile", profile,
				      "--service-path", "x",	 NULL};
		assert_int_equal(run_cli(f, args, &out, &errs), 2);
		free(out);
		free(errs);
	}
	{
		const char *args[] = {"agent", "sync", "--help", NULL};
		assert_int_equal(run_cli(f, args, &out, &errs), 0);
		expect_contains(out, "agent sync --repo DIR --data DIR");
		free(out);
		free(errs);
	}
	{
		const char *args[] = {"agent", "drift", "--data", f->data, NULL};
		assert_int_equal(run_cli(f, args, &out, &errs), 1);
		expect_contains(errs, "nothing synced yet");
		free(out);
		free(errs);
	}
}

#define T(name) cmocka_unit_test_setup_teardown(test_engine__##name, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(later_mapping_overlays_earlier),
		T(file_mapping),
		T(required_source_missing_changes_nothing),
		T(optional_source_missing_is_skipped),
		T(templates_expand),
		T(unknown_template_variable_names_it),
		T(excludes_from_every_tier),
		T(mandatory_excludes),
		T(every_glob_form_excludes),
		T(malformed_exclude_names_its_tier),
		T(deployment_mode_overlays_last),
		T(deployment_mode_deletes_nothing),
		T(orphans_deleted_only_under_managed_roots),
		T(root_file_mapping_leaves_data_root_alone),
		T(nested_managed_roots),
		T(resources_untouched),
		T(unchanged_files_not_rewritten),
		T(dry_run_changes_nothing),
		T(drift),
		T(service_path_mode),
		T(modes_follow_the_exec_bit),
		T(repo_symlink_refused),
		T(unsafe_mapping_paths_refused),
		T(invalid_config_json_changes_nothing),
		T(data_symlink_on_the_way_refused),
		T(file_and_directory_swap),
		T(shape_change_outside_managed_roots_refused),
		T(file_and_directory_at_one_path_refused),
		T(stop_leaves_complete_files),
		T(data_settled),
		T(leftover_temporary_files_removed),
		T(reserved_names_refused),
		T(cli_sync_and_drift),
		T(cli_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
