/*
 * node/ca_server.c: the mesh CA's admin endpoint POST /v1/ca/sign (see node/ca_server.h): HTTP
 * and JSON around ca/ca_sign.h and ca/ca_tokens.h, audit and metrics.
 */
#include "node/ca_server.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uv.h>

#include "actors/actor.h"
#include "ca/ca_sign.h"
#include "ca/ca_tokens.h"
#include "ca/sign_request.h"
#include "common/file_read.h"
#include "common/log.h"

#define LOG       "ca"
#define SIGN_PATH "/v1/ca/sign"

/* The results counted in meshd_ca_requests_total. */
enum { R_ISSUED, R_UNAUTHORIZED, R_FORBIDDEN, R_BAD_REQUEST, R_INTERNAL, R_END };
static const char *const result_names[R_END] = {"issued", "unauthorized", "forbidden",
                                                "bad_request", "internal"};

enum { MSG_RELOAD = 1 };

typedef struct ca_server {
    mesh_actor_t *self;
    uv_signal_t *sighup; /* on the heap: it outlives the state until libuv closed it */
    const ca_server_args_t *a;
    ca_root_t root;
    ca_tokens_t tokens;
    uint64_t counts[R_END];
    int64_t last_not_after; /* of the last certificate issued */
} ca_server_t;

/* ---- loading --------------------------------------------------------------------------------- */

/* The CA's files (its key, certificate and token list) are small. */
#define CA_FILE_MAX (16u << 20)

static int load(ca_server_t *s, const ca_server_args_t *a, char *err, size_t errlen)
{
    char kp[4096], cp[4096], e2[512];
    snprintf(kp, sizeof(kp), "%s/%s", a->dir, CA_ROOT_KEY_FILE);
    snprintf(cp, sizeof(cp), "%s/%s", a->dir, CA_ROOT_CERT_FILE);
    size_t kl = 0, cl = 0, tl = 0;
    char *key = mesh_file_read(kp, CA_FILE_MAX, MESH_FILE_SECRET, &kl, err, errlen);
    char *cert = key ? mesh_file_read(cp, CA_FILE_MAX, 0, &cl, err, errlen) : NULL;
    char *tok =
        cert ? mesh_file_read(a->tokens, CA_FILE_MAX, MESH_FILE_SECRET, &tl, err, errlen) : NULL;
    int rc = -1;
    if (tok) {
        if (ca_root_load(&s->root, key, kl, cert, cl, e2, sizeof(e2)) != 0)
            snprintf(err, errlen, "the CA in %s: %s", a->dir, e2);
        else if (ca_tokens_parse(&s->tokens, a->tokens, tok, tl, err, errlen) != 0)
            ca_root_destroy(&s->root);
        else
            rc = 0;
    }
    if (key)
        memset(key, 0, kl);
    free(key);
    free(cert);
    if (tok)
        memset(tok, 0, tl);
    free(tok);
    return rc;
}

int ca_server_precheck(const ca_server_args_t *a, char *err, size_t errlen)
{
    ca_server_t s;
    memset(&s, 0, sizeof(s));
    if (load(&s, a, err, errlen) != 0)
        return -1;
    ca_root_destroy(&s.root);
    ca_tokens_destroy(&s.tokens);
    return 0;
}

/* ---- the endpoint ------------------------------------------------------------------------------
 */

static void rfc3339(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void audit_it(ca_server_t *s, const h1_req_t *req, audit_type_t type, const char *node,
                     const char *reason)
{
    if (!s->a->audit || !audit_api_on(s->a->audit))
        return;
    char id[SPF_URI_MAX + 1];
    int has_id = node && spf_format(id, sizeof(id), s->root.trust_domain, SPF_KIND_NODE, node) == 0;
    char peer[80];
    int has_peer = h1_req_peer(req, peer, sizeof(peer)) == 0;
    audit_event_t ev = {.type = type,
                        .reason = reason,
                        .peer_identity = has_id ? id : NULL,
                        .peer_address = has_peer ? peer : NULL};
    audit_emit(s->self, s->a->audit, &ev);
}

/* Writes an error answer; returns the status. */
static int fail(ca_server_t *s, const h1_req_t *req, h1_body_t *b, int status, int result,
                const char *code, const char *node, const char *msg)
{
    char full[1024];
    snprintf(full, sizeof(full), "meshd: ca: %s", msg);
    json_t *o = json_pack("{s:s,s:s}", "error", full, "code", code);
    h1_body_reset(b);
    if (!o || h1_body_json(b, o) != 0)
        h1_body_printf(b, "{\"error\":\"meshd: ca: %s\"}", code);
    json_decref(o);
    if (status == 401)
        h1_body_set_header(b, "WWW-Authenticate: Bearer");
    s->counts[result]++;
    char peer[80];
    if (h1_req_peer(req, peer, sizeof(peer)) != 0)
        snprintf(peer, sizeof(peer), "?");
    mesh_warn(LOG, "refused a certificate%s%s to %s: %s", node ? " for node " : "",
              node ? node : "", peer, msg);
    audit_it(s, req, AUDIT_CERT_DENIED, node, full);
    return status;
}

static int sign_handler(void *ud, const h1_req_t *req, h1_body_t *b)
{
    ca_server_t *s = ud;
    if (!h1_req_method_is(req, "POST")) {
        h1_body_printf(b, "{\"error\":\"meshd: ca: %s takes POST\",\"code\":\"method\"}",
                       SIGN_PATH);
        h1_body_set_header(b, "Allow: POST");
        return 405;
    }
    const char *auth = req->authorization;
    size_t al = req->authorization_len;
    if (!auth || al < 7 || strncasecmp(auth, "Bearer ", 7) != 0)
        return fail(s, req, b, 401, R_UNAUTHORIZED, "unauthorized", NULL,
                    "a bootstrap token is required: Authorization: Bearer <token>");
    const ca_token_t *tok = ca_tokens_find(&s->tokens, auth + 7, al - 7);
    if (!tok)
        return fail(s, req, b, 401, R_UNAUTHORIZED, "unauthorized", NULL,
                    "the bootstrap token is not known to this CA");
    ca_sign_request_t sq;
    char err[600];
    int status;
    if (ca_sign_request_parse(&sq, req->body, req->body_len, err, sizeof(err)) != 0)
        return fail(s, req, b, 400, R_BAD_REQUEST, "bad_request", NULL, err);
    const char *node = sq.node;
    const char **svcs = sq.services;
    size_t ns = sq.n_services;
    if (!ca_token_allows(tok, node, svcs, ns, err, sizeof(err))) {
        status = fail(s, req, b, 403, R_FORBIDDEN, "forbidden", node, err);
        goto out;
    }
    int64_t life = sq.lifetime_s ? sq.lifetime_s : s->a->max_lifetime_s;
    if (life > s->a->max_lifetime_s)
        life = s->a->max_lifetime_s; /* the CA's limit wins */
    ca_sign_req_t sr = {.csr_pem = sq.csr,
                        .csr_len = strlen(sq.csr),
                        .node = node,
                        .services = svcs,
                        .n_services = ns,
                        .dns = sq.dns,
                        .n_dns = sq.n_dns,
                        .ips = sq.ips,
                        .n_ips = sq.n_ips,
                        .lifetime_s = life};
    ca_issued_t out;
    int64_t now = (int64_t)time(NULL);
    ca_sign_err_t se = ca_sign(&s->root, &sr, now, &out, err, sizeof(err));
    if (se != CA_SIGN_OK) {
        status = se == CA_SIGN_INTERNAL
                     ? fail(s, req, b, 500, R_INTERNAL, "internal", node, err)
                     : fail(s, req, b, 400, R_BAD_REQUEST, ca_sign_err_name(se), node, err);
        goto out;
    }
    char nb[32], na[32], id[SPF_URI_MAX + 1];
    rfc3339(out.not_before, nb);
    rfc3339(out.not_after, na);
    spf_format(id, sizeof(id), s->root.trust_domain, SPF_KIND_NODE, node);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "certificate", out.chain_pem, "ca",
                          s->root.cert_pem, "spiffe_id", id, "serial", out.serial, "not_before", nb,
                          "not_after", na, "not_after_unix", (json_int_t)out.not_after);
    status = o && h1_body_json(b, o) == 0 ? 200 : 500;
    json_decref(o);
    if (status == 200) {
        s->counts[R_ISSUED]++;
        s->last_not_after = out.not_after;
        char reason[900];
        int off = snprintf(reason, sizeof(reason),
                           "certificate %s issued for %s until %s (token "
                           "of %s line %u)",
                           out.serial, id, na, s->a->tokens, tok->line);
        for (size_t i = 0; i < ns && off > 0 && (size_t)off < sizeof(reason); i++)
            off += snprintf(reason + off, sizeof(reason) - (size_t)off, "%s%s",
                            i ? ", " : "; services: ", svcs[i]);
        mesh_info(LOG, "%s", reason);
        audit_it(s, req, AUDIT_CERT_ISSUED, node, reason);
    } else {
        s->counts[R_INTERNAL]++;
    }
    ca_issued_destroy(&out);
out:
    ca_sign_request_destroy(&sq);
    return status;
}

static void metrics(void *ud, prom_t *p)
{
    ca_server_t *s = ud;
    prom_family(p, "meshd_ca_requests_total", PROM_COUNTER,
                "certificate requests to this node's mesh CA, by result");
    for (int i = 0; i < R_END; i++) {
        prom_label_t l = {"result", result_names[i]};
        prom_sample_u64(p, "meshd_ca_requests_total", &l, 1, s->counts[i]);
    }
    prom_one(p, "meshd_ca_last_issued_not_after_seconds", PROM_GAUGE,
             "expiry (Unix time) of the last certificate this CA issued, 0 before the first",
             (double)s->last_not_after);
}

/* ---- the actor ----------------------------------------------------------------------------- */

static void on_sighup(uv_signal_t *h, int signum);

static int on_start(mesh_actor_t *self, void *arg)
{
    ca_server_t *s = mesh_state(self);
    s->self = self;
    s->a = arg;
    char err[600];
    if (load(s, s->a, err, sizeof(err)) != 0) {
        mesh_error(LOG, "%s", err);
        return -1;
    }
    if (mesh_admin_add_post(s->a->admin, SIGN_PATH, sign_handler, s, 1) != 0 ||
        mesh_admin_add_metrics(s->a->admin, metrics, s) != 0) {
        mesh_error(LOG, "cannot add %s to the admin API", SIGN_PATH);
        return -1;
    }
    uv_loop_t *loop = mesh_uv_loop(self);
    if (loop && (s->sighup = calloc(1, sizeof(*s->sighup)))) {
        uv_signal_init(loop, s->sighup);
        s->sighup->data = s;
        uv_signal_start(s->sighup, on_sighup, SIGHUP);
    }
    mesh_info(LOG,
              "mesh CA for spiffe://%s: POST %s on the admin API, %zu bootstrap token%s, "
              "certificates up to %lld s",
              s->root.trust_domain, SIGN_PATH, s->tokens.n, s->tokens.n == 1 ? "" : "s",
              (long long)s->a->max_lifetime_s);
    return 0;
}

/* The thin adapter: SIGHUP becomes a message to the actor (the node's own SIGHUP handler, which
 * reloads the policy, runs too: libuv calls every watcher of a signal). */
static void on_sighup(uv_signal_t *h, int signum)
{
    ca_server_t *s = h->data;
    if (s && mesh_send(s->self, mesh_self(s->self), MSG_RELOAD, NULL, 0) != 0)
        mesh_error(LOG, "SIGHUP: cannot reach the CA actor");
}

/* SIGHUP: reads the root and the tokens again; what does not load is refused (logged and
 * audited as config_rejected) and what is in force stays. */
static void reload(ca_server_t *s)
{
    ca_server_t fresh;
    memset(&fresh, 0, sizeof(fresh));
    char err[600];
    if (load(&fresh, s->a, err, sizeof(err)) != 0) {
        mesh_error(LOG, "reload refused, the CA's root and tokens in force stay: %s", err);
        if (s->a->audit && audit_api_on(s->a->audit)) {
            char reason[700];
            snprintf(reason, sizeof(reason), "meshd: ca: reload refused: %s", err);
            audit_event_t ev = {.type = AUDIT_CONFIG_REJECTED, .reason = reason};
            audit_emit(s->self, s->a->audit, &ev);
        }
        return;
    }
    ca_root_destroy(&s->root);
    ca_tokens_destroy(&s->tokens);
    s->root = fresh.root;
    s->tokens = fresh.tokens;
    mesh_info(LOG, "reloaded (SIGHUP): the root of spiffe://%s, %zu bootstrap token%s from %s",
              s->root.trust_domain, s->tokens.n, s->tokens.n == 1 ? "" : "s", s->a->tokens);
}

static int on_message(mesh_actor_t *self, mesh_msg_t *msg)
{
    ca_server_t *s = mesh_state(self);
    if (msg->type == MSG_RELOAD)
        reload(s);
    return 0;
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void on_stop(mesh_actor_t *self, int reason)
{
    ca_server_t *s = mesh_state(self);
    if (s->sighup) {
        s->sighup->data = NULL;
        uv_close((uv_handle_t *)s->sighup, free_handle);
    }
    if (s->a) {
        mesh_admin_remove(s->a->admin, SIGN_PATH);
        mesh_admin_remove_metrics(s->a->admin, metrics, s);
    }
    ca_root_destroy(&s->root);
    ca_tokens_destroy(&s->tokens);
}

const mesh_actor_ops_t ca_server_ops = {
    .name = "ca",
    .state_size = sizeof(ca_server_t),
    .on_start = on_start,
    .on_message = on_message,
    .on_stop = on_stop,
};
