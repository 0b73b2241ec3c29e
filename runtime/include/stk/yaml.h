/*
 * YAML to a yajl tree (libyaml's event API), for YAML inputs such as a SyncProfile file
 * given to `agent sync --profile`. Only the first document is read. Plain scalars take
 * their JSON type (true/false, null/~/empty, integers, floats), quoted scalars stay
 * strings; mapping keys are strings; aliases are expanded. Bounded: depth 64, 1e6 nodes
 * with aliases expanded (so a "billion laughs" document is refused, not expanded).
 */
#ifndef STK_YAML_H
#define STK_YAML_H

#include <stddef.h>
#include <yajl/yajl_tree.h>

#include "stk/err.h"

/*
 * Parses yaml[0..len) into *out (freed with yajl_tree_free). STK_EPARSE with line and
 * column, or STK_ETOOBIG past the bounds. Any thread.
 */
int stk_yaml_parse(yajl_val *out, const char *yaml, size_t len, stk_err *err);

#endif
