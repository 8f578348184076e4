/*
 * monitor/evict_txn.c: the monitor's keys and fenced transactions (see monitor/evict_txn.h).
 * Values are built with jansson.
 */
#include "monitor/evict_txn.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry/instance.h"

static int fits(int n, size_t cap)
{
    return n >= 0 && (size_t)n < cap;
}

int mon_keys_init(mon_keys_t *k, const char *prefix)
{
    memset(k, 0, sizeof(*k));
    if (!prefix || !*prefix)
        prefix = REG_DEFAULT_PREFIX;
    size_t pl = strlen(prefix);
    while (pl && prefix[pl - 1] == '/')
        pl--;
    size_t root = pl;
    while (root && prefix[root - 1] != '/')
        root--;
    if (!fits(snprintf(k->prefix, sizeof(k->prefix), "%.*s/", (int)pl, prefix),
              sizeof(k->prefix)) ||
        !fits(
            snprintf(k->marker_prefix, sizeof(k->marker_prefix), "%.*sevicted/", (int)root, prefix),
            sizeof(k->marker_prefix)) ||
        !fits(snprintf(k->leader, sizeof(k->leader), "%.*smonitor/leader", (int)root, prefix),
              sizeof(k->leader)) ||
        !fits(snprintf(k->evlease, sizeof(k->evlease), "%.*smonitor/eviction-lease", (int)root,
                       prefix),
              sizeof(k->evlease)))
        return -1;
    return 0;
}

void mon_txn_release(mon_txn_t *t)
{
    free(t->value);
    t->value = NULL;
}

static void base(mon_txn_t *t, uint64_t tag, const mon_keys_t *k)
{
    memset(t, 0, sizeof(*t));
    t->req.call = ETCD_CALL_TXN;
    t->req.tag = tag;
    t->req.cmps = t->cmps;
    t->req.success = t->success;
    t->req.failure = t->failure;
    t->failure[0] = (etcd_op_t){.kind = ETCD_OP_RANGE, .key = k->leader};
    t->req.n_failure = 1;
}

static int set_value(mon_txn_t *t, json_t *o)
{
    if (!o)
        return -1;
    t->value = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return t->value ? 0 : -1;
}

int mon_txn_campaign(mon_txn_t *t, const mon_keys_t *k, const char *node, int64_t lease,
                     uint64_t tag)
{
    base(t, tag, k);
    if (set_value(t, json_pack("{s:s}", "node", node ? node : "")) != 0)
        return -1;
    t->cmps[0] = (etcd_cmp_t){
        .key = k->leader, .target = ETCD_CMP_VERSION, .result = ETCD_CMP_EQUAL, .value = 0};
    t->req.n_cmps = 1;
    t->success[0] = (etcd_op_t){.kind = ETCD_OP_PUT,
                                .key = k->leader,
                                .value = t->value,
                                .value_len = strlen(t->value),
                                .lease = lease};
    t->req.n_success = 1;
    return 0;
}

static void fence_cmp(mon_txn_t *t, const mon_keys_t *k, int64_t fence)
{
    t->cmps[t->req.n_cmps++] = (etcd_cmp_t){
        .key = k->leader, .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL, .value = fence};
}

int mon_txn_evict(mon_txn_t *t, const mon_keys_t *k, const char *service, const char *addr,
                  int64_t mod_revision, int64_t fence, int64_t reg_lease, int64_t ev_lease,
                  const char *reason, const char *node, const char *zone, uint32_t evictions,
                  int64_t at_unix_ms, uint64_t tag)
{
    base(t, tag, k);
    if (!fits(snprintf(t->key, sizeof(t->key), "%s%s/%s", k->prefix, service, addr),
              sizeof(t->key)) ||
        !fits(snprintf(t->marker, sizeof(t->marker), "%s%s/%s", k->marker_prefix, service, addr),
              sizeof(t->marker)))
        return -1;
    char lease[24], at[40];
    snprintf(lease, sizeof(lease), "%lld", (long long)reg_lease);
    time_t secs = (time_t)(at_unix_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(at + n, sizeof(at) - n, ".%03dZ", (int)(at_unix_ms % 1000));
    json_t *v = json_pack("{s:s,s:s,s:s,s:i,s:s}", "lease", lease, "reason", reason ? reason : "",
                          "monitor", node ? node : "", "evictions", (int)evictions, "at", at);
    if (v && zone && zone[0])
        json_object_set_new(v, "zone", json_string(zone));
    if (set_value(t, v) != 0)
        return -1;
    t->cmps[0] = (etcd_cmp_t){
        .key = t->key, .target = ETCD_CMP_MOD, .result = ETCD_CMP_EQUAL, .value = mod_revision};
    t->req.n_cmps = 1;
    fence_cmp(t, k, fence);
    t->success[0] = (etcd_op_t){.kind = ETCD_OP_DELETE, .key = t->key};
    t->success[1] = (etcd_op_t){.kind = ETCD_OP_PUT,
                                .key = t->marker,
                                .value = t->value,
                                .value_len = strlen(t->value),
                                .lease = ev_lease};
    t->req.n_success = 2;
    return 0;
}

int mon_txn_readmit(mon_txn_t *t, const mon_keys_t *k, const char *service, const char *addr,
                    int64_t marker_mod_revision, int64_t fence, uint64_t tag)
{
    base(t, tag, k);
    if (!fits(snprintf(t->marker, sizeof(t->marker), "%s%s/%s", k->marker_prefix, service, addr),
              sizeof(t->marker)))
        return -1;
    fence_cmp(t, k, fence);
    t->cmps[t->req.n_cmps++] = (etcd_cmp_t){.key = t->marker,
                                            .target = ETCD_CMP_MOD,
                                            .result = ETCD_CMP_EQUAL,
                                            .value = marker_mod_revision};
    t->success[0] = (etcd_op_t){.kind = ETCD_OP_DELETE, .key = t->marker};
    t->req.n_success = 1;
    return 0;
}

int mon_txn_evlease(mon_txn_t *t, const mon_keys_t *k, int64_t ev_lease, int64_t fence,
                    uint64_t tag)
{
    base(t, tag, k);
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)ev_lease);
    if (set_value(t, json_pack("{s:s}", "lease", id)) != 0)
        return -1;
    fence_cmp(t, k, fence);
    t->success[0] = (etcd_op_t){.kind = ETCD_OP_PUT,
                                .key = k->evlease,
                                .value = t->value,
                                .value_len = strlen(t->value),
                                .lease = ev_lease};
    t->req.n_success = 1;
    return 0;
}

uint32_t mon_marker_evictions(const char *val, size_t len)
{
    json_t *root = json_loadb(val, len, 0, NULL);
    const json_t *e = json_object_get(root, "evictions");
    json_int_t n = json_is_integer(e) ? json_integer_value(e) : 0;
    json_decref(root);
    return n > 0 && n < 1000000 ? (uint32_t)n : 0;
}

void mon_marker_zone(const char *val, size_t len, char *buf, size_t cap)
{
    json_t *root = json_loadb(val, len, 0, NULL);
    const char *z = json_string_value(json_object_get(root, "zone"));
    if (!z || strlen(z) >= cap)
        z = "";
    snprintf(buf, cap, "%s", z);
    json_decref(root);
}

int mon_txn_fence_holds(const etcd_result_t *res, const mon_keys_t *k, int64_t fence)
{
    for (size_t i = 0; i < res->n_kvs; i++)
        if (strcmp(res->kvs[i].key, k->leader) == 0)
            return res->kvs[i].create_revision == fence;
    return 0;
}
