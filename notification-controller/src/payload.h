/*
 * The ref a webhook payload asks for (CONTRACTS.md "Webhook receiver"). Pure functions
 * over the raw request body and two headers; no I/O, no global state; fuzzed.
 *
 * Extraction, first present rule wins (a rule is present when its member is a JSON
 * string; its value is then validated and an invalid value is an error, never a reason
 * to try the next rule):
 *
 *   1. release.tag_name                                  source "github"
 *   2. ref starting with refs/heads/ or refs/tags/       prefix stripped; source "gitlab"
 *      when object_kind is "push" or "tag_push" or the X-Gitlab-Event header is set,
 *      else "github" (GitHub, Gitea and Forgejo pushes)
 *   3. object_kind "push" or "tag_push" with a ref       source "gitlab"
 *   4. app.metadata.annotations["git.ref"]              source "argocd"
 *   5. freight.commits[0].tag                            source "kargo"
 *   6. top-level ref                                     source "generic"
 *
 * Refused on purpose: a push that deletes its branch or tag (rules 2 and 3 with
 * "deleted": true, or "after" all zeros), a GitHub "delete" event, a GitHub "ping" event
 * and a "deleted" release: acting on them would ask Stoker to sync a ref that is gone.
 *
 * The ref must be a name `git check-ref-format --allow-onelevel` accepts, or a 40-hex
 * commit SHA (which is one), and also: at most NOTIFCTL_REF_MAX bytes, valid UTF-8, not
 * starting with '-'. Exactly: non-empty; no byte below 0x20, no DEL, no space and none of
 * ~ ^ : ? * [ \ ; no "..", no "@{", not "@"; no leading, trailing or doubled '/'; no
 * component starting with '.' or ending with ".lock"; not ending with '.'.
 */
#ifndef NOTIFCTL_PAYLOAD_H
#define NOTIFCTL_PAYLOAD_H

#include <stddef.h>

#include "stk/err.h"

/* Longest ref accepted, in bytes (without the terminating NUL). */
#define NOTIFCTL_REF_MAX 255u
/* Deepest nesting of arrays and objects accepted in a payload (real ones nest < 10). */
#define NOTIFCTL_PAYLOAD_MAX_DEPTH 64u

/*
 * Parses the payload body[0..len) (need not be NUL-terminated; at most
 * STK_LIMIT_HTTP_BODY bytes) and writes the ref it requests into ref[0..ref_cap) as a
 * NUL-terminated string, and its source ("github", "gitlab", "argocd", "kargo",
 * "generic"; static storage) into *source. `github_event` and `gitlab_event` are the
 * X-GitHub-Event and X-Gitlab-Event header values, or NULL when absent.
 *
 * Returns 0; STK_EPARSE (not JSON, nested deeper than NOTIFCTL_PAYLOAD_MAX_DEPTH, or a
 * string holding an escaped NUL "\u0000", which would cut a ref silently);
 * STK_ETOOBIG (body above STK_LIMIT_HTTP_BODY); STK_EINVAL (the root is not an object,
 * no rule matches, the ref is invalid, the event deletes the ref, or ref_cap is smaller
 * than NOTIFCTL_REF_MAX + 1). `err` gets a one-line message fit for the HTTP client
 * ("no ref found in the payload ...", "ref 'a..b' contains '..'"); a ref quoted in it is
 * cut to 64 bytes with non-printable bytes shown as '?'. Outputs are written only on
 * success. Any thread.
 */
int notifctl_payload_ref(const char *body, size_t len, const char *github_event,
			 const char *gitlab_event, char *ref, size_t ref_cap, const char **source,
			 stk_err *err);

/*
 * Checks that ref[0..len) is a ref the receiver accepts (the rules above). 0 or
 * STK_EINVAL with a message naming the broken rule. Pure; any thread.
 */
int notifctl_ref_check(const char *ref, size_t len, stk_err *err);

#endif
