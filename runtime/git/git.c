/* nftw() is XSI. */
#define _XOPEN_SOURCE 700
#include "stk/git.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "stk/semver.h"
#include "stk/alloc.h"
#include "stk/base64.h"
#include "stk/buf.h"
#include "stk/loop.h"

static pthread_once_t git_once = PTHREAD_ONCE_INIT;

static void git_init_once(void)
{
	/*
	 * libgit2 1.5's ssh transport loads ~/.ssh/known_hosts before our certificate
	 * callback runs and fails the connection ("error loading known_hosts") when HOME is
	 * unset, as it can be for a process started with an empty environment. Any home
	 * will do: host keys are checked against the configured known_hosts text only.
	 */
	if (!getenv("HOME"))
		setenv("HOME", "/", 0);
	git_libgit2_init();
	/* Our own deadlines and retries; never consult the user's git configuration. */
	git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_GLOBAL, "");
	git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_XDG, "");
	git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_SYSTEM, "");
}

void stk_git_init(void)
{
	pthread_once(&git_once, git_init_once);
}

/* ---- known_hosts ------------------------------------------------------------------- */

/* Decodes base64 into a new buffer; NULL on malformed input. */
static unsigned char *kh_b64(const char *s, size_t len, size_t *out_len)
{
	char *out;

	if (len > 65536 || stk_base64_decode(s, len, &out, out_len, NULL))
		return NULL;
	return (unsigned char *)out;
}

/* OpenSSH host patterns: '*' and '?' are wildcards, everything else (brackets too) literal. */
static bool kh_wildcard(const char *p, const char *s)
{
	if (!*p)
		return !*s;
	if (*p == '*')
		return kh_wildcard(p + 1, s) || (*s && kh_wildcard(p, s + 1));
	if (*s && (*p == '?' || *p == *s))
		return kh_wildcard(p + 1, s + 1);
	return false;
}

/* Does one host pattern of a known_hosts line name `host_str` ("h" or "[h]:port")? */
static bool kh_pattern_match(const char *pat, size_t len, const char *host_str)
{
	char buf[512];

	if (len >= sizeof(buf))
		return false;
	memcpy(buf, pat, len);
	buf[len] = '\0';
	if (!strncmp(buf, "|1|", 3)) {
		/* Hashed: |1|base64(salt)|base64(HMAC-SHA1(salt, host)) */
		char *sep = strchr(buf + 3, '|');
		unsigned char *salt, *want, mac[EVP_MAX_MD_SIZE];
		size_t salt_len = 0, want_len = 0;
		unsigned int mac_len = 0;
		bool ok = false;

		if (!sep)
			return false;
		salt = kh_b64(buf + 3, (size_t)(sep - buf - 3), &salt_len);
		want = kh_b64(sep + 1, strlen(sep + 1), &want_len);
		if (salt && want &&
		    HMAC(EVP_sha1(), salt, (int)salt_len, (const unsigned char *)host_str,
			 strlen(host_str), mac, &mac_len) &&
		    mac_len == want_len && !memcmp(mac, want, mac_len))
			ok = true;
		free(salt);
		free(want);
		return ok;
	}
	return kh_wildcard(buf, host_str);
}

bool stk_git_known_hosts_match(const char *known_hosts, const char *host, int port,
			       const char *key_type, const unsigned char *key, size_t key_len)
{
	char host_str[300];
	const char *line = known_hosts;
	bool matched = false;

	if (port == 22 || port <= 0)
		snprintf(host_str, sizeof(host_str), "%s", host);
	else
		snprintf(host_str, sizeof(host_str), "[%s]:%d", host, port);
	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char l[8192];
		char *fields[4] = {NULL};
		char *save = NULL, *tok;
		int nf = 0;
		bool revoked = false, applies = false, negated = false;

		if (len < sizeof(l)) {
			memcpy(l, line, len);
			l[len] = '\0';
			for (tok = strtok_r(l, " \t\r", &save); tok && nf < 4;
			     tok = strtok_r(NULL, " \t\r", &save))
				fields[nf++] = tok;
		}
		line = end ? end + 1 : NULL;
		if (nf == 0 || fields[0][0] == '#')
			continue;
		if (fields[0][0] == '@') {
			if (!strcmp(fields[0], "@revoked"))
				revoked = true;
			else
				continue; /* @cert-authority: certificates are not used here */
			memmove(fields, fields + 1, 3 * sizeof(*fields));
			nf--;
		}
		if (nf < 3)
			continue;
		for (const char *p = fields[0]; *p;) {
			size_t n = strcspn(p, ",");
			bool neg = *p == '!';
			if (kh_pattern_match(p + neg, n - neg, host_str)) {
				if (neg)
					negated = true;
				else
					applies = true;
			}
			p += n;
			if (*p == ',')
				p++;
		}
		if (!applies || negated || strcmp(fields[1], key_type))
			continue;
		{
			size_t blen = 0;
			unsigned char *blob = kh_b64(fields[2], strlen(fields[2]), &blen);
			bool same = blob && blen == key_len && !memcmp(blob, key, key_len);
			free(blob);
			if (same && revoked)
				return false;
			if (same)
				matched = true;
		}
	}
	return matched;
}

/* ---- libgit2 callbacks ------------------------------------------------------------- */

struct remote_ctx {
	const struct stk_git_remote_opts *opts;
	char host[256];
	int port;
	uint64_t deadline_ms;
	int cred_calls;
	bool auth_failed, no_credentials, host_mismatch, host_verified, timed_out;
};

static const char *raw_type_name(git_cert_ssh_raw_type_t t)
{
	switch (t) {
	case GIT_CERT_SSH_RAW_TYPE_RSA:
		return "ssh-rsa";
	case GIT_CERT_SSH_RAW_TYPE_DSS:
		return "ssh-dss";
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256:
		return "ecdsa-sha2-nistp256";
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384:
		return "ecdsa-sha2-nistp384";
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521:
		return "ecdsa-sha2-nistp521";
	case GIT_CERT_SSH_RAW_TYPE_KEY_ED25519:
		return "ssh-ed25519";
	default:
		return "unknown";
	}
}

static int cb_credentials(git_credential **out, const char *url, const char *user_from_url,
			  unsigned int allowed, void *payload)
{
	struct remote_ctx *c = payload;
	const struct stk_git_creds *a = c->opts->auth;

	(void)url;
	/* libgit2 asks again after a refusal: a second request means the first failed. */
	if (++c->cred_calls > 1) {
		c->auth_failed = true;
		return GIT_EAUTH;
	}
	if (a && a->ssh_key && (allowed & GIT_CREDENTIAL_SSH_MEMORY))
		return git_credential_ssh_key_memory_new(out, user_from_url ? user_from_url : "git",
							 NULL, a->ssh_key, NULL);
	if (a && a->ssh_key && (allowed & GIT_CREDENTIAL_SSH_KEY))
		return git_credential_ssh_key_memory_new(out, user_from_url ? user_from_url : "git",
							 NULL, a->ssh_key, NULL);
	if (a && a->token && (allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT))
		return git_credential_userpass_plaintext_new(out, "git", a->token);
	if (a && a->username && a->password && (allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT))
		return git_credential_userpass_plaintext_new(out, a->username, a->password);
	if (allowed & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user_from_url ? user_from_url : "git");
	c->no_credentials = true;
	return GIT_EAUTH;
}

static int cb_certificate(git_cert *cert, int valid, const char *host, void *payload)
{
	struct remote_ctx *c = payload;
	const struct stk_git_creds *a = c->opts->auth;
	git_cert_hostkey *hk;

	(void)host;
	if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2)
		return GIT_PASSTHROUGH; /* TLS: libgit2's own verification */
	(void)valid;
	if (!a || !a->known_hosts)
		return 0; /* no known_hosts given: accepted, reported as not verified */
	hk = (git_cert_hostkey *)cert;
	if ((hk->type & GIT_CERT_SSH_RAW) &&
	    stk_git_known_hosts_match(a->known_hosts, c->host, c->port, raw_type_name(hk->raw_type),
				      (const unsigned char *)hk->hostkey, hk->hostkey_len)) {
		c->host_verified = true;
		return 0;
	}
	c->host_mismatch = true;
	return GIT_ECERTIFICATE;
}

static int cb_deadline(struct remote_ctx *c)
{
	if (c->deadline_ms && stk_now_ms() > c->deadline_ms) {
		c->timed_out = true;
		return -1;
	}
	return 0;
}

static int cb_progress(const git_indexer_progress *stats, void *payload)
{
	(void)stats;
	return cb_deadline(payload);
}

static int cb_sideband(const char *str, int len, void *payload)
{
	(void)str;
	(void)len;
	return cb_deadline(payload);
}

static void ctx_init(struct remote_ctx *c, const struct stk_git_remote_opts *o,
		     git_remote_callbacks *cbs)
{
	memset(c, 0, sizeof(*c));
	c->opts = o;
	c->port = 22;
	if (o->timeout_ms)
		c->deadline_ms = stk_now_ms() + o->timeout_ms;
	/* The host and port the host key belongs to. */
	{
		const char *u = o->url, *h, *e;
		if (!strncmp(u, "ssh://", 6)) {
			h = u + 6;
			if (strchr(h, '@') && strchr(h, '@') < h + strcspn(h, "/"))
				h = strchr(h, '@') + 1;
			e = h + strcspn(h, ":/");
			snprintf(c->host, sizeof(c->host), "%.*s", (int)(e - h), h);
			if (*e == ':')
				c->port = (int)strtol(e + 1, NULL, 10);
		} else if (!strstr(u, "://") && strchr(u, ':')) {
			h = strchr(u, '@') ? strchr(u, '@') + 1 : u;
			e = strchr(h, ':');
			snprintf(c->host, sizeof(c->host), "%.*s", (int)(e - h), h);
		}
	}
	git_remote_init_callbacks(cbs, GIT_REMOTE_CALLBACKS_VERSION);
	cbs->credentials = cb_credentials;
	cbs->certificate_check = cb_certificate;
	cbs->transfer_progress = cb_progress;
	cbs->sideband_progress = cb_sideband;
	cbs->payload = c;
}

/* Translates a libgit2 failure, using what the callbacks saw. */
static int ctx_error(const struct remote_ctx *c, int rc, const char *what, stk_err *err)
{
	const git_error *ge = git_error_last();
	const char *msg = ge && ge->message ? ge->message : "unknown error";
	int code;

	if (c->host_mismatch) {
		code = stk_err_set(err, STK_EAUTH,
				   "%s: the ssh host key of %s does not match spec.auth.knownHosts",
				   what, c->host);
		if (err)
			snprintf(err->reason, sizeof(err->reason), "HostKeyMismatch");
		return code;
	}
	if (c->timed_out)
		return stk_err_set(err, STK_ETIMEOUT, "%s: timed out", what);
	if (c->no_credentials)
		return stk_err_set(err, STK_EAUTH,
				   "%s: the server asks for credentials and spec.auth gives none "
				   "it accepts",
				   what);
	if (c->auth_failed || rc == GIT_EAUTH) {
		code = stk_err_set(err, STK_EAUTH, "%s: authentication failed (%s)", what,
				   c->opts->auth && c->opts->auth->ssh_key ? "ssh key refused"
									   : "credentials refused");
		if (err)
			snprintf(err->reason, sizeof(err->reason), "AuthenticationFailed");
		return code;
	}
	if (rc == GIT_ENOTFOUND)
		return stk_err_set(err, STK_ENOTFOUND, "%s: %s", what, msg);
	return stk_err_set(err, STK_EUNAVAIL, "%s: %s", what, msg);
}

/* ---- resolve ---------------------------------------------------------------------- */

static const git_remote_head *find_head(const git_remote_head **heads, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(heads[i]->name, name))
			return heads[i];
	return NULL;
}

/* A tag's commit: the peeled "^{}" entry for annotated tags, else the tag itself. */
static const git_remote_head *find_tag(const git_remote_head **heads, size_t n, const char *tag)
{
	char name[300];
	const git_remote_head *h;

	snprintf(name, sizeof(name), "refs/tags/%s^{}", tag);
	h = find_head(heads, n, name);
	if (h)
		return h;
	snprintf(name, sizeof(name), "refs/tags/%s", tag);
	return find_head(heads, n, name);
}

static void set_result(struct stk_git_resolved *r, const git_oid *oid, const char *ref,
		       const char *refname)
{
	git_oid_tostr(r->commit, sizeof(r->commit), oid);
	snprintf(r->ref, sizeof(r->ref), "%s", ref);
	snprintf(r->refname, sizeof(r->refname), "%s", refname);
}

static bool is_hex40(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == 40;
}

int stk_git_resolve(const struct stk_git_remote_opts *o, const struct stk_git_ref_spec *spec,
		    struct stk_git_resolved *out, stk_err *err)
{
	struct remote_ctx ctx;
	git_remote_callbacks cbs;
	git_remote *remote = NULL;
	const git_remote_head **heads = NULL;
	size_t n = 0;
	struct stk_git_resolved r;
	char name[300];
	int rc;

	stk_git_init();
	memset(&r, 0, sizeof(r));
	ctx_init(&ctx, o, &cbs);
	if (spec->commit) {
		if (!is_hex40(spec->commit))
			return stk_err_set(err, STK_EINVAL, "ref.commit must be a full 40-hex SHA");
	}
	rc = git_remote_create_detached(&remote, o->url);
	if (rc) {
		rc = stk_err_set(err, STK_EINVAL, "cannot use URL: %s", git_error_last()->message);
		goto out;
	}
	rc = git_remote_connect(remote, GIT_DIRECTION_FETCH, &cbs, NULL, NULL);
	if (!rc)
		rc = git_remote_ls(&heads, &n, remote);
	if (rc) {
		rc = ctx_error(&ctx, rc, "ls-remote", err);
		goto out;
	}
	r.host_key_verified = ctx.host_verified;
	if (spec->commit) {
		git_oid oid;
		git_oid_fromstr(&oid, spec->commit);
		set_result(&r, &oid, spec->commit, "");
	} else if (spec->branch) {
		const git_remote_head *h;
		snprintf(name, sizeof(name), "refs/heads/%s", spec->branch);
		h = find_head(heads, n, name);
		if (!h) {
			rc = stk_err_set(err, STK_ENOTFOUND, "branch \"%s\" not found",
					 spec->branch);
			goto out;
		}
		set_result(&r, &h->oid, spec->branch, name);
	} else if (spec->tag) {
		const git_remote_head *h = find_tag(heads, n, spec->tag);
		if (!h) {
			rc = stk_err_set(err, STK_ENOTFOUND, "tag \"%s\" not found", spec->tag);
			goto out;
		}
		snprintf(name, sizeof(name), "refs/tags/%s", spec->tag);
		set_result(&r, &h->oid, spec->tag, name);
	} else if (spec->semver) {
		stk_semver_range *range = NULL;
		const char **tags = stk_calloc(n + 1, sizeof(*tags));
		size_t nt = 0;
		long best;
		rc = stk_semver_range_parse(&range, spec->semver, err);
		if (rc) {
			free(tags);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			const char *nm = heads[i]->name;
			if (!strncmp(nm, "refs/tags/", 10) && !strstr(nm, "^{}"))
				tags[nt++] = nm + 10;
		}
		best = stk_semver_range_best(range, tags, nt);
		stk_semver_range_free(range);
		if (best < 0) {
			free(tags);
			rc = stk_err_set(err, STK_ENOTFOUND, "no tag matches semver range \"%s\"",
					 spec->semver);
			goto out;
		}
		snprintf(name, sizeof(name), "refs/tags/%s", tags[best]);
		set_result(&r, &find_tag(heads, n, tags[best])->oid, tags[best], name);
		free(tags);
	} else if (spec->name) {
		const git_remote_head *h = find_tag(heads, n, spec->name);
		if (h) {
			snprintf(name, sizeof(name), "refs/tags/%s", spec->name);
		} else {
			snprintf(name, sizeof(name), "refs/heads/%s", spec->name);
			h = find_head(heads, n, name);
		}
		if (!h) {
			rc = stk_err_set(err, STK_ENOTFOUND, "no branch or tag named \"%s\"",
					 spec->name);
			goto out;
		}
		set_result(&r, &h->oid, spec->name, name);
	} else {
		rc = stk_err_set(err, STK_EINVAL, "no ref given");
		goto out;
	}
	*out = r;
	rc = 0;
out:
	if (remote) {
		git_remote_disconnect(remote);
		git_remote_free(remote);
	}
	return rc;
}

/* ---- fetch ------------------------------------------------------------------------- */

static bool has_commit(git_repository *repo, const char *hex)
{
	git_oid oid;
	git_commit *c = NULL;

	if (git_oid_fromstr(&oid, hex) || git_commit_lookup(&c, repo, &oid))
		return false;
	git_commit_free(c);
	return true;
}

int stk_git_fetch(const struct stk_git_remote_opts *o, const char *repo_path, const char *refname,
		  const char *commit, git_repository **repo_out, stk_err *err)
{
	struct remote_ctx ctx;
	git_fetch_options fo;
	git_repository *repo = NULL;
	git_remote *remote = NULL;
	char spec_buf[700];
	char *specs[2];
	git_strarray refspecs = {specs, 0};
	int rc;

	stk_git_init();
	if (git_repository_open_bare(&repo, repo_path) != 0 &&
	    git_repository_init(&repo, repo_path, 1) != 0)
		return stk_err_set(err, STK_EIO, "cannot create the clone at %s: %s", repo_path,
				   git_error_last()->message);
	/* Nothing to download when the commit is already here (incremental by nature). */
	if (has_commit(repo, commit))
		goto done;
	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	ctx_init(&ctx, o, &fo.callbacks);
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	fo.prune = GIT_FETCH_NO_PRUNE;
	if (refname && *refname) {
		snprintf(spec_buf, sizeof(spec_buf), "+%s:%s", refname, refname);
		specs[refspecs.count++] = spec_buf;
	} else {
		specs[refspecs.count++] = (char *)"+refs/heads/*:refs/heads/*";
		specs[refspecs.count++] = (char *)"+refs/tags/*:refs/tags/*";
	}
	{
		/* Skipping insteadOf also avoids libgit2 1.5's leak in that lookup. */
		git_remote_create_options co;
		git_remote_create_options_init(&co, GIT_REMOTE_CREATE_OPTIONS_VERSION);
		co.repository = repo;
		co.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
		rc = git_remote_create_with_opts(&remote, o->url, &co);
	}
	if (!rc)
		rc = git_remote_fetch(remote, &refspecs, &fo, NULL);
	if (rc) {
		rc = ctx_error(&ctx, rc, "fetch", err);
		goto fail;
	}
	if (!has_commit(repo, commit)) {
		rc = stk_err_set(err, STK_ENOTFOUND, "commit %s not found in %s", commit,
				 refname && *refname ? refname : "any branch or tag");
		goto fail;
	}
done:
	git_remote_free(remote);
	*repo_out = repo;
	return 0;
fail:
	git_remote_free(remote);
	git_repository_free(repo);
	return rc;
}

/* ---- export --------------------------------------------------------------------------- */

struct export_ctx {
	git_repository *repo;
	struct stk_git_export_result *res;
	stk_buf path; /* the entry being written, for messages */
	stk_err *err;
};

/* The names git itself refuses to check out (and so does the artifact packer). */
static bool export_name_ok(const char *n)
{
	return *n && strcmp(n, ".") && strcmp(n, "..") && strcasecmp(n, ".git") && !strchr(n, '/');
}

static int export_blob(struct export_ctx *c, int dirfd, const git_tree_entry *e)
{
	const char *name = git_tree_entry_name(e);
	git_blob *blob = NULL;
	const unsigned char *p;
	size_t left;
	mode_t mode = git_tree_entry_filemode(e) == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644;
	int fd = -1, rc = 0;

	if (git_blob_lookup(&blob, c->repo, git_tree_entry_id(e)))
		return stk_err_set(c->err, STK_EIO, "%s: %s", c->path.ptr,
				   git_error_last()->message);
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0 || fchmod(fd, mode)) {
		rc = stk_err_set(c->err, STK_EIO, "%s: %s", c->path.ptr, strerror(errno));
		goto out;
	}
	p = git_blob_rawcontent(blob);
	for (left = (size_t)git_blob_rawsize(blob); left > 0;) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = stk_err_set(c->err, STK_EIO, "%s: %s", c->path.ptr, strerror(errno));
			goto out;
		}
		p += n;
		left -= (size_t)n;
		c->res->bytes += (uint64_t)n;
	}
	if (close(fd)) {
		fd = -1;
		rc = stk_err_set(c->err, STK_EIO, "%s: %s", c->path.ptr, strerror(errno));
		goto out;
	}
	fd = -1;
	c->res->files++;
out:
	if (fd >= 0)
		close(fd);
	git_blob_free(blob);
	return rc;
}

static int export_tree(struct export_ctx *c, int dirfd, const git_tree *tree)
{
	size_t n = git_tree_entrycount(tree), plen = c->path.len;
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		const char *name = git_tree_entry_name(e);
		git_filemode_t mode = git_tree_entry_filemode(e);

		c->path.len = plen;
		stk_buf_printf(&c->path, "%s%s", plen ? "/" : "", name);
		if (!export_name_ok(name)) {
			rc = stk_err_set(c->err, STK_EINVAL,
					 "invalid entry name in tree: \"%.200s\"", c->path.ptr);
			break;
		}
		switch (mode) {
		case GIT_FILEMODE_TREE: {
			git_tree *sub = NULL;
			int fd;

			if (git_tree_lookup(&sub, c->repo, git_tree_entry_id(e)))
				return stk_err_set(c->err, STK_EIO, "%s: %s", c->path.ptr,
						   git_error_last()->message);
			if (mkdirat(dirfd, name, 0755) ||
			    (fd = openat(dirfd, name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
				git_tree_free(sub);
				return stk_err_set(c->err, STK_EIO, "%s: %s", c->path.ptr,
						   strerror(errno));
			}
			c->res->dirs++;
			rc = export_tree(c, fd, sub);
			close(fd);
			git_tree_free(sub);
			break;
		}
		case GIT_FILEMODE_BLOB:
		case GIT_FILEMODE_BLOB_EXECUTABLE:
			rc = export_blob(c, dirfd, e);
			break;
		case GIT_FILEMODE_LINK:
			c->res->skipped_symlinks++;
			break;
		case GIT_FILEMODE_COMMIT:
			c->res->skipped_submodules++;
			break;
		default:
			rc = stk_err_set(c->err, STK_EINVAL, "unknown mode %o for \"%.200s\"",
					 (unsigned)mode, c->path.ptr);
		}
	}
	c->path.len = plen;
	return rc;
}

static int export_rm_walk(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int stk_git_export(git_repository *repo, const char *commit, const char *dest,
		   struct stk_git_export_result *out, stk_err *err)
{
	struct stk_git_export_result res = {0};
	struct export_ctx c = {repo, &res, STK_BUF_INIT(8192), err};
	git_oid oid;
	git_commit *cm = NULL;
	git_tree *tree = NULL;
	stk_buf tmp = STK_BUF_INIT(8192);
	int dirfd = -1, rc;
	struct stat st;

	if (!repo || !commit || !dest || !is_hex40(commit))
		return stk_err_set(err, STK_EINVAL, "export: bad arguments");
	if (lstat(dest, &st) == 0)
		return stk_err_set(err, STK_EEXIST, "%s already exists", dest);
	if (git_oid_fromstr(&oid, commit) || git_commit_lookup(&cm, repo, &oid))
		return stk_err_set(err, STK_ENOTFOUND, "commit %s not in the repository", commit);
	if (git_commit_tree(&tree, cm)) {
		rc = stk_err_set(err, STK_EIO, "tree of %s: %s", commit, git_error_last()->message);
		goto out;
	}
	stk_buf_printf(&tmp, "%s.tmp-XXXXXX", dest);
	if (!mkdtemp(tmp.ptr)) {
		rc = stk_err_set(err, STK_EIO, "cannot create %s: %s", tmp.ptr, strerror(errno));
		stk_buf_release(&tmp);
		goto out;
	}
	chmod(tmp.ptr, 0755);
	dirfd = open(tmp.ptr, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		rc = stk_err_set(err, STK_EIO, "%s: %s", tmp.ptr, strerror(errno));
	else
		rc = export_tree(&c, dirfd, tree);
	if (!rc && rename(tmp.ptr, dest))
		rc = stk_err_set(err, STK_EIO, "cannot rename %s to %s: %s", tmp.ptr, dest,
				 strerror(errno));
	if (rc)
		nftw(tmp.ptr, export_rm_walk, 16, FTW_DEPTH | FTW_PHYS);
	else
		*out = res;
out:
	if (dirfd >= 0)
		close(dirfd);
	stk_buf_release(&tmp);
	stk_buf_release(&c.path);
	git_tree_free(tree);
	git_commit_free(cm);
	return rc;
}
