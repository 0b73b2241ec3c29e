/* source-controller: Reconciles GitSources: resolves refs, fetches commits, and serves them as
 * tar.gz artifacts. */
#include "stk/daemon.h"

int main(int argc, char **argv)
{
	struct stk_flagset fs;
	struct stk_daemon_opts o;
	const char *artifact_addr = ":9090", *artifact_base_url = NULL, *storage_path = "/data";
	int rc;

	stk_flagset_init(&fs, "source-controller",
			 "Reconciles GitSources: resolves refs, fetches commits, and serves them "
			 "as tar.gz artifacts.");
	stk_daemon_flags(&fs, &o);
	stk_flagset_add(&fs,
			&(struct stk_flag){"artifact-bind-address", STK_FLAG_ADDR, &artifact_addr,
					   ":9090", "address of the artifact HTTP server", 0, 0});
	stk_flagset_add(&fs,
			&(struct stk_flag){"artifact-base-url", STK_FLAG_STRING, &artifact_base_url,
					   "http://<service>.<ns>.svc",
					   "URL prefix written into status.artifact.url", 0, 0});
	stk_flagset_add(&fs,
			&(struct stk_flag){"storage-path", STK_FLAG_STRING, &storage_path, "/data",
					   "directory for clones and artifacts", 0, 0});
	rc = stk_daemon_parse(&fs, &o.log_level, argc, argv);
	if (rc < 0)
		rc = stk_daemon_unavailable(&fs, "GitSource reconciler");
	stk_flagset_free(&fs);
	return rc;
}
