/*
 * The injector daemon (DESIGN.md §5): the HTTPS admission endpoint POST /mutate-v1-pod
 * answered from informer caches of Stokers, SyncProfiles and GitSources (inj_review), and
 * its TLS: either mounted files (cert-manager), re-read when they change, or self-managed —
 * a CA and serving certificate kept in a Secret shared by the replicas, the CA published
 * into the MutatingWebhookConfiguration's caBundle (that field only) by the replica that
 * holds the Lease, and re-published whenever something else rewrites it.
 */
#ifndef INJECTOR_H
#define INJECTOR_H

#include <stdint.h>

#include "stk/flags.h"

struct injector_options {
	const struct stk_daemon_opts *daemon;
	const char *webhook_addr;
	const char *cert_file, *key_file;    /* mounted TLS, or NULL */
	const char *webhook_config;	     /* self-managed: the configuration to keep current */
	const struct stk_strlist *dns_names; /* self-managed: names of the serving certificate */
	const char *tls_secret;		     /* self-managed: Secret holding the pair; NULL:
						"<webhook_config>-tls" */
	long cert_validity_s;		     /* self-managed: serving certificate validity */
	uint64_t cert_check_ms;		     /* self-managed: how often to look at the Secret */
	const char *agent_image;	     /* default agent image */
	const char *identity;
};

/* Runs the daemon until SIGTERM; returns the exit code. Main thread. */
int injector_run(const struct injector_options *o);

#endif
