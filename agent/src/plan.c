#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "stk/alloc.h"
#include "stk/api/glob.h"

/* Excludes every sync honours, whatever the tiers say. */
static const char *const mandatory_excludes[] = {"**/.resources/**", "**/.git/**",
						 "**/.sync-staging/**"};

static int expand(const char *field, const char *text, const struct stk_template_vars *vars,
		  char **out, stk_err *err)
{
	stk_buf b = STK_BUF_INIT(4096);
	stk_err e = STK_ERR_INIT;
	int rc;

	rc = stk_template_expand(text ? text : "", vars, &b, &e);
	if (rc) {
		stk_buf_release(&b);
		return stk_err_set(err, STK_EINVAL, "%s: %s", field, e.message);
	}
	*out = stk_buf_detach(&b, NULL);
	if (!*out)
		*out = stk_strdup("");
	return 0;
}

/* Normalises "a//b/./c/" to "a/b/c" ("." and "" to ""); refuses absolute paths and "..". */
static int normalise(const char *field, char *path, stk_err *err)
{
	char *w = path;
	const char *r = path;

	if (path[0] == '/')
		return stk_err_set(err, STK_EINVAL, "%s: '%s' is an absolute path", field, path);
	while (*r) {
		const char *seg = r;
		size_t n = strcspn(r, "/");
		r += n;
		if (*r == '/')
			r++;
		if (n == 0 || (n == 1 && seg[0] == '.'))
			continue;
		if (n == 2 && seg[0] == '.' && seg[1] == '.')
			return stk_err_set(err, STK_EINVAL, "%s: '%s' leaves its root ('..')",
					   field, path);
		if (w != path)
			*w++ = '/';
		memmove(w, seg, n);
		w += n;
	}
	*w = '\0';
	return 0;
}

static void add_exclude(struct agent_plan *p, const char *pattern)
{
	p->excludes = stk_reallocarray(p->excludes, p->nexcludes + 1, sizeof(char *));
	p->excludes[p->nexcludes++] = stk_strdup(pattern);
}

static int add_excludes(struct agent_plan *p, const char *tier, const char *const *list, size_t n,
			stk_err *err)
{
	stk_err e = STK_ERR_INIT;

	for (size_t i = 0; i < n; i++) {
		if (!list[i] || !*list[i])
			continue;
		if (stk_glob_check(list[i], &e))
			return stk_err_set(err, STK_EINVAL, "%s exclude pattern '%s': %s", tier,
					   list[i], e.message);
		add_exclude(p, list[i]);
	}
	return 0;
}

static int add_mapping(struct agent_plan *p, const char *field_src, const char *src,
		       const char *field_dst, const char *dst, bool file, bool required,
		       const struct stk_template_vars *vars, stk_err *err)
{
	struct agent_mapping m = {NULL, NULL, file, required, false};
	int rc;

	rc = expand(field_src, src, vars, &m.source, err);
	if (!rc)
		rc = expand(field_dst, dst, vars, &m.dest, err);
	if (!rc)
		rc = normalise(field_src, m.source, err);
	if (!rc)
		rc = normalise(field_dst, m.dest, err);
	if (!rc && file && !*m.dest)
		rc = stk_err_set(err, STK_EINVAL, "%s: a file mapping needs a file name",
				 field_dst);
	if (!rc && file && !*m.source)
		rc = stk_err_set(err, STK_EINVAL, "%s: a file mapping needs a file name",
				 field_src);
	if (rc) {
		free(m.source);
		free(m.dest);
		return rc;
	}
	p->maps = stk_reallocarray(p->maps, p->nmaps + 1, sizeof(*p->maps));
	p->maps[p->nmaps++] = m;
	return 0;
}

int agent_plan_build(struct agent_plan *out, const struct stk_syncprofile_spec *spec,
		     const char *service_path, const struct stk_template_vars *vars,
		     const char *const *stoker_excludes, size_t nstoker,
		     const char *const *pod_excludes, size_t npod, stk_err *err)
{
	char field[96], field2[96];
	int rc = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < sizeof(mandatory_excludes) / sizeof(mandatory_excludes[0]); i++)
		add_exclude(out, mandatory_excludes[i]);
	if (spec) {
		const struct stk_mapping *m = spec->mappings.items;
		for (size_t i = 0; !rc && i < spec->mappings.len; i++) {
			snprintf(field, sizeof(field), "spec.mappings[%zu].source", i);
			snprintf(field2, sizeof(field2), "spec.mappings[%zu].destination", i);
			rc = add_mapping(out, field, m[i].source, field2, m[i].destination,
					 m[i].type && !strcmp(m[i].type, "file"),
					 m[i].required.set && m[i].required.v, vars, err);
		}
		if (!rc && spec->deployment_mode.present && spec->deployment_mode.source &&
		    *spec->deployment_mode.source)
			rc = add_mapping(out, "spec.deploymentMode.source",
					 spec->deployment_mode.source, "deployment mode",
					 "config/resources/core", false, true, vars, err);
		if (!rc && spec->deployment_mode.present && spec->deployment_mode.source &&
		    *spec->deployment_mode.source)
			out->maps[out->nmaps - 1].overlay = true;
		if (!rc)
			rc = add_excludes(out, "SyncProfile",
					  (const char *const *)spec->exclude_patterns.items,
					  spec->exclude_patterns.len, err);
	} else if (service_path && *service_path) {
		rc = add_mapping(out, "service-path", service_path, "service-path", "", false, true,
				 vars, err);
	} else {
		rc = stk_err_set(err, STK_EINVAL,
				 "no SyncProfile and no service-path: nothing to map");
	}
	if (!rc)
		rc = add_excludes(out, "Stoker", stoker_excludes, nstoker, err);
	if (!rc)
		rc = add_excludes(out, "annotation", pod_excludes, npod, err);
	if (rc)
		agent_plan_release(out);
	return rc;
}

void agent_plan_release(struct agent_plan *p)
{
	for (size_t i = 0; i < p->nmaps; i++) {
		free(p->maps[i].source);
		free(p->maps[i].dest);
	}
	for (size_t i = 0; i < p->nexcludes; i++)
		free(p->excludes[i]);
	free(p->maps);
	free(p->excludes);
	memset(p, 0, sizeof(*p));
}
