/*
 * gateway/gw_errors.c: the gRPC -> HTTP status table and the JSON error body.
 */
#include "gateway/gw_errors.h"

#include <jansson.h>
#include <stdlib.h>

int gw_http_status_from_grpc(int code)
{
    static const int table[17] = {
        200, /* OK */
        499, /* CANCELLED */
        500, /* UNKNOWN */
        400, /* INVALID_ARGUMENT */
        504, /* DEADLINE_EXCEEDED */
        404, /* NOT_FOUND */
        409, /* ALREADY_EXISTS */
        403, /* PERMISSION_DENIED */
        429, /* RESOURCE_EXHAUSTED */
        400, /* FAILED_PRECONDITION */
        409, /* ABORTED */
        400, /* OUT_OF_RANGE */
        501, /* UNIMPLEMENTED */
        500, /* INTERNAL */
        503, /* UNAVAILABLE */
        500, /* DATA_LOSS */
        401, /* UNAUTHENTICATED */
    };
    return code >= 0 && code <= 16 ? table[code] : 500;
}

/* jansson wants UTF-8: a byte that does not fit is replaced by '?'. */
static json_t *utf8_string(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    if (j)
        return j;
    char *c = malloc(len + 1);
    if (!c)
        return NULL;
    for (size_t i = 0; i < len; i++)
        c[i] = (unsigned char)s[i] < 0x80 && s[i] ? s[i] : '?';
    j = json_stringn(c, len);
    free(c);
    return j;
}

static int dump_cb(const char *buf, size_t size, void *data)
{
    return gw_buf_put(data, buf, size) ? 0 : -1;
}

int gw_error_json(int code, const char *msg, size_t len, gw_buf_t *out)
{
    json_t *o = json_object();
    if (!o)
        return -1;
    int rc = json_object_set_new(o, "code", json_integer(code)) |
             json_object_set_new(o, "message", utf8_string(msg, len)) |
             json_object_set_new(o, "details", json_array());
    if (rc == 0)
        rc = json_dump_callback(o, dump_cb, out, JSON_COMPACT);
    json_decref(o);
    return rc == 0 ? 0 : -1;
}
