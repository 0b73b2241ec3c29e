/* source-controller: reconciles GitSources into artifacts and serves them. */
#include "controller.h"
#include "stk/daemon.h"

int main(int argc, char **argv)
{
	struct stk_flagset fs;
	struct stk_daemon_opts o;
	struct srcctl_options so = {&o, ":9090", "http://source-controller.stoker-system.svc",
				    "/data", NULL};
	int rc;

	stk_flagset_init(&fs, "source-controller",
			 "Reconciles GitSources: resolves refs, fetches commits, and serves them "
			 "as tar.gz artifacts.");
	stk_daemon_flags(&fs, &o);
	stk_flagset_add(&fs, &(struct stk_flag){"artifact-bind-address", STK_FLAG_ADDR,
						&so.artifact_addr, ":9090",
						"address of the artifact HTTP server", 0, 0});
	stk_flagset_add(
		&fs, &(struct stk_flag){"artifact-base-url", STK_FLAG_STRING, &so.artifact_base_url,
					"http://source-controller.stoker-system.svc",
					"URL prefix written into status.artifact.url", 0, 0});
	stk_flagset_add(&fs,
			&(struct stk_flag){"storage-path", STK_FLAG_STRING, &so.storage_path,
					   "/data", "directory for clones and artifacts", 0, 0});
	rc = stk_daemon_parse(&fs, &o.log_level, argc, argv);
	if (rc < 0)
		rc = srcctl_run(&so);
	stk_flagset_free(&fs);
	return rc;
}
