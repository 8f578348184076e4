/*
 * gateway/field_path.c: printing the transcoder's field path (see gateway/field_path.h).
 */
#include "gateway/field_path.h"

#include <stdio.h>

void gw_path_error(const gw_path_el_t *path, int depth, char *err, size_t errlen, const char *fmt,
                   va_list ap)
{
    if (!err || !errlen)
        return;
    size_t n = 0;
    err[0] = 0;
    for (int i = 0; i < depth && n < errlen; i++) {
        const gw_path_el_t *p = &path[i];
        if (depth > 10 && i == 4) {
            /* A long path keeps its first and last elements. */
            n += (size_t)snprintf(err + n, errlen - n, "...");
            i = depth - 5;
            continue;
        }
        if (!p->f)
            continue;
        n += (size_t)snprintf(err + n, errlen - n, "%s%s", n ? "." : "", p->f->name);
        if (p->idx >= 0 && n < errlen)
            n += (size_t)snprintf(err + n, errlen - n, "[%ld]", p->idx);
    }
    if (n && n < errlen)
        n += (size_t)snprintf(err + n, errlen - n, ": ");
    if (n < errlen)
        vsnprintf(err + n, errlen - n, fmt, ap);
}
