/*
 * ca/ca_tokens.c: parsing and checking the mesh CA's bootstrap token file (see
 * ca/ca_tokens.h).
 */
#include "ca/ca_tokens.h"

#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ca_tokens_destroy(ca_tokens_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        ca_token_t *k = &t->v[i];
        free(k->token);
        free(k->node_pattern);
        for (size_t j = 0; j < k->n_services; j++)
            free(k->services[j]);
        free(k->services);
    }
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

/* A glob of a node or service: the name characters plus glob syntax; nothing else. */
static int pattern_ok(const char *s, size_t n)
{
    if (n == 0 || n > 256)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("._-*?[]!", c)))
            return 0;
    }
    return 1;
}

/* Splits the services field into globs. 0, or -1 with a reason. */
static int parse_services(ca_token_t *k, const char *s, size_t n, const char **why)
{
    if (n == 1 && s[0] == '-')
        return 0;
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != ',')
            j++;
        if (!pattern_ok(s + i, j - i)) {
            *why = "a service pattern is empty or has a character outside A-Z a-z 0-9 . - _ "
                   "and * ? [ ] !";
            return -1;
        }
        char **v = realloc(k->services, (k->n_services + 1) * sizeof(*v));
        if (!v) {
            *why = "out of memory";
            return -1;
        }
        k->services = v;
        if (!(v[k->n_services] = strndup(s + i, j - i))) {
            *why = "out of memory";
            return -1;
        }
        k->n_services++;
        i = j + 1;
    }
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Parses one line's fields into k. 0, or -1 with a reason. */
static int parse_line(ca_token_t *k, const char *s, size_t n, const char **why)
{
    const char *f[4];
    size_t fl[4], nf = 0, i = 0;
    while (i < n) {
        while (i < n && is_space(s[i]))
            i++;
        if (i == n)
            break;
        size_t j = i;
        while (j < n && !is_space(s[j]))
            j++;
        if (nf == 3) {
            *why = "more than 3 fields (expected: TOKEN NODE-PATTERN SERVICES)";
            return -1;
        }
        f[nf] = s + i;
        fl[nf++] = j - i;
        i = j;
    }
    if (nf != 3) {
        *why = "expected 3 fields: TOKEN NODE-PATTERN SERVICES";
        return -1;
    }
    if (fl[0] < CA_TOKEN_MIN || fl[0] > CA_TOKEN_MAX) {
        *why = "the token must have 16 to 256 characters";
        return -1;
    }
    for (size_t c = 0; c < fl[0]; c++)
        if ((unsigned char)f[0][c] < 0x21 || (unsigned char)f[0][c] > 0x7e) {
            *why = "the token has a character that is not printable ASCII";
            return -1;
        }
    if (!pattern_ok(f[1], fl[1])) {
        *why = "the node pattern is empty or has a character outside A-Z a-z 0-9 . - _ and "
               "* ? [ ] !";
        return -1;
    }
    if (!(k->token = strndup(f[0], fl[0])) || !(k->node_pattern = strndup(f[1], fl[1]))) {
        *why = "out of memory";
        return -1;
    }
    k->token_len = fl[0];
    return parse_services(k, f[2], fl[2], why);
}

int ca_tokens_parse(ca_tokens_t *t, const char *name, const char *text, size_t len, char *err,
                    size_t errlen)
{
    memset(t, 0, sizeof(*t));
    size_t pos = 0;
    unsigned line = 0;
    while (pos < len) {
        line++;
        size_t e = pos;
        while (e < len && text[e] != '\n')
            e++;
        size_t n = e - pos;
        const char *s = text + pos;
        pos = e + 1;
        if (n && s[n - 1] == '\r')
            n--;
        if (memchr(s, '\0', n)) {
            snprintf(err, errlen, "%s:%u: a NUL byte (not a text file?)", name, line);
            goto fail;
        }
        size_t i = 0;
        while (i < n && is_space(s[i]))
            i++;
        if (i == n || s[i] == '#')
            continue;
        ca_token_t *v = realloc(t->v, (t->n + 1) * sizeof(*v));
        if (!v) {
            snprintf(err, errlen, "%s:%u: out of memory", name, line);
            goto fail;
        }
        t->v = v;
        ca_token_t *k = &t->v[t->n++];
        memset(k, 0, sizeof(*k));
        k->line = line;
        const char *why = NULL;
        if (parse_line(k, s, n, &why) != 0) {
            snprintf(err, errlen, "%s:%u: %s", name, line, why);
            goto fail;
        }
        for (size_t j = 0; j + 1 < t->n; j++)
            if (t->v[j].token_len == k->token_len &&
                memcmp(t->v[j].token, k->token, k->token_len) == 0) {
                snprintf(err, errlen, "%s:%u: the same token as line %u", name, line, t->v[j].line);
                goto fail;
            }
    }
    return 0;
fail:
    ca_tokens_destroy(t);
    return -1;
}

/* Constant time in the length of a (the stored token). */
static int same(const char *a, size_t an, const char *b, size_t bn)
{
    uint8_t d = an != bn;
    for (size_t i = 0; i < an; i++)
        d |= (uint8_t)(a[i] ^ (i < bn ? b[i] : 0));
    return d == 0;
}

const ca_token_t *ca_tokens_find(const ca_tokens_t *t, const char *tok, size_t len)
{
    const ca_token_t *found = NULL;
    for (size_t i = 0; i < t->n; i++) /* no early exit: every entry costs the same */
        if (same(t->v[i].token, t->v[i].token_len, tok, len))
            found = &t->v[i];
    return found;
}

int ca_token_allows(const ca_token_t *tok, const char *node, const char *const *services,
                    size_t n_services, char *err, size_t errlen)
{
    if (fnmatch(tok->node_pattern, node, 0) != 0) {
        snprintf(err, errlen, "the token (line %u) may not obtain node '%s' (allowed: %s)",
                 tok->line, node, tok->node_pattern);
        return 0;
    }
    for (size_t i = 0; i < n_services; i++) {
        int ok = 0;
        for (size_t j = 0; j < tok->n_services && !ok; j++)
            ok = fnmatch(tok->services[j], services[i], 0) == 0;
        if (!ok) {
            snprintf(err, errlen, "the token (line %u) may not obtain service '%s'", tok->line,
                     services[i]);
            return 0;
        }
    }
    return 1;
}
