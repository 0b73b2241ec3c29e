/*
 * A leader-election candidate for the handover test: contends for a Lease and prints
 * "leading <identity>" / "stopped <identity>" as its leadership changes. SIGTERM stops it
 * gracefully (releasing the lease); SIGKILL does not, so the lease must expire.
 *   lease_demo NAMESPACE NAME IDENTITY LEASE_MS RENEW_MS RETRY_MS
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stk/kubeconfig.h"
#include "stk/lease.h"
#include "stk/parse.h"

static void say(const char *what, void *arg)
{
	printf("%s %s\n", what, (const char *)arg);
	fflush(stdout);
}

static void started(void *arg)
{
	say("leading", arg);
}

static void stopped(void *arg)
{
	say("stopped", arg);
}

static uint64_t ms_arg(const char *s)
{
	int64_t v = 0;
	if (stk_parse_i64(s, strlen(s), 1, 600000, &v, NULL)) {
		fprintf(stderr, "lease_demo: bad duration %s\n", s);
		exit(2);
	}
	return (uint64_t)v;
}

int main(int argc, char **argv)
{
	struct stk_kubeconfig_opts ko = STK_KUBECONFIG_OPTS_INIT;
	struct stk_lease_opts lo = STK_LEASE_OPTS_INIT;
	struct stk_kubeconfig *cfg = NULL;
	stk_kube *k = NULL;
	stk_lease *le = NULL;
	stk_err err = STK_ERR_INIT;
	sigset_t set;
	int sig;

	if (argc != 7) {
		fprintf(stderr, "usage: lease_demo NS NAME IDENTITY LEASE_MS RENEW_MS RETRY_MS\n");
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (stk_kubeconfig_load(&cfg, &ko, &err) || stk_kube_new_take(&k, cfg, NULL, &err)) {
		fprintf(stderr, "lease_demo: %s\n", err.message);
		return 1;
	}
	lo.ns = argv[1];
	lo.name = argv[2];
	lo.identity = argv[3];
	lo.lease_duration_ms = ms_arg(argv[4]);
	lo.renew_deadline_ms = ms_arg(argv[5]);
	lo.retry_period_ms = ms_arg(argv[6]);
	lo.on_started = started;
	lo.on_stopped = stopped;
	lo.arg = argv[3];
	if (stk_lease_new(&le, k, &lo, &err) || stk_lease_start(le, &err)) {
		fprintf(stderr, "lease_demo: %s\n", err.message);
		return 1;
	}
	sigwait(&set, &sig);
	stk_lease_free(le);
	stk_kube_free(k);
	say("exited", argv[3]);
	return 0;
}
