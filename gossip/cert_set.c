/*
 * gossip/cert_set.c: certificates as content-addressed sets (see gossip/cert_set.h).
 */
#include "gossip/cert_set.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"

#define PREFIX     "x509:"
#define PREFIX_LEN 5

int gsp_cert_set_make(gsp_cert_set_t *s, const uint8_t *der, size_t len)
{
    memset(s, 0, sizeof(*s));
    if (!der || len == 0 || len > GSP_CERT_MAX)
        return -1;
    for (size_t off = 0; off < len; off += GSP_CERT_CHUNK) {
        size_t c = len - off < GSP_CERT_CHUNK ? len - off : GSP_CERT_CHUNK;
        char *name = malloc(PREFIX_LEN + 3 + mesh_b64_len(c) + 1);
        if (!name) {
            gsp_cert_set_destroy(s);
            return -1;
        }
        snprintf(name, PREFIX_LEN + 4, PREFIX "%02zu:", s->n);
        mesh_b64_encode(der + off, c, name + PREFIX_LEN + 3);
        s->names[s->n++] = name;
    }
    s->hash = gsp_meta_set_hash((const char *const *)s->names, s->n);
    return 0;
}

void gsp_cert_set_destroy(gsp_cert_set_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->names[i]);
    memset(s, 0, sizeof(*s));
}

/* The chunk index of a name, or -1. */
static int index_of(const char *name)
{
    if (strncmp(name, PREFIX, PREFIX_LEN) != 0)
        return -1;
    const char *d = name + PREFIX_LEN;
    if (d[0] < '0' || d[0] > '9' || d[1] < '0' || d[1] > '9' || d[2] != ':')
        return -1;
    return (d[0] - '0') * 10 + (d[1] - '0');
}

long gsp_cert_set_read(const char *const *names, size_t n, uint8_t *out, size_t cap)
{
    if (n == 0 || n > GSP_CERT_SET_NAMES)
        return -1;
    const char *by[GSP_CERT_SET_NAMES] = {0};
    for (size_t i = 0; i < n; i++) {
        int k = names[i] ? index_of(names[i]) : -1;
        if (k < 0 || (size_t)k >= n || by[k])
            return -1; /* not ours, out of range, or a repeat */
        by[k] = names[i];
    }
    size_t len = 0;
    for (size_t k = 0; k < n; k++) {
        const char *b = by[k] + PREFIX_LEN + 3;
        uint8_t chunk[GSP_CERT_CHUNK + 1];
        long c = mesh_b64_decode(b, strlen(b), chunk, sizeof(chunk), 1);
        if (c <= 0 || c > GSP_CERT_CHUNK || (k + 1 < n && c != GSP_CERT_CHUNK) ||
            len + (size_t)c > cap)
            return -1;
        memcpy(out + len, chunk, (size_t)c);
        len += (size_t)c;
    }
    return (long)len;
}
