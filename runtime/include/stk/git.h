/*
 * Talking to Git remotes with libgit2: listing refs (ls-remote), resolving a ref (branch,
 * tag, semver range, name, commit) to a commit, fetching that commit incrementally into a
 * bare repository, and exporting a commit's tree, with credentials held in memory only
 * (never written to disk) and ssh host keys checked against known_hosts when given.
 */
#ifndef STK_GIT_H
#define STK_GIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <git2.h>

#include "stk/err.h"

/* Credentials read from Secrets for one reconcile; the caller wipes and frees them. */
struct stk_git_creds {
	const char *ssh_key;	 /* PEM/OpenSSH private key, or NULL */
	const char *known_hosts; /* known_hosts text, or NULL: host key not verified */
	const char *username;	 /* basic auth, or NULL */
	const char *password;
	const char *token; /* https token (sent as the password of user "git"), or NULL */
};

/* What a GitSource asks for: exactly one field is set (the API validates that). */
struct stk_git_ref_spec {
	const char *branch, *tag, *semver, *commit, *name;
};

/* The outcome of resolution. */
struct stk_git_resolved {
	char commit[41];	/* 40-hex commit id */
	char ref[256];		/* "main", "v1.2.0" — what status.artifact.ref shows */
	char refname[300];	/* "refs/heads/main", "refs/tags/v1.2.0"; "" for a bare commit */
	bool host_key_verified; /* ssh with known_hosts that matched */
};

struct stk_git_remote_opts {
	const char *url;
	const struct stk_git_creds *auth;
	uint64_t timeout_ms; /* whole operation; 0: none */
};

/*
 * One-time libgit2 set-up (thread-safe, idempotent). Sets HOME to "/" when it is unset
 * (libgit2's ssh transport needs one), so call it from main before other threads start.
 */
void stk_git_init(void);

/*
 * Lists the remote's refs and resolves `spec`: a branch to its head; a tag to its commit
 * (annotated tags peeled); a semver range to the highest matching tag; `name` to a tag
 * if one exists, else a branch; a commit to itself (checked later by the fetch). Errors:
 * STK_EAUTH (authentication failed, or the ssh host key did not match known_hosts — the
 * message says which), STK_ENOTFOUND (no such branch/tag, no tag matches the range),
 * STK_EUNAVAIL (cannot reach the server), STK_ETIMEOUT, STK_EINVAL (bad range). The
 * message never contains a credential. Worker threads; blocking.
 */
int stk_git_resolve(const struct stk_git_remote_opts *o, const struct stk_git_ref_spec *spec,
		    struct stk_git_resolved *out, stk_err *err);

/*
 * Makes sure `commit` is in the bare repository at `repo_path` (created when missing),
 * fetching `refname` (or every branch and tag when refname is "" for a bare commit)
 * incrementally from the remote. Opens the repository into *repo_out (caller frees
 * with git_repository_free) on success. Same errors as resolve, plus STK_ENOTFOUND when
 * the commit is not in the remote's history and STK_EIO for local storage errors.
 */
int stk_git_fetch(const struct stk_git_remote_opts *o, const char *repo_path, const char *refname,
		  const char *commit, git_repository **repo_out, stk_err *err);

struct stk_git_export_result {
	uint64_t files, dirs, bytes;
	size_t skipped_symlinks;   /* symbolic links left out, as the artifact packer does */
	size_t skipped_submodules; /* gitlinks left out */
};

/*
 * Writes the tree of `commit` (in `repo`) as a new directory `dest`, which must not
 * exist: regular files (0644, or 0755 for git's 100755) and directories (0755) only —
 * symbolic links and submodules are left out and counted, exactly as the artifact packer
 * does, so both source modes give the agent the same tree. Built in a temporary sibling
 * "<dest>.tmp-XXXXXX" renamed into place at the end; on failure nothing is left. A tree
 * entry git would refuse to check out ("", ".", "..", ".git", a '/') fails the export.
 * Errors: STK_EINVAL (bad arguments or tree), STK_EEXIST (dest exists), STK_ENOTFOUND
 * (no such commit), STK_EIO (libgit2 or filesystem, with its message). Blocking; the
 * repository belongs to the calling thread for the duration.
 */
int stk_git_export(git_repository *repo, const char *commit, const char *dest,
		   struct stk_git_export_result *out, stk_err *err);

/*
 * Checks an ssh host key (raw blob, key type name such as "ssh-ed25519") for `host` and
 * `port` against known_hosts text (plain and hashed "|1|" entries, "[host]:port" forms,
 * comma-separated host lists, markers such as @revoked honoured by refusing). True when
 * a line for the host carries exactly this key. Any thread.
 */
bool stk_git_known_hosts_match(const char *known_hosts, const char *host, int port,
			       const char *key_type, const unsigned char *key, size_t key_len);

#endif
