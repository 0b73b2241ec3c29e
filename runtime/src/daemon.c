#include "stk/daemon.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "stk/log.h"
#include "stk/version.h"

int stk_daemon_usage_error(const struct stk_flagset *fs, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", fs->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return STK_EXIT_USAGE;
}

int stk_daemon_parse(struct stk_flagset *fs, const enum stk_log_level *level, int argc, char **argv)
{
	stk_err err = STK_ERR_INIT;
	int rc = stk_flagset_parse(fs, argc, argv, stdout, &err);

	if (rc == STK_FLAGS_EXIT_OK)
		return STK_EXIT_OK;
	if (rc != STK_FLAGS_RUN)
		return stk_daemon_usage_error(fs, "%s", err.message);
	stk_log_setup(fs->prog, level ? *level : STK_LOG_INFO, STDERR_FILENO);
	stk_log_info("starting", "version", STK_VERSION, NULL);
	return -1;
}

int stk_daemon_unavailable(const struct stk_flagset *fs, const char *what)
{
	stk_log_error("this build has no reconcile loop; exiting", "missing", what, "version",
		      STK_VERSION, NULL);
	(void)fs;
	return STK_EXIT_UNAVAILABLE;
}
