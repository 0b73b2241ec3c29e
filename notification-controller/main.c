/* notification-controller: reconciles Alerts, forwards matching Events to providers, and
 * receives webhooks. */
#include "notifctl.h"
#include "stk/daemon.h"

int main(int argc, char **argv)
{
	struct stk_flagset fs;
	struct stk_daemon_opts o;
	struct notifctl_options no = {&o, NULL, 10, 20};
	const char *receiver_addr = ":9292";
	int rc;

	stk_flagset_init(
		&fs, "notification-controller",
		"Reconciles Alerts, forwards matching Events to providers, and receives webhooks.");
	stk_daemon_flags(&fs, &o);
	stk_flagset_add(&fs,
			&(struct stk_flag){"receiver-bind-address", STK_FLAG_ADDR, &receiver_addr,
					   ":9292", "address of the webhook receiver", 0, 0});
	stk_flagset_add(&fs,
			&(struct stk_flag){"receiver-rate", STK_FLAG_INT, &no.receiver_rate, "10",
					   "webhook requests per second allowed per client "
					   "address (token bucket)",
					   1, 100000});
	stk_flagset_add(&fs, &(struct stk_flag){"receiver-burst", STK_FLAG_INT, &no.receiver_burst,
						"20", "webhook requests a client may send at once",
						1, 100000});
	rc = stk_daemon_parse(&fs, &o.log_level, argc, argv);
	if (rc < 0) {
		no.receiver_addr = receiver_addr;
		rc = notifctl_run(&no);
	}
	stk_flagset_free(&fs);
	return rc;
}
