/*
 * The fleet of one Stoker as the sync-controller sees it: its discovered gateway pods with
 * what their agents reported, and the SyncProfiles they use. Pure logic, no I/O: given
 * the target commit it computes each profile's gate (DESIGN.md §3.2, CONTRACTS.md: the
 * commit a profile's gateways may sync, held back while a dependsOn profile still has a
 * gateway not Synced at the target) and each gateway's state, and summarises the fleet
 * into the AllGatewaysSynced, SidecarInjected and RefSkew conditions. Any thread.
 */
#ifndef SYNCCTL_FLEET_H
#define SYNCCTL_FLEET_H

#include <stdbool.h>
#include <stddef.h>

#include "stk/api/api.h"
#include "stk/buf.h"

struct syncctl_gateway {
	char *pod;	    /* pod name */
	char *name;	    /* gateway name (annotation, label, pod name) */
	char *profile;	    /* stoker.io/sync-profile, or NULL (2-tier) */
	char *ref_override; /* stoker.io/ref-override, or NULL */
	bool sidecar;	    /* the agent container is in the pod spec */
	bool has_report;    /* the agent wrote its key of stoker-status-<cr> */
	struct stk_gateway_report rep;
	/* computed by syncctl_fleet_evaluate: */
	const char *state; /* Pending|Syncing|Synced|Error|MissingSidecar|Blocked */
	bool synced;	   /* Synced at the target (or at its override ref) */
};

struct syncctl_profile {
	char *name;
	bool found;	 /* the SyncProfile exists */
	bool accepted;	 /* its Accepted condition is True */
	char *not_ready; /* why not (condition message), or NULL */
	char *needed_by; /* a profile depending on it, when no pod uses it directly */
	struct stk_syncprofile_spec spec; /* decoded with defaults (when found) */
	char *prev_gate;		  /* the gate in the current metadata, or NULL */
	char *gate;			  /* computed */
};

struct syncctl_fleet {
	const char *commit; /* target commit, "" when the source has no artifact yet */
	struct syncctl_gateway *gws;
	size_t ngws, capgws;
	struct syncctl_profile *profiles;
	size_t nprofiles, capprofiles;
	/* computed counts */
	size_t synced, missing_sidecar, errors, blocked;
};

/* Appends a zeroed gateway / profile owned by the fleet. */
struct syncctl_gateway *syncctl_fleet_add_gateway(struct syncctl_fleet *f);
struct syncctl_profile *syncctl_fleet_add_profile(struct syncctl_fleet *f, const char *name);
struct syncctl_profile *syncctl_fleet_profile(struct syncctl_fleet *f, const char *name);
void syncctl_fleet_release(struct syncctl_fleet *f);

/* Computes gates, gateway states and the counts. Gateways end up sorted by name, pod. */
void syncctl_fleet_evaluate(struct syncctl_fleet *f);

/* The AllGatewaysSynced condition for the evaluated fleet; `cr` names the Stoker. */
void syncctl_fleet_synced_condition(const struct syncctl_fleet *f, const char *cr,
				    enum stk_condition_status *status, const char **reason,
				    stk_buf *msg);

#endif
