/*
 * gateway/pb_json.c: protobuf wire bytes -> proto3 JSON.
 *
 * Fields are written in field-number order. A message whose wire records come in that order
 * with every field in one run (what every canonical encoder writes) is emitted in one pass;
 * otherwise each schema field scans the whole message for its records, so out-of-order,
 * interleaved and repeated singular records still give the protobuf merge result (last scalar
 * wins, message records merge). Records of unknown numbers, or of a wire type the field cannot
 * have, are dropped as unknown fields.
 */
#include "gateway/field_path.h"
#include "gateway/pb_json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gateway/json_text.h"
#include "gateway/wire.h"

typedef gw_path_el_t path_el_t;

typedef struct {
    const gw_pb_json_opts_t *o;
    gw_buf_t *out;
    char *err;
    size_t errlen;
    gw_status_t st;
    int depth;
    path_el_t path[GW_MAX_DEPTH + 2];
} ctx_t;

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

static int put(ctx_t *c, const char *s, size_t n)
{
    if (!gw_buf_put(c->out, s, n))
        return fail(c, GW_ERR_NOMEM, "out of memory");
    return 0;
}

static int puts_(ctx_t *c, const char *s)
{
    return put(c, s, strlen(s));
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

/* ---- strings ------------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at p, or 0. */
static size_t utf8_len(const uint8_t *p, const uint8_t *end)
{
    uint8_t b = p[0];
    if (b < 0x80)
        return 1;
    size_t n;
    uint32_t cp;
    if ((b & 0xe0) == 0xc0) {
        n = 2;
        cp = b & 0x1f;
    } else if ((b & 0xf0) == 0xe0) {
        n = 3;
        cp = b & 0x0f;
    } else if ((b & 0xf8) == 0xf0) {
        n = 4;
        cp = b & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Writes s as a JSON string; invalid UTF-8 is an error. */
static int put_str(ctx_t *c, const uint8_t *s, size_t n)
{
    if (!gw_buf_reserve(c->out, n + 2))
        return fail(c, GW_ERR_NOMEM, "out of memory");
    if (put(c, "\"", 1) < 0)
        return -1;
    const uint8_t *end = s + n, *run = s;
    while (s < end) {
        uint8_t b = *s;
        if (b >= 0x20 && b != '"' && b != '\\' && b < 0x80) {
            s++;
            continue;
        }
        if (b >= 0x80) {
            size_t k = utf8_len(s, end);
            if (!k)
                return fail(c, GW_ERR_VALUE, "string is not valid UTF-8");
            s += k;
            continue;
        }
        if (put(c, (const char *)run, (size_t)(s - run)) < 0)
            return -1;
        char esc[8];
        int k;
        switch (b) {
        case '"':
            k = snprintf(esc, sizeof esc, "\\\"");
            break;
        case '\\':
            k = snprintf(esc, sizeof esc, "\\\\");
            break;
        case '\n':
            k = snprintf(esc, sizeof esc, "\\n");
            break;
        case '\r':
            k = snprintf(esc, sizeof esc, "\\r");
            break;
        case '\t':
            k = snprintf(esc, sizeof esc, "\\t");
            break;
        default:
            k = snprintf(esc, sizeof esc, "\\u%04x", b);
        }
        if (put(c, esc, (size_t)k) < 0)
            return -1;
        run = ++s;
    }
    if (put(c, (const char *)run, (size_t)(s - run)) < 0)
        return -1;
    return put(c, "\"", 1);
}

static int put_key(ctx_t *c, const gw_field_t *f, bool *first)
{
    if (!*first && put(c, ",", 1) < 0)
        return -1;
    *first = false;
    const char *name = c->o->original_names ? f->name : f->json_name;
    if (put_str(c, (const uint8_t *)name, strlen(name)) < 0)
        return -1;
    return put(c, ":", 1);
}

/* ---- scalars ------------------------------------------------------------------------------ */

static int expected_wt(gw_type_t t)
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
        return GW_WT_LEN;
    case GW_TYPE_GROUP:
        return GW_WT_SGROUP;
    default:
        return GW_WT_VARINT;
    }
}

static bool packable(gw_type_t t)
{
    int wt = expected_wt(t);
    return wt == GW_WT_VARINT || wt == GW_WT_I32 || wt == GW_WT_I64;
}

static int put_double(ctx_t *c, double d, bool as_float)
{
    if (isnan(d))
        return puts_(c, "\"NaN\"");
    if (isinf(d))
        return puts_(c, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    if (d == 0 && signbit(d))
        return puts_(c, "-0.0"); /* "-0" would read back as the integer 0 */
    char buf[40];
    int n = gw_format_double(d, as_float, buf);
    return put(c, buf, (size_t)n);
}

static int emit_message(ctx_t *c, const gw_message_t *m, const uint8_t *p, size_t len);

/* Decimal text of v (optionally negative, optionally quoted) into out; returns the length. */
static int fmt_int(char *out, uint64_t v, bool neg, bool quote)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    int o = 0;
    if (quote)
        out[o++] = '"';
    if (neg)
        out[o++] = '-';
    while (n)
        out[o++] = tmp[--n];
    if (quote)
        out[o++] = '"';
    return o;
}

static int fmt_signed(char *out, int64_t v, bool quote)
{
    return v < 0 ? fmt_int(out, 0 - (uint64_t)v, true, quote)
                 : fmt_int(out, (uint64_t)v, false, quote);
}

/* Writes one value of field f from a wire record (v for numbers, data/len for LEN). */
static int emit_value(ctx_t *c, const gw_field_t *f, gw_type_t t, uint64_t v, const uint8_t *data,
                      size_t len)
{
    char buf[48];
    int n = 0;
    switch (t) {
    case GW_TYPE_INT32:
    case GW_TYPE_SFIXED32:
        n = fmt_signed(buf, (int32_t)(uint32_t)v, false);
        break;
    case GW_TYPE_UINT32:
    case GW_TYPE_FIXED32:
        n = fmt_int(buf, (uint32_t)v, false, false);
        break;
    case GW_TYPE_SINT32: {
        uint32_t u = (uint32_t)v;
        n = fmt_signed(buf, (int32_t)((u >> 1) ^ (0u - (u & 1))), false);
        break;
    }
    case GW_TYPE_INT64:
    case GW_TYPE_SFIXED64:
        n = fmt_signed(buf, (int64_t)v, true);
        break;
    case GW_TYPE_UINT64:
    case GW_TYPE_FIXED64:
        n = fmt_int(buf, v, false, true);
        break;
    case GW_TYPE_SINT64:
        n = fmt_signed(buf, (int64_t)((v >> 1) ^ (0 - (v & 1))), true);
        break;
    case GW_TYPE_BOOL:
        return puts_(c, v ? "true" : "false");
    case GW_TYPE_FLOAT: {
        uint32_t u = (uint32_t)v;
        float x;
        memcpy(&x, &u, 4);
        return put_double(c, x, true);
    }
    case GW_TYPE_DOUBLE: {
        double x;
        memcpy(&x, &v, 8);
        return put_double(c, x, false);
    }
    case GW_TYPE_ENUM: {
        const gw_enum_t *e = f->enumeration;
        if (e->null_value)
            return puts_(c, "null");
        const gw_enum_value_t *ev = gw_enum_by_number(e, (int32_t)(uint32_t)v);
        if (ev)
            return put_str(c, (const uint8_t *)ev->name, strlen(ev->name));
        n = snprintf(buf, sizeof buf, "%d", (int32_t)(uint32_t)v);
        break;
    }
    case GW_TYPE_STRING:
        return put_str(c, data, len);
    case GW_TYPE_BYTES: {
        size_t need = 4 * ((len + 2) / 3) + 2;
        if (!gw_buf_reserve(c->out, need))
            return fail(c, GW_ERR_NOMEM, "out of memory");
        char *o = (char *)c->out->data + c->out->len;
        o[0] = '"';
        size_t k = gw_base64_encode(data, len, o + 1);
        o[k + 1] = '"';
        c->out->len += k + 2;
        return 0;
    }
    case GW_TYPE_MESSAGE:
        return emit_message(c, f->message, data, len);
    case GW_TYPE_GROUP:
        return fail(c, GW_ERR_VALUE, "groups are not supported");
    }
    return put(c, buf, (size_t)n);
}

/* The default value of a field without presence. */
static int emit_default(ctx_t *c, const gw_field_t *f, gw_type_t t)
{
    if (t == GW_TYPE_MESSAGE)
        return emit_message(c, f->message, (const uint8_t *)"", 0);
    return emit_value(c, f, t, 0, (const uint8_t *)"", 0);
}

/* Does the record r belong to field f (by number and a wire type it can have)? */
static bool record_of(const gw_field_t *f, const gw_wire_field_t *r)
{
    if (r->number != f->number)
        return false;
    int wt = expected_wt(f->type);
    return r->wt == wt || (f->repeated && packable(f->type) && r->wt == GW_WT_LEN);
}

/* Emits the values of a packed record. */
static int emit_packed(ctx_t *c, const gw_field_t *f, const uint8_t *p, size_t len, long *idx,
                       bool *first)
{
    const uint8_t *end = p + len;
    int wt = expected_wt(f->type);
    while (p < end) {
        uint64_t v;
        if (wt == GW_WT_VARINT) {
            size_t k = gw_wire_varint(p, end, &v);
            if (!k)
                return fail(c, GW_ERR_WIRE, "malformed packed varint");
            p += k;
        } else if (wt == GW_WT_I32) {
            if (end - p < 4)
                return fail(c, GW_ERR_WIRE, "truncated packed fixed32");
            v = gw_wire_le32(p);
            p += 4;
        } else {
            if (end - p < 8)
                return fail(c, GW_ERR_WIRE, "truncated packed fixed64");
            v = gw_wire_le64(p);
            p += 8;
        }
        if (!*first && put(c, ",", 1) < 0)
            return -1;
        *first = false;
        c->path[c->depth - 1].idx = (*idx)++;
        if (emit_value(c, f, f->type, v, NULL, 0) < 0)
            return -1;
    }
    return 0;
}

/* "[...]" of the records of repeated field f in p[0..len). */
static int emit_array(ctx_t *c, const gw_field_t *f, const uint8_t *p, const uint8_t *end)
{
    if (put(c, "[", 1) < 0 || push(c, f, 0) < 0)
        return -1;
    long idx = 0;
    bool first = true;
    while (p < end) {
        gw_wire_field_t r = {0};
        size_t k = gw_wire_field(p, end, &r, 0);
        p += k;
        if (!record_of(f, &r))
            continue;
        if (r.wt == GW_WT_LEN && packable(f->type)) {
            if (emit_packed(c, f, r.data, r.len, &idx, &first) < 0)
                return -1;
            continue;
        }
        if (!first && put(c, ",", 1) < 0)
            return -1;
        first = false;
        c->path[c->depth - 1].idx = idx++;
        if (emit_value(c, f, f->type, r.v, r.data, r.len) < 0)
            return -1;
    }
    pop(c);
    return put(c, "]", 1);
}

/* Reads the last record of field number `number` with wire type wt in p[0..len). */
static bool last_record(const uint8_t *p, size_t len, uint32_t number, int wt, gw_wire_field_t *out)
{
    const uint8_t *end = p + len;
    bool found = false;
    while (p < end) {
        gw_wire_field_t r = {0};
        size_t k = gw_wire_field(p, end, &r, 0);
        if (!k)
            break;
        p += k;
        if (r.number == number && r.wt == wt) {
            *out = r;
            found = true;
        }
    }
    return found;
}

/* Checks that p[0..len) is a sequence of well-formed records. */
static int check_records(ctx_t *c, const uint8_t *p, size_t len, bool *canonical,
                         const gw_message_t *m)
{
    const uint8_t *end = p + len;
    uint32_t last = 0;
    *canonical = true;
    while (p < end) {
        gw_wire_field_t r = {0};
        size_t k = gw_wire_field(p, end, &r, 0);
        if (!k || r.wt == GW_WT_EGROUP) {
            const gw_field_t *f = NULL;
            uint64_t tag;
            if (gw_wire_varint(p, end, &tag))
                f = gw_message_field_by_number(m, (uint32_t)(tag >> 3));
            if (f && push(c, f, -1) == 0)
                return fail(c, GW_ERR_WIRE, "malformed or truncated field");
            return fail(c, GW_ERR_WIRE, "malformed or truncated field at byte %zu",
                        (size_t)(len - (size_t)(end - p)));
        }
        p += k;
        if (r.number < last) {
            *canonical = false;
        } else if (r.number == last) {
            const gw_field_t *f = gw_message_field_by_number(m, r.number);
            if (f && !f->repeated)
                *canonical = false;
        }
        last = r.number;
    }
    return 0;
}

/* A map entry's key as a JSON object key. */
static int emit_map_key(ctx_t *c, const gw_field_t *kf, const gw_wire_field_t *r, bool present)
{
    if (kf->type == GW_TYPE_STRING)
        return present ? put_str(c, r->data, r->len) : puts_(c, "\"\"");
    if (kf->type == GW_TYPE_BOOL)
        return puts_(c, present && r->v ? "\"true\"" : "\"false\"");
    size_t mark = c->out->len;
    if (emit_value(c, kf, kf->type, present ? r->v : 0, NULL, 0) < 0)
        return -1;
    if (c->out->data[mark] == '"')
        return 0; /* 64-bit: already quoted */
    if (!gw_buf_reserve(c->out, 2))
        return fail(c, GW_ERR_NOMEM, "out of memory");
    memmove(c->out->data + mark + 1, c->out->data + mark, c->out->len - mark);
    c->out->data[mark] = '"';
    c->out->len++;
    return put(c, "\"", 1);
}

/* "{...}" of the records of map field f in p[0..end). */
static int emit_map(ctx_t *c, const gw_field_t *f, const uint8_t *p, const uint8_t *end)
{
    const gw_message_t *em = f->message;
    const gw_field_t *kf = &em->fields[0], *vf = &em->fields[1];
    if (put(c, "{", 1) < 0 || push(c, f, 0) < 0)
        return -1;
    long idx = 0;
    bool first = true;
    while (p < end) {
        gw_wire_field_t r = {0};
        size_t k = gw_wire_field(p, end, &r, 0);
        p += k;
        if (!record_of(f, &r))
            continue;
        c->path[c->depth - 1].idx = idx++;
        bool canon;
        if (check_records(c, r.data, r.len, &canon, em) < 0)
            return -1;
        gw_wire_field_t kr = {0}, vr = {0};
        bool hk = last_record(r.data, r.len, 1, expected_wt(kf->type), &kr);
        bool hv = last_record(r.data, r.len, 2, expected_wt(vf->type), &vr);
        if (!first && put(c, ",", 1) < 0)
            return -1;
        first = false;
        if (emit_map_key(c, kf, &kr, hk) < 0 || put(c, ":", 1) < 0)
            return -1;
        if (hv ? emit_value(c, vf, vf->type, vr.v, vr.data, vr.len) : emit_default(c, vf, vf->type))
            return -1;
    }
    pop(c);
    return put(c, "}", 1);
}

static bool is_default_record(const gw_field_t *f, const gw_wire_field_t *r)
{
    if (r->wt == GW_WT_LEN)
        return r->len == 0;
    if (f->type == GW_TYPE_INT32 || f->type == GW_TYPE_ENUM || f->type == GW_TYPE_SINT32 ||
        f->type == GW_TYPE_UINT32 || f->type == GW_TYPE_FIXED32 || f->type == GW_TYPE_SFIXED32 ||
        f->type == GW_TYPE_FLOAT)
        return (uint32_t)r->v == 0;
    return r->v == 0;
}

/* Emits field f from the records in p[0..end) that belong to it ("key":value), or nothing. */
static int emit_field(ctx_t *c, const gw_field_t *f, const uint8_t *p, const uint8_t *end,
                      bool *first)
{
    bool is_map = f->message && f->message->map_entry && f->repeated;
    bool any = false;
    gw_wire_field_t last = {0};
    size_t count = 0;
    for (const uint8_t *q = p; q < end;) {
        gw_wire_field_t r = {0};
        q += gw_wire_field(q, end, &r, 0);
        if (record_of(f, &r)) {
            any = true;
            last = r;
            count++;
        }
    }
    if (f->repeated) {
        if (!any && !c->o->emit_defaults)
            return 0;
        if (put_key(c, f, first) < 0)
            return -1;
        return is_map ? emit_map(c, f, p, end) : emit_array(c, f, p, end);
    }
    if (!any) {
        if (!c->o->emit_defaults || f->has_presence)
            return 0;
        if (put_key(c, f, first) < 0 || push(c, f, -1) < 0 || emit_default(c, f, f->type) < 0)
            return -1;
        pop(c);
        return 0;
    }
    if (!f->has_presence && !c->o->emit_defaults && is_default_record(f, &last))
        return 0;
    if (put_key(c, f, first) < 0 || push(c, f, -1) < 0)
        return -1;
    int rc;
    if (f->type == GW_TYPE_MESSAGE && count > 1) {
        /* Several records of one singular message merge: parse their concatenation. */
        size_t total = 0;
        for (const uint8_t *q = p; q < end;) {
            gw_wire_field_t r = {0};
            q += gw_wire_field(q, end, &r, 0);
            if (record_of(f, &r))
                total += r.len;
        }
        uint8_t *tmp = malloc(total ? total : 1);
        if (!tmp)
            return fail(c, GW_ERR_NOMEM, "out of memory");
        size_t at = 0;
        for (const uint8_t *q = p; q < end;) {
            gw_wire_field_t r = {0};
            q += gw_wire_field(q, end, &r, 0);
            if (record_of(f, &r)) {
                memcpy(tmp + at, r.data, r.len);
                at += r.len;
            }
        }
        rc = emit_message(c, f->message, tmp, total);
        free(tmp);
    } else {
        rc = emit_value(c, f, f->type, last.v, last.data, last.len);
    }
    if (rc < 0)
        return -1;
    pop(c);
    return 0;
}

/* Is f a oneof member that another member of its oneof overrides (a later record wins)? */
static bool oneof_overridden(const gw_message_t *m, const gw_field_t *f, const uint8_t *p,
                             const uint8_t *end)
{
    const gw_field_t *last = NULL;
    while (p < end) {
        gw_wire_field_t r = {0};
        p += gw_wire_field(p, end, &r, 0);
        const gw_field_t *g = gw_message_field_by_number(m, r.number);
        if (g && g->oneof_index == f->oneof_index && record_of(g, &r))
            last = g;
    }
    return last != f;
}

/* Writes the fields of m (without braces) after *first's state. */
static int emit_fields(ctx_t *c, const gw_message_t *m, const uint8_t *p, size_t len, bool *first)
{
    bool canonical;
    if (check_records(c, p, len, &canonical, m) < 0)
        return -1;
    const uint8_t *end = p + len, *q = p;
    if (canonical && !c->o->emit_defaults) {
        /* The usual case: walk the runs of records, one field each. */
        while (q < end) {
            const uint8_t *gs = q;
            gw_wire_field_t r = {0};
            q += gw_wire_field(q, end, &r, 0);
            while (q < end) {
                gw_wire_field_t r2 = {0};
                size_t k = gw_wire_field(q, end, &r2, 0);
                if (r2.number != r.number)
                    break;
                q += k;
            }
            const gw_field_t *f = gw_message_field_by_number(m, r.number);
            if (!f || (f->oneof_index >= 0 && oneof_overridden(m, f, p, end)))
                continue;
            if (emit_field(c, f, gs, q, first) < 0)
                return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < m->n_fields; i++) {
        const gw_field_t *f = &m->fields[i];
        if (f->oneof_index >= 0 && oneof_overridden(m, f, p, end))
            continue;
        if (!canonical) {
            if (emit_field(c, f, p, end, first) < 0)
                return -1;
            continue;
        }
        /* The run of f's records: skip smaller numbers, stop at a larger one. */
        const uint8_t *gs = NULL, *ge = NULL;
        while (q < end) {
            gw_wire_field_t r = {0};
            size_t k = gw_wire_field(q, end, &r, 0);
            if (r.number > f->number)
                break;
            if (r.number == f->number) {
                if (!gs)
                    gs = q;
                ge = q + k;
            }
            q += k;
        }
        if (emit_field(c, f, gs ? gs : q, gs ? ge : q, first) < 0)
            return -1;
    }
    return 0;
}

/* ---- well-known types --------------------------------------------------------------------- */

static int emit_wkt(ctx_t *c, const gw_message_t *m, const uint8_t *p, size_t len)
{
    bool canonical;
    if (check_records(c, p, len, &canonical, m) < 0)
        return -1;
    gw_wire_field_t a = {0}, b = {0};
    char buf[48];
    switch (m->wkt) {
    case GW_WKT_TIMESTAMP:
    case GW_WKT_DURATION: {
        bool ha = last_record(p, len, 1, GW_WT_VARINT, &a);
        bool hb = last_record(p, len, 2, GW_WT_VARINT, &b);
        int64_t s = ha ? (int64_t)a.v : 0;
        int32_t ns = hb ? (int32_t)(uint32_t)b.v : 0;
        int n = m->wkt == GW_WKT_TIMESTAMP ? gw_format_timestamp(s, ns, buf + 1)
                                           : gw_format_duration(s, ns, buf + 1);
        if (n < 0)
            return fail(c, GW_ERR_VALUE, "%s out of range",
                        m->wkt == GW_WKT_TIMESTAMP ? "timestamp" : "duration");
        buf[0] = '"';
        buf[n + 1] = '"';
        return put(c, buf, (size_t)n + 2);
    }
    case GW_WKT_WRAPPER: {
        const gw_field_t *f = &m->fields[0];
        if (push(c, f, -1) < 0)
            return -1;
        int rc = last_record(p, len, 1, expected_wt(f->type), &a)
                     ? emit_value(c, f, f->type, a.v, a.data, a.len)
                     : emit_default(c, f, f->type);
        if (rc == 0)
            pop(c);
        return rc;
    }
    case GW_WKT_FIELD_MASK: {
        if (put(c, "\"", 1) < 0)
            return -1;
        const uint8_t *q = p, *end = p + len;
        bool first = true;
        while (q < end) {
            gw_wire_field_t r = {0};
            q += gw_wire_field(q, end, &r, 0);
            if (r.number != 1 || r.wt != GW_WT_LEN)
                continue;
            if (!first && put(c, ",", 1) < 0)
                return -1;
            first = false;
            if (!gw_buf_reserve(c->out, 2 * r.len + 2))
                return fail(c, GW_ERR_NOMEM, "out of memory");
            for (size_t i = 0; i < r.len;) {
                size_t k = r.data[i] < 0x80 ? 1 : utf8_len(r.data + i, r.data + r.len);
                if (!k || r.data[i] < 0x20 || r.data[i] == '"' || r.data[i] == '\\')
                    return fail(c, GW_ERR_VALUE,
                                "FieldMask path has a character a JSON path "
                                "cannot carry (a quote, a backslash, a control "
                                "character or bad UTF-8)");
                i += k;
            }
            long n =
                gw_path_to_camel((const char *)r.data, r.len, (char *)c->out->data + c->out->len);
            if (n < 0)
                return fail(c, GW_ERR_VALUE,
                            "FieldMask path %.*s cannot be written in "
                            "lowerCamelCase",
                            (int)(r.len > 64 ? 64 : r.len), (const char *)r.data);
            c->out->len += (size_t)n;
        }
        return put(c, "\"", 1);
    }
    case GW_WKT_STRUCT:
        return emit_map(c, &m->fields[0], p, p + len);
    case GW_WKT_LIST_VALUE:
        return emit_array(c, &m->fields[0], p, p + len);
    case GW_WKT_VALUE: {
        /* The last record of any of the kind fields wins. */
        const uint8_t *q = p, *end = p + len;
        gw_wire_field_t kind = {0};
        const gw_field_t *kf = NULL;
        while (q < end) {
            gw_wire_field_t r = {0};
            q += gw_wire_field(q, end, &r, 0);
            const gw_field_t *f = gw_message_field_by_number(m, r.number);
            if (f && record_of(f, &r)) {
                kind = r;
                kf = f;
            }
        }
        if (!kf || kf->number == 1)
            return puts_(c, "null");
        if (kf->type == GW_TYPE_DOUBLE) {
            double d;
            memcpy(&d, &kind.v, 8);
            if (isnan(d) || isinf(d))
                return fail(c, GW_ERR_VALUE, "a Value cannot hold NaN or Infinity");
        }
        if (push(c, kf, -1) < 0 || emit_value(c, kf, kf->type, kind.v, kind.data, kind.len) < 0)
            return -1;
        pop(c);
        return 0;
    }
    case GW_WKT_EMPTY:
        return puts_(c, "{}");
    case GW_WKT_ANY: {
        bool ht = last_record(p, len, 1, GW_WT_LEN, &a);
        bool hv = last_record(p, len, 2, GW_WT_LEN, &b);
        if (!ht && !hv)
            return puts_(c, "{}");
        if (!ht || a.len == 0)
            return fail(c, GW_ERR_VALUE, "Any has a value but no type URL");
        const gw_message_t *t =
            c->o->resolve ? c->o->resolve(c->o->resolve_ud, (const char *)a.data, a.len) : NULL;
        if (!t)
            return fail(c, GW_ERR_UNKNOWN, "Any type %.*s not found",
                        (int)(a.len > 200 ? 200 : a.len), (const char *)a.data);
        if (puts_(c, "{\"@type\":") < 0 || put_str(c, a.data, a.len) < 0)
            return -1;
        const uint8_t *vp = hv ? b.data : (const uint8_t *)"";
        size_t vl = hv ? b.len : 0;
        /* The value's path element also bounds Any-in-Any nesting by GW_MAX_DEPTH. */
        if (push(c, gw_message_field_by_number(m, 2), -1) < 0)
            return -1;
        if (t->wkt != GW_WKT_NONE && t->wkt != GW_WKT_EMPTY) {
            if (puts_(c, ",\"value\":") < 0 || emit_message(c, t, vp, vl) < 0)
                return -1;
        } else {
            bool first = false;
            if (emit_fields(c, t, vp, vl, &first) < 0)
                return -1;
        }
        pop(c);
        return put(c, "}", 1);
    }
    case GW_WKT_NONE:
        break;
    }
    return fail(c, GW_ERR_VALUE, "unhandled well-known type %s", m->full_name);
}

static int emit_message(ctx_t *c, const gw_message_t *m, const uint8_t *p, size_t len)
{
    if (c->depth >= GW_MAX_DEPTH)
        return fail(c, GW_ERR_DEPTH, "nesting deeper than %d", GW_MAX_DEPTH);
    if (m->wkt != GW_WKT_NONE)
        return emit_wkt(c, m, p, len);
    bool first = true;
    if (put(c, "{", 1) < 0 || emit_fields(c, m, p, len, &first) < 0)
        return -1;
    return put(c, "}", 1);
}

const gw_message_t *gw_resolve_in_schema(void *schema, const char *type_url, size_t n)
{
    const char *slash = memrchr(type_url, '/', n);
    const char *name = slash ? slash + 1 : type_url;
    size_t k = n - (size_t)(name - type_url);
    char buf[512];
    if (k == 0 || k >= sizeof buf)
        return NULL;
    memcpy(buf, name, k);
    buf[k] = 0;
    return gw_schema_find_message(schema, buf);
}

gw_status_t gw_pb_to_json(const gw_message_t *m, const uint8_t *pb, size_t len,
                          const gw_pb_json_opts_t *opts, gw_buf_t *out, char *err, size_t errlen)
{
    static const gw_pb_json_opts_t defaults;
    ctx_t c = {.o = opts ? opts : &defaults, .out = out, .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = 0;
    size_t mark = out->len;
    if (emit_message(&c, m, pb ? pb : (const uint8_t *)"", len) < 0) {
        out->len = mark;
        return c.st ? c.st : GW_ERR_VALUE;
    }
    return GW_OK;
}
