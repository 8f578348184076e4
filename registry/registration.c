/*
 * registry/registration.c: one registration driven by the registry actor (see registration.h).
 *
 * One request is in flight at a time (the lease machine's rule); its tag carries the
 * registration id and a sequence number, so a result queued for a request that was cancelled
 * is recognised and dropped.
 */
#include "registry/registration.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "registry/instance.h"
#include "registry/reg_msgs.h"

struct reg_registration {
    uint32_t id;
    mesh_actor_id_t owner;
    const reg_spec_t *spec;
    reg_lease_sm_t sm;
    mesh_actor_t *self;
    etcd_api_t *api;
    uint32_t seq;      /* request in flight (0: none) */
    uint32_t next_seq; /* for tags */
    int phase;         /* what the request in flight is: PH_LEASE, PH_VERIFY, PH_REPAIR */
    int evicted_said;  /* logged that a marker keeps a key out */
    int failing;       /* the outcome of the last failed grant / put, 0 after a success: a
                          streak of the same failure is logged once (etcd down, a refused
                          password: the backoff retries every 2 s) */
    int deleting;      /* the request in flight is the delete of the deregistration */
    int64_t revoke_lease;
    uint64_t timer;
};

/* The request in flight belongs to the lease machine, or is the check of the keys after a
 * keepalive, or the put that repairs what the check found missing. */
enum { PH_LEASE = 0, PH_VERIFY = 1, PH_REPAIR = 2 };

/* ---- the spec ------------------------------------------------------------------------------- */

void reg_spec_free(void *p)
{
    reg_spec_t *s = p;
    if (!s)
        return;
    for (size_t i = 0; i < s->n_keys; i++) {
        free(s->keys[i]);
        free(s->values[i]);
        if (s->markers)
            free(s->markers[i]);
    }
    free(s->keys);
    free(s->values);
    free(s->markers);
    free(s->addr);
    free(s);
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

reg_spec_t *reg_spec_build(const reg_registration_cfg_t *cfg)
{
    if (!cfg->addr || !cfg->n_services || cfg->weight > REG_MAX_WEIGHT)
        return NULL;
    reg_label_t *labels = split_labels(cfg->labels, cfg->n_labels);
    if (cfg->n_labels && !labels)
        return NULL;
    reg_spec_t *s = calloc(1, sizeof(*s));
    if (!s) {
        free(labels);
        return NULL;
    }
    s->addr = strdup(cfg->addr);
    s->ttl_s = cfg->ttl_s > 0 ? cfg->ttl_s : 10;
    s->keys = calloc(cfg->n_services, sizeof(char *));
    s->values = calloc(cfg->n_services, sizeof(char *));
    s->markers = calloc(cfg->n_services, sizeof(char *));
    if (!s->addr || !s->keys || !s->values || !s->markers)
        goto fail;
    const char *prefix = cfg->prefix ? cfg->prefix : REG_DEFAULT_PREFIX;
    for (size_t i = 0; i < cfg->n_services; i++) {
        const reg_service_t *svc = &cfg->services[i];
        reg_instance_t in = {
            .addr = cfg->addr,
            .node = cfg->node,
            .zone = cfg->zone,
            .version = cfg->version,
            .methods = svc->methods,
            .n_methods = svc->n_methods,
            .labels = labels,
            .n_labels = cfg->n_labels,
            .weight = cfg->weight ? cfg->weight : 1,
            .mesh_tls = cfg->mesh_tls,
        };
        char key[1024];
        if (!svc->name || reg_key_format(key, sizeof(key), prefix, svc->name, cfg->addr) < 0)
            goto fail;
        s->keys[i] = strdup(key);
        s->values[i] = reg_value_format(&in);
        s->n_keys++;
        if (!s->keys[i] || !s->values[i] ||
            reg_marker_key_format(key, sizeof(key), prefix, svc->name, cfg->addr) < 0 ||
            !(s->markers[i] = strdup(key)))
            goto fail;
    }
    free(labels);
    return s;
fail:
    free(labels);
    reg_spec_free(s);
    return NULL;
}

/* ---- effects -------------------------------------------------------------------------------- */

static void run(reg_registration_t *r, reg_lfxs_t *fx);

static uint64_t now_ms(reg_registration_t *r)
{
    return mesh_now(r->self) / 1000000ull;
}

static void tell(reg_registration_t *r, reg_event_kind_t ev, int64_t lease)
{
    reg_event_t e = {.id = r->id, .event = ev, .lease = lease};
    int rc = mesh_send(r->self, r->owner, REG_MSG_EVENT, &e, sizeof(e));
    if (rc != 0 && rc != -MESH_ENOENT)
        mesh_error("registry", "cannot tell the owner of %s about its registration: %s",
                   r->spec->addr, mesh_strerror(rc));
}

/* A grant or put failed: warn for the first failure of a streak (or a new kind of failure),
 * the rest at debug level. */
static void warn_failed(reg_registration_t *r, const char *what, const etcd_result_t *res,
                        const char *extra)
{
    int same = r->failing == res->err;
    r->failing = res->err;
    if (same) {
        mesh_debug("registry", "%s for %s failed again: %s", what, r->spec->addr,
                   etcd_api_strerror(res->err));
        return;
    }
    mesh_warn("registry",
              "%s for %s failed: %s%s%s%s (as %s; retrying, further failures of "
              "this kind at debug level)",
              what, r->spec->addr, etcd_api_strerror(res->err), res->server.message[0] ? ": " : "",
              res->server.message, extra, etcd_api_principal(r->api));
}

/* etcd refused the txn of every key (it does not say which key its RBAC refused): one error
 * naming them all and the etcd user, once per streak of refusals. */
static void log_denied(reg_registration_t *r)
{
    size_t len = 1;
    for (size_t i = 0; i < r->spec->n_keys; i++)
        len += strlen(r->spec->keys[i]) + 2;
    char *keys = calloc(1, len);
    for (size_t i = 0; keys && i < r->spec->n_keys; i++) {
        if (i)
            strcat(keys, ", ");
        strcat(keys, r->spec->keys[i]);
    }
    mesh_error("registry",
               "etcd refused to register %s: permission denied writing %s as %s (etcd RBAC, "
               "docs/etcd-rbac.md); serving on, retrying every %d s without further logs",
               r->spec->addr, keys ? keys : r->spec->keys[0], etcd_api_principal(r->api),
               REG_LEASE_DENIED_RETRY_MS / 1000);
    free(keys);
}

/* Sends a request (NULL: it could not be built); one that cannot be queued fails at once
 * through on_result, as a request etcd never answered. */
static void submit(reg_registration_t *r, etcd_request_t *req, etcd_call_t call)
{
    r->phase = PH_LEASE;
    r->seq = ++r->next_seq ? r->next_seq : ++r->next_seq;
    uint64_t tag = reg_tag(REG_TAG_LEASE, r->id, r->seq);
    if (req) {
        req->tag = tag;
        if (etcd_api_submit(r->api, req) == 0)
            return;
    }
    etcd_result_t fail = {.call = call, .tag = tag, .err = ETCD_API_ERR_NOMEM};
    reg_registration_on_result(r, &fail);
}

/* The txn that puts every key under lease. */
static void put_keys(reg_registration_t *r, int64_t lease)
{
    etcd_op_t *ops = calloc(r->spec->n_keys, sizeof(*ops));
    if (!ops) {
        submit(r, NULL, ETCD_CALL_TXN);
        return;
    }
    for (size_t i = 0; i < r->spec->n_keys; i++)
        ops[i] = (etcd_op_t){.kind = ETCD_OP_PUT,
                             .key = r->spec->keys[i],
                             .value = r->spec->values[i],
                             .value_len = strlen(r->spec->values[i]),
                             .lease = lease};
    etcd_request_t req = {.call = ETCD_CALL_TXN, .success = ops, .n_success = r->spec->n_keys};
    submit(r, &req, ETCD_CALL_TXN);
    free(ops);
}

/* The deregistration's delete: only keys that still carry our lease. Without a lease nothing
 * of ours can be in etcd, and there is nothing to delete. */
static void delete_keys(reg_registration_t *r, int64_t lease)
{
    size_t n = r->spec->n_keys;
    if (!lease) {
        reg_lfxs_t fx = {.n = 0};
        reg_lease_sm_revoke_done(&r->sm, now_ms(r), &fx);
        run(r, &fx);
        return;
    }
    etcd_cmp_t *cmps = calloc(n, sizeof(*cmps));
    etcd_op_t *ops = calloc(n, sizeof(*ops));
    etcd_request_t req = {
        .call = ETCD_CALL_TXN, .cmps = cmps, .n_cmps = n, .success = ops, .n_success = n};
    for (size_t i = 0; cmps && ops && i < n; i++) {
        cmps[i] = (etcd_cmp_t){.key = r->spec->keys[i],
                               .target = ETCD_CMP_LEASE,
                               .result = ETCD_CMP_EQUAL,
                               .value = lease};
        ops[i] = (etcd_op_t){.kind = ETCD_OP_DELETE, .key = r->spec->keys[i]};
    }
    r->deleting = 1;
    if (r->sm.denied) { /* etcd refused our keys: none is there, and deleting is refused too */
        free(cmps);
        free(ops);
        etcd_result_t skip = {.call = ETCD_CALL_TXN, .err = ETCD_API_OK, .succeeded = 1};
        r->seq = ++r->next_seq ? r->next_seq : ++r->next_seq;
        skip.tag = reg_tag(REG_TAG_LEASE, r->id, r->seq);
        r->phase = PH_LEASE;
        reg_registration_on_result(r, &skip);
        return;
    }
    submit(r, cmps && ops ? &req : NULL, ETCD_CALL_TXN);
    free(cmps);
    free(ops);
}

static void timer_arm(reg_registration_t *r, uint64_t ms)
{
    if (r->timer)
        mesh_timer_stop(r->self, r->timer);
    r->timer = 0;
    if (mesh_timer_start(r->self, ms * 1000000ull, 0, REG_MSG_LEASE_TIMER, &r->timer) != 0)
        mesh_error("registry", "cannot start the lease timer of %s", r->spec->addr);
}

static void run(reg_registration_t *r, reg_lfxs_t *fx)
{
    for (int i = 0; i < fx->n; i++) {
        const reg_lfx_t *e = &fx->v[i];
        switch (e->kind) {
        case REG_LFX_GRANT: {
            etcd_request_t req = {.call = ETCD_CALL_LEASE_GRANT, .ttl_s = e->arg};
            submit(r, &req, req.call);
            break;
        }
        case REG_LFX_PUT:
            put_keys(r, e->arg);
            break;
        case REG_LFX_KEEPALIVE: {
            etcd_request_t req = {.call = ETCD_CALL_LEASE_KEEPALIVE, .lease = e->arg};
            submit(r, &req, req.call);
            break;
        }
        case REG_LFX_REVOKE:
            if (r->timer)
                mesh_timer_stop(r->self, r->timer);
            r->timer = 0;
            r->revoke_lease = e->arg;
            delete_keys(r, e->arg);
            break;
        case REG_LFX_TIMER:
            timer_arm(r, (uint64_t)e->arg);
            break;
        case REG_LFX_REGISTERED:
            mesh_info("registry", "registered %s (%zu services) under lease %" PRId64,
                      r->spec->addr, r->spec->n_keys, e->arg);
            tell(r, REG_EV_REGISTERED, e->arg);
            break;
        case REG_LFX_LOST:
            mesh_warn("registry", "lease %" PRId64 " of %s lost; registering again", e->arg,
                      r->spec->addr);
            tell(r, REG_EV_LEASE_LOST, e->arg);
            break;
        case REG_LFX_DENIED:
            log_denied(r);
            tell(r, REG_EV_DENIED, e->arg);
            break;
        case REG_LFX_DONE:
            mesh_info("registry", "deregistered %s", r->spec->addr);
            tell(r, REG_EV_DEREGISTERED, 0);
            break;
        }
    }
}

/* ---- checking the keys ---------------------------------------------------------------------- */

/* After a keepalive: do all keys still carry the lease? If not, range them and their markers. */
static void verify_keys(reg_registration_t *r)
{
    size_t n = r->spec->n_keys;
    int64_t lease = r->sm.lease;
    etcd_cmp_t *cmps = calloc(n, sizeof(*cmps));
    etcd_op_t *ops = calloc(2 * n, sizeof(*ops));
    if (lease && cmps && ops) {
        for (size_t i = 0; i < n; i++) {
            cmps[i] = (etcd_cmp_t){.key = r->spec->keys[i],
                                   .target = ETCD_CMP_LEASE,
                                   .result = ETCD_CMP_EQUAL,
                                   .value = lease};
            ops[2 * i] = (etcd_op_t){.kind = ETCD_OP_RANGE, .key = r->spec->keys[i]};
            ops[2 * i + 1] = (etcd_op_t){.kind = ETCD_OP_RANGE, .key = r->spec->markers[i]};
        }
        etcd_request_t req = {
            .call = ETCD_CALL_TXN, .cmps = cmps, .n_cmps = n, .failure = ops, .n_failure = 2 * n};
        submit(r, &req, ETCD_CALL_TXN);
        if (r->seq) /* not failed at once */
            r->phase = PH_VERIFY;
    }
    free(cmps);
    free(ops);
}

static const etcd_api_kv_t *find_kv(const etcd_result_t *res, const char *key)
{
    for (size_t i = 0; i < res->n_kvs; i++)
        if (strcmp(res->kvs[i].key, key) == 0)
            return &res->kvs[i];
    return NULL;
}

/* The check found keys that do not carry the lease: put back the ones that vanished. */
static void repair_keys(reg_registration_t *r, const etcd_result_t *res)
{
    size_t n = r->spec->n_keys, k = 0;
    int64_t lease = r->sm.lease;
    etcd_cmp_t *cmps = calloc(n, sizeof(*cmps));
    etcd_op_t *ops = calloc(n, sizeof(*ops));
    for (size_t i = 0; cmps && ops && i < n; i++) {
        const etcd_api_kv_t *kv = find_kv(res, r->spec->keys[i]);
        if (kv) {
            if (kv->lease != lease)
                mesh_info("registry", "%s now carries lease %lld, not ours (%lld): left to it",
                          r->spec->keys[i], (long long)kv->lease, (long long)lease);
            continue;
        }
        const etcd_api_kv_t *marker = find_kv(res, r->spec->markers[i]);
        if (marker) {
            int64_t ml = reg_marker_lease(marker->value, marker->value_len);
            if (!ml || ml == lease) {
                if (!r->evicted_said++)
                    mesh_warn("registry",
                              "%s was evicted by the monitor (%s): not put back "
                              "until the marker is removed",
                              r->spec->keys[i], r->spec->markers[i]);
                continue;
            }
        }
        cmps[k] = (etcd_cmp_t){.key = r->spec->keys[i],
                               .target = ETCD_CMP_VERSION,
                               .result = ETCD_CMP_EQUAL,
                               .value = 0};
        ops[k] = (etcd_op_t){.kind = ETCD_OP_PUT,
                             .key = r->spec->keys[i],
                             .value = r->spec->values[i],
                             .value_len = strlen(r->spec->values[i]),
                             .lease = lease};
        mesh_warn("registry", "%s vanished from etcd while lease %lld lives: putting it back",
                  r->spec->keys[i], (long long)lease);
        k++;
    }
    if (k) {
        etcd_request_t req = {
            .call = ETCD_CALL_TXN, .cmps = cmps, .n_cmps = k, .success = ops, .n_success = k};
        submit(r, &req, ETCD_CALL_TXN);
        if (r->seq)
            r->phase = PH_REPAIR;
    }
    free(cmps);
    free(ops);
}

/* ---- results -------------------------------------------------------------------------------- */

void reg_registration_on_result(reg_registration_t *r, const etcd_result_t *res)
{
    if (!r->seq || (uint32_t)res->tag != r->seq)
        return; /* stale: a cancelled request's answer */
    r->seq = 0;
    if (r->phase != PH_LEASE) { /* the check of the keys, outside the lease machine */
        int phase = r->phase;
        r->phase = PH_LEASE;
        if (phase == PH_VERIFY && res->err == ETCD_API_OK && !res->succeeded &&
            r->sm.state == REG_LEASE_ACTIVE && !r->sm.stop_requested)
            repair_keys(r, res);
        else if (phase == PH_VERIFY && res->err == ETCD_API_OK && res->succeeded)
            r->evicted_said = 0;
        return;
    }
    reg_lfxs_t fx = {.n = 0};
    uint64_t now = now_ms(r);
    switch (res->call) {
    case ETCD_CALL_LEASE_GRANT:
        if (res->err == ETCD_API_OK) {
            reg_lease_sm_grant_ok(&r->sm, res->lease, res->ttl_s, now, &fx);
        } else {
            warn_failed(r, "lease grant", res, "");
            reg_lease_sm_grant_failed(&r->sm, now, &fx);
        }
        break;
    case ETCD_CALL_TXN:
        if (r->deleting) {
            r->deleting = 0;
            if (res->err != ETCD_API_OK)
                mesh_warn("registry", "delete of %s failed: %s", r->spec->addr,
                          etcd_api_strerror(res->err));
            else if (!res->succeeded)
                mesh_info("registry",
                          "deregistering %s: a key no longer carries our lease; "
                          "left to its new owner",
                          r->spec->addr);
            if (r->revoke_lease) {
                etcd_request_t req = {.call = ETCD_CALL_LEASE_REVOKE, .lease = r->revoke_lease};
                r->revoke_lease = 0;
                submit(r, &req, req.call);
                return;
            }
            reg_lease_sm_revoke_done(&r->sm, now, &fx);
        } else if (res->err == ETCD_API_OK) {
            r->failing = 0;
            reg_lease_sm_put_ok(&r->sm, now, &fx);
        } else if (etcd_result_denied(res)) {
            reg_lease_sm_put_denied(&r->sm, now, &fx); /* logged once, by the DENIED effect */
        } else {
            int gone = etcd_result_lease_gone(res);
            warn_failed(r, "put", res, gone ? " (lease not found)" : "");
            reg_lease_sm_put_failed(&r->sm, gone, now, &fx);
        }
        break;
    case ETCD_CALL_LEASE_KEEPALIVE:
        if (res->err == ETCD_API_OK)
            reg_lease_sm_keepalive_ok(&r->sm, res->ttl_s, now, &fx);
        else
            reg_lease_sm_keepalive_failed(&r->sm, etcd_result_lease_gone(res), now, &fx);
        run(r, &fx);
        /* The lease lives: check that the keys do too (no request is in flight now). */
        if (r->sm.state == REG_LEASE_ACTIVE && !r->seq && !r->sm.stop_requested)
            verify_keys(r);
        return;
    case ETCD_CALL_LEASE_REVOKE:
        reg_lease_sm_revoke_done(&r->sm, now, &fx);
        break;
    case ETCD_CALL_RANGE:
    case ETCD_CALL_WATCH:
        break;
    }
    run(r, &fx);
}

int reg_registration_on_timer(reg_registration_t *r, const mesh_msg_t *m)
{
    if (!r->timer || m->corr != r->timer)
        return 0;
    r->timer = 0;
    reg_lfxs_t fx = {.n = 0};
    reg_lease_sm_timer(&r->sm, now_ms(r), &fx);
    run(r, &fx);
    return 1;
}

/* ---- life cycle ----------------------------------------------------------------------------- */

reg_registration_t *reg_registration_new(uint32_t id, mesh_actor_id_t owner, const reg_spec_t *spec)
{
    reg_registration_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->id = id;
    r->owner = owner;
    r->spec = spec;
    reg_lease_sm_init(&r->sm, spec->ttl_s);
    return r;
}

void reg_registration_start(reg_registration_t *r, mesh_actor_t *self, etcd_api_t *api)
{
    r->self = self;
    r->api = api;
    reg_lfxs_t fx = {.n = 0};
    reg_lease_sm_start(&r->sm, now_ms(r), &fx);
    run(r, &fx);
}

void reg_registration_stop(reg_registration_t *r)
{
    reg_lfxs_t fx = {.n = 0};
    reg_lease_sm_stop(&r->sm, now_ms(r), &fx);
    run(r, &fx);
}

int reg_registration_done(const reg_registration_t *r)
{
    return r->sm.state == REG_LEASE_DONE;
}

uint32_t reg_registration_id(const reg_registration_t *r)
{
    return r->id;
}

mesh_actor_id_t reg_registration_owner(const reg_registration_t *r)
{
    return r->owner;
}

void reg_registration_free(reg_registration_t *r)
{
    if (!r)
        return;
    if (r->self) {
        if (r->seq)
            etcd_api_cancel(r->api, reg_tag(REG_TAG_LEASE, r->id, r->seq));
        if (r->timer)
            mesh_timer_stop(r->self, r->timer);
    }
    free(r);
}

const reg_lease_sm_t *reg_registration_sm(const reg_registration_t *r)
{
    return &r->sm;
}
