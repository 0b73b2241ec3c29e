#include "stk/api/kinds.h"

#include <stddef.h>
#include <string.h>

static const struct stk_api_kind_info kinds[STK_KIND_COUNT] = {
	{STK_KIND_GITSOURCE, "GitSource", STK_API_GROUP_SOURCE, "gitsources", "gitsrc",
	 "source-controller"},
	{STK_KIND_SYNCPROFILE, "SyncProfile", STK_API_GROUP_STOKER, "syncprofiles", "sp",
	 "profile-controller"},
	{STK_KIND_STOKER, "Stoker", STK_API_GROUP_STOKER, "stokers", "stk", "sync-controller"},
	{STK_KIND_ALERT, "Alert", STK_API_GROUP_NOTIFICATION, "alerts", NULL,
	 "notification-controller"},
};

static const char *const api_versions[STK_KIND_COUNT] = {
	STK_API_GROUP_SOURCE "/" STK_API_VERSION,
	STK_API_GROUP_STOKER "/" STK_API_VERSION,
	STK_API_GROUP_STOKER "/" STK_API_VERSION,
	STK_API_GROUP_NOTIFICATION "/" STK_API_VERSION,
};

const struct stk_api_kind_info *stk_api_kind(enum stk_api_kind kind)
{
	if ((unsigned)kind >= STK_KIND_COUNT)
		return NULL;
	return &kinds[kind];
}

const struct stk_api_kind_info *stk_api_kind_lookup(const char *name)
{
	for (size_t i = 0; i < STK_KIND_COUNT; i++) {
		const struct stk_api_kind_info *k = &kinds[i];
		if (!strcmp(k->name, name) || !strcmp(k->plural, name) ||
		    (k->short_name && !strcmp(k->short_name, name)))
			return k;
	}
	return NULL;
}

const char *stk_api_version_of(enum stk_api_kind kind)
{
	if ((unsigned)kind >= STK_KIND_COUNT)
		return NULL;
	return api_versions[kind];
}

const struct stk_gvr STK_GVR_GITSOURCES = {STK_API_GROUP_SOURCE, STK_API_VERSION, "gitsources"};
const struct stk_gvr STK_GVR_SYNCPROFILES = {STK_API_GROUP_STOKER, STK_API_VERSION, "syncprofiles"};
const struct stk_gvr STK_GVR_STOKERS = {STK_API_GROUP_STOKER, STK_API_VERSION, "stokers"};
const struct stk_gvr STK_GVR_ALERTS = {STK_API_GROUP_NOTIFICATION, STK_API_VERSION, "alerts"};
