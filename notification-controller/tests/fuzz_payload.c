/*
 * libFuzzer target for notifctl_payload_ref. Input: the first byte picks the headers
 * (bits 0-2: X-GitHub-Event, bits 3-4: X-Gitlab-Event), the rest is the request body.
 * Besides never crashing or leaking, the parser must:
 *  - on success, return a source of the contract's five and a ref that an independent
 *    re-statement of the rules below accepts (git check-ref-format --allow-onelevel, no
 *    leading '-', at most 255 bytes, valid UTF-8), and that notifctl_ref_check accepts;
 *  - on failure, return the code it put in `err`, a one-line printable message, and
 *    leave the outputs untouched;
 *  - give the same answer twice (no hidden state).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

/* Length of the UTF-8 sequence at s (RFC 3629), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (avail < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* The rules, stated component by component as git's documentation does. */
static bool ref_ok(const char *ref)
{
	size_t len = strlen(ref), i, n;
	const char *comp, *end;

	if (len == 0 || len > NOTIFCTL_REF_MAX || ref[0] == '-' || !strcmp(ref, "@"))
		return false;
	if (strstr(ref, "..") || strstr(ref, "@{") || strstr(ref, "//"))
		return false;
	if (ref[0] == '/' || ref[len - 1] == '/' || ref[len - 1] == '.')
		return false;
	for (i = 0; i < len; i += n) {
		unsigned char c = (unsigned char)ref[i];
		if (c <= ' ' || c == 0x7f || strchr("~^:?*[\\", c))
			return false;
		n = utf8_len((const unsigned char *)ref + i, len - i);
		if (n == 0)
			return false;
	}
	for (comp = ref; comp <= ref + len; comp = end + 1) {
		end = strchr(comp, '/');
		if (!end)
			end = ref + len;
		n = (size_t)(end - comp);
		if (n == 0 || comp[0] == '.')
			return false;
		if (n >= 5 && !memcmp(end - 5, ".lock", 5))
			return false;
	}
	return true;
}

static bool known_source(const char *s)
{
	static const char *const all[] = {"github", "gitlab", "argocd", "kargo", "generic"};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (s && !strcmp(s, all[i]))
			return true;
	return false;
}

static bool one_printable_line(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const github[] = {NULL,     "push",	 "release", "ping",
					     "delete", "create", "",	    "Push"};
	static const char *const gitlab[] = {NULL, "Push Hook", "Tag Push Hook", "System Hook"};
	char ref[NOTIFCTL_REF_MAX + 1], ref2[NOTIFCTL_REF_MAX + 1];
	const char *source = "untouched", *source2 = "untouched";
	const char *gh, *gl, *body;
	stk_err err = STK_ERR_INIT, err2 = STK_ERR_INIT;
	size_t len;
	int rc, rc2;

	if (size == 0)
		return 0;
	gh = github[data[0] & 7];
	gl = gitlab[(data[0] >> 3) & 3];
	body = (const char *)data + 1;
	len = size - 1;
	memset(ref, 'x', sizeof(ref));
	ref[sizeof(ref) - 1] = '\0';

	rc = notifctl_payload_ref(body, len, gh, gl, ref, sizeof(ref), &source, &err);
	rc2 = notifctl_payload_ref(body, len, gh, gl, ref2, sizeof(ref2), &source2, &err2);
	check(rc == rc2);
	if (rc == 0) {
		check(known_source(source));
		check(ref_ok(ref));
		check(notifctl_ref_check(ref, strlen(ref), NULL) == 0);
		check(!strcmp(ref, ref2) && !strcmp(source, source2));
		/* A ping or delete event never yields a ref. */
		check(!gh || (strcmp(gh, "ping") != 0 && strcmp(gh, "delete") != 0));
	} else {
		check(rc < 0 && err.code == rc);
		check(one_printable_line(err.message));
		check(!strcmp(err.message, err2.message));
		check(!strcmp(source, "untouched"));
		check(ref[0] == 'x' && strlen(ref) == NOTIFCTL_REF_MAX);
	}
	return 0;
}
