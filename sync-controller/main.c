/* sync-controller: reconciles Stokers: ties sources, profiles and gateway pods together,
 * tells the agents what to sync and reports the fleet's state. */
#include "stk/daemon.h"
#include "syncctl.h"

int main(int argc, char **argv)
{
	struct stk_flagset fs;
	struct stk_daemon_opts o;
	struct syncctl_options so = {&o, NULL};
	int rc;

	stk_flagset_init(&fs, "sync-controller",
			 "Reconciles Stokers: ties sources, profiles and gateway pods together and "
			 "reports fleet state.");
	stk_daemon_flags(&fs, &o);
	rc = stk_daemon_parse(&fs, &o.log_level, argc, argv);
	if (rc < 0)
		rc = syncctl_run(&so);
	stk_flagset_free(&fs);
	return rc;
}
