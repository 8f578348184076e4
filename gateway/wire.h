/*
 * gateway/wire.h: protobuf wire format primitives (varints, tags, fixed-width values, skipping
 * a field) shared by both directions of the transcoder. Readers return the bytes consumed, or 0
 * on truncated or malformed input.
 */
#ifndef GW_WIRE_H
#define GW_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
    GW_WT_VARINT = 0,
    GW_WT_I64 = 1,
    GW_WT_LEN = 2,
    GW_WT_SGROUP = 3,
    GW_WT_EGROUP = 4,
    GW_WT_I32 = 5
};

/** Reads a varint of at most 10 bytes. */
static inline size_t gw_wire_varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < 10 && p + i < end; i++) {
        x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            if (i == 9 && p[i] > 1)
                return 0;
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

static inline uint32_t gw_wire_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t gw_wire_le64(const uint8_t *p)
{
    return (uint64_t)gw_wire_le32(p) | (uint64_t)gw_wire_le32(p + 4) << 32;
}

/** One parsed field: number, wire type, and its value (varint/fixed) or bytes (LEN). */
typedef struct {
    uint32_t number;
    int wt;
    uint64_t v;
    const uint8_t *data;
    size_t len;
} gw_wire_field_t;

/** Reads one field at p (groups are skipped whole, their bytes in data/len). Returns the bytes
 * consumed, or 0 when malformed. */
static inline size_t gw_wire_field(const uint8_t *p, const uint8_t *end, gw_wire_field_t *f,
                                   int depth)
{
    uint64_t tag;
    size_t n = gw_wire_varint(p, end, &tag);
    if (!n || tag >> 3 == 0 || tag >> 3 > 536870911u)
        return 0;
    f->number = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    const uint8_t *q = p + n;
    switch (f->wt) {
    case GW_WT_VARINT: {
        size_t k = gw_wire_varint(q, end, &f->v);
        return k ? n + k : 0;
    }
    case GW_WT_I64:
        if (end - q < 8)
            return 0;
        f->v = gw_wire_le64(q);
        return n + 8;
    case GW_WT_I32:
        if (end - q < 4)
            return 0;
        f->v = gw_wire_le32(q);
        return n + 4;
    case GW_WT_LEN: {
        uint64_t len;
        size_t k = gw_wire_varint(q, end, &len);
        if (!k || len > (uint64_t)(end - q - k))
            return 0;
        f->data = q + k;
        f->len = (size_t)len;
        return n + k + (size_t)len;
    }
    case GW_WT_SGROUP: {
        if (depth > 64)
            return 0;
        const uint8_t *start = q;
        for (;;) {
            gw_wire_field_t in = {0};
            if (q >= end)
                return 0;
            size_t k = gw_wire_field(q, end, &in, depth + 1);
            if (!k)
                return 0;
            if (in.wt == GW_WT_EGROUP) {
                if (in.number != f->number)
                    return 0;
                f->data = start;
                f->len = (size_t)(q - start);
                return (size_t)(q + k - p);
            }
            q += k;
        }
    }
    case GW_WT_EGROUP:
        f->len = 0;
        return n; /* only valid inside a group: gw_wire_field's caller checks */
    default:
        return 0;
    }
}

/** Appends a varint to out (room for 10 bytes); returns the length. */
static inline size_t gw_wire_put_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

/** Length of v as a varint. */
static inline size_t gw_wire_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

#endif
