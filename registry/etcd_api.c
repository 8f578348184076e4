/*
 * registry/etcd_api.c: the parts of the etcd seam every implementation shares: building,
 * filling and freeing results (see registry/etcd_api.h).
 */
#include "registry/etcd_api.h"

#include <stdlib.h>
#include <string.h>

etcd_result_t *etcd_result_new(etcd_call_t call, uint64_t tag)
{
    etcd_result_t *r = calloc(1, sizeof(*r));
    if (r) {
        r->call = call;
        r->tag = tag;
    }
    return r;
}

/* A NUL-terminated copy of n bytes. */
static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        if (n)
            memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int kv_fill(etcd_api_kv_t *kv, const char *key, size_t klen, const char *val, size_t vlen,
                   int64_t create_rev, int64_t mod_rev, int64_t version, int64_t lease)
{
    kv->key = dupn(key, klen);
    kv->value = dupn(val ? val : "", val ? vlen : 0);
    if (!kv->key || !kv->value) {
        free(kv->key);
        free(kv->value);
        return -1;
    }
    kv->key_len = klen;
    kv->value_len = val ? vlen : 0;
    kv->create_revision = create_rev;
    kv->mod_revision = mod_rev;
    kv->version = version;
    kv->lease = lease;
    return 0;
}

/* Makes room for element n of an array whose capacity is implicit: 4, 8, 16, ... */
static void *room(void *arr, size_t n, size_t sz)
{
    if (n == 0)
        return malloc(4 * sz);
    if (n < 4 || (n & (n - 1)))
        return arr;
    return realloc(arr, 2 * n * sz);
}

int etcd_result_add_kv(etcd_result_t *res, const char *key, size_t klen, const char *val,
                       size_t vlen, int64_t create_rev, int64_t mod_rev, int64_t version,
                       int64_t lease)
{
    etcd_api_kv_t *a = room(res->kvs, res->n_kvs, sizeof(*a));
    if (!a)
        return -1;
    res->kvs = a;
    if (kv_fill(&a[res->n_kvs], key, klen, val, vlen, create_rev, mod_rev, version, lease) < 0)
        return -1;
    res->n_kvs++;
    return 0;
}

int etcd_result_add_event(etcd_result_t *res, int is_delete, const char *key, size_t klen,
                          const char *val, size_t vlen, int64_t create_rev, int64_t mod_rev,
                          int64_t version, int64_t lease)
{
    etcd_api_event_t *a = room(res->events, res->n_events, sizeof(*a));
    if (!a)
        return -1;
    res->events = a;
    a[res->n_events].is_delete = is_delete;
    if (kv_fill(&a[res->n_events].kv, key, klen, val, vlen, create_rev, mod_rev, version, lease) <
        0)
        return -1;
    res->n_events++;
    return 0;
}

void etcd_result_free(etcd_result_t *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->n_kvs; i++) {
        free(res->kvs[i].key);
        free(res->kvs[i].value);
    }
    for (size_t i = 0; i < res->n_events; i++) {
        free(res->events[i].kv.key);
        free(res->events[i].kv.value);
    }
    free(res->kvs);
    free(res->events);
    free(res);
}

void etcd_result_free_ptr(void *res)
{
    etcd_result_free(res);
}

int etcd_result_lease_gone(const etcd_result_t *res)
{
    if (res->err == ETCD_API_OK)
        return res->ttl_s <= 0 && (res->call == ETCD_CALL_LEASE_KEEPALIVE);
    if (res->err != ETCD_API_ERR_SERVER)
        return 0;
    return res->server.code == ETCD_CODE_NOT_FOUND; /* "etcdserver: requested lease not found" */
}

const char *etcd_api_strerror(int err)
{
    switch (err) {
    case ETCD_API_OK:
        return "ok";
    case ETCD_API_ERR_NOMEM:
        return "out of memory";
    case ETCD_API_ERR_UNAVAILABLE:
        return "etcd unreachable";
    case ETCD_API_ERR_TIMEOUT:
        return "timed out";
    case ETCD_API_ERR_SERVER:
        return "etcd answered an error";
    case ETCD_API_ERR_AUTH:
        return "authentication failed";
    case ETCD_API_ERR_CLOSED:
        return "stream closed";
    case ETCD_API_ERR_MALFORMED:
        return "malformed answer";
    }
    return "unknown error";
}
