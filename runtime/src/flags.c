#include "stk/flags.h"

#include <stdlib.h>
#include <string.h>

#include "stk/alloc.h"
#include "stk/parse.h"
#include "stk/version.h"

void stk_flagset_init(struct stk_flagset *fs, const char *prog, const char *summary)
{
	memset(fs, 0, sizeof(*fs));
	fs->prog = prog;
	fs->summary = summary;
}

static char *flags_own(struct stk_flagset *fs, char *s)
{
	fs->owned = stk_reallocarray(fs->owned, fs->owned_len + 1, sizeof(*fs->owned));
	fs->owned[fs->owned_len++] = s;
	return s;
}

void stk_flagset_free(struct stk_flagset *fs)
{
	size_t i;

	if (!fs)
		return;
	for (i = 0; i < fs->len; i++) {
		struct stk_flag *f = &fs->flags[i];
		if (f->type == STK_FLAG_LIST) {
			struct stk_strlist *l = f->target;
			free(l->items);
			l->items = NULL;
			l->len = 0;
		}
	}
	for (i = 0; i < fs->owned_len; i++)
		free(fs->owned[i]);
	free(fs->owned);
	fs->owned = NULL;
	fs->owned_len = 0;
}

void stk_flagset_add(struct stk_flagset *fs, const struct stk_flag *flag)
{
	size_t i;

	for (i = 0; i < fs->len; i++) {
		if (!strcmp(fs->flags[i].name, flag->name)) {
			fprintf(stderr, "fatal: flag --%s registered twice\n", flag->name);
			abort();
		}
	}
	if (fs->len == STK_FLAGSET_MAX) {
		fprintf(stderr, "fatal: too many flags (max %d)\n", STK_FLAGSET_MAX);
		abort();
	}
	fs->flags[fs->len++] = *flag;
}

void stk_daemon_flags(struct stk_flagset *fs, struct stk_daemon_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->leader_elect = true;
	o->metrics_addr = ":8080";
	o->health_addr = ":8081";
	o->concurrent = 4;
	o->log_level = STK_LOG_INFO;
	o->lease_duration_ms = 15000;
	o->renew_deadline_ms = 10000;
	o->retry_period_ms = 2000;

	const struct stk_flag common[] = {
		{"kubeconfig", STK_FLAG_STRING, &o->kubeconfig, "in-cluster, else $KUBECONFIG",
		 "path to a kubeconfig file", 0, 0},
		{"leader-elect", STK_FLAG_BOOL, &o->leader_elect, "true",
		 "elect a leader through a coordination.k8s.io Lease before reconciling", 0, 0},
		{"leader-elect-lease-duration", STK_FLAG_DURATION, &o->lease_duration_ms, "15s",
		 "how long non-leaders wait before taking over an unrenewed lease", 0, 0},
		{"leader-elect-renew-deadline", STK_FLAG_DURATION, &o->renew_deadline_ms, "10s",
		 "how long the leader keeps trying to renew before giving up", 0, 0},
		{"leader-elect-retry-period", STK_FLAG_DURATION, &o->retry_period_ms, "2s",
		 "interval between attempts to acquire or renew the lease", 0, 0},
		{"leader-election-namespace", STK_FLAG_STRING, &o->lease_namespace,
		 "the kubeconfig's namespace", "namespace of the leader-election Lease", 0, 0},
		{"metrics-bind-address", STK_FLAG_ADDR, &o->metrics_addr, ":8080",
		 "address of the Prometheus /metrics endpoint", 0, 0},
		{"health-probe-bind-address", STK_FLAG_ADDR, &o->health_addr, ":8081",
		 "address of the /healthz and /readyz endpoints", 0, 0},
		{"watch-namespaces", STK_FLAG_LIST, &o->watch_namespaces, "all",
		 "comma-separated namespaces to watch", 0, 0},
		{"concurrent", STK_FLAG_INT, &o->concurrent, "4",
		 "number of reconciles that may run at once", 1, 256},
		{"log-level", STK_FLAG_LOGLEVEL, &o->log_level, "info",
		 "minimum level logged: debug, info, warn, error", 0, 0},
	};
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		stk_flagset_add(fs, &common[i]);
}

static const struct stk_flag *flags_find(const struct stk_flagset *fs, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < fs->len; i++) {
		const char *n = fs->flags[i].name;
		if (strlen(n) == len && !memcmp(n, name, len))
			return &fs->flags[i];
	}
	return NULL;
}

static int flags_set_list(struct stk_flagset *fs, struct stk_strlist *l, const char *value)
{
	char *copy = flags_own(fs, stk_strdup(value));
	char *p = copy;

	free(l->items);
	l->items = NULL;
	l->len = 0;
	while (p) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		if (*p) {
			l->items = stk_reallocarray(l->items, l->len + 1, sizeof(*l->items));
			l->items[l->len++] = p;
		}
		p = comma ? comma + 1 : NULL;
	}
	return 0;
}

static int flags_set(struct stk_flagset *fs, const struct stk_flag *f, const char *value,
		     stk_err *err)
{
	stk_err perr = STK_ERR_INIT;
	size_t len = strlen(value);
	int rc = 0;

	switch (f->type) {
	case STK_FLAG_STRING:
		*(const char **)f->target = flags_own(fs, stk_strdup(value));
		return 0;
	case STK_FLAG_ADDR: {
		char host[256];
		int port;
		rc = stk_parse_hostport(value, host, sizeof(host), &port, &perr);
		if (!rc)
			*(const char **)f->target = flags_own(fs, stk_strdup(value));
		break;
	}
	case STK_FLAG_BOOL:
		rc = stk_parse_bool(value, len, f->target, &perr);
		break;
	case STK_FLAG_INT:
		rc = stk_parse_i64(value, len, f->min, f->max, f->target, &perr);
		break;
	case STK_FLAG_DURATION:
		rc = stk_parse_duration_ms(value, len, f->target, &perr);
		break;
	case STK_FLAG_LIST:
		return flags_set_list(fs, f->target, value);
	case STK_FLAG_LOGLEVEL:
		rc = stk_log_parse_level(value, f->target, &perr);
		break;
	}
	if (rc)
		return stk_err_set(err, STK_EINVAL, "invalid value \"%.64s\" for --%s: %s", value,
				   f->name, perr.message);
	return 0;
}

int stk_flagset_parse(struct stk_flagset *fs, int argc, char **argv, FILE *out, stk_err *err)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *name, *eq, *value = NULL;
		const struct stk_flag *f;
		size_t nlen;
		int rc;

		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			stk_flagset_usage(fs, out);
			return STK_FLAGS_EXIT_OK;
		}
		if (!strcmp(arg, "--version")) {
			fprintf(out, "%s %s\n", fs->prog, STK_VERSION);
			return STK_FLAGS_EXIT_OK;
		}
		if (arg[0] != '-' || arg[1] == '\0')
			return stk_err_set(err, STK_EINVAL, "unexpected argument \"%.64s\"", arg);
		/* Accept -name as well as --name, like Go's flag package. */
		name = arg + (arg[1] == '-' ? 2 : 1);
		eq = strchr(name, '=');
		nlen = eq ? (size_t)(eq - name) : strlen(name);
		f = flags_find(fs, name, nlen);
		if (!f)
			return stk_err_set(err, STK_EINVAL, "unknown flag --%.*s (see --help)",
					   (int)(nlen > 64 ? 64 : nlen), name);
		if (eq) {
			value = eq + 1;
		} else if (f->type == STK_FLAG_BOOL) {
			value = "true";
		} else {
			if (i + 1 >= argc)
				return stk_err_set(err, STK_EINVAL, "flag --%s needs a value",
						   f->name);
			value = argv[++i];
		}
		rc = flags_set(fs, f, value, err);
		if (rc)
			return rc;
	}
	return STK_FLAGS_RUN;
}

void stk_flagset_usage(const struct stk_flagset *fs, FILE *out)
{
	size_t i;

	fprintf(out, "Usage: %s [flags]\n\n%s\n\nFlags:\n", fs->prog, fs->summary);
	for (i = 0; i < fs->len; i++) {
		const struct stk_flag *f = &fs->flags[i];
		fprintf(out, "  --%s\n        %s", f->name, f->help);
		if (f->def_text && *f->def_text)
			fprintf(out, " (default %s)", f->def_text);
		fputc('\n', out);
	}
	fprintf(out, "  --help, --version\n        print this text, or the version, and exit\n");
	if (fs->usage_extra)
		fs->usage_extra(out);
}

bool stk_strlist_contains(const struct stk_strlist *list, const char *s)
{
	size_t i;

	for (i = 0; i < list->len; i++)
		if (!strcmp(list->items[i], s))
			return true;
	return false;
}
