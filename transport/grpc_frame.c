/*
 * transport/grpc_frame.c: the gRPC length-prefixed message deframer and prefix encoder.
 */
#include "transport/grpc_frame.h"

#include <stdlib.h>
#include <string.h>

void mesh_grpc_deframer_init(mesh_grpc_deframer_t *d, size_t max_message,
                             mesh_grpc_on_message_cb on_message, void *arg)
{
    memset(d, 0, sizeof(*d));
    d->max_message = max_message ? max_message : MESH_GRPC_DEFAULT_MAX_MESSAGE;
    d->on_message = on_message;
    d->arg = arg;
}

void mesh_grpc_deframer_destroy(mesh_grpc_deframer_t *d)
{
    free(d->buf);
    d->buf = NULL;
    d->buf_cap = 0;
}

int mesh_grpc_deframer_idle(const mesh_grpc_deframer_t *d)
{
    return d->prefix_have == 0;
}

void mesh_grpc_frame_prefix(uint8_t out[MESH_GRPC_PREFIX_LEN], int compressed, uint32_t len)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

/* Completes the prefix from the input; returns bytes used, or -1 on a bad prefix. */
static long take_prefix(mesh_grpc_deframer_t *d, const uint8_t *data, size_t len)
{
    size_t need = MESH_GRPC_PREFIX_LEN - d->prefix_have;
    size_t n = len < need ? len : need;
    memcpy(d->prefix + d->prefix_have, data, n);
    d->prefix_have += n;
    if (d->prefix_have == MESH_GRPC_PREFIX_LEN) {
        if (d->prefix[0] > 1)
            return -1;
        d->compressed = d->prefix[0];
        d->msg_len = ((uint32_t)d->prefix[1] << 24) | ((uint32_t)d->prefix[2] << 16) |
                     ((uint32_t)d->prefix[3] << 8) | d->prefix[4];
        if (d->msg_len > d->max_message)
            return -1;
        d->buf_have = 0;
    }
    return (long)n;
}

static int deliver(mesh_grpc_deframer_t *d, const uint8_t *msg, size_t len)
{
    d->prefix_have = 0;
    d->buf_have = 0;
    return d->on_message ? d->on_message(d->arg, d->compressed, msg, len) : 0;
}

int mesh_grpc_deframer_feed(mesh_grpc_deframer_t *d, const uint8_t *data, size_t len)
{
    while (len > 0 || (d->prefix_have == MESH_GRPC_PREFIX_LEN && d->msg_len == 0)) {
        if (d->prefix_have < MESH_GRPC_PREFIX_LEN) {
            long n = take_prefix(d, data, len);
            if (n < 0)
                return -1;
            data += n;
            len -= (size_t)n;
            continue;
        }
        size_t need = d->msg_len - d->buf_have;
        if (d->buf_have == 0 && len >= need) {
            /* The whole message is in this chunk: lend it without copying. */
            int rv = deliver(d, data, need);
            data += need;
            len -= need;
            if (rv)
                return rv;
            continue;
        }
        if (d->buf_cap < d->msg_len) {
            uint8_t *nb = realloc(d->buf, d->msg_len);
            if (!nb)
                return -2;
            d->buf = nb;
            d->buf_cap = d->msg_len;
        }
        size_t n = len < need ? len : need;
        memcpy(d->buf + d->buf_have, data, n);
        d->buf_have += n;
        data += n;
        len -= n;
        if (d->buf_have == d->msg_len) {
            int rv = deliver(d, d->buf, d->msg_len);
            if (rv)
                return rv;
        }
    }
    return 0;
}
