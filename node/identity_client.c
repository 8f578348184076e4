/*
 * node/identity_client.c: obtaining and rotating the node's certificate from the mesh CA (see
 * node/identity_client.h). The schedule is ca/rotation_sm.h; this file is its binding: actor
 * timers, the HTTP client (transport/http_fetch.h, whose completions come back as messages),
 * the CSR and the files.
 */
#include "node/identity_client.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "actors/actor.h"
#include "actors/msg.h"
#include "ca/ca_pem.h"
#include "ca/ca_tokens.h"
#include "ca/peer_identity.h"
#include "ca/rotation_sm.h"
#include "common/atomic_file.h"
#include "common/log.h"
#include "common/x509_check.h"
#include "node/ca_options.h"
#include "transport/http_fetch.h"

#define LOG "identity"

enum { MSG_TIMER = 1, MSG_ANSWER = 2 };

/* An HTTP outcome, carried from the fetch callback to the actor as a message. */
typedef struct answer {
    int status;
    char *body;
    char error[256];
} answer_t;

typedef struct ident {
    mesh_actor_t *self;
    const identity_args_t *a;
    EVP_PKEY *key;
    char *key_pem;
    int wrote_key;
    char token[CA_TOKEN_MAX + 1];
    mesh_http_fetch_t *fetch;
    mesh_http_req_t *inflight;
    ca_rot_t rot;
    uint64_t timer;
    int timer_armed;
    uint64_t ok, failed, expired;
    int64_t not_after; /* Unix seconds of the certificate in the files, 0 before the first */
    char path_key[4096], path_cert[4096], path_ca[4096];
} ident_t;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void answer_free(void *p)
{
    answer_t *a = p;
    free(a->body);
    free(a);
}

/* The thin adapter: the fetch's completion becomes a message to the actor. */
static void on_fetched(void *ctx, int status, const mesh_http_response_t *resp, const char *body,
                       size_t len, const char *error)
{
    ident_t *s = ctx;
    s->inflight = NULL;
    answer_t *a = calloc(1, sizeof(*a));
    if (a && !(a->body = strndup(body, len))) {
        free(a);
        a = NULL;
    }
    if (a) {
        a->status = status;
        snprintf(a->error, sizeof(a->error), "%s", error);
    }
    if (!a || mesh_send_ptr(s->self, mesh_self(s->self), MSG_ANSWER, a, answer_free) != 0) {
        if (a)
            answer_free(a);
        mesh_error(LOG, "cannot deliver the CA's answer to the identity actor");
    }
}

/* A JSON array of a config list, or NULL when empty. */
static json_t *list_json(const mesh_config_list_t *l)
{
    if (!l || l->n == 0)
        return NULL;
    json_t *a = json_array();
    for (size_t i = 0; a && i < l->n; i++)
        json_array_append_new(a, json_string(l->items[i]));
    return a;
}

/* The CSR for our key; the CA reads only its key (the identity is in the JSON). */
static char *make_csr(ident_t *s)
{
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    X509_REQ *r = C ? C->x509_req_new() : NULL;
    char *pem = NULL;
    if (r && C->x509_req_set_version(r, 0) == 1 && C->x509_req_set_pubkey(r, s->key) == 1 &&
        C->x509_name_add_entry_txt(C->x509_req_get_subject_name(r), "CN", MBSTRING_UTF8,
                                   (const unsigned char *)s->a->node, -1, -1, 0) == 1 &&
        C->x509_req_sign(r, s->key, C->sha256()) > 0)
        pem = ca_pem_write_req(r);
    if (C) {
        C->x509_req_free(r);
        C->err_clear_error();
    }
    return pem;
}

static void apply(ident_t *s, const ca_rot_effects_t *e);

static void send_request(ident_t *s)
{
    char *csr = make_csr(s);
    json_t *o = csr ? json_pack("{s:s,s:s,s:I}", "csr", csr, "node", s->a->node, "lifetime_seconds",
                                (json_int_t)s->a->lifetime_s)
                    : NULL;
    json_t *l;
    if (o && (l = list_json(s->a->services)))
        json_object_set_new(o, "services", l);
    if (o && (l = list_json(s->a->dns)))
        json_object_set_new(o, "dns", l);
    if (o && (l = list_json(s->a->ips)))
        json_object_set_new(o, "ips", l);
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    free(csr);
    char url[4200], auth[CA_TOKEN_MAX + 32];
    size_t ul = strlen(s->a->url);
    snprintf(url, sizeof(url), "%.*s/v1/ca/sign",
             (int)(ul && s->a->url[ul - 1] == '/' ? ul - 1 : ul), s->a->url);
    snprintf(auth, sizeof(auth), "Bearer %s", s->token);
    mesh_http_header_t h[] = {{"Authorization", auth}, {"Content-Type", "application/json"}};
    mesh_http_request_t req = {.method = "POST",
                               .url = url,
                               .headers = h,
                               .n_headers = 2,
                               .body = body,
                               .body_len = body ? strlen(body) : 0,
                               .timeout_ms = 10000};
    if (body && s->fetch)
        s->inflight = mesh_http_fetch_request(s->fetch, &req, on_fetched, s);
    free(body);
    if (!s->inflight) {
        mesh_error(LOG, "cannot send a certificate request to %s (out of memory or no libcurl)",
                   url);
        ca_rot_effects_t e;
        s->failed++;
        ca_rot_failed(&s->rot, wall_ms(), &e);
        apply(s, &e);
    }
}

static void apply(ident_t *s, const ca_rot_effects_t *e)
{
    if (e->expired) {
        s->expired++;
        mesh_error(LOG,
                   "the certificate in %s expired and no new one came from %s: peers will "
                   "refuse it until the CA answers",
                   s->path_cert, s->a->url);
    }
    if (e->timer_at) {
        if (s->timer_armed)
            mesh_timer_stop(s->self, s->timer);
        int64_t d = e->timer_at - wall_ms();
        if (d < 0)
            d = 0;
        s->timer_armed =
            mesh_timer_start(s->self, (uint64_t)d * 1000000ull, 0, MSG_TIMER, &s->timer) == 0;
    }
    if (e->send_request)
        send_request(s);
}

/* Checks an answer and writes the files. 0, or -1 with the reason. */
static int accept_answer(ident_t *s, const answer_t *a, char *err, size_t errlen)
{
    if (a->status < 0) {
        snprintf(err, errlen, "%s: %s", s->a->url, a->error);
        return -1;
    }
    json_error_t je;
    json_t *o = json_loads(a->body, 0, &je);
    if (a->status != 200) {
        const char *m = json_string_value(json_object_get(o, "error"));
        snprintf(err, errlen, "%s answered %d: %.300s", s->a->url, a->status,
                 m            ? m
                 : a->body[0] ? a->body
                              : "(no body: is it a meshd CA node?)");
        json_decref(o);
        return -1;
    }
    const char *chain = json_string_value(json_object_get(o, "certificate"));
    const char *ca = json_string_value(json_object_get(o, "ca"));
    json_t *na = json_object_get(o, "not_after_unix");
    int rc = -1;
    if (!chain || !ca || !json_is_integer(na)) {
        snprintf(err, errlen, "%s answered 200 without certificate, ca and not_after_unix",
                 s->a->url);
        goto out;
    }
    x509c_input_t ci = {chain, strlen(chain), "the certificate"};
    x509c_input_t ki = {s->key_pem, strlen(s->key_pem), "our key"};
    x509c_input_t ai = {ca, strlen(ca), "the CA"};
    if (x509c_check(&ci, &ki, &ai, (int64_t)time(NULL), err, errlen) != X509C_OK)
        goto out;
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    X509 *x = ca_pem_read_x509(chain, strlen(chain));
    ca_peer_identity_t id;
    int named = x && ca_peer_identity_from_x509(x, NULL, &id, err, errlen) == 0;
    if (named && strcmp(id.node, s->a->node) != 0) {
        snprintf(err, errlen, "the certificate names node %s, not %s", id.node, s->a->node);
        named = 0;
    }
    if (x && named)
        ca_peer_identity_destroy(&id);
    if (x)
        C->x509_free(x);
    if (!named)
        goto out;
    if ((!s->wrote_key && mesh_atomic_write(s->path_key, s->key_pem, strlen(s->key_pem), 0600, 0,
                                            err, errlen) != 0) ||
        mesh_atomic_write(s->path_ca, ca, strlen(ca), 0644, 0, err, errlen) != 0 ||
        mesh_atomic_write(s->path_cert, chain, strlen(chain), 0644, 0, err, errlen) != 0)
        goto out;
    s->wrote_key = 1;
    s->not_after = (int64_t)json_integer_value(na);
    rc = 0;
out:
    json_decref(o);
    return rc;
}

static int on_message(mesh_actor_t *self, mesh_msg_t *msg)
{
    ident_t *s = mesh_state(self);
    ca_rot_effects_t e;
    if (msg->type == MSG_TIMER) {
        s->timer_armed = 0;
        ca_rot_timer(&s->rot, wall_ms(), &e);
        apply(s, &e);
    } else if (msg->type == MSG_ANSWER && msg->ptr) {
        char err[1024];
        if (accept_answer(s, msg->ptr, err, sizeof(err)) == 0) {
            s->ok++;
            ca_rot_issued(&s->rot, wall_ms(), s->not_after * 1000, &e);
            mesh_info(LOG,
                      "new certificate in %s, valid until Unix time %lld; next renewal in "
                      "%lld ms",
                      s->path_cert, (long long)s->not_after, (long long)(e.timer_at - wall_ms()));
        } else {
            s->failed++;
            ca_rot_failed(&s->rot, wall_ms(), &e);
            mesh_warn(LOG, "no certificate: %s; retrying in %lld ms%s", err,
                      (long long)(e.timer_at - wall_ms()),
                      s->not_after ? " (the current one keeps serving)" : "");
        }
        apply(s, &e);
    }
    return 0;
}

static void metrics(void *ud, prom_t *p)
{
    ident_t *s = ud;
    prom_family(p, "meshd_identity_renewals_total", PROM_COUNTER,
                "certificate requests of this node to the mesh CA, by result");
    prom_label_t l = {"result", "ok"};
    prom_sample_u64(p, "meshd_identity_renewals_total", &l, 1, s->ok);
    l.value = "failed";
    prom_sample_u64(p, "meshd_identity_renewals_total", &l, 1, s->failed);
    prom_one(p, "meshd_identity_cert_not_after_seconds", PROM_GAUGE,
             "expiry (Unix time) of this node's certificate, 0 before the first",
             (double)s->not_after);
    prom_one(p, "meshd_identity_cert_expired_total", PROM_COUNTER,
             "times this node's certificate expired before a new one came", (double)s->expired);
}

static int on_start(mesh_actor_t *self, void *arg)
{
    ident_t *s = mesh_state(self);
    s->self = self;
    s->a = arg;
    char err[512];
    if (mesh_ca_token_read(s->a->token_file, s->token, sizeof(s->token), err, sizeof(err)) < 0) {
        mesh_error(LOG, "%s", err);
        return -1;
    }
    if (mkdir(s->a->dir, 0700) != 0 && errno != EEXIST) {
        mesh_error(LOG, "cannot create --identity-dir %s: %s", s->a->dir, strerror(errno));
        return -1;
    }
    snprintf(s->path_key, sizeof(s->path_key), "%s/key.pem", s->a->dir);
    snprintf(s->path_cert, sizeof(s->path_cert), "%s/cert.pem", s->a->dir);
    snprintf(s->path_ca, sizeof(s->path_ca), "%s/ca.pem", s->a->dir);
    if (!(s->key = ca_key_generate()) || !(s->key_pem = ca_pem_write_key(s->key))) {
        mesh_error(LOG, "cannot generate a key (libcrypto)");
        return -1;
    }
    if (!(s->fetch = mesh_http_fetch_new(mesh_uv_loop(self))))
        return -1; /* logged */
    if (s->a->admin)
        mesh_admin_add_metrics(s->a->admin, metrics, s);
    ca_rot_init(&s->rot, NULL, mesh_random(self));
    ca_rot_effects_t e;
    ca_rot_start(&s->rot, wall_ms(), &e);
    apply(s, &e);
    return 0;
}

static void on_stop(mesh_actor_t *self, int reason)
{
    ident_t *s = mesh_state(self);
    if (s->a && s->a->admin)
        mesh_admin_remove_metrics(s->a->admin, metrics, s);
    if (s->fetch)
        mesh_http_fetch_close(s->fetch); /* drops the request in flight, without callback */
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    if (C && s->key)
        C->pkey_free(s->key);
    if (s->key_pem) {
        memset(s->key_pem, 0, strlen(s->key_pem));
        free(s->key_pem);
    }
    memset(s->token, 0, sizeof(s->token));
}

const mesh_actor_ops_t identity_client_ops = {
    .name = "identity",
    .state_size = sizeof(ident_t),
    .on_start = on_start,
    .on_message = on_message,
    .on_stop = on_stop,
};
