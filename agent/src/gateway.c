#include "gateway.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#include "stk/json.h"
#include "stk/version.h"

#define GW_BODY_MAX  (1u << 20)
#define GW_TOKEN_MAX 4096

void agent_gateway_init(struct agent_gateway *gw, const char *host, int port, bool tls,
			const char *ca_file, const char *token_file)
{
	memset(gw, 0, sizeof(*gw));
	snprintf(gw->base, sizeof(gw->base), "%s://%s:%d", tls ? "https" : "http",
		 host && *host ? host : "localhost", port);
	gw->ca_file = ca_file;
	gw->token_file = token_file;
	gw->timeout_ms = 10000;
	gw->retry_delay_ms = 1000;
}

/* The token file's first line, without trailing whitespace. */
static int read_token(const char *path, char *out, size_t cap, stk_err *err)
{
	FILE *f;
	size_t n;

	out[0] = '\0';
	if (!path)
		return 0;
	f = fopen(path, "re");
	if (!f)
		return stk_err_errno(err, errno, "cannot read the API token %s", path);
	n = fread(out, 1, cap - 1, f);
	fclose(f);
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	for (n = strlen(out); n > 0 && isspace((unsigned char)out[n - 1]); n--)
		out[n - 1] = '\0';
	return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	stk_buf *b = arg;

	if (stk_buf_put(b, p, size * n))
		return 0; /* over the cap: curl fails the transfer */
	return size * n;
}

/* One request; *status is the HTTP status (0 when the transport failed: err says why). */
static int gw_request(struct agent_gateway *gw, const char *method, const char *path, long *status,
		      stk_buf *body, stk_err *err)
{
	char url[600], token[GW_TOKEN_MAX], hdr[GW_TOKEN_MAX + 40], errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	CURL *c;
	CURLcode rc;
	int ret = 0;

	*status = 0;
	if ((ret = read_token(gw->token_file, token, sizeof(token), err)))
		return ret;
	c = curl_easy_init();
	if (!c)
		return stk_err_set(err, STK_EIO, "curl_easy_init failed");
	snprintf(url, sizeof(url), "%s%s", gw->base, path);
	if (*token) {
		snprintf(hdr, sizeof(hdr), "X-Ignition-API-Token: %s", token);
		headers = curl_slist_append(headers, hdr);
	}
	headers = curl_slist_append(headers, "Accept: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "stoker-agent/" STK_VERSION);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)gw->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	if (gw->ca_file) {
		curl_easy_setopt(c, CURLOPT_CAINFO, gw->ca_file);
	} else {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	else
		ret = stk_err_set(err, STK_EUNAVAIL, "%s %s: %s", method, path,
				  *errbuf ? errbuf : curl_easy_strerror(rc));
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	explicit_bzero(token, sizeof(token));
	explicit_bzero(hdr, sizeof(hdr));
	return ret;
}

static void gw_sleep(const struct agent_gateway *gw, uint64_t ms)
{
	/* In slices, so a stop request is seen within 50 ms. */
	while (ms > 0 && !(gw->stop && *gw->stop)) {
		uint64_t step = ms < 50 ? ms : 50;
		struct timespec ts = {0, (long)step * 1000000L};
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

/* One scan endpoint with retries; appends "<what>=<status>" to summary. */
static int gw_scan_one(struct agent_gateway *gw, const char *what, stk_buf *summary, stk_err *err)
{
	char path[64];
	uint64_t delay = gw->retry_delay_ms;
	stk_buf body = STK_BUF_INIT(GW_BODY_MAX);
	long status = 0;
	int rc = 0;

	snprintf(path, sizeof(path), "/data/api/v1/scan/%s", what);
	for (int attempt = 1; attempt <= 3; attempt++) {
		stk_buf_reset(&body);
		rc = gw_request(gw, "POST", path, &status, &body, err);
		if (!rc && status >= 200 && status < 300)
			break;
		if (!rc && (status == 401 || status == 403)) {
			rc = stk_err_set(err, STK_EAUTH,
					 "POST %s: %ld (the gateway refused the API token)", path,
					 status);
			break;
		}
		if (!rc)
			rc = stk_err_set(err, STK_EUNAVAIL, "POST %s: HTTP %ld", path, status);
		if (!rc || (status && status != 429 && status < 500))
			break; /* another 4xx: retrying will not help */
		if (attempt < 3) {
			gw_sleep(gw, delay);
			delay *= 2;
			if (gw->stop && *gw->stop) {
				rc = stk_err_set(err, STK_ECANCELED, "stopped while retrying %s",
						 path);
				break;
			}
		}
	}
	stk_buf_release(&body);
	if (status)
		stk_buf_printf(summary, "%s%s=%ld", summary->len ? " " : "", what, status);
	else
		stk_buf_printf(summary, "%s%s=error", summary->len ? " " : "", what);
	return rc;
}

int agent_gateway_scan(struct agent_gateway *gw, stk_buf *summary, stk_err *err)
{
	int rc = gw_scan_one(gw, "projects", summary, err);

	/* Config after projects, as the gateway expects; not at all when projects failed. */
	if (!rc)
		rc = gw_scan_one(gw, "config", summary, err);
	return rc;
}

int agent_gateway_running(struct agent_gateway *gw, bool *running, stk_err *err)
{
	stk_buf body = STK_BUF_INIT(GW_BODY_MAX);
	long status;
	int rc = gw_request(gw, "GET", "/system/gwinfo", &status, &body, err);

	if (!rc) {
		if (status == 503) {
			*running = false;
		} else if (status == 200) {
			const char *cs = body.ptr ? strstr(body.ptr, "ContextStatus=") : NULL;
			*running = !cs || !strncmp(cs + 14, "RUNNING", 7);
		} else {
			rc = stk_err_set(err, STK_EUNAVAIL, "GET /system/gwinfo: HTTP %ld", status);
		}
	}
	stk_buf_release(&body);
	return rc;
}

int agent_gateway_designers(struct agent_gateway *gw, size_t *count, stk_buf *who, stk_err *err)
{
	stk_buf body = STK_BUF_INIT(GW_BODY_MAX);
	yajl_val v = NULL, items;
	long status;
	int rc = gw_request(gw, "GET", "/data/api/v1/designers", &status, &body, err);

	if (rc)
		goto out;
	if (status == 401 || status == 403) {
		rc = stk_err_set(err, STK_EAUTH,
				 "GET /data/api/v1/designers: %ld (the gateway "
				 "refused the API token)",
				 status);
		goto out;
	}
	if (status != 200) {
		rc = stk_err_set(err, STK_EUNAVAIL, "GET /data/api/v1/designers: HTTP %ld", status);
		goto out;
	}
	if ((rc = stk_json_parse(&v, body.ptr ? body.ptr : "", body.len, GW_BODY_MAX, err)))
		goto out;
	items = YAJL_IS_ARRAY(v) ? v : stk_json_arr(v, "items", NULL);
	if (!items) {
		rc = stk_err_set(err, STK_EINVAL, "GET /data/api/v1/designers: no session list");
		goto out;
	}
	*count = items->u.array.len;
	for (size_t i = 0; i < items->u.array.len && i < 5; i++) {
		const char *user = stk_json_str(items->u.array.values[i], "user", NULL);
		const char *project = stk_json_str(items->u.array.values[i], "project", NULL);
		stk_buf_printf(who, "%s%s@%s", i ? ", " : "", user ? user : "?",
			       project ? project : "?");
	}
out:
	yajl_tree_free(v);
	stk_buf_release(&body);
	return rc;
}
