/* Daemon plumbing shared by every main.c: flag parsing, logging set-up, exit codes. */
#ifndef STK_DAEMON_H
#define STK_DAEMON_H

#include "stk/flags.h"

/* Exit codes of every Stoker binary. */
enum stk_exit {
	STK_EXIT_OK = 0,
	STK_EXIT_FAILURE = 1, /* a runtime error, logged */
	STK_EXIT_USAGE = 2,   /* bad flags or environment, one line on stderr */
	STK_EXIT_UNAVAILABLE = 69
};

/*
 * Parses the command line with `fs` and sets up JSON logging at `*level` with the set's
 * program name as "controller". Returns -1 when the daemon should run, otherwise the exit
 * code: STK_EXIT_OK after --help/--version, STK_EXIT_USAGE after printing
 * "<prog>: <message>" on stderr. Main thread, before any other thread starts.
 */
int stk_daemon_parse(struct stk_flagset *fs, const enum stk_log_level *level, int argc,
		     char **argv);

/* Prints "<prog>: <message>" on stderr and returns STK_EXIT_USAGE. */
int stk_daemon_usage_error(const struct stk_flagset *fs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Logs that the daemon has no reconcile loop in this build and returns
 * STK_EXIT_UNAVAILABLE, so a deployment of it fails visibly instead of idling as if it
 * worked. `what` names the missing capability ("GitSource reconciler").
 */
int stk_daemon_unavailable(const struct stk_flagset *fs, const char *what);

#endif
