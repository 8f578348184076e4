/*
 * registry/etcd_api_curl.c: the production implementation of the etcd seam
 * (registry/etcd_api.h): each request becomes one call of etcd's JSON gateway through
 * registry/etcd_client.h (libcurl on the owner's libuv loop), and each answer or watch line is
 * decoded (registry/etcd_codec.h) into an etcd_result_t handed to the owner's deliver callback.
 *
 * A watch whose line carries an error ends there: the stream is closed and one closed result
 * (err ETCD_API_ERR_SERVER, the error in server) is delivered, as for a broken stream.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "registry/etcd_api.h"
#include "registry/etcd_client.h"

typedef struct curl_api curl_api_t;

/* One request in flight. */
typedef struct pending {
    curl_api_t *api;
    etcd_call_t call;
    uint64_t tag;
    etcd_req_t *req;
    struct pending *prev, *next;
} pending_t;

struct curl_api {
    etcd_api_t super;
    etcd_client_t *client;
    etcd_decoder_t dec;
    pending_t *pending;
};

static void unlink_pending(curl_api_t *a, pending_t *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        a->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

static void deliver(curl_api_t *a, etcd_result_t *res)
{
    a->super.deliver(a->super.ud, res);
}

/* A result that carries only an outcome. */
static void deliver_err(curl_api_t *a, etcd_call_t call, uint64_t tag, int err,
                        const etcd_error_t *server)
{
    etcd_result_t *res = etcd_result_new(call, tag);
    if (!res) {
        mesh_error("registry", "out of memory: an etcd answer is lost");
        return;
    }
    res->err = err;
    if (call == ETCD_CALL_WATCH)
        res->closed = 1;
    if (server)
        res->server = *server;
    deliver(a, res);
}

/* ---- unary answers -------------------------------------------------------------------------- */

static int add_kv(void *ud, const etcd_kv_t *kv)
{
    etcd_result_t *res = ud;
    if (etcd_result_add_kv(res, kv->key, kv->key_len, kv->value, kv->value_len, kv->create_revision,
                           kv->mod_revision, kv->version, kv->lease) < 0)
        res->err = ETCD_API_ERR_NOMEM;
    return res->err != ETCD_API_OK;
}

/* Decodes a 200 answer of a unary call into res; returns the outcome. */
static int decode_unary(curl_api_t *a, etcd_result_t *res, const char *body, size_t len)
{
    switch (res->call) {
    case ETCD_CALL_RANGE: {
        etcd_range_info_t info;
        if (etcd_decode_range(&a->dec, body, len, &info, add_kv, res) < 0)
            return ETCD_API_ERR_MALFORMED;
        res->revision = info.revision;
        res->more = info.more;
        if (info.err.code) {
            res->server = info.err;
            return ETCD_API_ERR_SERVER;
        }
        return res->err;
    }
    case ETCD_CALL_TXN: {
        int rc = etcd_decode_txn(&a->dec, body, len, &res->revision, &res->succeeded, &res->server,
                                 add_kv, res);
        if (rc < 0)
            return ETCD_API_ERR_MALFORMED;
        return rc == 1 ? ETCD_API_ERR_SERVER : res->err;
    }
    case ETCD_CALL_LEASE_GRANT:
    case ETCD_CALL_LEASE_KEEPALIVE:
    case ETCD_CALL_LEASE_REVOKE: {
        etcd_lease_info_t li;
        if (etcd_decode_lease(body, len, &li) < 0)
            return ETCD_API_ERR_MALFORMED;
        res->revision = li.revision;
        res->ttl_s = li.ttl;
        if (li.id)
            res->lease = li.id;
        if (li.err.code) {
            res->server = li.err;
            return ETCD_API_ERR_SERVER;
        }
        if (res->call == ETCD_CALL_LEASE_GRANT && (!li.id || li.ttl <= 0))
            return ETCD_API_ERR_MALFORMED;
        return ETCD_API_OK;
    }
    case ETCD_CALL_WATCH:
        break;
    }
    return ETCD_API_ERR_MALFORMED;
}

static void on_done(void *ud, int err, const char *body, size_t len)
{
    pending_t *p = ud;
    curl_api_t *a = p->api;
    unlink_pending(a, p);
    etcd_result_t *res = etcd_result_new(p->call, p->tag);
    free(p);
    if (!res) {
        mesh_error("registry", "out of memory: an etcd answer is lost");
        return;
    }
    if (err == ETCD_OK) {
        res->err = decode_unary(a, res, body, len);
    } else {
        res->err = err;
        if (err == ETCD_ERR_SERVER)
            etcd_decode_error(body, len, &res->server);
    }
    deliver(a, res);
}

/* ---- watch lines ---------------------------------------------------------------------------- */

static int add_event(void *ud, const etcd_event_t *ev)
{
    etcd_result_t *res = ud;
    if (etcd_result_add_event(res, ev->type == ETCD_EVENT_DELETE, ev->kv.key, ev->kv.key_len,
                              ev->kv.value, ev->kv.value_len, ev->kv.create_revision,
                              ev->kv.mod_revision, ev->kv.version, ev->kv.lease) < 0)
        res->err = ETCD_API_ERR_NOMEM;
    return res->err != ETCD_API_OK;
}

static void on_line(void *ud, const char *line, size_t len)
{
    pending_t *p = ud;
    curl_api_t *a = p->api;
    etcd_result_t *res = etcd_result_new(ETCD_CALL_WATCH, p->tag);
    etcd_watch_info_t info;
    int rc = res ? etcd_decode_watch(&a->dec, line, len, &info, add_event, res) : -1;
    if (rc < 0 || info.err.code || res->err != ETCD_API_OK) {
        /* A broken line ends the stream: the owner resyncs as after any broken stream. */
        etcd_error_t e = {0};
        int why = ETCD_API_ERR_MALFORMED;
        if (res && res->err == ETCD_API_ERR_NOMEM)
            why = ETCD_API_ERR_NOMEM;
        else if (rc == 0 && info.err.code) {
            e = info.err;
            why = ETCD_API_ERR_SERVER;
        }
        etcd_result_free(res);
        uint64_t tag = p->tag;
        etcd_req_cancel(p->req);
        unlink_pending(a, p);
        free(p);
        deliver_err(a, ETCD_CALL_WATCH, tag, why, why == ETCD_API_ERR_SERVER ? &e : NULL);
        return;
    }
    res->revision = info.revision;
    res->created = info.created;
    res->canceled = info.canceled;
    res->compact_revision = info.compact_revision;
    res->progress = !info.created && !info.canceled && info.n_events == 0;
    memcpy(res->cancel_reason, info.cancel_reason, sizeof(res->cancel_reason));
    deliver(a, res);
}

static void on_close(void *ud, int err, const char *body, size_t len)
{
    pending_t *p = ud;
    curl_api_t *a = p->api;
    uint64_t tag = p->tag;
    unlink_pending(a, p);
    free(p);
    etcd_error_t e = {0};
    if (err == ETCD_ERR_SERVER)
        etcd_decode_error(body, len, &e);
    deliver_err(a, ETCD_CALL_WATCH, tag, err == ETCD_OK ? ETCD_API_ERR_CLOSED : err, &e);
}

/* ---- the operations ------------------------------------------------------------------------- */

static char *body_of(const etcd_request_t *r, const char **path)
{
    switch (r->call) {
    case ETCD_CALL_RANGE:
        *path = "/v3/kv/range";
        return etcd_req_range(r->key, r->prefix);
    case ETCD_CALL_TXN:
        *path = "/v3/kv/txn";
        return etcd_req_txn(r->cmps, r->n_cmps, r->success, r->n_success, r->failure, r->n_failure);
    case ETCD_CALL_LEASE_GRANT:
        *path = "/v3/lease/grant";
        return etcd_req_lease_grant(r->ttl_s);
    case ETCD_CALL_LEASE_KEEPALIVE:
        *path = "/v3/lease/keepalive";
        return etcd_req_lease_id(r->lease);
    case ETCD_CALL_LEASE_REVOKE:
        *path = "/v3/lease/revoke";
        return etcd_req_lease_id(r->lease);
    case ETCD_CALL_WATCH:
        *path = "/v3/watch";
        return etcd_req_watch_prefix(r->key, r->start_revision);
    }
    return NULL;
}

static int api_submit(etcd_api_t *api, const etcd_request_t *r)
{
    curl_api_t *a = (curl_api_t *)api;
    const char *path = NULL;
    char *body = body_of(r, &path);
    pending_t *p = body ? calloc(1, sizeof(*p)) : NULL;
    if (!p) {
        free(body);
        return -1;
    }
    p->api = a;
    p->call = r->call;
    p->tag = r->tag;
    if (r->call == ETCD_CALL_WATCH)
        p->req = etcd_client_stream(a->client, path, body, on_line, on_close, p);
    else
        p->req = etcd_client_post(a->client, path, body, on_done, p);
    free(body);
    if (!p->req) {
        free(p);
        return -1;
    }
    p->next = a->pending;
    if (a->pending)
        a->pending->prev = p;
    a->pending = p;
    return 0;
}

static void api_cancel(etcd_api_t *api, uint64_t tag)
{
    curl_api_t *a = (curl_api_t *)api;
    for (pending_t *p = a->pending, *next; p; p = next) {
        next = p->next;
        if (p->tag != tag)
            continue;
        etcd_req_cancel(p->req);
        unlink_pending(a, p);
        free(p);
    }
}

static const char *api_endpoint(etcd_api_t *api)
{
    return etcd_client_endpoint(((curl_api_t *)api)->client);
}

static const char *api_principal(etcd_api_t *api)
{
    return etcd_client_principal(((curl_api_t *)api)->client);
}

static void api_free(etcd_api_t *api)
{
    curl_api_t *a = (curl_api_t *)api;
    while (a->pending) {
        pending_t *p = a->pending;
        a->pending = p->next;
        etcd_req_cancel(p->req);
        free(p);
    }
    etcd_client_free(a->client);
    etcd_decoder_destroy(&a->dec);
    free(a);
}

static const etcd_api_ops_t curl_ops = {
    .submit = api_submit,
    .cancel = api_cancel,
    .endpoint = api_endpoint,
    .free = api_free,
    .principal = api_principal,
};

etcd_api_t *etcd_api_curl_new(struct uv_loop_s *loop, const etcd_api_curl_cfg_t *cfg,
                              etcd_deliver_fn deliver_fn, void *ud)
{
    if (!cfg->n_endpoints || !deliver_fn)
        return NULL;
    size_t len = 1;
    for (size_t i = 0; i < cfg->n_endpoints; i++)
        len += strlen(cfg->endpoints[i]) + 1;
    char *joined = calloc(1, len);
    curl_api_t *a = calloc(1, sizeof(*a));
    if (!joined || !a) {
        free(joined);
        free(a);
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        if (i)
            strcat(joined, ",");
        strcat(joined, cfg->endpoints[i]);
    }
    etcd_client_cfg_t ec = {
        .endpoints = joined,
        .username = cfg->username,
        .password = cfg->password,
        .ca_file = cfg->ca_file,
        .cert_file = cfg->cert_file,
        .key_file = cfg->key_file,
        .request_timeout_ms = cfg->request_timeout_ms,
        .connect_timeout_ms = cfg->connect_timeout_ms,
    };
    a->client = etcd_client_new(loop, &ec);
    free(joined);
    if (!a->client) {
        free(a);
        return NULL;
    }
    a->super.ops = &curl_ops;
    a->super.deliver = deliver_fn;
    a->super.ud = ud;
    etcd_decoder_init(&a->dec);
    return &a->super;
}
