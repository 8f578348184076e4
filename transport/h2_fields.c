/*
 * transport/h2_fields.c: HTTP/2 field rules checked by the proxy (see h2_fields.h).
 *
 * One switch on the name's length classifies it (mesh_h2_name_of): the pseudo-header fields,
 * the names with a rule of their own (te, the connection-specific ones) and the names every
 * gRPC call carries (content-type, user-agent, grpc-*, the trace context), which are then known
 * to be valid without looking at their bytes. The proxy keeps the class, so a name is
 * classified once. Any other name is checked byte by byte against a table; values eight bytes at a
 * time.
 */
#include "transport/h2_fields.h"

#include <string.h>

/* What a field name is. The pseudo-header kinds double as bits of mesh_h2_fields_t.pseudo. */
typedef enum {
    NAME_UNKNOWN = 0, /* not in the switch: check its bytes */
    NAME_METHOD = 1,
    NAME_SCHEME = 2,
    NAME_PATH = 4,
    NAME_AUTHORITY = 8,
    NAME_STATUS = 16,
    NAME_REGULAR = 32,    /* a common, valid regular name */
    NAME_TE = 64,         /* te: only "trailers" */
    NAME_CONNECTION = 128 /* connection-specific: never in HTTP/2 */
} name_kind_t;

#define REQUEST_PSEUDO (NAME_METHOD | NAME_SCHEME | NAME_PATH | NAME_AUTHORITY)

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

#define IS(s) (memcmp(name, s, sizeof(s) - 1) == 0)

mesh_h2_name_t mesh_h2_name_of(const uint8_t *name, size_t nl)
{
    switch (nl) {
    case 2:
        return IS("te") ? MESH_H2_N_TE : MESH_H2_N_OTHER;
    case 4:
        return IS("host") ? MESH_H2_N_HOST : MESH_H2_N_OTHER;
    case 5:
        return IS(":path") ? MESH_H2_N_PATH : MESH_H2_N_OTHER;
    case 7:
        return IS(":method")   ? MESH_H2_N_METHOD
               : IS(":scheme") ? MESH_H2_N_SCHEME
               : IS(":status") ? MESH_H2_N_STATUS
               : IS("upgrade") ? MESH_H2_N_UPGRADE
                               : MESH_H2_N_OTHER;
    case 10:
        return IS(":authority")   ? MESH_H2_N_AUTHORITY
               : IS("user-agent") ? MESH_H2_N_USER_AGENT
               : IS("tracestate") ? MESH_H2_N_TRACESTATE
               : IS("connection") ? MESH_H2_N_CONNECTION
               : IS("keep-alive") ? MESH_H2_N_KEEP_ALIVE
                                  : MESH_H2_N_OTHER;
    case 11:
        return IS("grpc-status")   ? MESH_H2_N_GRPC_STATUS
               : IS("traceparent") ? MESH_H2_N_TRACEPARENT
                                   : MESH_H2_N_OTHER;
    case 12:
        return IS("content-type")   ? MESH_H2_N_CONTENT_TYPE
               : IS("grpc-message") ? MESH_H2_N_GRPC_MESSAGE
               : IS("grpc-timeout") ? MESH_H2_N_GRPC_TIMEOUT
               : IS("x-request-id") ? MESH_H2_N_REQUEST_ID
                                    : MESH_H2_N_OTHER;
    case 13:
        return IS("grpc-encoding") ? MESH_H2_N_GRPC_ENCODING : MESH_H2_N_OTHER;
    case 16:
        return IS("proxy-connection") ? MESH_H2_N_PROXY_CONNECTION : MESH_H2_N_OTHER;
    case 17:
        return IS("transfer-encoding") ? MESH_H2_N_TRANSFER_ENCODING : MESH_H2_N_OTHER;
    case 20:
        return IS("grpc-accept-encoding") ? MESH_H2_N_GRPC_ACCEPT_ENCODING : MESH_H2_N_OTHER;
    default:
        return MESH_H2_N_OTHER;
    }
}

#undef IS

/* The rule each name has (NAME_UNKNOWN: check its bytes). */
static const uint8_t KIND[MESH_H2_N_COUNT] = {
    [MESH_H2_N_METHOD] = NAME_METHOD,
    [MESH_H2_N_SCHEME] = NAME_SCHEME,
    [MESH_H2_N_PATH] = NAME_PATH,
    [MESH_H2_N_AUTHORITY] = NAME_AUTHORITY,
    [MESH_H2_N_STATUS] = NAME_STATUS,
    [MESH_H2_N_CONTENT_TYPE] = NAME_REGULAR,
    [MESH_H2_N_USER_AGENT] = NAME_REGULAR,
    [MESH_H2_N_GRPC_TIMEOUT] = NAME_REGULAR,
    [MESH_H2_N_GRPC_STATUS] = NAME_REGULAR,
    [MESH_H2_N_GRPC_MESSAGE] = NAME_REGULAR,
    [MESH_H2_N_GRPC_ENCODING] = NAME_REGULAR,
    [MESH_H2_N_GRPC_ACCEPT_ENCODING] = NAME_REGULAR,
    [MESH_H2_N_TRACEPARENT] = NAME_REGULAR,
    [MESH_H2_N_TRACESTATE] = NAME_REGULAR,
    [MESH_H2_N_REQUEST_ID] = NAME_REGULAR,
    [MESH_H2_N_TE] = NAME_TE,
    [MESH_H2_N_HOST] = NAME_REGULAR,
    [MESH_H2_N_CONNECTION] = NAME_CONNECTION,
    [MESH_H2_N_KEEP_ALIVE] = NAME_CONNECTION,
    [MESH_H2_N_PROXY_CONNECTION] = NAME_CONNECTION,
    [MESH_H2_N_TRANSFER_ENCODING] = NAME_CONNECTION,
    [MESH_H2_N_UPGRADE] = NAME_CONNECTION,
};

/* 1 when some byte of the 8 in x is below 0x20 or is 0x7f (bytes >= 0x80 pass). */
static inline int word_suspect(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t below = (x - ones * 0x20) & ~x & highs;
    uint64_t del = x ^ (ones * 0x7f);
    del = (del - ones) & ~del & highs;
    return (below | del) != 0;
}

/* The exact check of the bytes of a suspect word. */
static int bytes_bad(const uint8_t *v, size_t n)
{
    uint8_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= VALUE_BAD[v[i]];
    return bad;
}

static inline uint64_t load32_pair(const uint8_t *a, const uint8_t *b)
{
    uint32_t x, y;
    memcpy(&x, a, 4);
    memcpy(&y, b, 4);
    return (uint64_t)x | (uint64_t)y << 32;
}

/* 1 when the value has a control character other than HTAB, or DEL. Eight bytes at a time
 * (the last word overlapping the one before, short values as two overlapping halves); a word
 * with a suspect byte (HTAB is one) is looked at byte by byte. */
static int value_bad(const uint8_t *v, size_t vl)
{
    if (vl < 4)
        return bytes_bad(v, vl);
    if (vl < 8)
        return word_suspect(load32_pair(v, v + vl - 4)) && bytes_bad(v, vl);
    uint64_t x;
    for (size_t i = 0; i + 8 < vl; i += 8) {
        memcpy(&x, v + i, 8);
        if (word_suspect(x) && bytes_bad(v + i, 8))
            return 1;
    }
    memcpy(&x, v + vl - 8, 8);
    return word_suspect(x) && bytes_bad(v + vl - 8, 8);
}

/* The problem with a regular name not in the switch, or NULL when it is a valid token. */
static const char *name_problem(const uint8_t *name, size_t nl)
{
    uint8_t ok = 1;
    for (size_t i = 0; i < nl; i++)
        ok &= NAME_OK[name[i]];
    if (ok)
        return NULL;
    for (size_t i = 0; i < nl; i++)
        if (name[i] >= 'A' && name[i] <= 'Z')
            return "upper-case letter in a field name";
    return "invalid character in a field name";
}

int mesh_h2_name_bad(const char *name, size_t nl)
{
    return nl == 0 || name_problem((const uint8_t *)name, nl) != NULL;
}

int mesh_h2_value_bad(const char *value, size_t vl)
{
    return value_bad((const uint8_t *)value, vl);
}

/* What a pseudo-header field must be where it is: the block, the order, no repetition. */
static int pseudo_place(mesh_h2_fields_t *f, mesh_h2_block_t block, name_kind_t k)
{
    if (block == MESH_H2_TRAILERS)
        return fail(f, "pseudo-header field in trailers");
    if (f->regular)
        return fail(f, "pseudo-header field after a regular field");
    if (k == NAME_UNKNOWN || (block == MESH_H2_REQUEST) != ((k & REQUEST_PSEUDO) != 0))
        return fail(f, "unknown pseudo-header field");
    if (f->pseudo & k)
        return fail(f, "repeated pseudo-header field");
    f->pseudo |= (uint8_t)k;
    return 0;
}

static int pseudo_field(mesh_h2_fields_t *f, mesh_h2_block_t block, name_kind_t k,
                        const uint8_t *value, size_t vl)
{
    if (pseudo_place(f, block, k) < 0)
        return -1;
    if (k == NAME_STATUS && (vl != 3 || value[0] < '1' || value[0] > '9' || value[1] < '0' ||
                             value[1] > '9' || value[2] < '0' || value[2] > '9'))
        return fail(f, ":status is not three digits");
    if ((k & (NAME_PATH | NAME_METHOD | NAME_SCHEME)) && vl == 0)
        return fail(f, "empty :method, :scheme or :path");
    return 0;
}

/* What every value must be, whatever its name: the problem, or NULL. */
static const char *value_problem(const uint8_t *value, size_t vl)
{
    if (vl &&
        (value[0] == ' ' || value[0] == '\t' || value[vl - 1] == ' ' || value[vl - 1] == '\t'))
        return "field value starts or ends with whitespace";
    if (value_bad(value, vl))
        return "control character in a field value";
    return NULL;
}

/* A regular field's rules that depend on its name's kind and its value. */
static int regular_field(mesh_h2_fields_t *f, name_kind_t k, const uint8_t *value, size_t vl,
                         mesh_h2_name_t id)
{
    f->regular = 1;
    if (k == NAME_TE && !(vl == 8 && memcmp(value, "trailers", 8) == 0))
        return fail(f, "te other than \"trailers\"");
    if (k == NAME_CONNECTION)
        return fail(f, "connection-specific field");
    return (int)id;
}

int mesh_h2_field_check(mesh_h2_fields_t *f, mesh_h2_block_t block, const uint8_t *name, size_t nl,
                        const uint8_t *value, size_t vl)
{
    if (f->problem)
        return -1;
    if (nl == 0)
        return fail(f, "empty field name");
    const char *vp = value_problem(value, vl);
    if (vp)
        return fail(f, vp);
    mesh_h2_name_t id = mesh_h2_name_of(name, nl);
    name_kind_t k = (name_kind_t)KIND[id];
    if (name[0] == ':')
        return pseudo_field(f, block, k, value, vl) < 0 ? -1 : (int)id;
    if (k == NAME_UNKNOWN) {
        const char *p = name_problem(name, nl);
        if (p)
            return fail(f, p);
    }
    return regular_field(f, k, value, vl, id);
}

int mesh_h2_field_check_value(mesh_h2_fields_t *f, mesh_h2_block_t block, mesh_h2_name_t id,
                              const uint8_t *value, size_t vl)
{
    if (f->problem)
        return -1;
    const char *vp = value_problem(value, vl);
    if (vp)
        return fail(f, vp);
    name_kind_t k = (name_kind_t)KIND[id];
    if (k & (REQUEST_PSEUDO | NAME_STATUS)) /* (only these pseudo-header kinds ever pass) */
        return pseudo_field(f, block, k, value, vl) < 0 ? -1 : (int)id;
    return regular_field(f, k, value, vl, id);
}

int mesh_h2_field_recheck(mesh_h2_fields_t *f, mesh_h2_block_t block, mesh_h2_name_t id)
{
    if (f->problem)
        return -1;
    name_kind_t k = (name_kind_t)KIND[id];
    if (k & (REQUEST_PSEUDO | NAME_STATUS)) /* (only these pseudo-header kinds ever pass) */
        return pseudo_place(f, block, k) < 0 ? -1 : (int)id;
    f->regular = 1;
    return (int)id;
}

int mesh_h2_fields_end(mesh_h2_fields_t *f, mesh_h2_block_t block)
{
    if (f->problem)
        return -1;
    if (block == MESH_H2_REQUEST && (f->pseudo & (NAME_METHOD | NAME_SCHEME | NAME_PATH)) !=
                                        (NAME_METHOD | NAME_SCHEME | NAME_PATH))
        return fail(f, "missing :method, :scheme or :path");
    if (block == MESH_H2_RESPONSE && !(f->pseudo & NAME_STATUS))
        return fail(f, "missing :status");
    return 0;
}
