#include "validate.h"

#include <string.h>

#include "stk/api/template.h"

static bool var_known(const char *name, void *arg)
{
	const struct stk_api_strmap *vars = arg;

	for (size_t i = 0; i < vars->len; i++)
		if (!strcmp(vars->keys[i], name))
			return true;
	return false;
}

static bool check_path(const char *field, const char *path, const struct stk_api_strmap *vars,
		       stk_buf *msg)
{
	stk_err e = STK_ERR_INIT;

	if (!path)
		return true;
	if (!stk_api_path_is_safe(path)) {
		stk_buf_printf(msg, "%s: path '%s' must be relative and must not contain '..'",
			       field, path);
		return false;
	}
	if (stk_template_check(path, var_known, (void *)vars, &e)) {
		stk_buf_printf(msg, "%s: %s", field, e.message);
		return false;
	}
	return true;
}

static const char *validate_spec(const struct stk_syncprofile *sp, stk_buf *msg)
{
	const struct stk_syncprofile_spec *s = &sp->spec;
	const struct stk_mapping *m = s->mappings.items;
	stk_err e = STK_ERR_INIT;
	char field[96];

	if (stk_api_validate_object(STK_KIND_SYNCPROFILE, sp, &e)) {
		stk_buf_puts(msg, e.message);
		return STK_REASON_VALIDATION_FAILED;
	}
	for (size_t i = 0; i < s->vars.len; i++) {
		if (!stk_api_is_identifier(s->vars.keys[i])) {
			stk_buf_printf(msg, "spec.vars: '%s' is not an identifier",
				       s->vars.keys[i]);
			return STK_REASON_VALIDATION_FAILED;
		}
	}
	for (size_t i = 0; i < s->mappings.len; i++) {
		snprintf(field, sizeof(field), "spec.mappings[%zu].source", i);
		if (!check_path(field, m[i].source, &s->vars, msg))
			return STK_REASON_VALIDATION_FAILED;
		snprintf(field, sizeof(field), "spec.mappings[%zu].destination", i);
		if (!check_path(field, m[i].destination, &s->vars, msg))
			return STK_REASON_VALIDATION_FAILED;
	}
	if (s->deployment_mode.present &&
	    !check_path("spec.deploymentMode.source", s->deployment_mode.source, &s->vars, msg))
		return STK_REASON_VALIDATION_FAILED;
	for (size_t i = 0; i < s->exclude_patterns.len; i++) {
		if (!*s->exclude_patterns.items[i]) {
			stk_buf_printf(msg, "spec.excludePatterns[%zu]: empty pattern", i);
			return STK_REASON_VALIDATION_FAILED;
		}
	}
	return NULL;
}

/* True when following dependsOn from `from` reaches `target` (bounded walk). */
static bool reaches(const char *from, const char *target, profctl_lookup_fn lookup, void *arg,
		    int depth)
{
	const struct stk_syncprofile_spec *s;
	const struct stk_dependency *d;

	if (depth > 32)
		return false;
	s = lookup(from, arg);
	if (!s)
		return false;
	d = s->depends_on.items;
	for (size_t i = 0; i < s->depends_on.len; i++) {
		if (!d[i].profile_name)
			continue;
		if (!strcmp(d[i].profile_name, target))
			return true;
		if (reaches(d[i].profile_name, target, lookup, arg, depth + 1))
			return true;
		s = lookup(from, arg); /* the lookup may have reused its storage */
		if (!s)
			return false;
		d = s->depends_on.items;
	}
	return false;
}

const char *profctl_validate(const char *name, const struct stk_syncprofile *sp,
			     profctl_lookup_fn lookup, void *arg, stk_buf *msg)
{
	const struct stk_dependency *d = sp->spec.depends_on.items;
	const char *reason = validate_spec(sp, msg);

	if (reason)
		return reason;
	for (size_t i = 0; i < sp->spec.depends_on.len; i++) {
		const char *dep = d[i].profile_name;
		const struct stk_syncprofile_spec *ds;
		if (!dep)
			continue;
		if (!strcmp(dep, name)) {
			stk_buf_printf(msg,
				       "spec.dependsOn[%zu]: SyncProfile '%s' depends on itself", i,
				       name);
			return STK_REASON_CYCLE_DETECTED;
		}
		ds = lookup(dep, arg);
		if (!ds) {
			stk_buf_printf(
				msg, "spec.dependsOn[%zu].profileName: SyncProfile '%s' not found",
				i, dep);
			return STK_REASON_DEPENDENCY_NOT_FOUND;
		}
		if (reaches(dep, name, lookup, arg, 0)) {
			stk_buf_printf(msg,
				       "spec.dependsOn[%zu]: cycle: '%s' depends on '%s', which "
				       "depends back on '%s'",
				       i, name, dep, name);
			return STK_REASON_CYCLE_DETECTED;
		}
		ds = lookup(dep, arg);
		if (ds && ds->depends_on.len) {
			stk_buf_printf(
				msg,
				"spec.dependsOn[%zu]: SyncProfile '%s' itself has dependsOn; "
				"only one level of dependencies is supported",
				i, dep);
			return STK_REASON_TRANSITIVE_DEPENDENCY;
		}
	}
	return NULL;
}
