#include "payload.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "stk/buf.h"
#include "stk/json.h"
#include "stk/limits.h"

#define PAYLOAD_QUOTE_MAX 64u

/* What the message quotes of a ref: printable ASCII, cut, so the message stays one line. */
struct payload_quote {
	char s[PAYLOAD_QUOTE_MAX + 4];
};

static const char *payload_quote(struct payload_quote *q, const char *s, size_t len)
{
	size_t n = len > PAYLOAD_QUOTE_MAX ? PAYLOAD_QUOTE_MAX : len, i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		q->s[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (n < len) {
		memcpy(q->s + n, "...", 3);
		n += 3;
	}
	q->s[n] = '\0';
	return q->s;
}

/* --- ref validity ---------------------------------------------------------------------- */

static int ref_bad(stk_err *err, const char *ref, size_t len, const char *what)
{
	struct payload_quote q;

	return stk_err_set(err, STK_EINVAL, "ref '%s' %s", payload_quote(&q, ref, len), what);
}

/* The byte rules: what may appear anywhere. */
static int ref_check_bytes(const char *ref, size_t len, stk_err *err)
{
	size_t i = 0, n;

	while (i < len) {
		unsigned char c = (unsigned char)ref[i];
		if (c < 0x20 || c == 0x7f)
			return ref_bad(err, ref, len, "contains a control character");
		if (c == ' ')
			return ref_bad(err, ref, len, "contains a space");
		if (strchr("~^:?*[\\", c) != NULL) {
			char what[24];
			memcpy(what, "contains '", 10);
			what[10] = (char)c;
			memcpy(what + 11, "'", 2);
			return ref_bad(err, ref, len, what);
		}
		if (c < 0x80) {
			i++;
			continue;
		}
		n = stk_utf8_seq_len((const unsigned char *)ref + i, len - i);
		if (n == 0)
			return ref_bad(err, ref, len, "is not valid UTF-8");
		i += n;
	}
	return 0;
}

/* The structure rules: sequences, the ends, and each '/'-separated component. */
static int ref_check_shape(const char *ref, size_t len, stk_err *err)
{
	size_t start = 0, i;

	if (ref[0] == '-')
		return ref_bad(err, ref, len, "starts with '-'");
	if (ref[0] == '/')
		return ref_bad(err, ref, len, "starts with '/'");
	if (ref[len - 1] == '/')
		return ref_bad(err, ref, len, "ends with '/'");
	if (ref[len - 1] == '.')
		return ref_bad(err, ref, len, "ends with '.'");
	if (len == 1 && ref[0] == '@')
		return ref_bad(err, ref, len, "is not a valid ref name");
	for (i = 0; i + 1 < len; i++) {
		if (ref[i] == '.' && ref[i + 1] == '.')
			return ref_bad(err, ref, len, "contains '..'");
		if (ref[i] == '@' && ref[i + 1] == '{')
			return ref_bad(err, ref, len, "contains '@{'");
		if (ref[i] == '/' && ref[i + 1] == '/')
			return ref_bad(err, ref, len, "contains '//'");
	}
	for (i = 0; i <= len; i++) {
		if (i < len && ref[i] != '/')
			continue;
		/* Components are non-empty here: no leading, trailing or doubled '/'. */
		if (ref[start] == '.')
			return ref_bad(err, ref, len, "has a component starting with '.'");
		if (i - start >= 5 && memcmp(ref + i - 5, ".lock", 5) == 0)
			return ref_bad(err, ref, len, "has a component ending with '.lock'");
		start = i + 1;
	}
	return 0;
}

int notifctl_ref_check(const char *ref, size_t len, stk_err *err)
{
	int rc;

	if (len == 0)
		return stk_err_set(err, STK_EINVAL, "ref is empty");
	if (len > NOTIFCTL_REF_MAX)
		return stk_err_set(err, STK_EINVAL, "ref is longer than %u bytes",
				   NOTIFCTL_REF_MAX);
	rc = ref_check_bytes(ref, len, err);
	if (!rc)
		rc = ref_check_shape(ref, len, err);
	return rc;
}

/* --- the payload ----------------------------------------------------------------------- */

/*
 * Checks what yajl does not: the nesting depth, counted outside strings, is capped (yajl
 * has no depth limit and frees its tree recursively, so a megabyte of '[' must not reach
 * it), and no string holds an escaped NUL ("\u0000": yajl's tree keeps C strings, so a
 * ref would be cut at it silently). Garbage passes here and is refused by the parser.
 */
static int payload_scan(const char *s, size_t len, stk_err *err)
{
	bool in_string = false;
	size_t depth = 0, i;

	for (i = 0; i < len; i++) {
		char c = s[i];
		if (in_string) {
			if (c == '"') {
				in_string = false;
			} else if (c == '\\' && i + 1 < len) {
				if (s[i + 1] == 'u' && i + 5 < len &&
				    memcmp(s + i + 2, "0000", 4) == 0)
					return stk_err_set(
						err, STK_EPARSE,
						"payload holds a NUL character (\\u0000)");
				i++; /* the escaped character */
			}
		} else if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > NOTIFCTL_PAYLOAD_MAX_DEPTH)
				return stk_err_set(err, STK_EPARSE,
						   "payload nests deeper than %u levels",
						   NOTIFCTL_PAYLOAD_MAX_DEPTH);
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return 0;
}

/* "after" of a push that deleted its ref: the null object id (SHA-1 or SHA-256 repos). */
static bool payload_null_oid(const char *s)
{
	size_t n = s ? strlen(s) : 0, i;

	if (n != 40 && n != 64)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] != '0')
			return false;
	return true;
}

static bool payload_push_deletes(yajl_val root)
{
	bool deleted = false;

	return (stk_json_bool(root, &deleted, "deleted", NULL) && deleted) ||
	       payload_null_oid(stk_json_str(root, "after", NULL));
}

static bool payload_gitlab_kind(const char *kind)
{
	return kind && (!strcmp(kind, "push") || !strcmp(kind, "tag_push"));
}

static bool payload_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* freight.commits[0].tag, or NULL. */
static const char *payload_kargo_tag(yajl_val root)
{
	yajl_val commits = stk_json_arr(root, "freight", "commits", NULL);

	if (!commits || commits->u.array.len == 0)
		return NULL;
	return stk_json_str(commits->u.array.values[0], "tag", NULL);
}

/*
 * Applies the rules to the parsed root. *found is the chosen string (borrowed from the
 * tree), or NULL with the error set.
 */
static int payload_pick(yajl_val root, const char *github_event, const char *gitlab_event,
			const char **found, const char **source, stk_err *err)
{
	const char *kind = stk_json_str(root, "object_kind", NULL);
	const char *ref = stk_json_str(root, "ref", NULL);
	const char *s, *action;
	struct payload_quote q;

	if (github_event && !strcmp(github_event, "ping"))
		return stk_err_set(err, STK_EINVAL,
				   "GitHub ping event: no ref to sync (send push or release "
				   "events)");
	if (github_event && !strcmp(github_event, "delete"))
		return stk_err_set(err, STK_EINVAL,
				   "GitHub delete event: the ref was deleted, nothing to sync");

	s = stk_json_str(root, "release", "tag_name", NULL);
	if (s) {
		action = stk_json_str(root, "action", NULL);
		if (action && !strcmp(action, "deleted"))
			return stk_err_set(err, STK_EINVAL,
					   "the release of tag '%s' was deleted, nothing to sync",
					   payload_quote(&q, s, strlen(s)));
		*found = s;
		*source = "github";
		return 0;
	}
	if (ref &&
	    (payload_has_prefix(ref, "refs/heads/") || payload_has_prefix(ref, "refs/tags/"))) {
		if (payload_push_deletes(root))
			return stk_err_set(err, STK_EINVAL,
					   "the push deletes '%s', nothing to sync",
					   payload_quote(&q, ref, strlen(ref)));
		*found = ref + (payload_has_prefix(ref, "refs/heads/") ? strlen("refs/heads/")
								       : strlen("refs/tags/"));
		*source = payload_gitlab_kind(kind) || gitlab_event ? "gitlab" : "github";
		return 0;
	}
	if (ref && payload_gitlab_kind(kind)) {
		if (payload_push_deletes(root))
			return stk_err_set(err, STK_EINVAL,
					   "the push deletes '%s', nothing to sync",
					   payload_quote(&q, ref, strlen(ref)));
		*found = ref;
		*source = "gitlab";
		return 0;
	}
	s = stk_json_str(root, "app", "metadata", "annotations", "git.ref", NULL);
	if (s) {
		*found = s;
		*source = "argocd";
		return 0;
	}
	s = payload_kargo_tag(root);
	if (s) {
		*found = s;
		*source = "kargo";
		return 0;
	}
	if (ref) {
		*found = ref;
		*source = "generic";
		return 0;
	}
	return stk_err_set(err, STK_EINVAL,
			   "no ref found in the payload (expected release.tag_name, ref, "
			   "app.metadata.annotations[\"git.ref\"] or freight.commits[0].tag)");
}

int notifctl_payload_ref(const char *body, size_t len, const char *github_event,
			 const char *gitlab_event, char *ref, size_t ref_cap, const char **source,
			 stk_err *err)
{
	yajl_val root = NULL;
	const char *found = NULL, *src = NULL;
	size_t n;
	int rc;

	if (!ref || ref_cap < NOTIFCTL_REF_MAX + 1 || !source)
		return stk_err_set(err, STK_EINVAL, "ref buffer smaller than %u bytes",
				   NOTIFCTL_REF_MAX + 1);
	if (len > STK_LIMIT_HTTP_BODY)
		return stk_err_set(err, STK_ETOOBIG, "payload of %zu bytes exceeds %u", len,
				   STK_LIMIT_HTTP_BODY);
	rc = payload_scan(body, len, err);
	if (rc)
		return rc;
	rc = stk_json_parse(&root, body, len, STK_LIMIT_HTTP_BODY, err);
	if (rc) {
		stk_err_wrap(err, "payload");
		goto out;
	}
	if (!YAJL_IS_OBJECT(root)) {
		rc = stk_err_set(err, STK_EINVAL, "payload must be a JSON object");
		goto out;
	}
	rc = payload_pick(root, github_event, gitlab_event, &found, &src, err);
	if (rc)
		goto out;
	n = strlen(found);
	rc = notifctl_ref_check(found, n, err);
	if (rc)
		goto out;
	memcpy(ref, found, n + 1);
	*source = src;
out:
	yajl_tree_free(root);
	return rc;
}
