/*
 * Which events an Alert sends (DESIGN.md §3.4): event sources (kind, name or "*",
 * namespace defaulting to the Alert's, matchLabels with "*"), severity, and the
 * inclusion and exclusion lists of POSIX extended regular expressions over the event
 * message — exclusion wins.
 */
#ifndef NOTIFCTL_MATCH_H
#define NOTIFCTL_MATCH_H

#include <stdbool.h>
#include <yajl/yajl_tree.h>

#include "stk/api/types.h"
#include "stk/err.h"

struct notifctl_rules;

/*
 * Compiles the rules of `spec` for an Alert in namespace `alert_ns`. The spec must
 * outlive the rules (its strings are borrowed). 0, or STK_EINVAL naming the first bad
 * expression ("spec.exclusionList[1]: bad regular expression \"(\": ...") or source.
 * Any thread.
 */
int notifctl_rules_compile(struct notifctl_rules **out, const char *alert_ns,
			   const struct stk_alert_spec *spec, stk_err *err);
void notifctl_rules_free(struct notifctl_rules *r);

/* The part of an event the rules look at. `labels` are the involved object's (may be NULL). */
struct notifctl_match_in {
	const char *kind, *ns, *name;
	yajl_val labels;
	bool error; /* a Warning event */
	const char *message;
};

/* True when the Alert sends this event. Pure; any thread. */
bool notifctl_rules_match(const struct notifctl_rules *r, const struct notifctl_match_in *in);

/* True when some source of the rules names kind/ns with name "*" and matchLabels: the
 * caller then needs the object's labels. */
bool notifctl_rules_need_labels(const struct notifctl_rules *r, const char *kind, const char *ns);

#endif
