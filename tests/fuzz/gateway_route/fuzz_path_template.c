/*
 * tests/fuzz/gateway_route/fuzz_path_template.c: libFuzzer harness over gateway/path_template.
 *
 * The input is a template and a request path separated by the first 0x00 byte. Any template
 * bytes either parse or fail with a position inside the template. A parsed template must be
 * consistent (variables inside the segments, `**` last, equal to itself in precedence, the same
 * when its text is parsed again); the fuzzed path must match or not without reading outside it
 * (captures inside the path, decodable or refused); and a path built from the template (literals
 * percent-encoded byte by byte, `*` as one segment, `**` as two) must match, with every
 * capture decoding.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/path_template.h"

static void check_captures(const gw_path_template_t *t, const char *path, size_t len,
                           const gw_capture_t *caps, int must_decode)
{
    static char out[1 << 16];
    for (size_t v = 0; v < t->n_vars; v++) {
        const gw_capture_t *c = &caps[v];
        if (c->value < path || c->value + c->len > path + len)
            abort();
        if (!c->multi && memchr(c->value, '/', c->len))
            abort(); /* a single-segment capture never spans a '/' */
        if (c->len + 1 > sizeof out)
            continue;
        for (int mode = 0; mode < 3; mode++) {
            ssize_t n = gw_capture_decode(c, (gw_unescape_t)mode, out, c->len + 1);
            if (n > (ssize_t)c->len || (must_decode && n < 0))
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nul = memchr(s, 0, size);
    size_t tlen = nul ? (size_t)(nul - s) : size;
    const char *path = nul ? nul + 1 : "";
    size_t plen = nul ? size - tlen - 1 : 0;

    gw_path_template_t t;
    gw_tmpl_error_t e;
    if (gw_path_template_parse(s, tlen, &t, &e) < 0) {
        if (e.pos > tlen || !e.msg[0] || t.segs || t.vars || t.text)
            abort();
        return 0;
    }
    /* Consistency of what was parsed. */
    if (t.n_vars > GW_MAX_CAPTURES)
        abort();
    for (size_t v = 0; v < t.n_vars; v++)
        if (t.vars[v].first >= t.vars[v].last || t.vars[v].last > t.n_segs)
            abort();
    for (size_t i = 0; i + 1 < t.n_segs; i++)
        if (t.segs[i].kind == GW_SEG_DSTAR)
            abort();
    if (gw_path_template_compare(&t, &t) != 0)
        abort();
    gw_path_template_t again;
    if (gw_path_template_parse(t.text, strlen(t.text), &again, NULL) < 0 ||
        gw_path_template_compare(&t, &again) != 0 || again.n_vars != t.n_vars)
        abort();
    gw_path_template_destroy(&again);

    /* The fuzzed path. */
    gw_capture_t caps[GW_MAX_CAPTURES];
    if (gw_path_template_match(&t, path, plen, caps))
        check_captures(&t, path, plen, caps, 0);

    /* A path the template must match. */
    size_t cap = 8;
    for (size_t i = 0; i < t.n_segs; i++)
        cap += 8 + (t.segs[i].lit_len * 3);
    cap += t.verb_len + 2;
    char *gen = malloc(cap);
    size_t o = 0;
    if (t.n_segs == 0)
        gen[o++] = '/';
    for (size_t i = 0; i < t.n_segs; i++) {
        gen[o++] = '/';
        if (t.segs[i].kind == GW_SEG_STAR) {
            gen[o++] = 's';
        } else if (t.segs[i].kind == GW_SEG_DSTAR) {
            memcpy(gen + o, "d1/d2", 5);
            o += 5;
        } else {
            for (size_t k = 0; k < t.segs[i].lit_len; k++)
                o += (size_t)snprintf(gen + o, cap - o, "%%%02X", (unsigned char)t.segs[i].lit[k]);
        }
    }
    if (t.verb) {
        gen[o++] = ':';
        memcpy(gen + o, t.verb, t.verb_len);
        o += t.verb_len;
    }
    if (!gw_path_template_match(&t, gen, o, caps)) {
        fprintf(stderr, "template %s does not match %.*s\n", t.text, (int)o, gen);
        abort();
    }
    check_captures(&t, gen, o, caps, 1);
    free(gen);
    gw_path_template_destroy(&t);
    return 0;
}
