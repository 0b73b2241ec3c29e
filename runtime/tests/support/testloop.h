/* Test support: run a stk_loop on a background thread and wait for conditions. */
#ifndef TESTLOOP_H
#define TESTLOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "stk/loop.h"

/* Runs the loop on a background thread until testloop_stop. */
void testloop_start(stk_loop *loop);
void testloop_stop(stk_loop *loop);

/* Runs fn(arg) on the loop thread and waits for it. */
void testloop_call(stk_loop *loop, void (*fn)(void *), void *arg);

/* Polls cond(arg) every 20 ms for up to timeout_ms; true once it holds. */
bool testloop_wait(bool (*cond)(void *), void *arg, uint64_t timeout_ms);

#endif
