/*
 * First fetch + artifact of a repository, the way the source-controller does it:
 * ls-remote, fetch into a new bare clone, pack the tree into the tar.gz artifact.
 * Prints key=value lines (seconds, files, bytes, peak RSS) for run.sh.
 *   bench_artifact URL WORKDIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "artifact.h"
#include "stk/git.h"
#include "stk/loop.h"

int main(int argc, char **argv)
{
	struct stk_git_remote_opts o = {NULL, NULL, 0};
	struct stk_git_ref_spec spec = {"main", NULL, NULL, NULL, NULL};
	struct stk_git_resolved res;
	struct srcctl_pack_opts po = SRCCTL_PACK_OPTS_INIT;
	struct srcctl_pack_result pr;
	git_repository *repo = NULL;
	stk_err err = STK_ERR_INIT;
	char repo_path[4096], art[4096];
	struct rusage ru;
	uint64_t t0, t1, t2;

	if (argc != 3) {
		fprintf(stderr, "usage: bench_artifact URL WORKDIR\n");
		return 2;
	}
	o.url = argv[1];
	snprintf(repo_path, sizeof(repo_path), "%s/repo.git", argv[2]);
	t0 = stk_now_ms();
	if (stk_git_resolve(&o, &spec, &res, &err) ||
	    stk_git_fetch(&o, repo_path, res.refname, res.commit, &repo, &err)) {
		fprintf(stderr, "bench_artifact: %s\n", err.message);
		return 1;
	}
	t1 = stk_now_ms();
	snprintf(art, sizeof(art), "%s/%s.tar.gz", argv[2], res.commit);
	po.repo = repo;
	po.commit = res.commit;
	po.dest_path = art;
	po.max_size = UINT64_C(8) << 30;
	if (srcctl_artifact_pack(&po, &pr, &err)) {
		fprintf(stderr, "bench_artifact: %s\n", err.message);
		return 1;
	}
	t2 = stk_now_ms();
	getrusage(RUSAGE_SELF, &ru);
	printf("fetch_seconds=%.2f\npack_seconds=%.2f\ntotal_seconds=%.2f\n",
	       (double)(t1 - t0) / 1000, (double)(t2 - t1) / 1000, (double)(t2 - t0) / 1000);
	printf("files=%zu\nartifact_bytes=%llu\npeak_rss_kib=%ld\n", pr.files,
	       (unsigned long long)pr.size, ru.ru_maxrss);
	git_repository_free(repo);
	return 0;
}
