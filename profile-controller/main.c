/* profile-controller: validates SyncProfiles, counts their gateways and evaluates dependsOn. */
#include "profctl.h"
#include "stk/daemon.h"

int main(int argc, char **argv)
{
	struct stk_flagset fs;
	struct stk_daemon_opts o;
	struct profctl_options po = {&o, NULL};
	int rc;

	stk_flagset_init(&fs, "profile-controller",
			 "Reconciles SyncProfiles: validates them, counts their gateways and "
			 "evaluates dependsOn.");
	stk_daemon_flags(&fs, &o);
	rc = stk_daemon_parse(&fs, &o.log_level, argc, argv);
	if (rc < 0)
		rc = profctl_run(&po);
	stk_flagset_free(&fs);
	return rc;
}
