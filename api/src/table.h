/* Helpers for writing field tables (private to api/src). */
#ifndef STK_API_TABLE_H
#define STK_API_TABLE_H

#include <stddef.h>

#include "stk/api/codec.h"

#define FLD(json, ftype, st, member, ...)                                                    \
	{                                                                                    \
		.name = (json), .type = (ftype), .offset = offsetof(st, member), __VA_ARGS__ \
	}
#define TYPE(tname, st, table)                                          \
	{                                                               \
		.name = (tname), .size = sizeof(st), .fields = (table), \
		.nfields = sizeof(table) / sizeof((table)[0])           \
	}

#endif
