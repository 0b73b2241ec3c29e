/*
 * The agent's sync engine (DESIGN.md §3.2, §5): makes a gateway data directory match the
 * mapped part of a checked-out commit, safely.
 *
 * Plan. Mappings in order (a later one overlays an earlier one), each `dir` or `file`,
 * `required` or optional; source and destination are templates (stk/api/template.h)
 * expanded first, then must be relative without `..`. The deployment-mode overlay
 * (`deploymentMode.source`) is applied after all mappings onto `config/resources/core`.
 * 2-tier mode (no profile) maps `<service-path>/` onto the data directory root. Excludes
 * are the union of every tier (annotation, SyncProfile, Stoker) plus the mandatory ones
 * (everything under any `.resources`, `.git` or `.sync-staging` directory), matched against both
 * the repository path and the data path of each file.
 *
 * Safety rules, all checked before the live directory is touched (a failing sync changes
 * nothing): every path stays inside the data directory; symlinks in the source are
 * refused (the sync fails naming them) — never followed, never copied; every
 * `config.json` that would be written must be valid JSON (the error names the file and
 * the position); nothing is written into, read from or deleted under a `.resources`
 * directory.
 *
 * Merge. File by file: a temporary file in the destination's own directory, written,
 * fsynced, renamed over the old one; directories fsynced afterwards. A crash at any
 * instant leaves each file either the old or the new version (never torn) and the next
 * run converges. Unchanged files are not rewritten: a manifest (data path → size, mtime,
 * sha256), kept in the state directory, not in the data directory, lets a no-op sync
 * look at file metadata only. Orphans (files no mapping produced) are deleted only under
 * managed roots — the destinations of `dir` mappings — and the directories left empty are
 * removed up to the managed root; a `file` mapping manages only that file, so a
 * root-level file never makes the data root a managed root.
 */
#ifndef AGENT_ENGINE_H
#define AGENT_ENGINE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stk/api/api.h"
#include "stk/api/template.h"
#include "stk/buf.h"
#include "stk/err.h"

struct agent_mapping {
	char *source; /* repository-relative, expanded */
	char *dest;   /* data-relative, expanded; "" is the data root */
	bool file;    /* type file (else dir) */
	bool required;
	bool overlay; /* the deployment-mode overlay: adds and replaces, deletes nothing */
};

struct agent_plan {
	struct agent_mapping *maps;
	size_t nmaps;
	char **excludes; /* every tier plus the mandatory ones */
	size_t nexcludes;
};

/*
 * Builds the plan from a SyncProfile spec (NULL for 2-tier mode with `service_path`),
 * the template variables, and the extra excludes of the Stoker and the pod annotation
 * (each may be NULL). STK_EINVAL naming the field for a template error, an unsafe path,
 * or a malformed exclude pattern. Any thread.
 */
int agent_plan_build(struct agent_plan *out, const struct stk_syncprofile_spec *spec,
		     const char *service_path, const struct stk_template_vars *vars,
		     const char *const *stoker_excludes, size_t nstoker,
		     const char *const *pod_excludes, size_t npod, stk_err *err);
void agent_plan_release(struct agent_plan *p);

#define AGENT_DIFF_PATHS 100 /* paths kept per kind in a result */

struct agent_paths {
	char **items; /* at most AGENT_DIFF_PATHS */
	size_t len;
	uint64_t count; /* all of them */
};

struct agent_result {
	struct agent_paths added, modified, deleted, skipped; /* skipped: optional sources */
	struct agent_paths projects;			      /* projects/<name> touched */
	uint64_t unchanged;
	uint64_t bytes_written;
	double seconds;
	bool dry_run;
};

struct agent_sync_opts {
	const char *repo;  /* the checked-out commit */
	const char *data;  /* the gateway data directory */
	const char *state; /* where the manifest lives; not inside `data` */
	bool dry_run;	   /* compute the diff, touch nothing */
	const struct agent_plan *plan;
	/* Set asynchronously (SIGTERM): the sync stops after the file being written. */
	const volatile sig_atomic_t *stop;
};

/*
 * Runs one sync. 0 with the result filled; STK_EINVAL (a safety rule, the message says
 * which and where; nothing was changed), STK_ENOTFOUND (a required source is missing;
 * nothing changed), STK_EIO (a filesystem error while merging: files done so far are
 * complete, the next run converges), STK_ECANCELED (stopped by *stop). Any thread.
 */
int agent_sync(const struct agent_sync_opts *o, struct agent_result *res, stk_err *err);

/*
 * True when data directory's files are the whole result of the last sync that changed
 * them: its manifest is in `state`, and no run has begun changing them since without
 * completing (a run killed or stopped mid-way, or one that failed while writing). Any
 * thread.
 */
bool agent_data_settled(const char *state);

/*
 * Drift: compares the data directory with the manifest of the last sync; files that
 * differ are `modified`, files gone are `deleted`, files that appeared under a managed
 * root are `added`. 0, or STK_ENOTFOUND when there is no manifest. Any thread.
 */
int agent_drift(const char *data, const char *state, struct agent_result *res, stk_err *err);

void agent_result_release(struct agent_result *r);

/* Appends the result as JSON (the shape of the status ConfigMap's counts and diff). */
void agent_result_json(const struct agent_result *r, stk_buf *b);

#endif
