#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "stk/git.h"

/* A repository built with libgit2, with the commits the tests resolve to. */
struct repo {
	char dir[256];
	char url[300];
	char main1[41], main2[41], release[41];
};

static void commit_file(git_repository *r, const char *refname, const char *path,
			const char *content, char out[41])
{
	git_oid blob, tree, commit, parent_id;
	git_treebuilder *tb = NULL;
	git_tree *t = NULL;
	git_signature *sig = NULL;
	git_commit *parent = NULL;
	const git_commit *parents[1];
	int nparents = 0;

	assert_int_equal(git_blob_create_from_buffer(&blob, r, content, strlen(content)), 0);
	assert_int_equal(git_treebuilder_new(&tb, r, NULL), 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, path, &blob, GIT_FILEMODE_BLOB), 0);
	assert_int_equal(git_treebuilder_write(&tree, tb), 0);
	assert_int_equal(git_tree_lookup(&t, r, &tree), 0);
	assert_int_equal(git_signature_new(&sig, "Test", "t@example.com", 1700000000, 0), 0);
	if (git_reference_name_to_id(&parent_id, r, refname) == 0) {
		assert_int_equal(git_commit_lookup(&parent, r, &parent_id), 0);
		parents[0] = parent;
		nparents = 1;
	}
	assert_int_equal(git_commit_create(&commit, r, refname, sig, sig, NULL, content, t,
					   (size_t)nparents, parents),
			 0);
	git_oid_tostr(out, 41, &commit);
	git_commit_free(parent);
	git_signature_free(sig);
	git_tree_free(t);
	git_treebuilder_free(tb);
}

static void annotated_tag(git_repository *r, const char *name, const char *commit_hex)
{
	git_oid oid, tag;
	git_object *target = NULL;
	git_signature *sig = NULL;

	git_oid_fromstr(&oid, commit_hex);
	assert_int_equal(git_object_lookup(&target, r, &oid, GIT_OBJECT_COMMIT), 0);
	assert_int_equal(git_signature_new(&sig, "Test", "t@example.com", 1700000000, 0), 0);
	assert_int_equal(git_tag_create(&tag, r, name, target, sig, name, 0), 0);
	git_signature_free(sig);
	git_object_free(target);
}

static void light_tag(git_repository *r, const char *name, const char *commit_hex)
{
	git_oid oid, tag;
	git_object *target = NULL;

	git_oid_fromstr(&oid, commit_hex);
	assert_int_equal(git_object_lookup(&target, r, &oid, GIT_OBJECT_COMMIT), 0);
	assert_int_equal(git_tag_create_lightweight(&tag, r, name, target, 0), 0);
	git_object_free(target);
}

static int setup(void **state)
{
	struct repo *rp = calloc(1, sizeof(*rp));
	git_repository *r = NULL;
	char dummy[41];

	stk_git_init();
	snprintf(rp->dir, sizeof(rp->dir), "/tmp/stoker-gitremote-XXXXXX");
	assert_non_null(mkdtemp(rp->dir));
	snprintf(rp->url, sizeof(rp->url), "file://%s/origin.git", rp->dir);
	{
		char path[300];
		snprintf(path, sizeof(path), "%s/origin.git", rp->dir);
		assert_int_equal(git_repository_init(&r, path, 1), 0);
	}
	commit_file(r, "refs/heads/main", "a.txt", "one", rp->main1);
	light_tag(r, "v1.0.0", rp->main1);
	commit_file(r, "refs/heads/main", "a.txt", "two", rp->main2);
	annotated_tag(r, "v1.1.0", rp->main2);
	commit_file(r, "refs/heads/release", "b.txt", "rel", rp->release);
	annotated_tag(r, "v2.0.0-rc.1", rp->release);
	/* A branch and a tag with the same name: the tag wins for ref.name. */
	commit_file(r, "refs/heads/v1.0.0", "c.txt", "branch named like a tag", dummy);
	git_repository_free(r);
	*state = rp;
	return 0;
}

static int teardown(void **state)
{
	struct repo *rp = *state;
	char *argv[] = {(char *)"rm", (char *)"-rf", rp->dir, NULL};
	pid_t pid = fork();
	if (pid == 0) {
		execvp("rm", argv);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	free(rp);
	return 0;
}

static int resolve(struct repo *rp, struct stk_git_ref_spec spec, struct stk_git_resolved *r,
		   stk_err *err)
{
	struct stk_git_remote_opts o = {rp->url, NULL, 10000};
	return stk_git_resolve(&o, &spec, r, err);
}

static void test_gitremote__resolves_every_ref_kind(void **state)
{
	struct repo *rp = *state;
	struct stk_git_resolved r;
	stk_err err = STK_ERR_INIT;

	assert_int_equal(resolve(rp, (struct stk_git_ref_spec){.branch = "main"}, &r, &err), 0);
	assert_string_equal(r.commit, rp->main2);
	assert_string_equal(r.refname, "refs/heads/main");
	assert_int_equal(resolve(rp, (struct stk_git_ref_spec){.tag = "v1.0.0"}, &r, &err), 0);
	assert_string_equal(r.commit, rp->main1);
	/* An annotated tag resolves to its commit, not to the tag object. */
	assert_int_equal(resolve(rp, (struct stk_git_ref_spec){.tag = "v1.1.0"}, &r, &err), 0);
	assert_string_equal(r.commit, rp->main2);
	assert_int_equal(
		resolve(rp, (struct stk_git_ref_spec){.semver = ">=1.0.0 <2.0.0"}, &r, &err), 0);
	assert_string_equal(r.ref, "v1.1.0");
	assert_string_equal(r.commit, rp->main2);
	assert_int_equal(resolve(rp, (struct stk_git_ref_spec){.semver = ">=2.0.0-rc.0"}, &r, &err),
			 0);
	assert_string_equal(r.commit, rp->release);
	assert_int_equal(resolve(rp, (struct stk_git_ref_spec){.name = "v1.0.0"}, &r, &err), 0);
	assert_string_equal(r.refname, "refs/tags/v1.0.0");
	assert_string_equal(r.commit, rp->main1);
	assert_int_equal(resolve(rp, (struct stk_git_ref_spec){.name = "release"}, &r, &err), 0);
	assert_string_equal(r.refname, "refs/heads/release");
	assert_int_equal(resolve(rp, (struct stk_git_ref_spec){.commit = rp->main1}, &r, &err), 0);
	assert_string_equal(r.commit, rp->main1);
}

static void test_gitremote__unknown_refs_are_not_found(void **state)
{
	struct repo *rp = *state;
	struct stk_git_resolved r;
	stk_err err = STK_ERR_INIT;

	assert_int_equal(resolve(rp, (struct stk_git_ref_spec){.branch = "nope"}, &r, &err),
			 STK_ENOTFOUND);
	assert_string_equal(err.message, "branch \"nope\" not found");
	assert_int_equal(resolve(rp, (struct stk_git_ref_spec){.tag = "v9"}, &r, &err),
			 STK_ENOTFOUND);
	assert_int_equal(resolve(rp, (struct stk_git_ref_spec){.semver = ">=3"}, &r, &err),
			 STK_ENOTFOUND);
	assert_non_null(strstr(err.message, "no tag matches"));
	assert_int_equal(resolve(rp, (struct stk_git_ref_spec){.semver = "bogus"}, &r, &err),
			 STK_EPARSE);
	assert_int_equal(resolve(rp, (struct stk_git_ref_spec){.commit = "abc"}, &r, &err),
			 STK_EINVAL);
}

static void test_gitremote__unreachable_server(void **state)
{
	struct stk_git_remote_opts o = {"git://127.0.0.1:1/none.git", NULL, 5000};
	struct stk_git_resolved r;
	stk_err err = STK_ERR_INIT;
	(void)state;
	assert_int_equal(
		stk_git_resolve(&o, &(struct stk_git_ref_spec){.branch = "main"}, &r, &err),
		STK_EUNAVAIL);
	assert_non_null(strstr(err.message, "ls-remote"));
}

static void test_gitremote__fetch_is_incremental_and_checks_the_commit(void **state)
{
	struct repo *rp = *state;
	struct stk_git_remote_opts o = {rp->url, NULL, 10000};
	git_repository *cache = NULL;
	char path[300];
	stk_err err = STK_ERR_INIT;
	git_oid oid;
	git_commit *c = NULL;

	snprintf(path, sizeof(path), "%s/cache.git", rp->dir);
	assert_int_equal(stk_git_fetch(&o, path, "refs/heads/main", rp->main2, &cache, &err), 0);
	git_oid_fromstr(&oid, rp->main1);
	assert_int_equal(git_commit_lookup(&c, cache, &oid), 0); /* history came along */
	git_commit_free(c);
	git_repository_free(cache);
	/* Already present: no network needed, even with a broken URL. */
	o.url = "git://127.0.0.1:1/none.git";
	assert_int_equal(stk_git_fetch(&o, path, "refs/heads/main", rp->main1, &cache, &err), 0);
	git_repository_free(cache);
	/* A commit the ref does not contain. */
	o.url = rp->url;
	assert_int_equal(stk_git_fetch(&o, path, "refs/heads/main",
				       "0123456789012345678901234567890123456789", &cache, &err),
			 STK_ENOTFOUND);
	assert_non_null(strstr(err.message, "not found in refs/heads/main"));
	/* A bare commit: every branch and tag is fetched. */
	assert_int_equal(stk_git_fetch(&o, path, "", rp->release, &cache, &err), 0);
	git_repository_free(cache);
}

static void test_gitremote__known_hosts(void **state)
{
	/* A made-up ed25519 key blob and its base64 form. */
	unsigned char key[51];
	char b64[100], line[1024], hashed[512];
	unsigned char salt[20], mac[20];
	unsigned int mac_len = 0;
	char salt64[40], mac64[40];
	(void)state;
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)(i * 7 + 1);
	EVP_EncodeBlock((unsigned char *)b64, key, sizeof(key));
	snprintf(line, sizeof(line), "# comment\n[127.0.0.1]:2222 ssh-ed25519 %s\n", b64);
	assert_true(stk_git_known_hosts_match(line, "127.0.0.1", 2222, "ssh-ed25519", key,
					      sizeof(key)));
	assert_false(
		stk_git_known_hosts_match(line, "127.0.0.1", 22, "ssh-ed25519", key, sizeof(key)));
	assert_false(
		stk_git_known_hosts_match(line, "127.0.0.1", 2222, "ssh-rsa", key, sizeof(key)));
	key[3] ^= 1;
	assert_false(stk_git_known_hosts_match(line, "127.0.0.1", 2222, "ssh-ed25519", key,
					       sizeof(key)));
	key[3] ^= 1;
	snprintf(line, sizeof(line), "git.example.com,10.0.0.1 ssh-ed25519 %s comment", b64);
	assert_true(stk_git_known_hosts_match(line, "git.example.com", 22, "ssh-ed25519", key,
					      sizeof(key)));
	snprintf(line, sizeof(line), "*.example.com,!evil.example.com ssh-ed25519 %s", b64);
	assert_true(stk_git_known_hosts_match(line, "git.example.com", 22, "ssh-ed25519", key,
					      sizeof(key)));
	assert_false(stk_git_known_hosts_match(line, "evil.example.com", 22, "ssh-ed25519", key,
					       sizeof(key)));
	snprintf(line, sizeof(line), "git.example.com ssh-ed25519 %s\n@revoked * ssh-ed25519 %s\n",
		 b64, b64);
	assert_false(stk_git_known_hosts_match(line, "git.example.com", 22, "ssh-ed25519", key,
					       sizeof(key)));
	/* Hashed entry: |1|base64(salt)|base64(HMAC-SHA1(salt, host)) */
	for (size_t i = 0; i < sizeof(salt); i++)
		salt[i] = (unsigned char)(200 - i);
	HMAC(EVP_sha1(), salt, sizeof(salt), (const unsigned char *)"[gitea.local]:2222", 18, mac,
	     &mac_len);
	EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof(salt));
	EVP_EncodeBlock((unsigned char *)mac64, mac, (int)mac_len);
	snprintf(hashed, sizeof(hashed), "|1|%s|%s ssh-ed25519 %s\n", salt64, mac64, b64);
	assert_true(stk_git_known_hosts_match(hashed, "gitea.local", 2222, "ssh-ed25519", key,
					      sizeof(key)));
	assert_false(stk_git_known_hosts_match(hashed, "gitea.local", 22, "ssh-ed25519", key,
					       sizeof(key)));
	assert_false(stk_git_known_hosts_match("garbage\n\n |1|x ssh-ed25519 !!!\n", "h", 22,
					       "ssh-ed25519", key, sizeof(key)));
}

/* A tree with a subdirectory, an executable, a symlink and a gitlink, exported. */
static void test_git__export_writes_files_and_dirs_only(void **state)
{
	struct repo *rp = *state;
	git_repository *r = NULL;
	git_oid blob, exe, link, sub_tree, tree, commit, gitlink;
	git_treebuilder *tb = NULL, *sub = NULL;
	git_tree *t = NULL;
	git_signature *sig = NULL;
	struct stk_git_export_result res;
	stk_err err = STK_ERR_INIT;
	char path[300], hex[41], dest[320], file[400];
	struct stat st;

	snprintf(path, sizeof(path), "%s/origin.git", rp->dir);
	assert_int_equal(git_repository_open_bare(&r, path), 0);
	assert_int_equal(git_blob_create_from_buffer(&blob, r, "{}\n", 3), 0);
	assert_int_equal(git_blob_create_from_buffer(&exe, r, "#!/bin/sh\n", 10), 0);
	assert_int_equal(git_blob_create_from_buffer(&link, r, "/etc/passwd", 11), 0);
	git_oid_fromstr(&gitlink, rp->main1);
	assert_int_equal(git_treebuilder_new(&sub, r, NULL), 0);
	assert_int_equal(git_treebuilder_insert(NULL, sub, "config.json", &blob, GIT_FILEMODE_BLOB),
			 0);
	assert_int_equal(
		git_treebuilder_insert(NULL, sub, "run.sh", &exe, GIT_FILEMODE_BLOB_EXECUTABLE), 0);
	assert_int_equal(git_treebuilder_write(&sub_tree, sub), 0);
	assert_int_equal(git_treebuilder_new(&tb, r, NULL), 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, "projects", &sub_tree, GIT_FILEMODE_TREE),
			 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, "escape", &link, GIT_FILEMODE_LINK), 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, "mod", &gitlink, GIT_FILEMODE_COMMIT), 0);
	assert_int_equal(git_treebuilder_write(&tree, tb), 0);
	assert_int_equal(git_tree_lookup(&t, r, &tree), 0);
	assert_int_equal(git_signature_new(&sig, "Test", "t@example.com", 1700000000, 0), 0);
	assert_int_equal(git_commit_create(&commit, r, NULL, sig, sig, NULL, "x", t, 0, NULL), 0);
	git_oid_tostr(hex, sizeof(hex), &commit);

	snprintf(dest, sizeof(dest), "%s/export", rp->dir);
	assert_int_equal(stk_git_export(r, hex, dest, &res, &err), 0);
	assert_int_equal(res.files, 2);
	assert_int_equal(res.dirs, 1);
	assert_int_equal(res.skipped_symlinks, 1);
	assert_int_equal(res.skipped_submodules, 1);
	snprintf(file, sizeof(file), "%s/projects/config.json", dest);
	assert_int_equal(lstat(file, &st), 0);
	assert_true(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644 && st.st_size == 3);
	snprintf(file, sizeof(file), "%s/projects/run.sh", dest);
	assert_int_equal(lstat(file, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	snprintf(file, sizeof(file), "%s/escape", dest);
	assert_int_not_equal(lstat(file, &st), 0);
	/* The destination exists now: refused, and an unknown commit is not found. */
	assert_int_equal(stk_git_export(r, hex, dest, &res, &err), STK_EEXIST);
	snprintf(dest, sizeof(dest), "%s/export2", rp->dir);
	assert_int_equal(
		stk_git_export(r, "0123456789012345678901234567890123456789", dest, &res, &err),
		STK_ENOTFOUND);
	assert_int_not_equal(lstat(dest, &st), 0);
	git_signature_free(sig);
	git_tree_free(t);
	git_treebuilder_free(tb);
	git_treebuilder_free(sub);
	git_repository_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gitremote__resolves_every_ref_kind),
		cmocka_unit_test(test_gitremote__unknown_refs_are_not_found),
		cmocka_unit_test(test_gitremote__unreachable_server),
		cmocka_unit_test(test_gitremote__fetch_is_incremental_and_checks_the_commit),
		cmocka_unit_test(test_git__export_writes_files_and_dirs_only),
		cmocka_unit_test(test_gitremote__known_hosts),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
