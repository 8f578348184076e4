/*
 * gateway/path_template.c: parsing, matching and ordering of google.api.http path templates
 * (see path_template.h for the grammar and the decoding rules).
 *
 * A parsed template is a flat list of segments (literal, `*`, `**`) plus variables naming a
 * range of those segments. Matching walks the request path once, segment by segment, and
 * records where each variable's range starts and ends: no allocation, no copies.
 */
#include "gateway/path_template.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------
 * Characters
 * ------------------------------------------------------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A URI pchar allowed in a literal, other than '%' (escapes) and ':' (the verb) and '*'
 * (wildcards are whole segments). */
static int is_lit_char(char c)
{
    return is_alpha(c) || is_digit(c) || strchr("-._~!$&'()+,;=@", c) != NULL;
}

/* RFC 6570 reserved characters (gen-delims and sub-delims). */
static int is_reserved(unsigned char c)
{
    return c && strchr(":/?#[]@!$&'()*+,;=", c) != NULL;
}

int gw_is_field_path(const char *s, size_t len)
{
    size_t i = 0;
    for (;;) {
        if (i >= len || !(is_alpha(s[i]) || s[i] == '_'))
            return 0;
        while (i < len && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '_'))
            i++;
        if (i == len)
            return 1;
        if (s[i] != '.')
            return 0;
        i++;
    }
}

/* ------------------------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------------------------ */

typedef struct {
    const char *s;
    size_t len, i;
    gw_path_template_t *t;
    gw_tmpl_error_t *err;
    size_t cap_segs, cap_vars;
    /* Offset of a `**` already parsed (anything after it but a verb is an error), or -1. */
    long dstar_at;
} parser_t;

static int perr(parser_t *p, size_t pos, const char *fmt, ...)
{
    if (p->err) {
        va_list ap;
        p->err->pos = pos;
        va_start(ap, fmt);
        vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int push_seg(parser_t *p, gw_seg_kind_t kind, char *lit, size_t lit_len, size_t pos)
{
    gw_path_template_t *t = p->t;
    if (p->dstar_at >= 0) {
        free(lit);
        return perr(p, (size_t)p->dstar_at, "'**' must be the last segment");
    }
    if (t->n_segs == p->cap_segs) {
        size_t nc = p->cap_segs ? p->cap_segs * 2 : 4;
        gw_seg_t *ns = realloc(t->segs, nc * sizeof *ns);
        if (!ns) {
            free(lit);
            return perr(p, pos, "out of memory");
        }
        t->segs = ns;
        p->cap_segs = nc;
    }
    t->segs[t->n_segs++] = (gw_seg_t){kind, lit, lit_len};
    if (kind == GW_SEG_DSTAR)
        p->dstar_at = (long)pos;
    return 0;
}

/* Reads a literal (or the verb) starting at p->i up to a delimiter, validating and decoding
 * it into a new string. */
static int parse_literal(parser_t *p, char **out, size_t *out_len, const char *what)
{
    size_t start = p->i;
    while (p->i < p->len) {
        char c = p->s[p->i];
        if (c == '/' || c == '}' || c == ':' || c == '{')
            break;
        if (c == '%') {
            if (p->i + 2 >= p->len || hexval(p->s[p->i + 1]) < 0 || hexval(p->s[p->i + 2]) < 0)
                return perr(p, p->i, "'%%' must be followed by two hex digits");
            p->i += 3;
            continue;
        }
        if (c == '*')
            return perr(p, p->i, "'*' must be a whole segment");
        if (!is_lit_char(c))
            return perr(p, p->i, "character '%s%c' is not allowed in a %s",
                        (unsigned char)c < 0x20 || (unsigned char)c >= 0x7f ? "\\x" : "",
                        (unsigned char)c < 0x20 || (unsigned char)c >= 0x7f ? '?' : c, what);
        p->i++;
    }
    if (p->i == start)
        return perr(p, start, "empty %s", what);
    size_t n = p->i - start;
    char *lit = malloc(n + 1);
    if (!lit)
        return perr(p, start, "out of memory");
    ssize_t dn = gw_percent_decode(p->s + start, n, 0, lit, n + 1);
    if (dn < 0) { /* cannot happen: escapes were checked */
        free(lit);
        return perr(p, start, "bad escape");
    }
    *out = lit;
    *out_len = (size_t)dn;
    return 0;
}

/* One segment: `*`, `**`, a literal, or (outside variables) a variable. */
static int parse_segment(parser_t *p, int in_var);

static int parse_variable(parser_t *p)
{
    size_t open = p->i++;
    size_t fstart = p->i;
    while (p->i < p->len && p->s[p->i] != '=' && p->s[p->i] != '}')
        p->i++;
    if (p->i >= p->len)
        return perr(p, open, "'{' is never closed");
    size_t flen = p->i - fstart;
    if (!gw_is_field_path(p->s + fstart, flen))
        return perr(p, fstart, "expected a field path (IDENT{.IDENT}) after '{'");
    gw_path_template_t *t = p->t;
    for (size_t v = 0; v < t->n_vars; v++)
        if (strlen(t->vars[v].field) == flen && !memcmp(t->vars[v].field, p->s + fstart, flen))
            return perr(p, fstart, "field '%.*s' is bound twice", (int)flen, p->s + fstart);
    if (t->n_vars >= GW_MAX_CAPTURES)
        return perr(p, open, "more than %d variables", GW_MAX_CAPTURES);
    if (t->n_vars == p->cap_vars) {
        size_t nc = p->cap_vars ? p->cap_vars * 2 : 2;
        gw_var_t *nv = realloc(t->vars, nc * sizeof *nv);
        if (!nv)
            return perr(p, open, "out of memory");
        t->vars = nv;
        p->cap_vars = nc;
    }
    char *field = strndup(p->s + fstart, flen);
    if (!field)
        return perr(p, fstart, "out of memory");
    gw_var_t *var = &t->vars[t->n_vars++];
    *var = (gw_var_t){field, t->n_segs, t->n_segs, 0};
    if (p->s[p->i] == '}') {
        if (push_seg(p, GW_SEG_STAR, NULL, 0, p->i) < 0)
            return -1;
    } else {
        p->i++; /* '=' */
        for (;;) {
            if (p->i >= p->len)
                return perr(p, open, "'{' is never closed");
            if (parse_segment(p, 1) < 0)
                return -1;
            if (p->i >= p->len)
                return perr(p, open, "'{' is never closed");
            if (p->s[p->i] == '/') {
                p->i++;
                continue;
            }
            if (p->s[p->i] == '}')
                break;
            if (p->s[p->i] == ':')
                return perr(p, p->i, "a verb cannot be inside a variable");
            return perr(p, p->i, "unexpected '%c' in a variable", p->s[p->i]);
        }
    }
    p->i++; /* '}' */
    var = &t->vars[t->n_vars - 1];
    var->last = t->n_segs;
    var->multi = var->last - var->first > 1 || t->segs[var->last - 1].kind == GW_SEG_DSTAR;
    return 0;
}

static int parse_segment(parser_t *p, int in_var)
{
    size_t pos = p->i;
    if (p->i >= p->len)
        return perr(p, pos, "empty segment at the end");
    char c = p->s[p->i];
    if (c == '/' || c == '}' || c == ':')
        return perr(p, pos, "empty segment");
    if (c == '{') {
        if (in_var)
            return perr(p, pos, "a variable cannot contain a variable");
        return parse_variable(p);
    }
    if (c == '*') {
        gw_seg_kind_t kind = GW_SEG_STAR;
        p->i++;
        if (p->i < p->len && p->s[p->i] == '*') {
            kind = GW_SEG_DSTAR;
            p->i++;
        }
        if (p->i < p->len && !strchr("/}:", p->s[p->i]))
            return perr(p, p->i, "'%s' must be a whole segment", kind == GW_SEG_DSTAR ? "**" : "*");
        return push_seg(p, kind, NULL, 0, pos);
    }
    char *lit;
    size_t n;
    if (parse_literal(p, &lit, &n, "literal") < 0)
        return -1;
    return push_seg(p, GW_SEG_LITERAL, lit, n, pos);
}

void gw_path_template_destroy(gw_path_template_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_segs; i++)
        free(t->segs[i].lit);
    for (size_t i = 0; i < t->n_vars; i++)
        free(t->vars[i].field);
    free(t->segs);
    free(t->vars);
    free(t->verb);
    free(t->text);
    memset(t, 0, sizeof *t);
}

int gw_path_template_parse(const char *text, size_t len, gw_path_template_t *t,
                           gw_tmpl_error_t *err)
{
    parser_t p = {text, len, 0, t, err, 0, 0, -1};
    memset(t, 0, sizeof *t);
    if (err) {
        err->pos = 0;
        err->msg[0] = 0;
    }
    if (!text || len == 0 || text[0] != '/') {
        perr(&p, 0, "a template must start with '/'");
        goto bad;
    }
    if (memchr(text, 0, len)) {
        perr(&p, (size_t)((const char *)memchr(text, 0, len) - text), "NUL byte");
        goto bad;
    }
    t->text = strndup(text, len);
    if (!t->text) {
        perr(&p, 0, "out of memory");
        goto bad;
    }
    p.i = 1;
    if (len == 1)
        return 0; /* "/": the root */
    for (;;) {
        if (parse_segment(&p, 0) < 0)
            goto bad;
        if (p.i >= len)
            break;
        char c = text[p.i];
        if (c == '/') {
            p.i++;
            continue;
        }
        if (c == ':') {
            size_t vpos = p.i++;
            if (parse_literal(&p, &t->verb, &t->verb_len, "verb") < 0)
                goto bad;
            if (p.i < len) {
                perr(&p, p.i, "unexpected '%c' after the verb at %zu", text[p.i], vpos);
                goto bad;
            }
            break;
        }
        if (c == '}') {
            perr(&p, p.i, "'}' without '{'");
            goto bad;
        }
        perr(&p, p.i, "unexpected '%c'", c);
        goto bad;
    }
    return 0;
bad:
    gw_path_template_destroy(t);
    return -1;
}

/* ------------------------------------------------------------------------------------------
 * Matching
 * ------------------------------------------------------------------------------------------ */

/* Whether request segment s[0..n) percent-decodes to lit[0..lit_len). */
static int seg_equals(const char *s, size_t n, const char *lit, size_t lit_len)
{
    size_t i = 0, j = 0;
    while (i < n) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return 0;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return 0;
            c = (char)(h * 16 + l);
            i += 3;
        } else {
            i++;
        }
        if (j >= lit_len || lit[j] != c)
            return 0;
        j++;
    }
    return j == lit_len;
}

int gw_path_template_match(const gw_path_template_t *t, const char *path, size_t len,
                           gw_capture_t *caps)
{
    if (!path || len == 0 || path[0] != '/')
        return 0;
    size_t end = len;
    if (t->verb) {
        /* The path must end in ":verb" inside its last segment. */
        if (len < t->verb_len + 2)
            return 0;
        size_t colon = len - t->verb_len - 1;
        if (path[colon] != ':' || memcmp(path + colon + 1, t->verb, t->verb_len) != 0)
            return 0;
        end = colon;
    }
    /* Request segments are path[p .. next '/' or end); "/" alone has none. */
    size_t p = 1;
    int done = end <= 1;
    if (end == 0)
        return 0;
    size_t vstart[GW_MAX_CAPTURES];
    for (size_t si = 0; si < t->n_segs; si++) {
        const gw_seg_t *sg = &t->segs[si];
        size_t here = done ? end : p;
        for (size_t v = 0; v < t->n_vars; v++)
            if (t->vars[v].first == si)
                vstart[v] = here;
        size_t seg_end;
        if (sg->kind == GW_SEG_DSTAR) {
            seg_end = end;
            done = 1;
        } else {
            if (done)
                return 0;
            const char *slash = memchr(path + p, '/', end - p);
            size_t q = slash ? (size_t)(slash - path) : end;
            if (sg->kind == GW_SEG_STAR) {
                if (q == p)
                    return 0;
            } else if (!seg_equals(path + p, q - p, sg->lit, sg->lit_len)) {
                return 0;
            }
            seg_end = q;
            if (q == end)
                done = 1;
            else
                p = q + 1;
        }
        for (size_t v = 0; v < t->n_vars; v++)
            if (t->vars[v].last == si + 1 && caps) {
                caps[v].field = t->vars[v].field;
                caps[v].value = path + vstart[v];
                caps[v].len = seg_end - vstart[v];
                caps[v].multi = t->vars[v].multi;
            }
    }
    return done;
}

/* ------------------------------------------------------------------------------------------
 * Ordering
 * ------------------------------------------------------------------------------------------ */

/* Rank of position i of a template: lower goes first. */
static int rank_at(const gw_path_template_t *t, size_t i)
{
    if (i >= t->n_segs)
        return 0; /* ended */
    return 1 + (int)t->segs[i].kind;
}

int gw_path_template_compare(const gw_path_template_t *a, const gw_path_template_t *b)
{
    /* A template with a verb first: a path ending in ":verb" means that verb. */
    if (!a->verb != !b->verb)
        return a->verb ? -1 : 1;
    size_t n = a->n_segs > b->n_segs ? a->n_segs : b->n_segs;
    for (size_t i = 0; i < n; i++) {
        int ra = rank_at(a, i), rb = rank_at(b, i);
        if (ra != rb)
            return ra < rb ? -1 : 1;
    }
    for (size_t i = 0; i < a->n_segs; i++) {
        const gw_seg_t *x = &a->segs[i], *y = &b->segs[i];
        if (x->kind != GW_SEG_LITERAL)
            continue;
        size_t m = x->lit_len < y->lit_len ? x->lit_len : y->lit_len;
        int c = memcmp(x->lit, y->lit, m);
        if (c)
            return c < 0 ? -1 : 1;
        if (x->lit_len != y->lit_len)
            return x->lit_len < y->lit_len ? -1 : 1;
    }
    if (a->verb) {
        size_t m = a->verb_len < b->verb_len ? a->verb_len : b->verb_len;
        int c = memcmp(a->verb, b->verb, m);
        if (c)
            return c < 0 ? -1 : 1;
        if (a->verb_len != b->verb_len)
            return a->verb_len < b->verb_len ? -1 : 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------------------------------ */

/* The decoder behind both: in a multi-segment capture, mode says which decoded characters stay
 * escaped as written. */
static ssize_t decode(const char *src, size_t len, int plus_is_space, gw_unescape_t mode, int multi,
                      char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        char c = src[i];
        size_t adv = 1;
        int literal_escape = 0;
        if (c == '%') {
            int h = i + 2 < len ? hexval(src[i + 1]) : -1;
            int l = h >= 0 ? hexval(src[i + 2]) : -1;
            if (h < 0 || l < 0)
                return -1;
            unsigned char d = (unsigned char)(h * 16 + l);
            adv = 3;
            if (multi && mode == GW_UNESCAPE_DEFAULT && is_reserved(d))
                literal_escape = 1;
            else if (multi && mode == GW_UNESCAPE_ALL_EXCEPT_SLASH && d == '/')
                literal_escape = 1;
            else
                c = (char)d;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (literal_escape) {
            if (o + 3 >= cap)
                return -1;
            memcpy(out + o, src + i, 3);
            o += 3;
        } else {
            if (o + 1 >= cap)
                return -1;
            out[o++] = c;
        }
        i += adv;
    }
    if (o >= cap)
        return -1;
    out[o] = 0;
    return (ssize_t)o;
}

ssize_t gw_percent_decode(const char *src, size_t len, int plus_is_space, char *out, size_t cap)
{
    return decode(src, len, plus_is_space, GW_UNESCAPE_ALL, 0, out, cap);
}

ssize_t gw_capture_decode(const gw_capture_t *c, gw_unescape_t mode, char *out, size_t cap)
{
    return decode(c->value, c->len, 0, mode, c->multi, out, cap);
}
