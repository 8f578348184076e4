/*
 * common/fmt_num.h: formatting without printf for hot paths: decimal unsigned integers and
 * bounded string copies (a status line, a Content-Length, a grpc-timeout, an upstream's address
 * per call: snprintf costs several hundred to a thousand instructions a call, these a few dozen).
 */
#ifndef MESH_FMT_NUM_H
#define MESH_FMT_NUM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/** Longest decimal uint64_t plus NUL. */
#define MESH_FMT_U64_MAX 21

/** Writes v in decimal and a NUL into out (at least MESH_FMT_U64_MAX bytes); returns the
 *  number of digits. */
static inline size_t mesh_fmt_u64(char *out, uint64_t v)
{
    char tmp[MESH_FMT_U64_MAX];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

/** Copies the string s into out (cap bytes, cap > 0), cut to cap - 1 bytes, with a NUL: what
 *  snprintf(out, cap, "%s", s) does. Returns the bytes copied. */
static inline size_t mesh_fmt_str(char *out, size_t cap, const char *s)
{
    size_t n = strnlen(s, cap - 1);
    memcpy(out, s, n);
    out[n] = '\0';
    return n;
}

#endif
