/*
 * gossip/mp.c: the buffer writer behind msgpack-c's packer and the skipping of unknown values
 * for the bounded reader (gossip/mp.h).
 */
#include "gossip/mp.h"

/* msgpack-c's write callback: appends to the gsp_enc_t's buffer, or fails when full. */
static int mp_write(void *data, const char *buf, size_t len)
{
    gsp_enc_t *e = data;
    if (len > e->cap - e->len)
        return -1;
    if (len) {
        memcpy(e->buf + e->len, buf, len);
        e->len += len;
    }
    return 0;
}

void gsp_mp_packer(msgpack_packer *pk, gsp_enc_t *e)
{
    msgpack_packer_init(pk, e, mp_write);
}

int gsp_mpr_skip(gsp_mpr_t *r, uint64_t n)
{
    size_t pos = r->pos;
    if (n > r->len - pos)
        return -1;
    while (n > 0) {
        size_t left = r->len - pos;
        if (left < 1)
            return -1;
        const uint8_t *q = r->p + pos;
        uint8_t b = q[0];
        uint64_t body = 0, items = 0;
        size_t hdr = 1, lenb = 0; /* lenb: bytes of a big-endian length after the type byte */
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, nil, bool: the byte is the value */
        } else if ((b & 0xf0) == 0x80) {
            items = 2u * (b & 0x0f);
        } else if ((b & 0xf0) == 0x90) {
            items = b & 0x0f;
        } else if ((b & 0xe0) == 0xa0) {
            body = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4: /* bin 8/16/32, str 8/16/32 */
            case 0xd9:
                lenb = 1;
                break;
            case 0xc5:
            case 0xda:
                lenb = 2;
                break;
            case 0xc6:
            case 0xdb:
                lenb = 4;
                break;
            case 0xc7: /* ext 8/16/32: length, then a type byte */
                lenb = 1, hdr = 1;
                break;
            case 0xc8:
                lenb = 2, hdr = 1;
                break;
            case 0xc9:
                lenb = 4, hdr = 1;
                break;
            case 0xca: /* float 32/64 */
                body = 4;
                break;
            case 0xcb:
                body = 8;
                break;
            case 0xcc: /* uint and int 8/16/32/64 */
            case 0xcd:
            case 0xce:
            case 0xcf:
                body = 1u << (b - 0xcc);
                break;
            case 0xd0:
            case 0xd1:
            case 0xd2:
            case 0xd3:
                body = 1u << (b - 0xd0);
                break;
            case 0xd4: /* fixext 1/2/4/8/16: a type byte, then the data */
            case 0xd5:
            case 0xd6:
            case 0xd7:
            case 0xd8:
                body = 1 + (1u << (b - 0xd4));
                break;
            case 0xdc: /* array 16/32, map 16/32 */
            case 0xde:
                lenb = 2;
                break;
            case 0xdd:
            case 0xdf:
                lenb = 4;
                break;
            default: /* 0xc1: never used */
                return -1;
            }
        }
        if (lenb) {
            if (left < 1 + lenb)
                return -1;
            uint64_t v = 0;
            for (size_t i = 0; i < lenb; i++)
                v = v << 8 | q[1 + i];
            hdr = 1 + lenb;
            if (b >= 0xc7 && b <= 0xc9) {
                hdr += 1, body = v; /* ext: the type byte */
            } else if (b == 0xdc || b == 0xdd) {
                items = v;
            } else if (b == 0xde || b == 0xdf) {
                items = 2 * v;
            } else {
                body = v;
            }
        }
        if (hdr > left || body > left - hdr)
            return -1;
        pos += hdr + body;
        /* The values still to skip each take a byte at least. */
        if (n - 1 + items > r->len - pos)
            return -1;
        n = n - 1 + items;
    }
    r->pos = pos;
    return 0;
}
