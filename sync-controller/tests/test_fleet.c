#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fleet.h"
#include "stk/alloc.h"

#define C0 "0000000000000000000000000000000000000000"
#define C1 "1111111111111111111111111111111111111111"

static struct syncctl_gateway *gw(struct syncctl_fleet *f, const char *pod, const char *profile,
				  const char *status, const char *commit)
{
	struct syncctl_gateway *g = syncctl_fleet_add_gateway(f);

	g->pod = stk_strdup(pod);
	g->name = stk_strdup(pod);
	g->profile = profile ? stk_strdup(profile) : NULL;
	g->sidecar = true;
	if (status) {
		g->has_report = true;
		g->rep.present = true;
		g->rep.sync_status = stk_strdup(status);
		g->rep.synced_commit = commit ? stk_strdup(commit) : NULL;
	}
	return g;
}

/* Profile `name`, found and accepted, depending on `dep` (or none). */
static struct syncctl_profile *profile(struct syncctl_fleet *f, const char *name, const char *dep,
				       const char *prev_gate)
{
	struct syncctl_profile *p = syncctl_fleet_add_profile(f, name);

	p->found = p->accepted = true;
	if (dep) {
		struct stk_dependency *d = stk_calloc(1, sizeof(*d));
		d->present = true;
		d->profile_name = stk_strdup(dep);
		p->spec.depends_on.present = true;
		p->spec.depends_on.items = d;
		p->spec.depends_on.len = 1;
	}
	p->prev_gate = prev_gate ? stk_strdup(prev_gate) : NULL;
	return p;
}

static const char *gate(struct syncctl_fleet *f, const char *name)
{
	return syncctl_fleet_profile(f, name)->gate;
}

static const char *state(struct syncctl_fleet *f, const char *pod)
{
	for (size_t i = 0; i < f->ngws; i++)
		if (!strcmp(f->gws[i].pod, pod))
			return f->gws[i].state;
	fail_msg("no gateway %s", pod);
	return NULL;
}

static void condition(struct syncctl_fleet *f, enum stk_condition_status want_status,
		      const char *want_reason, const char *want_msg)
{
	enum stk_condition_status st;
	const char *reason;
	stk_buf msg = STK_BUF_INIT(4096);

	syncctl_fleet_synced_condition(f, "plant", &st, &reason, &msg);
	assert_int_equal(st, want_status);
	assert_string_equal(reason, want_reason);
	assert_string_equal(msg.ptr, want_msg);
	stk_buf_release(&msg);
}

static void test_fleet__gate_holds_until_every_dependency_gateway_synced(void **state_)
{
	struct syncctl_fleet f = {0};

	(void)state_;
	profile(&f, "site", NULL, NULL);
	profile(&f, "area", "site", C0);
	gw(&f, "site-0", "site", "Synced", C1);
	gw(&f, "site-1", "site", "Syncing", C0);
	gw(&f, "area-0", "area", "Synced", C0);
	f.commit = C1;
	syncctl_fleet_evaluate(&f);
	assert_string_equal(gate(&f, "site"), C1);
	assert_string_equal(gate(&f, "area"), C0); /* stays at the previous gate */
	assert_string_equal(state(&f, "area-0"), "Blocked");
	assert_string_equal(state(&f, "site-1"), "Syncing");
	assert_string_equal(state(&f, "site-0"), "Synced");
	condition(&f, STK_CONDITION_FALSE, "SyncInProgress",
		  "1/3 gateways synced (1 blocked by dependsOn)");

	/* The last site gateway reaches the target: the area gate advances. */
	free(f.gws[2].rep.synced_commit); /* sorted: area-0, site-0, site-1 */
	assert_string_equal(f.gws[2].pod, "site-1");
	f.gws[2].rep.synced_commit = stk_strdup(C1);
	free(f.gws[2].rep.sync_status);
	f.gws[2].rep.sync_status = stk_strdup("Synced");
	syncctl_fleet_evaluate(&f);
	assert_string_equal(gate(&f, "area"), C1);
	assert_string_equal(state(&f, "area-0"), "Pending");
	condition(&f, STK_CONDITION_FALSE, "SyncInProgress", "2/3 gateways synced");
	syncctl_fleet_release(&f);
}

static void test_fleet__gate_follows_the_commit_all_dependencies_reached(void **state_)
{
	struct syncctl_fleet f = {0};

	(void)state_;
	profile(&f, "site", NULL, NULL);
	profile(&f, "area", "site", NULL); /* new profile: no previous gate */
	gw(&f, "site-0", "site", "Synced", C0);
	gw(&f, "area-0", "area", NULL, NULL);
	f.commit = C1;
	syncctl_fleet_evaluate(&f);
	assert_string_equal(gate(&f, "area"), C0);
	assert_string_equal(state(&f, "area-0"), "Blocked");
	syncctl_fleet_release(&f);
}

static void test_fleet__gate_is_empty_without_any_agreed_commit(void **state_)
{
	struct syncctl_fleet f = {0};

	(void)state_;
	profile(&f, "site", NULL, NULL);
	profile(&f, "area", "site", NULL);
	gw(&f, "site-0", "site", "Pending", NULL);
	f.commit = C1;
	syncctl_fleet_evaluate(&f);
	assert_string_equal(gate(&f, "area"), "");
	syncctl_fleet_release(&f);
}

static void test_fleet__dependency_without_gateways_or_missing(void **state_)
{
	struct syncctl_fleet f = {0};

	(void)state_;
	profile(&f, "site", NULL, NULL);
	profile(&f, "area", "site", NULL);
	profile(&f, "line", "ghost", C0);
	f.commit = C1;
	syncctl_fleet_evaluate(&f);
	assert_string_equal(gate(&f, "area"), C1); /* no site gateways: nothing to wait for */
	assert_string_equal(gate(&f, "line"), C0); /* unknown dependency: held */
	condition(&f, STK_CONDITION_FALSE, "NoGatewaysDiscovered",
		  "no running gateway pods with annotation stoker.io/cr-name=plant");
	syncctl_fleet_release(&f);
}

static void test_fleet__states_and_summary(void **state_)
{
	struct syncctl_fleet f = {0};
	struct syncctl_gateway *g;

	(void)state_;
	gw(&f, "a", NULL, "Synced", C1);
	g = gw(&f, "b", NULL, NULL, NULL);
	g->sidecar = false;
	gw(&f, "c", NULL, NULL, NULL);
	f.commit = C1;
	syncctl_fleet_evaluate(&f);
	assert_string_equal(state(&f, "b"), "MissingSidecar");
	assert_string_equal(state(&f, "c"), "Pending");
	condition(&f, STK_CONDITION_FALSE, "SyncInProgress",
		  "1/3 gateways synced (1 missing sidecar)");

	g = &f.gws[2];
	g->has_report = true;
	g->rep.sync_status = stk_strdup("Error");
	g->rep.error_message = stk_strdup("scan failed: 500");
	syncctl_fleet_evaluate(&f);
	condition(&f, STK_CONDITION_FALSE, "SyncFailed",
		  "1/3 gateways synced; failed: c (scan failed: 500)");

	free(g->rep.sync_status);
	g->rep.sync_status = stk_strdup("Synced");
	g->rep.synced_commit = stk_strdup(C1);
	f.gws[1].sidecar = true;
	f.gws[1].has_report = true;
	f.gws[1].rep.sync_status = stk_strdup("Synced");
	f.gws[1].rep.synced_commit = stk_strdup(C0); /* behind */
	syncctl_fleet_evaluate(&f);
	assert_string_equal(state(&f, "b"), "Pending");
	condition(&f, STK_CONDITION_FALSE, "SyncInProgress", "2/3 gateways synced");
	free(f.gws[1].rep.synced_commit);
	f.gws[1].rep.synced_commit = stk_strdup(C1);
	syncctl_fleet_evaluate(&f);
	condition(&f, STK_CONDITION_TRUE, "SyncSucceeded", "3/3 gateways synced");
	syncctl_fleet_release(&f);
}

static void test_fleet__ref_override_counts_at_its_own_ref(void **state_)
{
	struct syncctl_fleet f = {0};
	struct syncctl_gateway *g;

	(void)state_;
	g = gw(&f, "canary", NULL, "Synced", C0);
	g->ref_override = stk_strdup("v2");
	g->rep.synced_ref = stk_strdup("v1");
	f.commit = C1;
	syncctl_fleet_evaluate(&f);
	assert_false(f.gws[0].synced);
	free(g->rep.synced_ref);
	g->rep.synced_ref = stk_strdup("v2");
	syncctl_fleet_evaluate(&f);
	assert_true(f.gws[0].synced);
	assert_string_equal(state(&f, "canary"), "Synced");
	syncctl_fleet_release(&f);
}

static void test_fleet__no_commit_yet(void **state_)
{
	struct syncctl_fleet f = {0};

	(void)state_;
	profile(&f, "site", NULL, NULL);
	gw(&f, "a", "site", NULL, NULL);
	f.commit = "";
	syncctl_fleet_evaluate(&f);
	assert_string_equal(gate(&f, "site"), "");
	condition(&f, STK_CONDITION_FALSE, "SyncInProgress",
		  "0/1 gateways synced (waiting for the source's first artifact)");
	syncctl_fleet_release(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fleet__gate_holds_until_every_dependency_gateway_synced),
		cmocka_unit_test(test_fleet__gate_follows_the_commit_all_dependencies_reached),
		cmocka_unit_test(test_fleet__gate_is_empty_without_any_agreed_commit),
		cmocka_unit_test(test_fleet__dependency_without_gateways_or_missing),
		cmocka_unit_test(test_fleet__states_and_summary),
		cmocka_unit_test(test_fleet__ref_override_counts_at_its_own_ref),
		cmocka_unit_test(test_fleet__no_commit_yet),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
