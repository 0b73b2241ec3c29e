/*
 * Fetching the content of a commit into the agent's scratch directory (REPO_PATH), in
 * either source mode (DESIGN.md §5):
 *  - artifact: GET the source-controller's tar.gz with the pod's projected service
 *    account token, verify its digest, unpack it safely (unpack.h);
 *  - git: fetch the commit with libgit2 into a bare cache using the mounted credentials,
 *    and export its tree (files and directories only, as the packer does).
 * Each commit lands in REPO_PATH/trees/<sha>, complete or not at all, and is reused when
 * already there.
 */
#ifndef AGENT_SOURCE_H
#define AGENT_SOURCE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "stk/buf.h"
#include "stk/err.h"
#include "stk/git.h"

struct agent_source_req {
	const char *repo_path; /* REPO_PATH */
	bool git;	       /* git mode (else artifact) */
	/* artifact mode */
	const char *url;	/* the artifact of `commit` */
	const char *digest;	/* "sha256:…" expected, or NULL: the server's ETag is used */
	const char *token_file; /* projected service-account token */
	/* git mode */
	const char *git_url;
	const struct stk_git_creds *creds;
	const char *ref;    /* resolved when `commit` is NULL (ref-override), else fetched */
	const char *commit; /* the commit wanted (40 hex), or NULL */
	const volatile sig_atomic_t *stop;
};

/*
 * Makes REPO_PATH/trees/<sha> hold the commit's tree and writes its path into `tree`
 * and the commit into `commit_out` (the resolved one for a ref-override). 0; STK_EAUTH
 * (token or credentials refused), STK_ENOTFOUND (no such artifact, ref or commit),
 * STK_EUNAVAIL (server unreachable or failing), STK_EINVAL (digest mismatch, hostile
 * archive or tree: the message says which entry), STK_ETOOBIG, STK_EIO, STK_ECANCELED.
 * The message never holds a credential. Worker thread; blocking.
 */
int agent_source_fetch(const struct agent_source_req *req, stk_buf *tree, char commit_out[41],
		       stk_err *err);

/*
 * Removes every tree under REPO_PATH/trees except `keep` and `keep2` (either may be
 * NULL), and leftover temporary downloads. Best effort. Worker thread.
 */
void agent_source_prune(const char *repo_path, const char *keep, const char *keep2);

/*
 * Reads a credential file into a new string (trailing newline dropped), or NULL when
 * `path` is NULL. The caller wipes and frees it. 0 or STK_EIO naming the file.
 */
int agent_source_read_secret(const char *path, char **out, stk_err *err);

#endif
