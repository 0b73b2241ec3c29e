/* sync-controller: Reconciles Stokers: ties sources, profiles and gateway pods together and reports
 * fleet state. */
#include "stk/daemon.h"

int main(int argc, char **argv)
{
	struct stk_flagset fs;
	struct stk_daemon_opts o;
	int rc;

	stk_flagset_init(&fs, "sync-controller",
			 "Reconciles Stokers: ties sources, profiles and gateway pods together and "
			 "reports fleet state.");
	stk_daemon_flags(&fs, &o);
	rc = stk_daemon_parse(&fs, &o.log_level, argc, argv);
	if (rc < 0)
		rc = stk_daemon_unavailable(&fs, "Stoker reconciler");
	stk_flagset_free(&fs);
	return rc;
}
