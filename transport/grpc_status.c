/*
 * transport/grpc_status.c: gRPC status names, grpc-message percent coding, error mappings.
 */
#include "transport/grpc_status.h"

#include <string.h>

static const char *const status_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *mesh_grpc_status_name(int code)
{
    if (code < 0 || code > MESH_GRPC_UNAUTHENTICATED)
        return "UNKNOWN_STATUS";
    return status_names[code];
}

int mesh_grpc_status_from_name(const char *name)
{
    for (int i = 0; i <= MESH_GRPC_UNAUTHENTICATED; i++)
        if (strcmp(name, status_names[i]) == 0)
            return i;
    return -1;
}

int mesh_grpc_status_parse(const char *v, size_t len)
{
    if (len == 0 || len > 2)
        return -1;
    int code = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        code = code * 10 + (v[i] - '0');
    }
    return code;
}

long mesh_grpc_message_encode(const char *msg, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (cap == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c >= 0x20 && c <= 0x7e && c != '%') {
            if (o + 1 >= cap)
                goto full;
            out[o++] = (char)c;
        } else {
            if (o + 3 >= cap)
                goto full;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return (long)o;
full:
    out[o] = '\0';
    return -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long mesh_grpc_message_decode(const char *v, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        if (c == '%' && i + 2 < len && hexval(v[i + 1]) >= 0 && hexval(v[i + 2]) >= 0) {
            c = (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2]));
            i += 2;
        }
        if (o + 1 >= cap) {
            out[o] = '\0';
            return -1;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

mesh_grpc_status_t mesh_grpc_status_from_h2_error(uint32_t h2_error)
{
    switch (h2_error) {
    case 0x7: /* REFUSED_STREAM */
        return MESH_GRPC_UNAVAILABLE;
    case 0x8: /* CANCEL */
        return MESH_GRPC_CANCELLED;
    case 0xb: /* ENHANCE_YOUR_CALM */
        return MESH_GRPC_RESOURCE_EXHAUSTED;
    case 0xc: /* INADEQUATE_SECURITY */
        return MESH_GRPC_PERMISSION_DENIED;
    default:
        return MESH_GRPC_INTERNAL;
    }
}

mesh_grpc_status_t mesh_grpc_status_from_http(int http_status)
{
    switch (http_status) {
    case 400:
        return MESH_GRPC_INTERNAL;
    case 401:
        return MESH_GRPC_UNAUTHENTICATED;
    case 403:
        return MESH_GRPC_PERMISSION_DENIED;
    case 404:
        return MESH_GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return MESH_GRPC_UNAVAILABLE;
    default:
        return MESH_GRPC_UNKNOWN;
    }
}
