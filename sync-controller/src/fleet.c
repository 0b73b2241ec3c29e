#include "fleet.h"

#include <stdlib.h>
#include <string.h>

#include "stk/alloc.h"

struct syncctl_gateway *syncctl_fleet_add_gateway(struct syncctl_fleet *f)
{
	if (f->ngws == f->capgws) {
		f->capgws = f->capgws ? f->capgws * 2 : 8;
		f->gws = stk_realloc(f->gws, f->capgws * sizeof(*f->gws));
	}
	memset(&f->gws[f->ngws], 0, sizeof(*f->gws));
	return &f->gws[f->ngws++];
}

struct syncctl_profile *syncctl_fleet_profile(struct syncctl_fleet *f, const char *name)
{
	for (size_t i = 0; i < f->nprofiles; i++)
		if (!strcmp(f->profiles[i].name, name))
			return &f->profiles[i];
	return NULL;
}

struct syncctl_profile *syncctl_fleet_add_profile(struct syncctl_fleet *f, const char *name)
{
	struct syncctl_profile *p = syncctl_fleet_profile(f, name);

	if (p)
		return p;
	if (f->nprofiles == f->capprofiles) {
		f->capprofiles = f->capprofiles ? f->capprofiles * 2 : 4;
		f->profiles = stk_realloc(f->profiles, f->capprofiles * sizeof(*f->profiles));
	}
	p = &f->profiles[f->nprofiles++];
	memset(p, 0, sizeof(*p));
	p->name = stk_strdup(name);
	return p;
}

void syncctl_fleet_release(struct syncctl_fleet *f)
{
	for (size_t i = 0; i < f->ngws; i++) {
		struct syncctl_gateway *g = &f->gws[i];
		free(g->pod);
		free(g->name);
		free(g->profile);
		free(g->ref_override);
		stk_api_release(&stk_api_gateway_report_type, &g->rep);
	}
	for (size_t i = 0; i < f->nprofiles; i++) {
		struct syncctl_profile *p = &f->profiles[i];
		free(p->name);
		free(p->not_ready);
		free(p->needed_by);
		free(p->prev_gate);
		free(p->gate);
		stk_api_release(&stk_api_syncprofile_spec_type, &p->spec);
	}
	free(f->gws);
	free(f->profiles);
	memset(f, 0, sizeof(*f));
}

static bool str_eq(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

/* The commit every gateway of profile `dep` reports Synced at: 1 all at `commit` (or no
 * gateways), 0 all at one other commit (*common), -1 otherwise. */
static int dep_state(const struct syncctl_fleet *f, const char *dep, const char **common)
{
	bool all_target = true;
	const char *c = NULL;

	for (size_t i = 0; i < f->ngws; i++) {
		const struct syncctl_gateway *g = &f->gws[i];
		if (!str_eq(g->profile, dep))
			continue;
		if (!g->has_report || !str_eq(g->rep.sync_status, "Synced") ||
		    !g->rep.synced_commit || !*g->rep.synced_commit)
			return -1;
		if (strcmp(g->rep.synced_commit, f->commit))
			all_target = false;
		if (c && strcmp(c, g->rep.synced_commit))
			return -1;
		c = g->rep.synced_commit;
	}
	*common = c;
	return all_target ? 1 : 0;
}

static void compute_gate(struct syncctl_fleet *f, struct syncctl_profile *p)
{
	const struct stk_dependency *deps = p->spec.depends_on.items;
	const char *common = NULL, *agreed = NULL;
	bool all_target = true, agree = true;

	free(p->gate);
	p->gate = NULL;
	if (!*f->commit) {
		p->gate = stk_strdup("");
		return;
	}
	for (size_t i = 0; i < p->spec.depends_on.len; i++) {
		int st;
		if (!deps[i].profile_name || !syncctl_fleet_profile(f, deps[i].profile_name) ||
		    !syncctl_fleet_profile(f, deps[i].profile_name)->found) {
			all_target = agree = false;
			break;
		}
		st = dep_state(f, deps[i].profile_name, &common);
		if (st < 0) {
			all_target = agree = false;
			break;
		}
		if (st == 0)
			all_target = false;
		if (common) {
			if (agreed && strcmp(agreed, common))
				agree = false;
			agreed = common;
		}
	}
	if (all_target)
		p->gate = stk_strdup(f->commit);
	else if (agree && agreed)
		p->gate = stk_strdup(agreed); /* every dependency reached this one */
	else
		p->gate = stk_strdup(p->prev_gate ? p->prev_gate : "");
}

static int gw_cmp(const void *a, const void *b)
{
	const struct syncctl_gateway *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->pod, y->pod);
}

void syncctl_fleet_evaluate(struct syncctl_fleet *f)
{
	if (!f->commit)
		f->commit = "";
	if (f->ngws > 1)
		qsort(f->gws, f->ngws, sizeof(*f->gws), gw_cmp);
	for (size_t i = 0; i < f->nprofiles; i++)
		compute_gate(f, &f->profiles[i]);
	f->synced = f->missing_sidecar = f->errors = f->blocked = 0;
	for (size_t i = 0; i < f->ngws; i++) {
		struct syncctl_gateway *g = &f->gws[i];
		const struct syncctl_profile *p =
			g->profile ? syncctl_fleet_profile(f, g->profile) : NULL;
		const char *agent = g->has_report ? g->rep.sync_status : NULL;
		bool held = p && p->gate && strcmp(p->gate, f->commit);

		g->synced = false;
		if (!g->sidecar) {
			g->state = "MissingSidecar";
			f->missing_sidecar++;
			continue;
		}
		if (g->ref_override)
			g->synced = str_eq(agent, "Synced") &&
				    str_eq(g->rep.synced_ref, g->ref_override);
		else
			g->synced = stk_api_report_synced_at(&g->rep, f->commit);
		if (g->synced)
			g->state = "Synced";
		else if (str_eq(agent, "Error"))
			g->state = "Error";
		else if (held && !g->ref_override)
			g->state = "Blocked";
		else if (str_eq(agent, "Syncing") || str_eq(agent, "Blocked"))
			g->state = agent;
		else
			g->state = "Pending";
		if (g->synced)
			f->synced++;
		else if (!strcmp(g->state, "Error"))
			f->errors++;
		else if (held && !g->ref_override)
			f->blocked++;
	}
}

void syncctl_fleet_synced_condition(const struct syncctl_fleet *f, const char *cr,
				    enum stk_condition_status *status, const char **reason,
				    stk_buf *msg)
{
	const char *sep = " (";

	if (!f->ngws) {
		*status = STK_CONDITION_FALSE;
		*reason = STK_REASON_NO_GATEWAYS;
		stk_buf_printf(msg, "no running gateway pods with annotation %s=%s",
			       STK_ANN_CR_NAME, cr);
		return;
	}
	stk_buf_printf(msg, "%zu/%zu gateways synced", f->synced, f->ngws);
	if (f->synced == f->ngws) {
		*status = STK_CONDITION_TRUE;
		*reason = STK_REASON_SYNC_SUCCEEDED;
		return;
	}
	*status = STK_CONDITION_FALSE;
	if (f->errors) {
		*reason = STK_REASON_SYNC_FAILED;
		stk_buf_puts(msg, "; failed:");
		for (size_t i = 0; i < f->ngws; i++) {
			const struct syncctl_gateway *g = &f->gws[i];
			if (g->synced || strcmp(g->state, "Error"))
				continue;
			stk_buf_printf(msg, " %s", g->name);
			if (g->rep.error_message && *g->rep.error_message)
				stk_buf_printf(msg, " (%s)", g->rep.error_message);
		}
		return;
	}
	*reason = STK_REASON_SYNC_IN_PROGRESS;
	if (!*f->commit) {
		stk_buf_puts(msg, " (waiting for the source's first artifact)");
		return;
	}
	if (f->missing_sidecar) {
		stk_buf_printf(msg, "%s%zu missing sidecar", sep, f->missing_sidecar);
		sep = ", ";
	}
	if (f->blocked) {
		stk_buf_printf(msg, "%s%zu blocked by dependsOn", sep, f->blocked);
		sep = ", ";
	}
	if (strcmp(sep, " ("))
		stk_buf_putc(msg, ')');
}
