/*
 * SyncProfile validation (DESIGN.md §3.2, §5): the schema and CEL rules again (an older
 * API server may not enforce CEL), templates that parse and use only known variables,
 * var names that are identifiers, and dependsOn targets that exist, form no cycle and
 * are single level. Pure logic: other profiles are reached through a lookup callback.
 */
#ifndef PROFCTL_VALIDATE_H
#define PROFCTL_VALIDATE_H

#include "stk/api/api.h"

/*
 * Returns the spec of profile `name` in the same namespace (borrowed until the next
 * call), or NULL when there is no such profile.
 */
typedef const struct stk_syncprofile_spec *(*profctl_lookup_fn)(const char *name, void *arg);

/*
 * Validates profile `name` with `spec`. Returns NULL when it is accepted, or the Accepted
 * reason (STK_REASON_VALIDATION_FAILED, _DEPENDENCY_NOT_FOUND, _CYCLE_DETECTED,
 * _TRANSITIVE_DEPENDENCY) with `msg` naming the offending field.
 */
const char *profctl_validate(const char *name, const struct stk_syncprofile *sp,
			     profctl_lookup_fn lookup, void *arg, stk_buf *msg);

#endif
