/*
 * actors/msg.c: envelope allocation from per-thread free lists.
 *
 * Each thread that allocates envelopes gets a cache: a plain free list (touched only by that
 * thread) and a lock-free return stack other threads push the envelopes they release onto.
 * The owner grabs the whole return stack with one exchange when its free list runs dry, so
 * the only atomics are on the cross-thread path. Caches of exited threads are adopted by new
 * threads, never freed, so an envelope's home is always valid.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "actors/msg.h"

#include <string.h>

#include "actors/actor.h"

/* Envelopes kept per thread beyond which releases go back to malloc. */
#define MSG_CACHE_MAX 16384

typedef struct msg_cache {
    mesh_msg_t *free; /* owner only */
    uint32_t nfree;   /* owner only */
    _Atomic(mesh_msg_t *) returned;
    struct msg_cache *next_all; /* under caches_lock */
    int orphan;                 /* under caches_lock */
} msg_cache_t;

static pthread_mutex_t caches_lock = PTHREAD_MUTEX_INITIALIZER;
static msg_cache_t *all_caches;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key;
static _Thread_local msg_cache_t *tls_cache;
static _Atomic uint64_t g_allocated, g_freed;

static void cache_orphan(void *p)
{
    msg_cache_t *c = p;
    pthread_mutex_lock(&caches_lock);
    c->orphan = 1;
    pthread_mutex_unlock(&caches_lock);
}

static void make_key(void)
{
    pthread_key_create(&cache_key, cache_orphan);
}

static msg_cache_t *cache_attach(void)
{
    pthread_once(&key_once, make_key);
    pthread_mutex_lock(&caches_lock);
    msg_cache_t *c = all_caches;
    while (c && !c->orphan)
        c = c->next_all;
    if (c) {
        c->orphan = 0;
    } else {
        c = calloc(1, sizeof(*c));
        if (c) {
            c->next_all = all_caches;
            all_caches = c;
        }
    }
    pthread_mutex_unlock(&caches_lock);
    if (c) {
        pthread_setspecific(cache_key, c);
        tls_cache = c;
    }
    return c;
}

mesh_msg_t *mesh_msg_alloc(void)
{
    msg_cache_t *c = tls_cache;
    if (__builtin_expect(c == NULL, 0)) {
        c = cache_attach();
        if (!c)
            return NULL;
    }
    mesh_msg_t *m = c->free;
    if (__builtin_expect(m == NULL, 0)) {
        m = atomic_exchange_explicit(&c->returned, NULL, memory_order_acquire);
        if (m) {
            uint32_t n = 0;
            for (mesh_msg_t *x = m; x; x = x->next)
                n++;
            c->nfree += n;
        } else {
            m = malloc(sizeof(*m));
            if (!m)
                return NULL;
            atomic_fetch_add_explicit(&g_allocated, 1, memory_order_relaxed);
            m->home = c;
            m->next = NULL;
            c->free = m;
            c->nfree++;
        }
    }
    c->free = m->next;
    c->nfree--;
    m->next = NULL;
    m->from = 0;
    m->to = 0;
    m->corr = 0;
    m->type = 0;
    m->flags = 0;
    m->len = 0;
    m->ptr = NULL;
    m->ptr_free = NULL;
    m->rflags = 0;
    m->aux = 0;
    return m;
}

void *mesh_msg_take_ptr(mesh_msg_t *m)
{
    void *p = m->ptr;
    m->ptr = NULL;
    m->ptr_free = NULL;
    return p;
}

void mesh_msg_free(mesh_msg_t *m)
{
    if (m->ptr && m->ptr_free)
        m->ptr_free(m->ptr);
    msg_cache_t *home = m->home;
    msg_cache_t *c = tls_cache;
    if (home == c) {
        if (c->nfree >= MSG_CACHE_MAX) {
            atomic_fetch_add_explicit(&g_freed, 1, memory_order_relaxed);
            free(m);
            return;
        }
        m->next = c->free;
        c->free = m;
        c->nfree++;
        return;
    }
    /* Foreign envelope: push it onto its home's return stack. Push-only plus exchange-all
     * pop has no ABA problem. */
    mesh_msg_t *old = atomic_load_explicit(&home->returned, memory_order_relaxed);
    do {
        m->next = old;
    } while (!atomic_compare_exchange_weak_explicit(&home->returned, &old, m, memory_order_release,
                                                    memory_order_relaxed));
}

void mesh_msg_stats(mesh_msg_stats_t *out)
{
    out->allocated = atomic_load(&g_allocated);
    out->freed = atomic_load(&g_freed);
}

mesh_msg_t *mesh_msg_make(uint32_t type, const void *data, size_t len, int *err)
{
    if (len > MESH_MSG_INLINE) {
        *err = -MESH_E2BIG;
        return NULL;
    }
    if (type >= MESH_MSG_SYSTEM) {
        *err = -MESH_EINVAL;
        return NULL;
    }
    mesh_msg_t *m = mesh_msg_alloc();
    if (!m) {
        *err = -MESH_ENOMEM;
        return NULL;
    }
    m->type = type;
    m->len = (uint16_t)len;
    if (len)
        memcpy(m->data, data, len);
    return m;
}

mesh_msg_t *mesh_msg_make_ptr(uint32_t type, void *ptr, void (*ptr_free)(void *), int *err)
{
    mesh_msg_t *m = mesh_msg_make(type, NULL, 0, err);
    if (m) {
        m->ptr = ptr;
        m->ptr_free = ptr_free;
    }
    return m;
}

void mesh_msg_discard(mesh_msg_t *m)
{
    mesh_msg_take_ptr(m);
    mesh_msg_free(m);
}
