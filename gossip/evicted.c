/*
 * gossip/evicted.c: the set of instances live monitors announce as evicted (see
 * gossip/evicted.h).
 */
#include "gossip/evicted.h"

#include <stdlib.h>
#include <string.h>

void gsp_evicted_set_init(gsp_evicted_set_t *s)
{
    memset(s, 0, sizeof(*s));
}

void gsp_evicted_set_destroy(gsp_evicted_set_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->keys[i]);
    free(s->keys);
    memset(s, 0, sizeof(*s));
}

/* A key: the service, a newline (never in a service name or an address), the address. */
int gsp_evicted_set_add(gsp_evicted_set_t *s, gsp_str_t service, gsp_str_t addr)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **k = realloc(s->keys, cap * sizeof(*k));
        if (!k)
            return -1;
        s->keys = k;
        s->cap = cap;
    }
    char *key = malloc((size_t)service.n + addr.n + 2);
    if (!key)
        return -1;
    memcpy(key, service.p, service.n);
    key[service.n] = '\n';
    memcpy(key + service.n + 1, addr.p, addr.n);
    key[service.n + 1 + addr.n] = 0;
    s->keys[s->n++] = key;
    s->sorted = 0;
    return 0;
}

int gsp_evicted_set_add_attrs(gsp_evicted_set_t *s, const gsp_node_attrs_t *a)
{
    if (a->role.n != strlen(GSP_ROLE_MONITOR) ||
        memcmp(a->role.p, GSP_ROLE_MONITOR, a->role.n) != 0)
        return 0;
    for (uint32_t i = 0; i < a->n_evicted; i++)
        if (gsp_evicted_set_add(s, a->evicted[i].service, a->evicted[i].addr) != 0)
            return -1;
    return 0;
}

static int cmp_key(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

int gsp_evicted_set_has(gsp_evicted_set_t *s, const char *service, const char *addr)
{
    if (!s->n)
        return 0;
    if (!s->sorted) {
        qsort(s->keys, s->n, sizeof(*s->keys), cmp_key);
        s->sorted = 1;
    }
    size_t sl = strlen(service), al = strlen(addr);
    char stackbuf[GSP_FIELD_MAX + GSP_ADDR_MAX + 2];
    if (sl > GSP_FIELD_MAX || al > GSP_ADDR_MAX)
        return 0; /* longer than any announced pair */
    memcpy(stackbuf, service, sl);
    stackbuf[sl] = '\n';
    memcpy(stackbuf + sl + 1, addr, al + 1);
    const char *k = stackbuf;
    return bsearch(&k, s->keys, s->n, sizeof(*s->keys), cmp_key) != NULL;
}
