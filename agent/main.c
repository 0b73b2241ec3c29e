/* agent: the stoker-agent sidecar that keeps one gateway's data directory in sync. */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "cli.h"
#include "config.h"
#include "stk/daemon.h"

static const char *agent_getenv(const char *name, void *ctx)
{
	(void)ctx;
	return getenv(name);
}

int main(int argc, char **argv)
{
	struct stk_flagset fs;
	struct agent_config cfg;
	enum stk_log_level level = STK_LOG_INFO;
	const char *health_addr = ":8082", *metrics_addr = ":8083";
	stk_err err = STK_ERR_INIT;
	int rc;

	if (argc > 1 && (!strcmp(argv[1], "sync") || !strcmp(argv[1], "drift")))
		return agent_cli_main(argc, argv);
	stk_flagset_init(&fs, "agent",
			 "The stoker-agent sidecar: keeps a gateway's data directory identical to "
			 "the mapped part of a Git commit, then asks the gateway to rescan.");
	fs.usage_extra = agent_config_usage;
	stk_flagset_add(&fs, &(struct stk_flag){
				     "health-probe-bind-address", STK_FLAG_ADDR, &health_addr,
				     ":8082", "address of /healthz, /readyz and /startupz", 0, 0});
	stk_flagset_add(&fs, &(struct stk_flag){
				     "metrics-bind-address", STK_FLAG_ADDR, &metrics_addr, ":8083",
				     "address of the Prometheus /metrics endpoint", 0, 0});
	stk_flagset_add(&fs,
			&(struct stk_flag){"log-level", STK_FLAG_LOGLEVEL, &level, "info",
					   "minimum level logged: debug, info, warn, error", 0, 0});
	rc = stk_daemon_parse(&fs, &level, argc, argv);
	if (rc < 0 && agent_config_load(&cfg, agent_getenv, NULL, &err))
		rc = stk_daemon_usage_error(&fs, "%s", err.message);
	if (rc < 0) {
		struct agent_options ao = {&cfg, health_addr, metrics_addr, level};
		rc = agent_run(&ao);
	}
	stk_flagset_free(&fs);
	return rc;
}
