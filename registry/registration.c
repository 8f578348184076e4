/*
 * registry/registration.c: the libuv adapter of the lease state machine (see registration.h).
 */
#include "registry/registration.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "registry/etcd_codec.h"
#include "registry/instance.h"

struct reg_registration {
    uv_loop_t *loop;
    etcd_client_t *client;
    reg_lease_sm_t sm;
    char **keys;
    char **values;
    size_t n_keys;
    char *addr;
    etcd_req_t *req;
    int64_t revoke_lease;
    uv_timer_t timer;
    int freeing;
    reg_registration_cb cb;
    void *ud;
};

static void run(reg_registration_t *r, reg_lfxs_t *fx);

static int lease_gone(int err, const char *body, size_t len)
{
    if (err != ETCD_ERR_SERVER)
        return 0;
    etcd_error_t e;
    etcd_decode_error(body, len, &e);
    return e.code == ETCD_CODE_NOT_FOUND || strstr(e.message, "lease not found") != NULL;
}

static void on_grant(void *ud, int err, const char *body, size_t len)
{
    reg_registration_t *r = ud;
    r->req = NULL;
    reg_lfxs_t fx = {.n = 0};
    etcd_lease_info_t li;
    uint64_t now = uv_now(r->loop);
    if (err == ETCD_OK && etcd_decode_lease(body, len, &li) == 0 && li.id && li.ttl > 0) {
        reg_lease_sm_grant_ok(&r->sm, li.id, li.ttl, now, &fx);
    } else {
        mesh_warn("registry", "lease grant for %s failed: %s", r->addr, etcd_strerror(err));
        reg_lease_sm_grant_failed(&r->sm, now, &fx);
    }
    run(r, &fx);
}

static void on_put(void *ud, int err, const char *body, size_t len)
{
    reg_registration_t *r = ud;
    r->req = NULL;
    reg_lfxs_t fx = {.n = 0};
    uint64_t now = uv_now(r->loop);
    etcd_error_t e;
    int64_t rev = 0;
    if (err == ETCD_OK && etcd_decode_header(body, len, &rev, NULL, &e) == 0) {
        reg_lease_sm_put_ok(&r->sm, now, &fx);
    } else {
        int gone = lease_gone(err, body, len);
        mesh_warn("registry", "put of %s failed: %s%s", r->addr, etcd_strerror(err),
                  gone ? " (lease not found)" : "");
        reg_lease_sm_put_failed(&r->sm, gone, now, &fx);
    }
    run(r, &fx);
}

static void on_keepalive(void *ud, int err, const char *body, size_t len)
{
    reg_registration_t *r = ud;
    r->req = NULL;
    reg_lfxs_t fx = {.n = 0};
    uint64_t now = uv_now(r->loop);
    etcd_lease_info_t li;
    if (err == ETCD_OK && etcd_decode_lease(body, len, &li) == 0 && !li.err.code)
        reg_lease_sm_keepalive_ok(&r->sm, li.ttl, now, &fx);
    else
        reg_lease_sm_keepalive_failed(&r->sm, lease_gone(err, body, len), now, &fx);
    run(r, &fx);
}

static void on_revoke(void *ud, int err, const char *body, size_t len)
{
    reg_registration_t *r = ud;
    r->req = NULL;
    reg_lfxs_t fx = {.n = 0};
    reg_lease_sm_revoke_done(&r->sm, uv_now(r->loop), &fx);
    run(r, &fx);
}

static void on_delete(void *ud, int err, const char *body, size_t len)
{
    reg_registration_t *r = ud;
    r->req = NULL;
    if (err != ETCD_OK)
        mesh_warn("registry", "delete of %s failed: %s", r->addr, etcd_strerror(err));
    if (r->revoke_lease) {
        char *b = etcd_req_lease_id(r->revoke_lease);
        r->req = b ? etcd_client_post(r->client, "/v3/lease/revoke", b, on_revoke, r) : NULL;
        free(b);
        if (r->req)
            return;
    }
    on_revoke(r, ETCD_OK, "", 0);
}

/* A txn with one put (lease) or one delete per key. */
static char *txn_body(reg_registration_t *r, int del, int64_t lease)
{
    size_t cap = 64, len = 0;
    for (size_t i = 0; i < r->n_keys; i++)
        cap += etcd_b64_len(strlen(r->keys[i])) + etcd_b64_len(strlen(r->values[i])) + 96;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    len += (size_t)snprintf(b, cap, "{\"success\":[");
    for (size_t i = 0; i < r->n_keys; i++) {
        char *k = malloc(etcd_b64_len(strlen(r->keys[i])) + 1);
        char *v = malloc(etcd_b64_len(strlen(r->values[i])) + 1);
        if (!k || !v) {
            free(k);
            free(v);
            free(b);
            return NULL;
        }
        etcd_b64_encode(r->keys[i], strlen(r->keys[i]), k);
        etcd_b64_encode(r->values[i], strlen(r->values[i]), v);
        if (del)
            len += (size_t)snprintf(b + len, cap - len,
                                    "%s{\"requestDeleteRange\":{\"key\":\"%s\"}}", i ? "," : "", k);
        else
            len += (size_t)snprintf(
                b + len, cap - len,
                "%s{\"requestPut\":{\"key\":\"%s\",\"value\":\"%s\",\"lease\":\"%" PRId64 "\"}}",
                i ? "," : "", k, v, lease);
        free(k);
        free(v);
    }
    snprintf(b + len, cap - len, "]}");
    return b;
}

static void on_timer(uv_timer_t *t)
{
    reg_registration_t *r = t->data;
    reg_lfxs_t fx = {.n = 0};
    reg_lease_sm_timer(&r->sm, uv_now(r->loop), &fx);
    run(r, &fx);
}

static void post(reg_registration_t *r, const char *path, char *body, etcd_done_cb cb)
{
    r->req = body ? etcd_client_post(r->client, path, body, cb, r) : NULL;
    free(body);
    if (!r->req)
        cb(r, ETCD_ERR_NOMEM, "", 0);
}

static void run(reg_registration_t *r, reg_lfxs_t *fx)
{
    for (int i = 0; i < fx->n; i++) {
        const reg_lfx_t *e = &fx->v[i];
        switch (e->kind) {
        case REG_LFX_GRANT:
            post(r, "/v3/lease/grant", etcd_req_lease_grant(e->arg), on_grant);
            break;
        case REG_LFX_PUT:
            post(r, "/v3/kv/txn", txn_body(r, 0, e->arg), on_put);
            break;
        case REG_LFX_KEEPALIVE:
            post(r, "/v3/lease/keepalive", etcd_req_lease_id(e->arg), on_keepalive);
            break;
        case REG_LFX_REVOKE:
            uv_timer_stop(&r->timer);
            r->revoke_lease = e->arg;
            post(r, "/v3/kv/txn", txn_body(r, 1, 0), on_delete);
            break;
        case REG_LFX_TIMER:
            uv_timer_start(&r->timer, on_timer, (uint64_t)e->arg, 0);
            break;
        case REG_LFX_REGISTERED:
            mesh_info("registry", "registered %s (%zu services) under lease %" PRId64, r->addr,
                      r->n_keys, e->arg);
            if (r->cb)
                r->cb(r->ud, REG_REGISTERED, e->arg);
            break;
        case REG_LFX_LOST:
            mesh_warn("registry", "lease %" PRId64 " of %s lost; registering again", e->arg,
                      r->addr);
            if (r->cb)
                r->cb(r->ud, REG_LEASE_LOST, e->arg);
            break;
        case REG_LFX_DONE:
            mesh_info("registry", "deregistered %s", r->addr);
            if (r->cb)
                r->cb(r->ud, REG_DEREGISTERED, 0);
            break;
        }
    }
}

/*
 * Splits "KEY=VALUE" labels into one allocation (the pairs, then the strings); NULL when there
 * are none, one has no '=' or an empty key (logged), or memory runs out.
 */
static reg_label_t *split_labels(const char *const *kv, size_t n)
{
    size_t bytes = n * sizeof(reg_label_t);
    for (size_t i = 0; i < n; i++) {
        const char *eq = kv[i] ? strchr(kv[i], '=') : NULL;
        if (!eq || eq == kv[i]) {
            mesh_error("registry", "label '%s' is not KEY=VALUE", kv[i] ? kv[i] : "(null)");
            return NULL;
        }
        bytes += strlen(kv[i]) + 1;
    }
    reg_label_t *ls = n ? malloc(bytes) : NULL;
    if (!ls)
        return NULL;
    char *p = (char *)(ls + n);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(kv[i]);
        memcpy(p, kv[i], len + 1);
        char *eq = strchr(p, '=');
        *eq = '\0';
        ls[i].key = p;
        ls[i].value = eq + 1;
        p += len + 1;
    }
    return ls;
}

reg_registration_t *reg_registration_new(uv_loop_t *loop, const reg_registration_cfg_t *cfg,
                                         reg_registration_cb cb, void *ud)
{
    if (!cfg->client || !cfg->addr || !cfg->n_services || cfg->weight > REG_MAX_WEIGHT)
        return NULL;
    reg_label_t *labels = split_labels(cfg->labels, cfg->n_labels);
    if (cfg->n_labels && !labels)
        return NULL;
    reg_registration_t *r = calloc(1, sizeof(*r));
    if (!r) {
        free(labels);
        return NULL;
    }
    r->loop = loop;
    r->client = cfg->client;
    r->cb = cb;
    r->ud = ud;
    r->addr = strdup(cfg->addr);
    r->keys = calloc(cfg->n_services, sizeof(char *));
    r->values = calloc(cfg->n_services, sizeof(char *));
    if (!r->addr || !r->keys || !r->values)
        goto fail;
    const char *prefix = cfg->prefix ? cfg->prefix : REG_DEFAULT_PREFIX;
    for (size_t i = 0; i < cfg->n_services; i++) {
        const reg_service_t *s = &cfg->services[i];
        reg_instance_t in = {
            .addr = cfg->addr,
            .node = cfg->node,
            .zone = cfg->zone,
            .version = cfg->version,
            .methods = s->methods,
            .n_methods = s->n_methods,
            .labels = labels,
            .n_labels = cfg->n_labels,
            .weight = cfg->weight ? cfg->weight : 1,
        };
        char key[1024];
        if (!s->name || reg_key_format(key, sizeof(key), prefix, s->name, cfg->addr) < 0)
            goto fail;
        r->keys[i] = strdup(key);
        r->values[i] = reg_value_format(&in);
        r->n_keys++;
        if (!r->keys[i] || !r->values[i])
            goto fail;
    }
    free(labels);
    reg_lease_sm_init(&r->sm, cfg->ttl_s);
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    return r;
fail:
    free(labels);
    for (size_t i = 0; i < r->n_keys; i++) {
        free(r->keys[i]);
        free(r->values[i]);
    }
    free(r->keys);
    free(r->values);
    free(r->addr);
    free(r);
    return NULL;
}

int reg_registration_start(reg_registration_t *r)
{
    reg_lfxs_t fx = {.n = 0};
    reg_lease_sm_start(&r->sm, uv_now(r->loop), &fx);
    run(r, &fx);
    return 0;
}

void reg_registration_stop(reg_registration_t *r)
{
    reg_lfxs_t fx = {.n = 0};
    reg_lease_sm_stop(&r->sm, uv_now(r->loop), &fx);
    run(r, &fx);
}

static void timer_closed(uv_handle_t *h)
{
    reg_registration_t *r = h->data;
    for (size_t i = 0; i < r->n_keys; i++) {
        free(r->keys[i]);
        free(r->values[i]);
    }
    free(r->keys);
    free(r->values);
    free(r->addr);
    free(r);
}

void reg_registration_free(reg_registration_t *r)
{
    if (!r)
        return;
    etcd_req_cancel(r->req);
    r->req = NULL;
    uv_close((uv_handle_t *)&r->timer, timer_closed);
}

const reg_lease_sm_t *reg_registration_sm(const reg_registration_t *r)
{
    return &r->sm;
}
