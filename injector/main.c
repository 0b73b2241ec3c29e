/* injector: the mutating admission webhook that adds the stoker-agent sidecar. */
#include "injector.h"
#include "stk/daemon.h"
#include "stk/version.h"

int main(int argc, char **argv)
{
	struct stk_flagset fs;
	struct stk_daemon_opts o;
	const char *webhook_addr = ":9443", *cert_file = NULL, *key_file = NULL;
	const char *webhook_config = NULL, *tls_secret = NULL;
	const char *agent_image = "ghcr.io/stoker/agent:" STK_VERSION;
	struct stk_strlist dns_names = {NULL, 0};
	int64_t cert_validity_ms = 365LL * 24 * 3600 * 1000, cert_check_ms = 3600 * 1000;
	int rc;

	stk_flagset_init(&fs, "injector",
			 "Mutating admission webhook that injects the stoker-agent sidecar into "
			 "annotated gateway pods.");
	stk_daemon_flags(&fs, &o);
	stk_flagset_add(&fs, &(struct stk_flag){"webhook-bind-address", STK_FLAG_ADDR,
						&webhook_addr, ":9443",
						"address of the HTTPS admission endpoint", 0, 0});
	stk_flagset_add(&fs, &(struct stk_flag){"tls-cert-file", STK_FLAG_STRING, &cert_file, "",
						"serving certificate (e.g. from cert-manager); "
						"reloaded when it changes",
						0, 0});
	stk_flagset_add(&fs, &(struct stk_flag){"tls-key-file", STK_FLAG_STRING, &key_file, "",
						"private key of --tls-cert-file", 0, 0});
	stk_flagset_add(&fs, &(struct stk_flag){"webhook-config-name", STK_FLAG_STRING,
						&webhook_config, "",
						"MutatingWebhookConfiguration whose caBundle the "
						"injector keeps current (self-managed TLS)",
						0, 0});
	stk_flagset_add(&fs, &(struct stk_flag){"cert-dns-names", STK_FLAG_LIST, &dns_names, "",
						"DNS names and IP addresses of the self-managed "
						"serving certificate",
						0, 0});
	stk_flagset_add(&fs, &(struct stk_flag){"tls-secret-name", STK_FLAG_STRING, &tls_secret,
						"<webhook-config-name>-tls",
						"Secret holding the self-managed CA and serving "
						"certificate, shared by the replicas",
						0, 0});
	stk_flagset_add(&fs, &(struct stk_flag){
				     "cert-validity", STK_FLAG_DURATION, &cert_validity_ms, "8760h",
				     "validity of the self-managed serving certificate; "
				     "renewed when less than a third of it (at most 720h) "
				     "is left",
				     0, 0});
	stk_flagset_add(&fs, &(struct stk_flag){
				     "cert-check-interval", STK_FLAG_DURATION, &cert_check_ms, "1h",
				     "how often each replica reads the certificate Secret "
				     "(the leader renews a pair that is due)",
				     0, 0});
	stk_flagset_add(&fs, &(struct stk_flag){"agent-image", STK_FLAG_STRING, &agent_image,
						"ghcr.io/stoker/agent:" STK_VERSION,
						"agent image when neither the pod nor its Stoker "
						"names one",
						0, 0});
	rc = stk_daemon_parse(&fs, &o.log_level, argc, argv);
	if (rc < 0 && (!cert_file) != (!key_file))
		rc = stk_daemon_usage_error(&fs, "--tls-cert-file and --tls-key-file go together");
	if (rc < 0 && !cert_file && !webhook_config)
		rc = stk_daemon_usage_error(&fs, "give --tls-cert-file and --tls-key-file, or "
						 "--webhook-config-name for self-managed TLS");
	if (rc < 0 && !cert_file && dns_names.len == 0)
		rc = stk_daemon_usage_error(&fs, "self-managed TLS needs --cert-dns-names");
	if (rc < 0 && cert_validity_ms < 30000)
		rc = stk_daemon_usage_error(&fs, "--cert-validity must be at least 30s");
	if (rc < 0 && (cert_check_ms < 1000 || cert_check_ms > cert_validity_ms / 6))
		rc = stk_daemon_usage_error(&fs, "--cert-check-interval must be at least 1s and at "
						 "most a sixth of --cert-validity");
	if (rc < 0) {
		struct injector_options io = {
			.daemon = &o,
			.webhook_addr = webhook_addr,
			.cert_file = cert_file,
			.key_file = key_file,
			.webhook_config = webhook_config,
			.dns_names = &dns_names,
			.tls_secret = tls_secret,
			.cert_validity_s = (long)(cert_validity_ms / 1000),
			.cert_check_ms = (uint64_t)cert_check_ms,
			.agent_image = agent_image,
		};
		rc = injector_run(&io);
	}
	stk_flagset_free(&fs);
	return rc;
}
