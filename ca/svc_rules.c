/*
 * ca/svc_rules.c: the rule table of who may register which service (see ca/svc_rules.h): a
 * line parser with FILE:LINE errors and a linear match (tables are tens of lines; a record is
 * checked once per metadata version, never per datagram).
 */
#include "ca/svc_rules.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file_read.h"

typedef struct svr_rule {
    char *svc, *id;
} svr_rule_t;

struct svr_rules {
    svr_rule_t *v;
    size_t n, cap;
};

void svr_rules_free(svr_rules_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].svc);
        free(r->v[i].id);
    }
    free(r->v);
    free(r);
}

size_t svr_rules_count(const svr_rules_t *r)
{
    return r ? r->n : 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Splits line[0..len) into at most 3 fields (the third: an error); returns how many. */
static int fields(const char *line, size_t len, const char *f[3], size_t fl[3])
{
    int n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && is_blank(line[i]))
            i++;
        if (i == len || line[i] == '#')
            break;
        size_t s = i;
        while (i < len && !is_blank(line[i]) && line[i] != '#')
            i++;
        if (n == 3)
            return 4;
        f[n] = line + s;
        fl[n++] = i - s;
    }
    return n;
}

svr_rules_t *svr_rules_parse(const char *text, size_t len, const char *name, char *err,
                             size_t errlen)
{
    svr_rules_t *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    size_t lineno = 0, pos = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + (nl != NULL);
        lineno++;
        if (memchr(line, 0, ll)) {
            snprintf(err, errlen, "%s:%zu: a NUL byte", name, lineno);
            goto fail;
        }
        const char *f[3];
        size_t fl[3];
        int n = fields(line, ll, f, fl);
        if (n == 0)
            continue;
        if (n != 2) {
            snprintf(err, errlen,
                     "%s:%zu: expected two fields, SERVICE-GLOB IDENTITY-GLOB (got %d)", name,
                     lineno, n > 3 ? 3 : n);
            goto fail;
        }
        if (r->n == r->cap) {
            size_t nc = r->cap ? r->cap * 2 : 8;
            svr_rule_t *nv = realloc(r->v, nc * sizeof(*nv));
            if (!nv)
                goto oom;
            r->v = nv;
            r->cap = nc;
        }
        svr_rule_t *ru = &r->v[r->n];
        ru->svc = strndup(f[0], fl[0]);
        ru->id = strndup(f[1], fl[1]);
        r->n++;
        if (!ru->svc || !ru->id)
            goto oom;
    }
    return r;
oom:
    snprintf(err, errlen, "%s: out of memory", name);
fail:
    svr_rules_free(r);
    return NULL;
}

svr_rules_t *svr_rules_load(const char *path, char *err, size_t errlen)
{
    size_t len;
    char *buf = mesh_file_read(path, 16u << 20, 0, &len, err, errlen);
    if (!buf)
        return NULL;
    svr_rules_t *r = svr_rules_parse(buf, len, path, err, errlen);
    free(buf);
    return r;
}

int svr_rules_allow(const svr_rules_t *r, const char *service, const char *node,
                    const char *spiffe_id)
{
    if (!r || !service || !node)
        return 0;
    for (size_t i = 0; i < r->n; i++) {
        const svr_rule_t *ru = &r->v[i];
        if (fnmatch(ru->svc, service, 0) != 0)
            continue;
        int full = !strncmp(ru->id, "spiffe://", 9);
        const char *who = full ? spiffe_id : node;
        if (who && fnmatch(ru->id, who, 0) == 0)
            return 1;
    }
    return 0;
}
