/*
 * gateway/json_pb.c: proto3 JSON -> protobuf wire bytes.
 *
 * json_tape tokenizes the text into a flat tape (it reports line and column for malformed
 * JSON; the tape and the slot stack are kept per thread: a warm call allocates only for bytes
 * fields); the
 * encoder then walks the schema fields in number order, looking each up in the JSON object, so
 * the output is in canonical field order whatever the key order. A nested message's length is
 * not known before it is written: one byte is reserved and the body moved when the length
 * needs more.
 */
#include "gateway/field_path.h"
#include "gateway/json_pb.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/json_tape.h"
#include "gateway/json_text.h"
#include "gateway/wire.h"

typedef gw_path_el_t path_el_t;

typedef struct {
    const gw_json_pb_opts_t *o;
    gw_buf_t *out;
    char *err;
    size_t errlen;
    gw_status_t st;
    int depth;
    path_el_t path[GW_MAX_DEPTH + 2];
    /* The tape: a container's members follow it, each value's next says where it ends. */
    const jt_tok_t *tok;
    /* Scratch stack of per-field JSON values, one frame per message being encoded. */
    const jt_tok_t **slots;
    size_t n_slots, cap_slots;
} ctx_t;

/* ---- tape access -------------------------------------------------------------------------- */

static inline bool jv_is_null(const jt_tok_t *j)
{
    return j->kind == JT_NULL;
}
static inline bool jv_is_integer(const jt_tok_t *j)
{
    return j->kind == JT_INT;
}
static inline bool jv_is_real(const jt_tok_t *j)
{
    return j->kind == JT_REAL;
}
static inline bool jv_is_number(const jt_tok_t *j)
{
    return j->kind == JT_INT || j->kind == JT_REAL;
}
static inline bool jv_is_string(const jt_tok_t *j)
{
    return j->kind == JT_STRING;
}
static inline bool jv_is_boolean(const jt_tok_t *j)
{
    return j->kind == JT_TRUE || j->kind == JT_FALSE;
}
static inline bool jv_is_true(const jt_tok_t *j)
{
    return j->kind == JT_TRUE;
}
static inline bool jv_is_object(const jt_tok_t *j)
{
    return j->kind == JT_OBJECT;
}
static inline bool jv_is_array(const jt_tok_t *j)
{
    return j->kind == JT_ARRAY;
}
static inline const char *jv_str(const jt_tok_t *j)
{
    return j->v.s;
}
static inline size_t jv_len(const jt_tok_t *j)
{
    return j->n;
}
static inline int64_t jv_int(const jt_tok_t *j)
{
    return j->v.i;
}
static inline double jv_real(const jt_tok_t *j)
{
    return j->v.d;
}
static inline double jv_num(const jt_tok_t *j)
{
    return j->kind == JT_INT ? (double)j->v.i : j->v.d;
}
/* The first element of an array or key of an object, and the token after a whole value. */
static inline const jt_tok_t *jv_first(const jt_tok_t *j)
{
    return j + 1;
}
#define JV_NEXT(c, j) ((c)->tok + (j)->next)
/* The value of an object's key k with the given text, or NULL. */
static const jt_tok_t *jv_get(const ctx_t *c, const jt_tok_t *j, const char *key)
{
    size_t n = strlen(key);
    const jt_tok_t *k = jv_first(j);
    for (uint32_t i = 0; i < j->n; i++, k = JV_NEXT(c, k + 1))
        if (k->n == n && memcmp(k->v.s, key, n) == 0)
            return k + 1;
    return NULL;
}

static int fail(ctx_t *c, gw_status_t st, const char *fmt, ...)
{
    if (c->st != GW_OK)
        return -1;
    c->st = st;
    va_list ap;
    va_start(ap, fmt);
    gw_path_error(c->path, c->depth, c->err, c->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int push(ctx_t *c, const gw_field_t *f, long idx)
{
    if (c->depth >= GW_MAX_DEPTH)
        return fail(c, GW_ERR_DEPTH, "nesting deeper than %d", GW_MAX_DEPTH);
    c->path[c->depth].f = f;
    c->path[c->depth].idx = idx;
    c->depth++;
    return 0;
}

static void pop(ctx_t *c)
{
    c->depth--;
}

/* ---- wire output -------------------------------------------------------------------------- */

static int put(ctx_t *c, const void *p, size_t n)
{
    if (!gw_buf_put(c->out, p, n))
        return fail(c, GW_ERR_NOMEM, "out of memory");
    return 0;
}

static int put_varint(ctx_t *c, uint64_t v)
{
    if (!gw_buf_reserve(c->out, 10))
        return fail(c, GW_ERR_NOMEM, "out of memory");
    c->out->len += gw_wire_put_varint(c->out->data + c->out->len, v);
    return 0;
}

static int put_tag(ctx_t *c, uint32_t number, int wt)
{
    return put_varint(c, (uint64_t)number << 3 | (uint64_t)wt);
}

static int put_fixed(ctx_t *c, uint64_t v, int bytes)
{
    uint8_t b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return put(c, b, (size_t)bytes);
}

/* Starts a length-delimited body: reserves one length byte; returns the body's start. */
static long begin_len(ctx_t *c)
{
    if (put(c, "", 1) < 0)
        return -1;
    return (long)c->out->len;
}

/* Ends a body started at start: writes its length varint before it. */
static int end_len(ctx_t *c, long start)
{
    size_t s = (size_t)start;
    size_t n = c->out->len - s;
    size_t k = gw_wire_varint_len(n);
    if (k > 1) {
        if (!gw_buf_reserve(c->out, k - 1))
            return fail(c, GW_ERR_NOMEM, "out of memory");
        memmove(c->out->data + s + k - 1, c->out->data + s, n);
        c->out->len += k - 1;
    }
    gw_wire_put_varint(c->out->data + s - 1, n);
    return 0;
}

/* ---- scalar conversion -------------------------------------------------------------------- */

static const char *kind_name(const jt_tok_t *j)
{
    switch (j->kind) {
    case JT_OBJECT:
        return "an object";
    case JT_ARRAY:
        return "an array";
    case JT_STRING:
        return "a string";
    case JT_INT:
    case JT_REAL:
        return "a number";
    case JT_TRUE:
    case JT_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* An integer from a JSON number or a decimal string; *is_neg for the sign of the magnitude. */
static int to_integer(ctx_t *c, const jt_tok_t *j, bool is_signed, int64_t min, uint64_t max,
                      uint64_t *out)
{
    if (jv_is_integer(j)) {
        int64_t v = jv_int(j);
        if (v < 0 ? (!is_signed || v < min) : (uint64_t)v > max)
            return fail(c, GW_ERR_TYPE, "integer %lld out of range", (long long)v);
        *out = (uint64_t)v;
        return 0;
    }
    if (jv_is_real(j)) {
        double d = jv_real(j);
        if (d != floor(d) || !isfinite(d))
            return fail(c, GW_ERR_TYPE, "expected an integer, got %g", d);
        if (d < 0 ? (!is_signed || d < (double)min) : d >= (double)max + 1.0)
            return fail(c, GW_ERR_TYPE, "integer %g out of range", d);
        *out = d < 0 ? (uint64_t)(int64_t)d : (uint64_t)d;
        return 0;
    }
    if (jv_is_string(j)) {
        const char *s = jv_str(j);
        size_t n = jv_len(j);
        size_t i = 0;
        bool neg = false;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            neg = s[i++] == '-';
        if (i == n)
            return fail(c, GW_ERR_TYPE, "expected an integer, got \"%.*s\"", (int)n, s);
        uint64_t v = 0;
        for (; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return fail(c, GW_ERR_TYPE, "expected an integer, got \"%.*s\"",
                            (int)(n > 64 ? 64 : n), s);
            if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
                return fail(c, GW_ERR_TYPE, "integer %.*s out of range", (int)(n > 64 ? 64 : n), s);
            v = v * 10 + (uint64_t)(s[i] - '0');
        }
        if (neg && v != 0) {
            if (!is_signed || v > (uint64_t)(-(min + 1)) + 1)
                return fail(c, GW_ERR_TYPE, "integer %.*s out of range", (int)n, s);
            *out = 0 - v;
        } else {
            if (v > max)
                return fail(c, GW_ERR_TYPE, "integer %.*s out of range", (int)n, s);
            *out = v;
        }
        return 0;
    }
    return fail(c, GW_ERR_TYPE, "expected an integer, got %s", kind_name(j));
}

static int to_double(ctx_t *c, const jt_tok_t *j, bool as_float, double *out)
{
    double d;
    if (jv_is_number(j)) {
        d = jv_num(j);
    } else if (jv_is_string(j)) {
        const char *s = jv_str(j);
        size_t sn = jv_len(j);
        if (sn == 3 && memcmp(s, "NaN", 3) == 0) {
            d = NAN;
        } else if (sn == 8 && memcmp(s, "Infinity", 8) == 0) {
            d = INFINITY;
        } else if (sn == 9 && memcmp(s, "-Infinity", 9) == 0) {
            d = -INFINITY;
        } else {
            char *end;
            errno = 0;
            d = strtod(s, &end);
            if (!s[0] || *end || end != s + jv_len(j) || isnan(d) || isinf(d) || s[0] == ' ')
                return fail(c, GW_ERR_TYPE, "expected a number, got \"%.64s\"", s);
        }
    } else {
        return fail(c, GW_ERR_TYPE, "expected a number, got %s", kind_name(j));
    }
    if (as_float && isfinite(d) && fabs(d) > FLT_MAX)
        return fail(c, GW_ERR_TYPE, "number %g out of float range", d);
    *out = d;
    return 0;
}

static const gw_message_t *resolve(ctx_t *c, const char *url, size_t n)
{
    return c->o->resolve ? c->o->resolve(c->o->resolve_ud, url, n) : NULL;
}

static int encode_message(ctx_t *c, const gw_message_t *m, const jt_tok_t *j);

/* Wire type of a field's values. */
static int wire_type(gw_type_t t)
{
    switch (t) {
    case GW_TYPE_DOUBLE:
    case GW_TYPE_FIXED64:
    case GW_TYPE_SFIXED64:
        return GW_WT_I64;
    case GW_TYPE_FLOAT:
    case GW_TYPE_FIXED32:
    case GW_TYPE_SFIXED32:
        return GW_WT_I32;
    case GW_TYPE_STRING:
    case GW_TYPE_BYTES:
    case GW_TYPE_MESSAGE:
    case GW_TYPE_GROUP:
        return GW_WT_LEN;
    default:
        return GW_WT_VARINT;
    }
}

/* A scalar value converted to its wire form: v for numbers, or (s, n) for strings/bytes;
 * is_default tells whether it is the type's default. Bytes are decoded into c->out past its
 * end (caller copies). */
typedef struct {
    uint64_t v;
    const char *s;
    size_t n;
    bool is_default;
    uint8_t *bytes; /* malloc'd decoded bytes */
} scalar_t;

static int convert_scalar(ctx_t *c, const gw_field_t *f, gw_type_t t, const jt_tok_t *j,
                          scalar_t *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t v = 0;
    switch (t) {
    case GW_TYPE_INT32:
    case GW_TYPE_SFIXED32:
    case GW_TYPE_SINT32:
        if (to_integer(c, j, true, INT32_MIN, INT32_MAX, &v) < 0)
            return -1;
        if (t == GW_TYPE_SINT32) {
            int32_t x = (int32_t)v;
            v = (uint32_t)(((uint32_t)x << 1) ^ (uint32_t)(x >> 31));
        } else if (t == GW_TYPE_SFIXED32) {
            v = (uint32_t)(int32_t)v;
        }
        break;
    case GW_TYPE_INT64:
    case GW_TYPE_SFIXED64:
    case GW_TYPE_SINT64:
        if (to_integer(c, j, true, INT64_MIN, INT64_MAX, &v) < 0)
            return -1;
        if (t == GW_TYPE_SINT64) {
            int64_t x = (int64_t)v;
            v = ((uint64_t)x << 1) ^ (uint64_t)(x >> 63);
        }
        break;
    case GW_TYPE_UINT32:
    case GW_TYPE_FIXED32:
        if (to_integer(c, j, false, 0, UINT32_MAX, &v) < 0)
            return -1;
        break;
    case GW_TYPE_UINT64:
    case GW_TYPE_FIXED64:
        if (to_integer(c, j, false, 0, UINT64_MAX, &v) < 0)
            return -1;
        break;
    case GW_TYPE_BOOL:
        if (!jv_is_boolean(j))
            return fail(c, GW_ERR_TYPE, "expected a boolean, got %s", kind_name(j));
        v = jv_is_true(j);
        break;
    case GW_TYPE_FLOAT: {
        double d;
        if (to_double(c, j, true, &d) < 0)
            return -1;
        float x = (float)d;
        uint32_t u;
        memcpy(&u, &x, 4);
        v = u;
        out->is_default = x == 0.0f;
        out->v = v;
        return 0;
    }
    case GW_TYPE_DOUBLE: {
        double d;
        if (to_double(c, j, false, &d) < 0)
            return -1;
        memcpy(&v, &d, 8);
        out->is_default = d == 0.0;
        out->v = v;
        return 0;
    }
    case GW_TYPE_ENUM: {
        const gw_enum_t *e = f->enumeration;
        if (jv_is_null(j) && e->null_value) {
            v = 0;
        } else if (jv_is_string(j)) {
            const gw_enum_value_t *ev = gw_enum_by_name(e, jv_str(j), jv_len(j));
            if (!ev)
                return fail(c, GW_ERR_UNKNOWN, "enum %s has no value \"%.64s\"", e->full_name,
                            jv_str(j));
            v = (uint64_t)(int64_t)ev->number;
        } else if (jv_is_number(j)) {
            if (to_integer(c, j, true, INT32_MIN, INT32_MAX, &v) < 0)
                return -1;
            v = (uint64_t)(int64_t)(int32_t)v;
            /* NullValue's JSON form is null, whatever number the wire holds: a number other
             * than 0 could not come back from JSON, so it is refused here. */
            if (e->null_value && v != 0)
                return fail(c, GW_ERR_VALUE, "%s has no value %lld (only null or 0)", e->full_name,
                            (long long)(int64_t)v);
        } else {
            return fail(c, GW_ERR_TYPE, "expected an enum name or number, got %s", kind_name(j));
        }
        break;
    }
    case GW_TYPE_STRING:
        if (!jv_is_string(j))
            return fail(c, GW_ERR_TYPE, "expected a string, got %s", kind_name(j));
        out->s = jv_str(j);
        out->n = jv_len(j);
        out->is_default = out->n == 0;
        return 0;
    case GW_TYPE_BYTES: {
        if (!jv_is_string(j))
            return fail(c, GW_ERR_TYPE, "expected a base64 string, got %s", kind_name(j));
        size_t n = jv_len(j);
        out->bytes = malloc(n * 3 / 4 + 4);
        if (!out->bytes)
            return fail(c, GW_ERR_NOMEM, "out of memory");
        long k = gw_base64_decode(jv_str(j), n, out->bytes);
        if (k < 0) {
            free(out->bytes);
            out->bytes = NULL;
            return fail(c, GW_ERR_TYPE, "expected base64, got \"%.64s\"", jv_str(j));
        }
        out->s = (const char *)out->bytes;
        out->n = (size_t)k;
        out->is_default = k == 0;
        return 0;
    }
    default:
        return fail(c, GW_ERR_VALUE, "unsupported field type %d", (int)t);
    }
    out->v = v;
    out->is_default = v == 0;
    return 0;
}

/* Writes the raw value (no tag) of a converted scalar. */
static int put_scalar(ctx_t *c, gw_type_t t, const scalar_t *s)
{
    switch (wire_type(t)) {
    case GW_WT_I64:
        return put_fixed(c, s->v, 8);
    case GW_WT_I32:
        return put_fixed(c, s->v, 4);
    case GW_WT_LEN:
        if (put_varint(c, s->n) < 0)
            return -1;
        return put(c, s->s, s->n);
    default:
        return put_varint(c, s->v);
    }
}

/* Writes one value of field f (tag included) from JSON j. always: write even a default. */
static int encode_value(ctx_t *c, const gw_field_t *f, gw_type_t t, const jt_tok_t *j, bool always)
{
    if (t == GW_TYPE_MESSAGE) {
        if (put_tag(c, f->number, GW_WT_LEN) < 0)
            return -1;
        long start = begin_len(c);
        if (start < 0 || encode_message(c, f->message, j) < 0)
            return -1;
        return end_len(c, start);
    }
    if (t == GW_TYPE_GROUP)
        return fail(c, GW_ERR_VALUE, "groups are not supported");
    scalar_t s;
    if (convert_scalar(c, f, t, j, &s) < 0)
        return -1;
    int rc = 0;
    if (always || !s.is_default)
        rc = put_tag(c, f->number, wire_type(t)) < 0 || put_scalar(c, t, &s) < 0 ? -1 : 0;
    free(s.bytes);
    return rc;
}

static bool packable(gw_type_t t)
{
    return wire_type(t) != GW_WT_LEN;
}

static int encode_repeated(ctx_t *c, const gw_field_t *f, const jt_tok_t *j)
{
    if (!jv_is_array(j))
        return fail(c, GW_ERR_TYPE, "expected an array, got %s", kind_name(j));
    size_t n = jv_len(j);
    if (n == 0)
        return 0;
    bool value_elems = f->message && f->message->wkt == GW_WKT_VALUE;
    if (f->packed && packable(f->type)) {
        if (put_tag(c, f->number, GW_WT_LEN) < 0)
            return -1;
        long start = begin_len(c);
        if (start < 0)
            return -1;
        const jt_tok_t *e = jv_first(j);
        for (size_t i = 0; i < n; i++, e = JV_NEXT(c, e)) {
            c->path[c->depth - 1].idx = (long)i;
            if (jv_is_null(e))
                return fail(c, GW_ERR_TYPE, "null is not allowed in a repeated field");
            scalar_t s;
            if (convert_scalar(c, f, f->type, e, &s) < 0 || put_scalar(c, f->type, &s) < 0)
                return -1;
        }
        return end_len(c, start);
    }
    const jt_tok_t *e = jv_first(j);
    for (size_t i = 0; i < n; i++, e = JV_NEXT(c, e)) {
        c->path[c->depth - 1].idx = (long)i;
        if (jv_is_null(e) && !value_elems)
            return fail(c, GW_ERR_TYPE, "null is not allowed in a repeated field");
        if (encode_value(c, f, f->type, e, true) < 0)
            return -1;
    }
    return 0;
}

/* A map key (JSON object keys are strings) as a JSON value of the key's type. */
static int encode_map_key(ctx_t *c, const gw_field_t *kf, const char *key, size_t klen)
{
    if (kf->type == GW_TYPE_STRING) {
        if (put_tag(c, 1, GW_WT_LEN) < 0 || put_varint(c, klen) < 0)
            return -1;
        return put(c, key, klen);
    }
    if (kf->type == GW_TYPE_BOOL) {
        bool t = klen == 4 && memcmp(key, "true", 4) == 0;
        if (!t && !(klen == 5 && memcmp(key, "false", 5) == 0))
            return fail(c, GW_ERR_TYPE, "map key \"%.64s\" is not true or false", key);
        return put_tag(c, 1, GW_WT_VARINT) < 0 || put_varint(c, t) < 0 ? -1 : 0;
    }
    jt_tok_t s = {.kind = JT_STRING, .n = (uint32_t)klen, .v.s = key};
    return encode_value(c, kf, kf->type, &s, true);
}

static int encode_map(ctx_t *c, const gw_field_t *f, const jt_tok_t *j)
{
    if (!jv_is_object(j))
        return fail(c, GW_ERR_TYPE, "expected an object, got %s", kind_name(j));
    const gw_message_t *em = f->message;
    const gw_field_t *kf = &em->fields[0], *vf = &em->fields[1];
    const jt_tok_t *k = jv_first(j);
    for (uint32_t idx = 0; idx < j->n; idx++, k = JV_NEXT(c, k + 1)) {
        const char *key = k->v.s;
        size_t klen = k->n;
        const jt_tok_t *v = k + 1;
        c->path[c->depth - 1].idx = idx;
        if (jv_is_null(v) && !(vf->message && vf->message->wkt == GW_WKT_VALUE))
            return fail(c, GW_ERR_TYPE, "map value for key \"%.64s\" is null", key);
        if (put_tag(c, f->number, GW_WT_LEN) < 0)
            return -1;
        long start = begin_len(c);
        if (start < 0 || encode_map_key(c, kf, key, klen) < 0 ||
            encode_value(c, vf, vf->type, v, true) < 0 || end_len(c, start) < 0)
            return -1;
    }
    return 0;
}

/* Encodes the fields of m from object j (skipping "@type" when in_any). */
static int encode_fields(ctx_t *c, const gw_message_t *m, const jt_tok_t *j, bool in_any)
{
    if (!jv_is_object(j))
        return fail(c, GW_ERR_TYPE, "expected an object for %s, got %s", m->full_name,
                    kind_name(j));
    size_t base = c->n_slots;
    if (c->n_slots + m->n_fields > c->cap_slots) {
        size_t cap = c->cap_slots ? c->cap_slots : 64;
        while (cap < c->n_slots + m->n_fields)
            cap *= 2;
        const jt_tok_t **p = realloc(c->slots, cap * sizeof(*p));
        if (!p)
            return fail(c, GW_ERR_NOMEM, "out of memory");
        c->slots = p;
        c->cap_slots = cap;
    }
    memset(c->slots + base, 0, m->n_fields * sizeof(jt_tok_t *));
    c->n_slots += m->n_fields;
    int rc = -1;
    const jt_tok_t *k = jv_first(j);
    for (uint32_t idx = 0; idx < j->n; idx++, k = JV_NEXT(c, k + 1)) {
        const char *key = k->v.s;
        size_t klen = k->n;
        const jt_tok_t *v = k + 1;
        if (in_any && klen == 5 && memcmp(key, "@type", 5) == 0)
            continue;
        const gw_field_t *f = gw_message_field_by_json(m, key, klen);
        if (!f) {
            if (c->o->ignore_unknown)
                continue;
            fail(c, GW_ERR_UNKNOWN, "unknown field \"%.*s\" in %s", (int)(klen > 64 ? 64 : klen),
                 key, m->full_name);
            goto out;
        }
        size_t i = (size_t)(f - m->fields);
        if (c->slots[base + i]) {
            fail(c, GW_ERR_TYPE, "field %s given twice (by both of its names)", f->name);
            goto out;
        }
        c->slots[base + i] = v;
    }
    /* A oneof takes at most one non-null member. */
    for (size_t i = 0; i < m->n_fields; i++) {
        const gw_field_t *f = &m->fields[i];
        const jt_tok_t *x = c->slots[base + i];
        if (f->oneof_index < 0 || !x || jv_is_null(x))
            continue;
        for (size_t k = i + 1; k < m->n_fields; k++) {
            const jt_tok_t *y = c->slots[base + k];
            if (m->fields[k].oneof_index == f->oneof_index && y && !jv_is_null(y)) {
                fail(c, GW_ERR_TYPE, "fields %s and %s are both set but belong to oneof %s",
                     f->name, m->fields[k].name, m->oneof_names[f->oneof_index]);
                goto out;
            }
        }
    }
    for (size_t i = 0; i < m->n_fields; i++) {
        const gw_field_t *f = &m->fields[i];
        const jt_tok_t *x = c->slots[base + i];
        if (!x)
            continue;
        bool value_field = f->message && f->message->wkt == GW_WKT_VALUE;
        if (jv_is_null(x) && !(value_field && !f->repeated) &&
            !(f->enumeration && f->enumeration->null_value && f->has_presence))
            continue; /* null: the default */
        if (push(c, f, f->repeated ? 0 : -1) < 0)
            goto out;
        int r;
        if (f->repeated)
            r = f->message && f->message->map_entry ? encode_map(c, f, x)
                                                    : encode_repeated(c, f, x);
        else
            r = encode_value(c, f, f->type, x, f->has_presence);
        if (r < 0)
            goto out;
        pop(c);
    }
    rc = 0;
out:
    c->n_slots = base;
    return rc;
}

/* ---- well-known types --------------------------------------------------------------------- */

static int expect_string(ctx_t *c, const jt_tok_t *j, const char *what)
{
    if (!jv_is_string(j))
        return fail(c, GW_ERR_TYPE, "expected %s string, got %s", what, kind_name(j));
    return 0;
}

static int encode_seconds_nanos(ctx_t *c, int64_t s, int32_t ns)
{
    if (s && (put_tag(c, 1, GW_WT_VARINT) < 0 || put_varint(c, (uint64_t)s) < 0))
        return -1;
    if (ns && (put_tag(c, 2, GW_WT_VARINT) < 0 || put_varint(c, (uint64_t)(int64_t)ns) < 0))
        return -1;
    return 0;
}

static int encode_wkt(ctx_t *c, const gw_message_t *m, const jt_tok_t *j)
{
    switch (m->wkt) {
    case GW_WKT_TIMESTAMP: {
        int64_t s;
        int32_t ns;
        if (expect_string(c, j, "an RFC 3339 timestamp") < 0)
            return -1;
        if (gw_parse_timestamp(jv_str(j), jv_len(j), &s, &ns) < 0)
            return fail(c, GW_ERR_TYPE, "bad timestamp \"%.64s\"", jv_str(j));
        return encode_seconds_nanos(c, s, ns);
    }
    case GW_WKT_DURATION: {
        int64_t s;
        int32_t ns;
        if (expect_string(c, j, "a duration") < 0)
            return -1;
        if (gw_parse_duration(jv_str(j), jv_len(j), &s, &ns) < 0)
            return fail(c, GW_ERR_TYPE, "bad duration \"%.64s\"", jv_str(j));
        return encode_seconds_nanos(c, s, ns);
    }
    case GW_WKT_WRAPPER: {
        const gw_field_t *f = &m->fields[0];
        if (push(c, f, -1) < 0 || encode_value(c, f, f->type, j, false) < 0)
            return -1;
        pop(c);
        return 0;
    }
    case GW_WKT_FIELD_MASK: {
        if (expect_string(c, j, "a FieldMask") < 0)
            return -1;
        const char *s = jv_str(j);
        size_t n = jv_len(j);
        /* Like splitting on ',': "" has no paths, "a,,b," has four. */
        size_t at = 0;
        while (n > 0 && at <= n) {
            const char *comma = memchr(s + at, ',', n - at);
            size_t k = comma ? (size_t)(comma - s) - at : n - at;
            if (put_tag(c, 1, GW_WT_LEN) < 0)
                return -1;
            long start = begin_len(c);
            if (start < 0 || !gw_buf_reserve(c->out, 2 * k + 1))
                return fail(c, GW_ERR_NOMEM, "out of memory");
            for (size_t i = 0; i < k; i++)
                if ((unsigned char)s[at + i] < 0x20 || s[at + i] == '"' || s[at + i] == '\\')
                    return fail(c, GW_ERR_TYPE,
                                "FieldMask path has a quote, a backslash or a "
                                "control character");
            long w = gw_path_to_snake(s + at, k, (char *)c->out->data + c->out->len);
            if (w < 0)
                return fail(c, GW_ERR_TYPE, "FieldMask path \"%.*s\" has an underscore",
                            (int)(k > 64 ? 64 : k), s + at);
            c->out->len += (size_t)w;
            if (end_len(c, start) < 0)
                return -1;
            at += k + 1;
        }
        return 0;
    }
    case GW_WKT_STRUCT: {
        const gw_field_t *f = &m->fields[0];
        if (push(c, f, 0) < 0 || encode_map(c, f, j) < 0)
            return -1;
        pop(c);
        return 0;
    }
    case GW_WKT_LIST_VALUE: {
        const gw_field_t *f = &m->fields[0];
        if (push(c, f, 0) < 0 || encode_repeated(c, f, j) < 0)
            return -1;
        pop(c);
        return 0;
    }
    case GW_WKT_VALUE: {
        uint32_t num;
        switch (j->kind) {
        case JT_NULL:
            num = 1;
            break;
        case JT_INT:
        case JT_REAL:
            num = 2;
            break;
        case JT_STRING:
            num = 3;
            break;
        case JT_TRUE:
        case JT_FALSE:
            num = 4;
            break;
        case JT_OBJECT:
            num = 5;
            break;
        default:
            num = 6;
        }
        const gw_field_t *f = gw_message_field_by_number(m, num);
        if (!f)
            return fail(c, GW_ERR_VALUE, "google.protobuf.Value lacks field %u", num);
        if (push(c, f, -1) < 0)
            return -1;
        int rc = num == 1 ? (put_tag(c, 1, GW_WT_VARINT) < 0 || put_varint(c, 0) < 0 ? -1 : 0)
                          : encode_value(c, f, f->type, j, true);
        if (rc < 0)
            return -1;
        pop(c);
        return 0;
    }
    case GW_WKT_EMPTY:
        if (!jv_is_object(j))
            return fail(c, GW_ERR_TYPE, "expected {} for google.protobuf.Empty, got %s",
                        kind_name(j));
        return encode_fields(c, m, j, false);
    case GW_WKT_ANY: {
        if (!jv_is_object(j))
            return fail(c, GW_ERR_TYPE, "expected an object for google.protobuf.Any, got %s",
                        kind_name(j));
        const jt_tok_t *t = jv_get(c, j, "@type");
        if (!t) {
            if (jv_len(j) == 0)
                return 0;
            return fail(c, GW_ERR_TYPE, "google.protobuf.Any lacks \"@type\"");
        }
        if (!jv_is_string(t))
            return fail(c, GW_ERR_TYPE, "\"@type\" must be a string");
        const char *url = jv_str(t);
        size_t ulen = jv_len(t);
        const gw_message_t *tm = resolve(c, url, ulen);
        if (!tm)
            return fail(c, GW_ERR_UNKNOWN, "Any type %.200s not found", url);
        if (put_tag(c, 1, GW_WT_LEN) < 0 || put_varint(c, ulen) < 0 || put(c, url, ulen) < 0 ||
            put_tag(c, 2, GW_WT_LEN) < 0)
            return -1;
        long start = begin_len(c);
        /* The value's path element also bounds Any-in-Any nesting by GW_MAX_DEPTH. */
        if (start < 0 || push(c, gw_message_field_by_number(m, 2), -1) < 0)
            return -1;
        if (tm->wkt != GW_WKT_NONE && tm->wkt != GW_WKT_EMPTY) {
            const jt_tok_t *k = jv_first(j);
            for (uint32_t idx = 0; idx < j->n; idx++, k = JV_NEXT(c, k + 1)) {
                const char *key = k->v.s;
                if (strcmp(key, "@type") && strcmp(key, "value") && !c->o->ignore_unknown)
                    return fail(c, GW_ERR_UNKNOWN, "unknown field \"%.64s\" in Any of %s", key,
                                tm->full_name);
            }
            const jt_tok_t *val = jv_get(c, j, "value");
            if (!val)
                return fail(c, GW_ERR_TYPE, "Any of %s lacks \"value\"", tm->full_name);
            if (encode_message(c, tm, val) < 0)
                return -1;
        } else if (encode_fields(c, tm, j, true) < 0) {
            return -1;
        }
        pop(c);
        /* An empty value is not written (proto3 bytes default). */
        if (c->out->len == (size_t)start) {
            c->out->len = (size_t)start - 2;
            return 0;
        }
        return end_len(c, start);
    }
    case GW_WKT_NONE:
        break;
    }
    return fail(c, GW_ERR_VALUE, "unhandled well-known type %s", m->full_name);
}

static int encode_message(ctx_t *c, const gw_message_t *m, const jt_tok_t *j)
{
    if (c->depth >= GW_MAX_DEPTH)
        return fail(c, GW_ERR_DEPTH, "nesting deeper than %d", GW_MAX_DEPTH);
    if (m->wkt != GW_WKT_NONE)
        return encode_wkt(c, m, j);
    return encode_fields(c, m, j, false);
}

/* Each thread keeps its tape and slot stack between calls (released when one grew large), so
 * a request body costs no allocation once warm. */
typedef struct {
    jt_tape_t tape;
    const jt_tok_t **slots;
    size_t cap_slots;
    bool busy;
} cache_t;

static _Thread_local cache_t tl_cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_release(cache_t *k)
{
    jt_free(&k->tape);
    free(k->slots);
    k->slots = NULL;
    k->cap_slots = 0;
}

/* Thread exit: frees what the thread's cache holds. */
static void cache_dtor(void *p)
{
    cache_release(p);
}

static void cache_key_init(void)
{
    (void)pthread_key_create(&cache_key, cache_dtor);
}

#define CACHE_KEEP_TOKENS 4096
#define CACHE_KEEP_BYTES  (64 * 1024)

gw_status_t gw_json_to_pb(const gw_message_t *m, const char *json, size_t len,
                          const gw_json_pb_opts_t *opts, gw_buf_t *out, char *err, size_t errlen)
{
    static const gw_json_pb_opts_t defaults;
    if (err && errlen)
        err[0] = 0;
    (void)pthread_once(&cache_once, cache_key_init);
    cache_t local = {0}, *k = tl_cache.busy ? &local : &tl_cache;
    k->busy = true;
    int prc = jt_parse(&k->tape, json, len, err, errlen);
    gw_status_t st = GW_OK;
    size_t mark = out->len;
    ctx_t c = {.o = opts ? opts : &defaults,
               .out = out,
               .err = err,
               .errlen = errlen,
               .tok = k->tape.tok,
               .slots = k->slots,
               .cap_slots = k->cap_slots};
    if (prc == -2) {
        st = GW_ERR_NOMEM;
    } else if (prc < 0) {
        st = GW_ERR_SYNTAX;
    } else if (encode_message(&c, m, k->tape.tok) < 0) {
        out->len = mark;
        st = c.st ? c.st : GW_ERR_VALUE;
    }
    k->slots = c.slots;
    k->cap_slots = c.cap_slots;
    if (k == &local || k->tape.cap_tok > CACHE_KEEP_TOKENS || k->tape.cap_str > CACHE_KEEP_BYTES ||
        k->cap_slots > CACHE_KEEP_TOKENS) {
        cache_release(k);
    } else if (!pthread_getspecific(cache_key)) {
        (void)pthread_setspecific(cache_key, k);
    }
    k->busy = false;
    return st;
}
