/* notification-controller: Reconciles Alerts, forwards matching Events to providers, and receives
 * webhooks. */
#include "stk/daemon.h"

int main(int argc, char **argv)
{
	struct stk_flagset fs;
	struct stk_daemon_opts o;
	const char *receiver_addr = ":9292";
	int rc;

	stk_flagset_init(
		&fs, "notification-controller",
		"Reconciles Alerts, forwards matching Events to providers, and receives webhooks.");
	stk_daemon_flags(&fs, &o);
	stk_flagset_add(&fs,
			&(struct stk_flag){"receiver-bind-address", STK_FLAG_ADDR, &receiver_addr,
					   ":9292", "address of the webhook receiver", 0, 0});
	rc = stk_daemon_parse(&fs, &o.log_level, argc, argv);
	if (rc < 0)
		rc = stk_daemon_unavailable(&fs, "Alert reconciler and webhook receiver");
	stk_flagset_free(&fs);
	return rc;
}
