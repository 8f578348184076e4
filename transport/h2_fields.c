/*
 * transport/h2_fields.c: HTTP/2 field rules checked by the proxy (see h2_fields.h). Table
 * driven: one lookup per byte of name and value, one switch on the length for the few names
 * with rules of their own.
 */
#include "transport/h2_fields.h"

#include <string.h>

enum {
    PSEUDO_METHOD = 1,
    PSEUDO_SCHEME = 2,
    PSEUDO_PATH = 4,
    PSEUDO_AUTHORITY = 8,
    PSEUDO_STATUS = 16,
};

/* tchar (RFC 9110 section 5.6.2) without upper-case letters. */
static const uint8_t NAME_OK[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1,         ['&'] = 1,         ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,         ['^'] = 1,         ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0' ... '9'] = 1, ['a' ... 'z'] = 1,
};

/* Control characters other than HTAB, and DEL (RFC 9110 section 5.5). */
static const uint8_t VALUE_BAD[256] = {[0 ... 8] = 1, [10 ... 31] = 1, [127] = 1};

static int fail(mesh_h2_fields_t *f, const char *problem)
{
    if (!f->problem)
        f->problem = problem;
    return -1;
}

#define IS(s) (nl == sizeof(s) - 1 && memcmp(name, s, nl) == 0)

static int pseudo_field(mesh_h2_fields_t *f, mesh_h2_block_t block, const uint8_t *name, size_t nl,
                        const uint8_t *value, size_t vl)
{
    if (block == MESH_H2_TRAILERS)
        return fail(f, "pseudo-header field in trailers");
    if (f->regular)
        return fail(f, "pseudo-header field after a regular field");
    int bit = 0;
    if (block == MESH_H2_REQUEST) {
        bit = IS(":method")      ? PSEUDO_METHOD
              : IS(":scheme")    ? PSEUDO_SCHEME
              : IS(":path")      ? PSEUDO_PATH
              : IS(":authority") ? PSEUDO_AUTHORITY
                                 : 0;
    } else if (IS(":status")) {
        bit = PSEUDO_STATUS;
    }
    if (!bit)
        return fail(f, "unknown pseudo-header field");
    if (f->pseudo & bit)
        return fail(f, "repeated pseudo-header field");
    f->pseudo |= (uint8_t)bit;
    if (bit == PSEUDO_STATUS && (vl != 3 || value[0] < '1' || value[0] > '9' || value[1] < '0' ||
                                 value[1] > '9' || value[2] < '0' || value[2] > '9'))
        return fail(f, ":status is not three digits");
    if ((bit == PSEUDO_PATH || bit == PSEUDO_METHOD || bit == PSEUDO_SCHEME) && vl == 0)
        return fail(f, "empty :method, :scheme or :path");
    return 0;
}

/* 1 when some byte of the 8 in x is below 0x20 or is 0x7f (bytes >= 0x80 pass). */
static inline int word_suspect(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t below = (x - ones * 0x20) & ~x & highs;
    uint64_t del = x ^ (ones * 0x7f);
    del = (del - ones) & ~del & highs;
    return (below | del) != 0;
}

/* 1 when the value has a control character other than HTAB, or DEL. Eight bytes at a time;
 * a word with a suspect byte (HTAB is one) is looked at byte by byte. */
static int value_bad(const uint8_t *v, size_t vl)
{
    size_t i = 0;
    for (; i + 8 <= vl; i += 8) {
        uint64_t x;
        memcpy(&x, v + i, 8);
        if (word_suspect(x)) {
            uint8_t bad = 0;
            for (size_t j = i; j < i + 8; j++)
                bad |= VALUE_BAD[v[j]];
            if (bad)
                return 1;
        }
    }
    uint8_t bad = 0;
    for (; i < vl; i++)
        bad |= VALUE_BAD[v[i]];
    return bad;
}

/* 1 when every byte of the name from `from` on is a lower-case token character. */
static int name_ok(const uint8_t *name, size_t from, size_t nl)
{
    uint8_t ok = 1;
    for (size_t i = from; i < nl; i++)
        ok &= NAME_OK[name[i]];
    return ok;
}

static int name_problem(mesh_h2_fields_t *f, const uint8_t *name, size_t nl)
{
    for (size_t i = 0; i < nl; i++)
        if (name[i] >= 'A' && name[i] <= 'Z')
            return fail(f, "upper-case letter in a field name");
    return fail(f, "invalid character in a field name");
}

int mesh_h2_field_check(mesh_h2_fields_t *f, mesh_h2_block_t block, const uint8_t *name, size_t nl,
                        const uint8_t *value, size_t vl)
{
    if (f->problem)
        return -1;
    if (nl == 0)
        return fail(f, "empty field name");
    if (vl &&
        (value[0] == ' ' || value[0] == '\t' || value[vl - 1] == ' ' || value[vl - 1] == '\t'))
        return fail(f, "field value starts or ends with whitespace");
    if (value_bad(value, vl))
        return fail(f, "control character in a field value");
    if (name[0] == ':') {
        if (!name_ok(name, 1, nl))
            return name_problem(f, name, nl);
        return pseudo_field(f, block, name, nl, value, vl);
    }
    if (!name_ok(name, 0, nl))
        return name_problem(f, name, nl);
    f->regular = 1;
    switch (nl) {
    case 2:
        if (IS("te") && !(vl == 8 && memcmp(value, "trailers", 8) == 0))
            return fail(f, "te other than \"trailers\"");
        break;
    case 7:
        if (IS("upgrade"))
            return fail(f, "connection-specific field");
        break;
    case 10:
        if (IS("connection") || IS("keep-alive"))
            return fail(f, "connection-specific field");
        break;
    case 16:
        if (IS("proxy-connection"))
            return fail(f, "connection-specific field");
        break;
    case 17:
        if (IS("transfer-encoding"))
            return fail(f, "connection-specific field");
        break;
    default:
        break;
    }
    return 0;
}

#undef IS

int mesh_h2_fields_end(mesh_h2_fields_t *f, mesh_h2_block_t block)
{
    if (f->problem)
        return -1;
    if (block == MESH_H2_REQUEST && (f->pseudo & (PSEUDO_METHOD | PSEUDO_SCHEME | PSEUDO_PATH)) !=
                                        (PSEUDO_METHOD | PSEUDO_SCHEME | PSEUDO_PATH))
        return fail(f, "missing :method, :scheme or :path");
    if (block == MESH_H2_RESPONSE && !(f->pseudo & PSEUDO_STATUS))
        return fail(f, "missing :status");
    return 0;
}
