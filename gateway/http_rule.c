/*
 * gateway/http_rule.c: decoding google.api.HttpRule from protobuf wire bytes (see
 * http_rule.h). A small wire reader: varints, length-delimited fields, skipping of unknown
 * fields of every wire type (groups included, nesting bounded).
 */
#include "gateway/http_rule.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Wire types. */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

/* Deepest group nesting skipped in unknown fields. */
#define MAX_GROUP_DEPTH 32

typedef struct {
    const uint8_t *p, *end;
    char *err;
    size_t errlen;
} rd_t;

static int fail(rd_t *r, const char *fmt, ...)
{
    if (r->err && r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Reads a varint of at most 10 bytes. */
static int rd_varint(rd_t *r, uint64_t *v)
{
    uint64_t x = 0;
    *v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end)
            return fail(r, "truncated varint");
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1)
            return fail(r, "varint overflows 64 bits");
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return fail(r, "varint longer than 10 bytes");
}

/* Reads a length prefix and returns the payload's bounds. */
static int rd_len(rd_t *r, const uint8_t **data, size_t *len)
{
    uint64_t n;
    *data = NULL;
    *len = 0;
    if (rd_varint(r, &n) < 0)
        return -1;
    if (n > (uint64_t)(r->end - r->p))
        return fail(r, "length %llu runs past the end of the message", (unsigned long long)n);
    *data = r->p;
    *len = (size_t)n;
    r->p += n;
    return 0;
}

/* Skips one field's value of wire type wt (the key was read); field is the field number, for
 * matching a group's end. */
static int rd_skip(rd_t *r, unsigned wt, uint64_t field, int depth)
{
    const uint8_t *d;
    size_t n;
    uint64_t v;
    switch (wt) {
    case WT_VARINT:
        return rd_varint(r, &v);
    case WT_I64:
    case WT_I32: {
        size_t w = wt == WT_I64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < w)
            return fail(r, "truncated fixed-width field %llu", (unsigned long long)field);
        r->p += w;
        return 0;
    }
    case WT_LEN:
        return rd_len(r, &d, &n);
    case WT_SGROUP:
        if (depth >= MAX_GROUP_DEPTH)
            return fail(r, "groups nested deeper than %d", MAX_GROUP_DEPTH);
        for (;;) {
            uint64_t key;
            if (rd_varint(r, &key) < 0)
                return -1;
            unsigned iwt = (unsigned)(key & 7);
            uint64_t ifield = key >> 3;
            if (iwt == WT_EGROUP) {
                if (ifield != field)
                    return fail(r, "group %llu ended by end-group %llu", (unsigned long long)field,
                                (unsigned long long)ifield);
                return 0;
            }
            if (ifield == 0)
                return fail(r, "field number 0");
            if (rd_skip(r, iwt, ifield, depth + 1) < 0)
                return -1;
        }
    case WT_EGROUP:
        return fail(r, "end-group %llu without a start", (unsigned long long)field);
    default:
        return fail(r, "field %llu has invalid wire type %u", (unsigned long long)field, wt);
    }
}

/* Replaces *dst by a NUL-terminated copy of a string field; NUL bytes are refused. */
static int set_str(rd_t *r, char **dst, const uint8_t *d, size_t n, const char *name)
{
    if (memchr(d, 0, n))
        return fail(r, "HttpRule.%s contains a NUL byte", name);
    char *s = malloc(n + 1);
    if (!s)
        return fail(r, "out of memory");
    memcpy(s, d, n);
    s[n] = 0;
    free(*dst);
    *dst = s;
    return 0;
}

static int set_method(rd_t *r, gw_http_rule_t *rule, const char *m)
{
    char *s = strdup(m);
    if (!s)
        return fail(r, "out of memory");
    free(rule->method);
    rule->method = s;
    return 0;
}

/* CustomHttpPattern {kind 1, path 2}; merges into rule->method/path (a custom pattern replaces
 * another pattern of the oneof; two custom occurrences merge field by field). */
static int decode_custom(rd_t *outer, gw_http_rule_t *rule, const uint8_t *d, size_t n,
                         int was_custom)
{
    rd_t r = {d, d + n, outer->err, outer->errlen};
    if (!was_custom) {
        free(rule->method);
        free(rule->path);
        rule->method = NULL;
        rule->path = NULL;
    }
    while (r.p < r.end) {
        uint64_t key;
        if (rd_varint(&r, &key) < 0)
            return -1;
        unsigned wt = (unsigned)(key & 7);
        uint64_t field = key >> 3;
        if (field == 0)
            return fail(&r, "CustomHttpPattern: field number 0");
        if ((field == 1 || field == 2) && wt == WT_LEN) {
            const uint8_t *s;
            size_t sn;
            if (rd_len(&r, &s, &sn) < 0)
                return -1;
            if (set_str(&r, field == 1 ? &rule->method : &rule->path, s, sn,
                        field == 1 ? "custom.kind" : "custom.path") < 0)
                return -1;
        } else if (field == 1 || field == 2) {
            return fail(&r, "CustomHttpPattern field %llu has wire type %u, not 2",
                        (unsigned long long)field, wt);
        } else if (rd_skip(&r, wt, field, 0) < 0) {
            return -1;
        }
    }
    /* The oneof is set even when the custom message is empty: keep the strings non-NULL. */
    if (!rule->method && set_str(&r, &rule->method, (const uint8_t *)"", 0, "custom.kind") < 0)
        return -1;
    if (!rule->path && set_str(&r, &rule->path, (const uint8_t *)"", 0, "custom.path") < 0)
        return -1;
    return 0;
}

static int decode_rule(rd_t *r, gw_http_rule_t *rule, int nested);

static int add_binding(rd_t *r, gw_http_rule_t *rule, const uint8_t *d, size_t n)
{
    gw_http_rule_t *b = realloc(rule->bindings, (rule->n_bindings + 1) * sizeof *b);
    if (!b)
        return fail(r, "out of memory");
    rule->bindings = b;
    gw_http_rule_t *nb = &b[rule->n_bindings++];
    memset(nb, 0, sizeof *nb);
    rd_t sub = {d, d + n, r->err, r->errlen};
    return decode_rule(&sub, nb, 1);
}

static int decode_rule(rd_t *r, gw_http_rule_t *rule, int nested)
{
    static const char *const verbs[] = {NULL, NULL, "GET", "PUT", "POST", "DELETE", "PATCH"};
    /* Whether the oneof currently holds `custom` (merging two custom messages). */
    int is_custom = 0;
    while (r->p < r->end) {
        uint64_t key;
        if (rd_varint(r, &key) < 0)
            return -1;
        unsigned wt = (unsigned)(key & 7);
        uint64_t field = key >> 3;
        if (field == 0)
            return fail(r, "HttpRule: field number 0");
        int known = field == 1 || (field >= 2 && field <= 8) || field == 11 || field == 12;
        if (!known) {
            if (rd_skip(r, wt, field, 0) < 0)
                return -1;
            continue;
        }
        if (wt != WT_LEN)
            return fail(r, "HttpRule field %llu has wire type %u, not 2", (unsigned long long)field,
                        wt);
        const uint8_t *d;
        size_t n;
        if (rd_len(r, &d, &n) < 0)
            return -1;
        int rc = 0;
        switch (field) {
        case 1:
            rc = set_str(r, &rule->selector, d, n, "selector");
            break;
        case 2:
        case 3:
        case 4:
        case 5:
        case 6:
            rc = set_method(r, rule, verbs[field]);
            if (rc == 0)
                rc = set_str(r, &rule->path, d, n, verbs[field]);
            is_custom = 0;
            break;
        case 7:
            rc = set_str(r, &rule->body, d, n, "body");
            break;
        case 8:
            rc = decode_custom(r, rule, d, n, is_custom);
            is_custom = 1;
            break;
        case 11:
            if (nested)
                return fail(r, "additional_bindings inside additional_bindings");
            rc = add_binding(r, rule, d, n);
            break;
        case 12:
            rc = set_str(r, &rule->response_body, d, n, "response_body");
            break;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

void gw_http_rule_clear(gw_http_rule_t *rule)
{
    if (!rule)
        return;
    free(rule->selector);
    free(rule->method);
    free(rule->path);
    free(rule->body);
    free(rule->response_body);
    for (size_t i = 0; i < rule->n_bindings; i++)
        gw_http_rule_clear(&rule->bindings[i]);
    free(rule->bindings);
    memset(rule, 0, sizeof *rule);
}

int gw_http_rule_decode(const uint8_t *data, size_t len, gw_http_rule_t *rule, char *err,
                        size_t errlen)
{
    rd_t r = {data, data, err, errlen};
    if (!data)
        return len ? fail(&r, "no data") : 0;
    r.end = data + len;
    return decode_rule(&r, rule, 0);
}

int gw_http_rule_from_options_bytes(const uint8_t *data, size_t len, gw_http_rule_t *rule,
                                    char *err, size_t errlen)
{
    rd_t r = {data, data, err, errlen};
    memset(rule, 0, sizeof *rule);
    if (!data)
        return len ? fail(&r, "no data") : 0;
    r.end = data + len;
    int found = 0;
    while (r.p < r.end) {
        uint64_t key;
        if (rd_varint(&r, &key) < 0)
            goto bad;
        unsigned wt = (unsigned)(key & 7);
        uint64_t field = key >> 3;
        if (field == 0) {
            fail(&r, "MethodOptions: field number 0");
            goto bad;
        }
        if (field != GW_HTTP_RULE_EXTENSION) {
            if (rd_skip(&r, wt, field, 0) < 0)
                goto bad;
            continue;
        }
        if (wt != WT_LEN) {
            fail(&r, "google.api.http has wire type %u, not 2", wt);
            goto bad;
        }
        const uint8_t *d;
        size_t n;
        if (rd_len(&r, &d, &n) < 0)
            goto bad;
        rd_t sub = {d, d + n, err, errlen};
        if (decode_rule(&sub, rule, 0) < 0)
            goto bad;
        found = 1;
    }
    return found;
bad:
    gw_http_rule_clear(rule);
    return -1;
}

int gw_http_rule_from_options(const Google__Protobuf__MethodOptions *opts, gw_http_rule_t *rule,
                              char *err, size_t errlen)
{
    memset(rule, 0, sizeof *rule);
    if (!opts)
        return 0;
    int found = 0;
    for (unsigned i = 0; i < opts->base.n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &opts->base.unknown_fields[i];
        if (u->tag != GW_HTTP_RULE_EXTENSION)
            continue;
        /* protobuf-c keeps a length-delimited unknown field's value with its length prefix. */
        rd_t r = {u->data, u->data + u->len, err, errlen};
        const uint8_t *d;
        size_t n;
        if (u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) {
            fail(&r, "google.api.http has wire type %d, not 2", (int)u->wire_type);
            goto bad;
        }
        if (rd_len(&r, &d, &n) < 0)
            goto bad;
        if (r.p != r.end) {
            fail(&r, "google.api.http: %zu stray bytes after the value", (size_t)(r.end - r.p));
            goto bad;
        }
        rd_t sub = {d, d + n, err, errlen};
        if (decode_rule(&sub, rule, 0) < 0)
            goto bad;
        found = 1;
    }
    return found;
bad:
    gw_http_rule_clear(rule);
    return -1;
}
