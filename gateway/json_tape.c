/*
 * gateway/json_tape.c: the strict JSON tokenizer behind json_pb.c (see json_tape.h).
 *
 * One pass, no recursion: an explicit stack of open containers (at most JT_MAX_DEPTH). The
 * string area is sized to the input once (an unescaped string plus its NUL never takes more
 * bytes than its quoted text), so string pointers stay valid while the token array grows.
 */
#include "gateway/json_tape.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    jt_tape_t *t;
    const char *in;
    size_t len, p, so;
    char *err;
    size_t errlen;
    int rc;
} parser_t;

static int perr(parser_t *ps, size_t at, const char *fmt, ...)
{
    if (ps->err && ps->errlen) {
        int line = 1;
        size_t bol = 0;
        for (size_t i = 0; i < at && i < ps->len; i++)
            if (ps->in[i] == '\n') {
                line++;
                bol = i + 1;
            }
        int k = snprintf(ps->err, ps->errlen, "line %d column %zu: ", line, at - bol + 1);
        if (k > 0 && (size_t)k < ps->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(ps->err + k, ps->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    ps->rc = -1;
    return -1;
}

static long new_tok(parser_t *ps, jt_kind_t kind)
{
    jt_tape_t *t = ps->t;
    if (t->n_tok == t->cap_tok) {
        size_t cap = t->cap_tok ? t->cap_tok * 2 : 64;
        jt_tok_t *p = realloc(t->tok, cap * sizeof(*p));
        if (!p) {
            if (ps->err && ps->errlen)
                snprintf(ps->err, ps->errlen, "out of memory");
            ps->rc = -2;
            return -1;
        }
        t->tok = p;
        t->cap_tok = cap;
    }
    jt_tok_t *k = &t->tok[t->n_tok];
    k->kind = (uint8_t)kind;
    k->n = 0;
    k->next = (uint32_t)(t->n_tok + 1);
    return (long)t->n_tok++;
}

static void skip_ws(parser_t *ps)
{
    while (ps->p < ps->len) {
        char c = ps->in[ps->p];
        if (c != ' ' && c != '\n' && c != '\t' && c != '\r')
            return;
        ps->p++;
    }
}

static int hex4(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static char *put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Length of the valid UTF-8 sequence at s[0..n) (first byte >= 0x80), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t k;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < k || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < k; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return k;
}

/* A string at ps->p (the opening quote) into a new JT_STRING token. */
static int parse_string(parser_t *ps)
{
    long ti = new_tok(ps, JT_STRING);
    if (ti < 0)
        return -1;
    const char *in = ps->in;
    size_t p = ps->p + 1, len = ps->len;
    char *start = ps->t->str + ps->so, *o = start;
    for (;;) {
        if (p >= len)
            return perr(ps, p, "premature end of input in a string");
        unsigned char c = (unsigned char)in[p];
        if (c == '"')
            break;
        if (c >= 0x20 && c < 0x80 && c != '\\') {
            *o++ = (char)c;
            p++;
        } else if (c == '\\') {
            if (p + 1 >= len)
                return perr(ps, p, "premature end of input in a string");
            char e = in[p + 1];
            p += 2;
            switch (e) {
            case '"':
            case '\\':
            case '/':
                *o++ = e;
                break;
            case 'b':
                *o++ = '\b';
                break;
            case 'f':
                *o++ = '\f';
                break;
            case 'n':
                *o++ = '\n';
                break;
            case 'r':
                *o++ = '\r';
                break;
            case 't':
                *o++ = '\t';
                break;
            case 'u': {
                uint32_t cp, lo;
                if (p + 4 > len || hex4(in + p, &cp) < 0)
                    return perr(ps, p - 2, "invalid \\u escape");
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return perr(ps, p - 2, "invalid Unicode '\\u%04X'", cp);
                p += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (p + 6 > len || in[p] != '\\' || in[p + 1] != 'u' ||
                        hex4(in + p + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                        return perr(ps, p - 6, "invalid Unicode '\\u%04X'", cp);
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
                o = put_utf8(o, cp);
                break;
            }
            default:
                return perr(ps, p - 2, "invalid escape");
            }
        } else if (c < 0x20) {
            return perr(ps, p, "control character 0x%x in a string", c);
        } else {
            size_t k = utf8_seq((const unsigned char *)in + p, len - p);
            if (!k)
                return perr(ps, p, "invalid UTF-8 in a string");
            memcpy(o, in + p, k);
            o += k;
            p += k;
        }
    }
    *o = 0;
    jt_tok_t *t = &ps->t->tok[ti];
    t->v.s = start;
    t->n = (uint32_t)(o - start);
    ps->so += (size_t)(o - start) + 1;
    ps->p = p + 1;
    return 0;
}

static int parse_number(parser_t *ps)
{
    const char *in = ps->in;
    size_t s = ps->p, p = s, len = ps->len;
    bool neg = in[p] == '-';
    if (neg)
        p++;
    if (p >= len || in[p] < '0' || in[p] > '9')
        return perr(ps, s, "invalid token");
    uint64_t mag = 0;
    bool big = false;
    if (in[p] == '0') {
        p++;
    } else {
        while (p < len && in[p] >= '0' && in[p] <= '9') {
            unsigned d = (unsigned)(in[p] - '0');
            if (mag > (UINT64_MAX - d) / 10)
                big = true;
            else
                mag = mag * 10 + d;
            p++;
        }
    }
    bool real = false;
    if (p < len && in[p] == '.') {
        p++;
        if (p >= len || in[p] < '0' || in[p] > '9')
            return perr(ps, s, "invalid token");
        while (p < len && in[p] >= '0' && in[p] <= '9')
            p++;
        real = true;
    }
    if (p < len && (in[p] == 'e' || in[p] == 'E')) {
        p++;
        if (p < len && (in[p] == '+' || in[p] == '-'))
            p++;
        if (p >= len || in[p] < '0' || in[p] > '9')
            return perr(ps, s, "invalid token");
        while (p < len && in[p] >= '0' && in[p] <= '9')
            p++;
        real = true;
    }
    size_t n = p - s;
    if (real) {
        long ti = new_tok(ps, JT_REAL);
        if (ti < 0)
            return -1;
        char buf[64], *tmp = buf;
        if (n >= sizeof buf) {
            tmp = malloc(n + 1);
            if (!tmp) {
                ps->rc = -2;
                return -1;
            }
        }
        memcpy(tmp, in + s, n);
        tmp[n] = 0;
        double d = strtod(tmp, NULL);
        if (tmp != buf)
            free(tmp);
        if (isinf(d))
            return perr(ps, s, "real number overflow");
        ps->t->tok[ti].v.d = d;
    } else if (!big && (neg ? mag <= (uint64_t)INT64_MAX + 1 : mag <= (uint64_t)INT64_MAX)) {
        long ti = new_tok(ps, JT_INT);
        if (ti < 0)
            return -1;
        ps->t->tok[ti].v.i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    } else {
        /* Beyond int64: its digits as a string for the integer converters. */
        long ti = new_tok(ps, JT_STRING);
        if (ti < 0)
            return -1;
        char *o = ps->t->str + ps->so;
        memcpy(o, in + s, n);
        o[n] = 0;
        ps->t->tok[ti].v.s = o;
        ps->t->tok[ti].n = (uint32_t)n;
        ps->so += n + 1;
    }
    ps->p = p;
    return 0;
}

static int parse_literal(parser_t *ps)
{
    static const struct {
        const char *w;
        size_t n;
        jt_kind_t k;
    } lits[] = {{"true", 4, JT_TRUE}, {"false", 5, JT_FALSE}, {"null", 4, JT_NULL}};
    for (size_t i = 0; i < 3; i++) {
        if (ps->len - ps->p >= lits[i].n && memcmp(ps->in + ps->p, lits[i].w, lits[i].n) == 0) {
            if (new_tok(ps, lits[i].k) < 0)
                return -1;
            ps->p += lits[i].n;
            return 0;
        }
    }
    return perr(ps, ps->p, "invalid token");
}

static int key_cmp(const void *a, const void *b, void *ud)
{
    const jt_tok_t *tok = ud;
    const jt_tok_t *x = &tok[*(const uint32_t *)a], *y = &tok[*(const uint32_t *)b];
    size_t n = x->n < y->n ? x->n : y->n;
    int r = memcmp(x->v.s, y->v.s, n);
    return r ? r : (x->n > y->n) - (x->n < y->n);
}

/* Refuses an object (token oi, closed) with a key given twice. */
static int check_duplicates(parser_t *ps, uint32_t oi, size_t at)
{
    jt_tok_t *tok = ps->t->tok;
    uint32_t n = tok[oi].n;
    if (n < 2)
        return 0;
    if (n <= 16) {
        uint32_t keys[16], k = oi + 1;
        for (uint32_t i = 0; i < n; i++) {
            keys[i] = k;
            k = tok[k + 1].next;
        }
        for (uint32_t i = 1; i < n; i++)
            for (uint32_t j = 0; j < i; j++)
                if (tok[keys[i]].n == tok[keys[j]].n &&
                    memcmp(tok[keys[i]].v.s, tok[keys[j]].v.s, tok[keys[i]].n) == 0)
                    return perr(ps, at, "duplicate object key");
        return 0;
    }
    uint32_t *keys = malloc(n * sizeof(*keys));
    if (!keys) {
        ps->rc = -2;
        return -1;
    }
    uint32_t k = oi + 1;
    for (uint32_t i = 0; i < n; i++) {
        keys[i] = k;
        k = tok[k + 1].next;
    }
    qsort_r(keys, n, sizeof(*keys), key_cmp, tok);
    int rc = 0;
    for (uint32_t i = 1; i < n && rc == 0; i++)
        if (key_cmp(&keys[i - 1], &keys[i], tok) == 0)
            rc = perr(ps, at, "duplicate object key");
    free(keys);
    return rc;
}

int jt_parse(jt_tape_t *t, const char *json, size_t len, char *err, size_t errlen)
{
    parser_t ps = {.t = t, .in = json, .len = len, .err = err, .errlen = errlen};
    t->n_tok = 0;
    if (err && errlen)
        err[0] = 0;
    if (len >= UINT32_MAX / 2)
        return perr(&ps, 0, "input too large");
    if (t->cap_str < len + 1) {
        char *s = realloc(t->str, len + 1);
        if (!s) {
            if (err && errlen)
                snprintf(err, errlen, "out of memory");
            return -2;
        }
        t->str = s;
        t->cap_str = len + 1;
    }
    uint32_t stack[JT_MAX_DEPTH];
    int sp = 0;
    for (;;) {
        /* A value. */
        skip_ws(&ps);
        if (ps.p >= len)
            return perr(&ps, ps.p, sp ? "premature end of input" : "no JSON value");
        char c = json[ps.p];
        bool closed_at_once = false;
        if (c == '{' || c == '[') {
            if (sp >= JT_MAX_DEPTH)
                return perr(&ps, ps.p, "maximum parsing depth reached");
            long ti = new_tok(&ps, c == '{' ? JT_OBJECT : JT_ARRAY);
            if (ti < 0)
                return ps.rc;
            stack[sp++] = (uint32_t)ti;
            ps.p++;
            skip_ws(&ps);
            if (ps.p < len && json[ps.p] == (c == '{' ? '}' : ']')) {
                ps.p++;
                sp--;
                closed_at_once = true;
            } else if (c == '[') {
                continue;
            }
        } else if (c == '"') {
            if (parse_string(&ps) < 0)
                return ps.rc;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (parse_number(&ps) < 0)
                return ps.rc;
        } else if (parse_literal(&ps) < 0) {
            return ps.rc;
        }
        bool want_key = !closed_at_once && c == '{';
        /* After a value: close containers, or a ',' and the next member or element. */
        while (!want_key) {
            if (closed_at_once) {
                closed_at_once = false;
                t->tok[stack[sp]].next = (uint32_t)t->n_tok;
            }
            if (sp == 0) {
                skip_ws(&ps);
                if (ps.p != len)
                    return perr(&ps, ps.p, "end of file expected");
                return 0;
            }
            jt_tok_t *top = &t->tok[stack[sp - 1]];
            top->n++;
            skip_ws(&ps);
            char d = ps.p < len ? json[ps.p] : 0;
            bool obj = top->kind == JT_OBJECT;
            if (d == ',') {
                ps.p++;
                if (obj)
                    want_key = true;
                break;
            }
            if (d == (obj ? '}' : ']')) {
                top->next = (uint32_t)t->n_tok;
                if (obj && check_duplicates(&ps, stack[sp - 1], ps.p) < 0)
                    return ps.rc;
                ps.p++;
                sp--;
                continue;
            }
            if (ps.p >= len)
                return perr(&ps, ps.p, "premature end of input");
            return perr(&ps, ps.p, obj ? "',' or '}' expected" : "',' or ']' expected");
        }
        if (want_key) {
            skip_ws(&ps);
            if (ps.p >= len || json[ps.p] != '"')
                return perr(&ps, ps.p, "string or '}' expected");
            if (parse_string(&ps) < 0)
                return ps.rc;
            skip_ws(&ps);
            if (ps.p >= len || json[ps.p] != ':')
                return perr(&ps, ps.p, "':' expected");
            ps.p++;
        }
    }
}

void jt_free(jt_tape_t *t)
{
    free(t->tok);
    free(t->str);
    memset(t, 0, sizeof(*t));
}
