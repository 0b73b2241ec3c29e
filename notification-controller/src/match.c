#include "match.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stk/alloc.h"
#include "stk/json.h"

struct notifctl_rules {
	const char *ns;
	const struct stk_alert_spec *spec;
	bool errors_only;
	regex_t *incl, *excl;
	size_t nincl, nexcl;
};

static void free_list(regex_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		regfree(&v[i]);
	free(v);
}

void notifctl_rules_free(struct notifctl_rules *r)
{
	if (!r)
		return;
	free_list(r->incl, r->nincl);
	free_list(r->excl, r->nexcl);
	free(r);
}

static int compile_list(const struct stk_api_strings *l, const char *field, regex_t **out,
			size_t *n, stk_err *err)
{
	*out = stk_calloc(l->len ? l->len : 1, sizeof(regex_t));
	*n = 0;
	for (size_t i = 0; i < l->len; i++) {
		int rc = regcomp(&(*out)[i], l->items[i], REG_EXTENDED | REG_NOSUB);
		if (rc) {
			char msg[200];
			regerror(rc, &(*out)[i], msg, sizeof(msg));
			return stk_err_set(err, STK_EINVAL,
					   "spec.%s[%zu]: bad regular expression \"%.200s\": %s",
					   field, i, l->items[i], msg);
		}
		(*n)++;
	}
	return 0;
}

int notifctl_rules_compile(struct notifctl_rules **out, const char *alert_ns,
			   const struct stk_alert_spec *spec, stk_err *err)
{
	struct notifctl_rules *r = stk_calloc(1, sizeof(*r));
	const struct stk_event_source *src = spec->event_sources.items;
	int rc;

	r->ns = alert_ns;
	r->spec = spec;
	r->errors_only = spec->event_severity && !strcmp(spec->event_severity, "error");
	for (size_t i = 0; i < spec->event_sources.len; i++) {
		if (!src[i].kind || !src[i].name || !*src[i].name) {
			notifctl_rules_free(r);
			return stk_err_set(err, STK_EINVAL,
					   "spec.eventSources[%zu]: kind and name are required", i);
		}
		if (src[i].match_labels.len && strcmp(src[i].name, "*")) {
			notifctl_rules_free(r);
			return stk_err_set(err, STK_EINVAL,
					   "spec.eventSources[%zu].matchLabels needs name \"*\"",
					   i);
		}
	}
	if ((rc = compile_list(&spec->inclusion_list, "inclusionList", &r->incl, &r->nincl, err)) ||
	    (rc = compile_list(&spec->exclusion_list, "exclusionList", &r->excl, &r->nexcl, err))) {
		notifctl_rules_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

static bool labels_match(const struct stk_api_strmap *want, yajl_val labels)
{
	for (size_t i = 0; i < want->len; i++) {
		const char *v = labels ? stk_json_str(labels, want->keys[i], NULL) : NULL;
		if (!v || strcmp(v, want->values[i]))
			return false;
	}
	return true;
}

static bool source_ns_is(const struct notifctl_rules *r, const struct stk_event_source *s,
			 const char *ns)
{
	return !strcmp(s->ns && *s->ns ? s->ns : r->ns, ns ? ns : "");
}

bool notifctl_rules_need_labels(const struct notifctl_rules *r, const char *kind, const char *ns)
{
	const struct stk_event_source *src = r->spec->event_sources.items;

	for (size_t i = 0; i < r->spec->event_sources.len; i++)
		if (!strcmp(src[i].kind, kind) && source_ns_is(r, &src[i], ns) &&
		    !strcmp(src[i].name, "*") && src[i].match_labels.len)
			return true;
	return false;
}

bool notifctl_rules_match(const struct notifctl_rules *r, const struct notifctl_match_in *in)
{
	const struct stk_event_source *src = r->spec->event_sources.items;
	const char *msg = in->message ? in->message : "";
	bool found = false;

	if (r->errors_only && !in->error)
		return false;
	for (size_t i = 0; i < r->spec->event_sources.len && !found; i++) {
		const struct stk_event_source *s = &src[i];
		if (!in->kind || strcmp(s->kind, in->kind) || !source_ns_is(r, s, in->ns))
			continue;
		if (strcmp(s->name, "*"))
			found = in->name && !strcmp(s->name, in->name);
		else
			found = labels_match(&s->match_labels, in->labels);
	}
	if (!found)
		return false;
	for (size_t i = 0; i < r->nexcl; i++)
		if (!regexec(&r->excl[i], msg, 0, NULL, 0))
			return false;
	if (!r->nincl)
		return true;
	for (size_t i = 0; i < r->nincl; i++)
		if (!regexec(&r->incl[i], msg, 0, NULL, 0))
			return true;
	return false;
}
