/*
 * Command-line flags shared by every daemon (DESIGN.md §11) and a small flag set for the
 * daemon-specific ones. Syntax: --name=value, --name value, and --name for booleans.
 */
#ifndef STK_FLAGS_H
#define STK_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "stk/err.h"
#include "stk/log.h"

enum stk_flag_type {
	STK_FLAG_STRING,   /* const char *; the value is copied (caller frees with stk_flagset_free)
			    */
	STK_FLAG_BOOL,	   /* bool */
	STK_FLAG_INT,	   /* int64_t within [min, max] */
	STK_FLAG_DURATION, /* int64_t milliseconds, Go syntax ("15s") */
	STK_FLAG_ADDR,	   /* const char *, checked as host:port / :port */
	STK_FLAG_LIST,	   /* struct stk_strlist, comma separated, empty items dropped */
	STK_FLAG_LOGLEVEL, /* enum stk_log_level */
};

struct stk_strlist {
	char **items;
	size_t len;
};

struct stk_flag {
	const char *name; /* without the leading dashes */
	enum stk_flag_type type;
	void *target;
	const char *def_text; /* shown in --help; the target holds the real default */
	const char *help;
	int64_t min, max; /* STK_FLAG_INT only */
};

#define STK_FLAGSET_MAX 32

struct stk_flagset {
	const char *prog;
	const char *summary;
	/* Optional: more --help text after the flags (e.g. environment variables). */
	void (*usage_extra)(FILE *out);
	struct stk_flag flags[STK_FLAGSET_MAX];
	size_t len;
	/* Strings owned by the set, freed by stk_flagset_free. */
	char **owned;
	size_t owned_len;
};

/* The flags every controller and the injector accept (DESIGN.md §11). */
struct stk_daemon_opts {
	const char *kubeconfig;		     /* NULL: in-cluster config, else $KUBECONFIG */
	bool leader_elect;		     /* default true */
	const char *metrics_addr;	     /* default ":8080" */
	const char *health_addr;	     /* default ":8081" */
	struct stk_strlist watch_namespaces; /* empty: all */
	int64_t concurrent;		     /* default 4 */
	enum stk_log_level log_level;	     /* default info */
	int64_t lease_duration_ms;	     /* default 15s */
	int64_t renew_deadline_ms;	     /* default 10s */
	int64_t retry_period_ms;	     /* default 2s */
	const char *lease_namespace;	     /* NULL: the kubeconfig's namespace */
};

/* Zeroes the set and names the program for messages and --help. */
void stk_flagset_init(struct stk_flagset *fs, const char *prog, const char *summary);
/* Frees the strings the set copied into targets; targets are reset to NULL. */
void stk_flagset_free(struct stk_flagset *fs);

/* Adds a flag; aborts on a programming error (full set, duplicate name). */
void stk_flagset_add(struct stk_flagset *fs, const struct stk_flag *flag);

/* Sets the defaults of DESIGN.md §11 in `o` and registers the shared daemon flags. */
void stk_daemon_flags(struct stk_flagset *fs, struct stk_daemon_opts *o);

enum stk_flags_result {
	STK_FLAGS_RUN = 0,    /* parsed; carry on */
	STK_FLAGS_EXIT_OK = 1 /* --help or --version was printed; exit 0 */
};

/*
 * Parses argv[1..argc). Prints --help to `out` and --version ("<prog> <version>") and
 * returns STK_FLAGS_EXIT_OK for them. Returns STK_FLAGS_RUN, or STK_EINVAL with a one-line
 * message ("unknown flag --x", "invalid value \"y\" for --concurrent: ...") in `err`.
 * Positional arguments are rejected. Main thread only.
 */
int stk_flagset_parse(struct stk_flagset *fs, int argc, char **argv, FILE *out, stk_err *err);

/* Writes the usage text: summary, then one line per flag with its default. */
void stk_flagset_usage(const struct stk_flagset *fs, FILE *out);

/* True if `list` contains `s`. */
bool stk_strlist_contains(const struct stk_strlist *list, const char *s);

#endif
