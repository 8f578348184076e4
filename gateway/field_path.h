/*
 * gateway/field_path.h: where in a message the transcoder is, for its error messages: a stack
 * of (field, index) elements printed as "a.b[2].c: " (a long path keeps its first and last
 * elements). Shared by both directions (pb_json, json_pb).
 */
#ifndef GW_FIELD_PATH_H
#define GW_FIELD_PATH_H

#include <stdarg.h>
#include <stddef.h>

#include "gateway/schema.h"

/** One step: the field, and the element index in a repeated field or map (-1: none). */
typedef struct gw_path_el {
    const gw_field_t *f;
    long idx;
} gw_path_el_t;

/** Writes "<path>: <fmt...>" into err (errlen bytes, cut to fit; nothing when errlen is 0). */
void gw_path_error(const gw_path_el_t *path, int depth, char *err, size_t errlen, const char *fmt,
                   va_list ap);

#endif
