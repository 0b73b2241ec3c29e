/* nftw() is XSI. */
#define _XOPEN_SOURCE 700
#include "source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <curl/curl.h>

#include "stk/alloc.h"
#include "stk/version.h"
#include "unpack.h"

#define SRC_ARTIFACT_MAX (INT64_C(2) << 30)
#define SRC_SECRET_MAX	 (64u << 10)

static bool is_hex40(const char *s)
{
	return s && strlen(s) == 40 && strspn(s, "0123456789abcdef") == 40;
}

int agent_source_read_secret(const char *path, char **out, stk_err *err)
{
	FILE *f;
	char *buf;
	size_t n;

	*out = NULL;
	if (!path)
		return 0;
	f = fopen(path, "re");
	if (!f)
		return stk_err_errno(err, errno, "cannot read %s", path);
	buf = stk_malloc(SRC_SECRET_MAX + 1);
	n = fread(buf, 1, SRC_SECRET_MAX, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	*out = buf;
	return 0;
}

static int rm_walk(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_tree(const char *path)
{
	nftw(path, rm_walk, 16, FTW_DEPTH | FTW_PHYS);
}

static int mkdir_p(const char *path, stk_err *err)
{
	if (mkdir(path, 0755) && errno != EEXIST)
		return stk_err_errno(err, errno, "cannot create %s", path);
	return 0;
}

/* ---- artifact mode ------------------------------------------------------------------ */

struct dl {
	FILE *f;
	char etag[128];
	const volatile sig_atomic_t *stop;
};

static size_t dl_body(char *p, size_t size, size_t n, void *arg)
{
	struct dl *d = arg;

	if (d->stop && *d->stop)
		return 0;
	return fwrite(p, size, n, d->f) == n ? size * n : 0;
}

static size_t dl_header(char *p, size_t size, size_t n, void *arg)
{
	struct dl *d = arg;
	size_t len = size * n;

	if (len > 5 && !strncasecmp(p, "ETag:", 5)) {
		const char *v = p + 5;
		size_t vl = len - 5;
		while (vl && (*v == ' ' || *v == '"')) {
			v++;
			vl--;
		}
		while (vl && (v[vl - 1] == '\n' || v[vl - 1] == '\r' || v[vl - 1] == '"'))
			vl--;
		if (vl < sizeof(d->etag)) {
			memcpy(d->etag, v, vl);
			d->etag[vl] = '\0';
		}
	}
	return len;
}

static int download(const struct agent_source_req *rq, const char *dest, char *etag,
		    size_t etag_cap, stk_err *err)
{
	char *token = NULL, hdr[8300], errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	struct dl d = {NULL, "", rq->stop};
	CURL *c = NULL;
	CURLcode cc;
	long status = 0;
	int rc;

	if ((rc = agent_source_read_secret(rq->token_file, &token, err)))
		return stk_err_wrap(err, "service-account token");
	if (token && strlen(token) > 8192) {
		rc = stk_err_set(err, STK_EINVAL, "the token in %s is too long", rq->token_file);
		goto out;
	}
	d.f = fopen(dest, "wxe");
	if (!d.f) {
		rc = stk_err_errno(err, errno, "cannot create %s", dest);
		goto out;
	}
	c = curl_easy_init();
	if (token) {
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token);
		headers = curl_slist_append(headers, hdr);
	}
	curl_easy_setopt(c, CURLOPT_URL, rq->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "stoker-agent/" STK_VERSION);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	/* A stalled transfer (under 1 KiB/s for 60 s) fails rather than hanging the agent. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)SRC_ARTIFACT_MAX);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, dl_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, dl_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &d);
	cc = curl_easy_perform(c);
	if (cc == CURLE_OK || cc == CURLE_WRITE_ERROR)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (rq->stop && *rq->stop) {
		rc = stk_err_set(err, STK_ECANCELED, "download stopped");
	} else if (cc != CURLE_OK && !(status && status != 200)) {
		rc = stk_err_set(err, cc == CURLE_FILESIZE_EXCEEDED ? STK_ETOOBIG : STK_EUNAVAIL,
				 "downloading %s: %s", rq->url,
				 *errbuf ? errbuf : curl_easy_strerror(cc));
	} else if (status == 401 || status == 403) {
		rc = stk_err_set(err, STK_EAUTH,
				 "the artifact server refused this pod's token (HTTP %ld) for %s",
				 status, rq->url);
	} else if (status == 404) {
		rc = stk_err_set(err, STK_ENOTFOUND, "artifact not found (HTTP 404): %s", rq->url);
	} else if (status != 200) {
		rc = stk_err_set(err, STK_EUNAVAIL, "downloading %s: HTTP %ld", rq->url, status);
	} else if (fflush(d.f) || ferror(d.f)) {
		rc = stk_err_errno(err, errno, "writing %s", dest);
	}
	if (!rc)
		snprintf(etag, etag_cap, "%s", d.etag);
out:
	if (d.f && fclose(d.f) && !rc)
		rc = stk_err_errno(err, errno, "writing %s", dest);
	curl_slist_free_all(headers);
	if (c)
		curl_easy_cleanup(c);
	explicit_bzero(hdr, sizeof(hdr));
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	return rc;
}

static int fetch_artifact(const struct agent_source_req *rq, const char *commit, const char *tree,
			  stk_err *err)
{
	struct agent_unpack_opts uo = AGENT_UNPACK_OPTS_INIT;
	struct agent_unpack_result ur;
	char tmp[4200], etag[128] = "";
	int fd, rc;

	(void)commit;
	snprintf(tmp, sizeof(tmp), "%s/.download-XXXXXX", rq->repo_path);
	fd = mkstemp(tmp);
	if (fd < 0)
		return stk_err_errno(err, errno, "cannot create a download file in %s",
				     rq->repo_path);
	close(fd);
	unlink(tmp); /* download() creates it exclusively */
	rc = download(rq, tmp, etag, sizeof(etag), err);
	if (!rc) {
		uo.archive = tmp;
		uo.expect_digest = rq->digest && *rq->digest	      ? rq->digest
				   : strncmp(etag, "sha256:", 7) == 0 ? etag
								      : NULL;
		uo.dest = tree;
		uo.stop = rq->stop;
		rc = agent_unpack(&uo, &ur, err);
	}
	unlink(tmp);
	return rc;
}

/* ---- git mode ------------------------------------------------------------------------ */

static int fetch_git(const struct agent_source_req *rq, char commit[41], stk_buf *tree,
		     stk_err *err)
{
	struct stk_git_remote_opts o = {rq->git_url, rq->creds, 300000};
	struct stk_git_resolved res;
	struct stk_git_export_result xr;
	git_repository *repo = NULL;
	char cache[4200];
	struct stat st;
	const char *refname = "";
	int rc;

	memset(&res, 0, sizeof(res));
	if (!rq->commit) {
		struct stk_git_ref_spec spec = {0};
		spec.name = rq->ref;
		if ((rc = stk_git_resolve(&o, &spec, &res, err)))
			return rc;
		snprintf(commit, 41, "%s", res.commit);
		refname = res.refname;
	} else {
		snprintf(commit, 41, "%s", rq->commit);
	}
	stk_buf_reset(tree);
	stk_buf_printf(tree, "%s/trees/%s", rq->repo_path, commit);
	if (lstat(tree->ptr, &st) == 0)
		return 0;
	snprintf(cache, sizeof(cache), "%s/cache.git", rq->repo_path);
	rc = stk_git_fetch(&o, cache, refname, commit, &repo, err);
	if (!rc)
		rc = stk_git_export(repo, commit, tree->ptr, &xr, err);
	git_repository_free(repo);
	return rc;
}

int agent_source_fetch(const struct agent_source_req *rq, stk_buf *tree, char commit_out[41],
		       stk_err *err)
{
	char trees[4200];
	struct stat st;
	int rc;

	snprintf(trees, sizeof(trees), "%s/trees", rq->repo_path);
	if ((rc = mkdir_p(trees, err)))
		return rc;
	if (rq->git)
		return fetch_git(rq, commit_out, tree, err);
	if (!is_hex40(rq->commit))
		return stk_err_set(err, STK_EINVAL, "no commit to download");
	snprintf(commit_out, 41, "%s", rq->commit);
	stk_buf_reset(tree);
	stk_buf_printf(tree, "%s/%s", trees, rq->commit);
	if (lstat(tree->ptr, &st) == 0)
		return 0; /* unpacked earlier: a tree is renamed into place only when complete */
	return fetch_artifact(rq, rq->commit, tree->ptr, err);
}

void agent_source_prune(const char *repo_path, const char *keep, const char *keep2)
{
	char path[4200];
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "%s/trees", repo_path);
	d = opendir(path);
	while (d && (e = readdir(d))) {
		const char *base;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/trees/%s", repo_path, e->d_name);
		base = path;
		if ((keep && !strcmp(keep, base)) || (keep2 && !strcmp(keep2, base)))
			continue;
		rm_tree(path);
	}
	if (d)
		closedir(d);
	d = opendir(repo_path);
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, ".download-", 10))
			continue;
		snprintf(path, sizeof(path), "%s/%s", repo_path, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
}
