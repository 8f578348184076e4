/*
 * gossip/mp.h: the msgpack plumbing shared by gossip/wire.c and gossip/meta.c (internal to
 * gossip/): msgpack-c's packer writing straight into a caller's buffer, and a small bounded
 * reader that decodes headers in place, allocating nothing.
 *
 * Writing: gsp_mp_packer() points a msgpack_packer at a gsp_enc_t; a write that does not fit
 * in what is left of the buffer fails (and the packer returns non-zero), and the caller rolls
 * e->len back to where the value began.
 *
 * Reading: each gsp_mpr_* reads one value of the expected family at r->pos and advances, or
 * returns -1 (wrong type, past the end, over the bound given) leaving pos where it was. Every
 * length is checked against the bytes left before it is used. Skipping unknown values is
 * iterative (a count of values still to skip, each at least one byte, so the count never
 * exceeds the bytes left): no recursion, so nesting needs no bound of its own.
 */
#ifndef GSP_MP_H
#define GSP_MP_H

#include <msgpack.h>
#include <stdint.h>
#include <string.h>

#include "gossip/wire.h"

/* ---- writing ----------------------------------------------------------------------------- */

/** Points pk at e's buffer: writes append at e->len and fail when they do not fit. */
void gsp_mp_packer(msgpack_packer *pk, gsp_enc_t *e);

/** Whether s may travel as a msgpack str of at most max bytes: no NUL byte inside (names are
 *  compared as C strings by those who keep them). */
static inline int gsp_mp_str_ok(gsp_str_t s, uint32_t max)
{
    return s.n <= max && (s.n == 0 || (s.p && !memchr(s.p, 0, s.n)));
}

/** Packs a gsp_str_t as str (bin when bin is non-zero). */
static inline int gsp_mp_pack_str(msgpack_packer *pk, gsp_str_t s, int bin)
{
    return bin ? msgpack_pack_bin_with_body(pk, s.p, s.n)
               : msgpack_pack_str_with_body(pk, s.p, s.n);
}

/* ---- reading ----------------------------------------------------------------------------- */

/** A bounded reader over len bytes at p. */
typedef struct gsp_mpr {
    const uint8_t *p;
    size_t len, pos;
} gsp_mpr_t;

static inline size_t gsp_mpr_left(const gsp_mpr_t *r)
{
    return r->len - r->pos;
}

/* A big-endian integer of k bytes (1, 2, 4 or 8) at r->pos + off. */
static inline uint64_t gsp_mpr_be(const gsp_mpr_t *r, size_t off, unsigned k)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < k; i++)
        v = v << 8 | r->p[r->pos + off + i];
    return v;
}

/** Reads an array header (any form) of at most max elements. */
static inline int gsp_mpr_array(gsp_mpr_t *r, uint32_t max, uint32_t *n)
{
    size_t left = gsp_mpr_left(r);
    if (left < 1)
        return -1;
    uint8_t b = r->p[r->pos];
    uint64_t v;
    size_t hdr;
    if ((b & 0xf0) == 0x90) {
        v = b & 0x0f, hdr = 1;
    } else if (b == 0xdc && left >= 3) {
        v = gsp_mpr_be(r, 1, 2), hdr = 3;
    } else if (b == 0xdd && left >= 5) {
        v = gsp_mpr_be(r, 1, 4), hdr = 5;
    } else {
        return -1;
    }
    /* Every element takes at least one byte. */
    if (v > max || v > left - hdr)
        return -1;
    r->pos += hdr;
    *n = (uint32_t)v;
    return 0;
}

/** Reads a map header (any form) of at most max pairs. */
static inline int gsp_mpr_map(gsp_mpr_t *r, uint32_t max, uint32_t *n)
{
    size_t left = gsp_mpr_left(r);
    if (left < 1)
        return -1;
    uint8_t b = r->p[r->pos];
    uint64_t v;
    size_t hdr;
    if ((b & 0xf0) == 0x80) {
        v = b & 0x0f, hdr = 1;
    } else if (b == 0xde && left >= 3) {
        v = gsp_mpr_be(r, 1, 2), hdr = 3;
    } else if (b == 0xdf && left >= 5) {
        v = gsp_mpr_be(r, 1, 4), hdr = 5;
    } else {
        return -1;
    }
    /* Every pair takes at least two bytes. */
    if (v > max || v > (left - hdr) / 2)
        return -1;
    r->pos += hdr;
    *n = (uint32_t)v;
    return 0;
}

/** Reads a non-negative integer (any unsigned or signed form) of at most max. */
static inline int gsp_mpr_uint(gsp_mpr_t *r, uint64_t max, uint64_t *out)
{
    size_t left = gsp_mpr_left(r);
    if (left < 1)
        return -1;
    uint8_t b = r->p[r->pos];
    uint64_t v;
    unsigned k;
    if (b <= 0x7f) {
        v = b, k = 0;
    } else if (b >= 0xcc && b <= 0xcf) { /* uint 8/16/32/64 */
        k = 1u << (b - 0xcc);
        if (left < 1 + (size_t)k)
            return -1;
        v = gsp_mpr_be(r, 1, k);
    } else if (b >= 0xd0 && b <= 0xd3) { /* int 8/16/32/64: non-negative values only */
        k = 1u << (b - 0xd0);
        if (left < 1 + (size_t)k)
            return -1;
        v = gsp_mpr_be(r, 1, k);
        if (v >> (8 * k - 1))
            return -1;
    } else {
        return -1;
    }
    if (v > max)
        return -1;
    r->pos += 1 + k;
    *out = v;
    return 0;
}

/** Reads a flag: uint 0 or 1, or a msgpack bool. */
static inline int gsp_mpr_bool(gsp_mpr_t *r, uint8_t *out)
{
    if (gsp_mpr_left(r) >= 1 && (r->p[r->pos] == 0xc2 || r->p[r->pos] == 0xc3)) {
        *out = r->p[r->pos++] == 0xc3;
        return 0;
    }
    uint64_t v;
    if (gsp_mpr_uint(r, 1, &v) < 0)
        return -1;
    *out = (uint8_t)v;
    return 0;
}

/** Reads a str (bin when bin is non-zero) of at most max bytes; a str holds no NUL byte. The
 *  result points into the buffer. */
static inline int gsp_mpr_str(gsp_mpr_t *r, uint32_t max, int bin, gsp_str_t *out)
{
    size_t left = gsp_mpr_left(r);
    if (left < 1)
        return -1;
    uint8_t b = r->p[r->pos];
    uint64_t n;
    size_t hdr;
    if (!bin && (b & 0xe0) == 0xa0) {
        n = b & 0x1f, hdr = 1;
    } else if (b == (bin ? 0xc4 : 0xd9) && left >= 2) {
        n = gsp_mpr_be(r, 1, 1), hdr = 2;
    } else if (b == (bin ? 0xc5 : 0xda) && left >= 3) {
        n = gsp_mpr_be(r, 1, 2), hdr = 3;
    } else if (b == (bin ? 0xc6 : 0xdb) && left >= 5) {
        n = gsp_mpr_be(r, 1, 4), hdr = 5;
    } else {
        return -1;
    }
    if (n > max || n > left - hdr)
        return -1;
    const char *s = (const char *)r->p + r->pos + hdr;
    if (!bin && n && memchr(s, 0, n))
        return -1;
    out->p = s;
    out->n = (uint32_t)n;
    r->pos += hdr + n;
    return 0;
}

/** Skips n values of any type (nested arrays and maps whole). */
int gsp_mpr_skip(gsp_mpr_t *r, uint64_t n);

#endif
