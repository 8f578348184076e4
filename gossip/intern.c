/*
 * gossip/intern.c: the process-wide table of interned strings (gossip/intern.h): open
 * addressing by hash, entries freed when their last reference goes.
 */
#include "gossip/intern.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static gsp_istr_t **g_tab; /* NULL: empty */
static size_t g_cap, g_n;

uint64_t gsp_intern_hash(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h ? h : 1;
}

static void put(gsp_istr_t **tab, size_t cap, gsp_istr_t *e)
{
    size_t i = e->hash & (cap - 1);
    while (tab[i])
        i = (i + 1) & (cap - 1);
    tab[i] = e;
}

static int grow_locked(void)
{
    if ((g_n + 1) * 2 <= g_cap)
        return 0;
    size_t cap = g_cap ? g_cap * 2 : 256;
    gsp_istr_t **t = calloc(cap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < g_cap; i++)
        if (g_tab[i])
            put(t, cap, g_tab[i]);
    free(g_tab);
    g_tab = t;
    g_cap = cap;
    return 0;
}

const gsp_istr_t *gsp_intern(const char *p, size_t n)
{
    if (n > UINT32_MAX)
        return NULL;
    uint64_t h = gsp_intern_hash(p, n);
    pthread_mutex_lock(&g_lock);
    gsp_istr_t *found = NULL;
    if (g_cap)
        for (size_t i = h & (g_cap - 1); g_tab[i]; i = (i + 1) & (g_cap - 1)) {
            gsp_istr_t *e = g_tab[i];
            if (e->hash == h && e->len == n && !memcmp(e->s, p, n)) {
                found = e;
                break;
            }
        }
    if (!found && !grow_locked() && (found = malloc(sizeof *found + n + 1))) {
        found->hash = h;
        found->refs = 0;
        found->len = (uint32_t)n;
        memcpy(found->s, p, n);
        found->s[n] = 0;
        put(g_tab, g_cap, found);
        g_n++;
    }
    if (found)
        found->refs++;
    pthread_mutex_unlock(&g_lock);
    return found;
}

void gsp_intern_release(const gsp_istr_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&g_lock);
    gsp_istr_t *e = (gsp_istr_t *)s;
    if (--e->refs == 0) {
        /* backward-shift deletion keeps the probe chains whole */
        size_t mask = g_cap - 1, i = e->hash & mask;
        while (g_tab[i] != e)
            i = (i + 1) & mask;
        for (size_t j = (i + 1) & mask; g_tab[j]; j = (j + 1) & mask) {
            size_t home = g_tab[j]->hash & mask;
            if (((j - home) & mask) >= ((j - i) & mask)) {
                g_tab[i] = g_tab[j];
                i = j;
            }
        }
        g_tab[i] = NULL;
        g_n--;
        free(e);
    }
    pthread_mutex_unlock(&g_lock);
}

size_t gsp_intern_count(void)
{
    pthread_mutex_lock(&g_lock);
    size_t n = g_n;
    pthread_mutex_unlock(&g_lock);
    return n;
}
