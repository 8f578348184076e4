/*
 * gateway/gw_front.c: the gateway's per-worker front end (gateway/gw_front.h): HTTP/1.1
 * and HTTP/2 (h2c) requests in, gRPC calls through the proxy engine out, JSON back.
 *
 * One request logic serves both protocols: the h1_conn and h2s_conn callbacks are thin
 * adapters onto req_head / req_body / req_end / req_error / conn_drain, and answers go out
 * through the connection's gw_out_t (respond, body, end, respond_error over h1_conn_* or
 * h2s_conn_*). A request id is the HTTP/1.1 request's number or the HTTP/2 stream id.
 *
 * Life of a request: on_head matches the route, checks the method, content type and
 * Grpc-Timeout, encodes the path variables and query parameters (the head is only valid
 * then) and copies the metadata headers; on_body collects the JSON body (h1_conn limits its
 * size: 413); on_end encodes the body, frames the request message and starts the call
 * (mesh_proxy_call_start). The call's response bytes are deframed and each message is
 * transcoded: a unary answer is sent whole with Content-Length at the call's end (so its
 * status decides the HTTP status); a server stream starts a chunked 200 at its first message
 * and writes one line (or one event) per message; a full output buffer stops the reading of
 * the call's response queue until h1_conn says it drained, and the upstream's flow-control
 * window closes behind it. A request stream (client-streaming or bidi) starts its call at the
 * head and sends each NDJSON line as it is read, with no whole-body limit; while the call's
 * request buffer is full the client's body is paused (the HTTP/1.1 connection stops reading,
 * the HTTP/2 stream's window stays shut) until the call drains: backpressure the other way.
 */
#include "gateway/gw_front.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "gateway/gw_errors.h"
#include "gateway/gw_transcode.h"
#include "gateway/req_timeout.h"
#include "transport/grpc_frame.h"
#include "transport/grpc_status.h"
#include "transport/grpc_timeout.h"
#include "transport/h2_srv.h"
#include "transport/proxy_call.h"
#include "transport/proxy_local.h"

#define ACTOR "gateway"

typedef struct gw_req gw_req_t;
typedef struct gw_conn gw_conn_t;

struct gw_front {
    uv_loop_t *loop;
    mesh_proxy_worker_t *engine;
    gw_front_config_t cfg;
    char host[64];
    h1_srv_t *srv; /* NULL once closed */
    gw_api_t *api;
    gw_conn_t *conns;
    void (*drain_done)(void *);
    void *drain_arg;
    int freeing;
    char hname[GW_FRONT_MAX_HEADERS][GW_FRONT_HEADER_LEN + 1]; /* cfg.headers, copied */
    char *hptr[GW_FRONT_MAX_HEADERS];
};

/* The response side of a client connection, HTTP/1.1 (h1_conn) or HTTP/2 (h2s_conn): the
 * request logic below is one for both, and writes its answers through this. */
typedef struct gw_out {
    int (*respond)(void *c, uint64_t id, int status, const h1_conn_hdr_t *headers, size_t n,
                   int64_t content_length);
    int (*body)(void *c, uint64_t id, const void *data, size_t len);
    int (*end)(void *c, uint64_t id);
    int (*respond_error)(void *c, uint64_t id, int status, const char *message);
    /* request body flow control: stop / restart reading id's body; lift its size limit */
    void (*pause)(void *c, uint64_t id);
    void (*resume)(void *c, uint64_t id);
    void (*body_limit)(void *c, uint64_t id, uint64_t max_body);
} gw_out_t;

struct gw_conn {
    gw_front_t *f;
    const gw_out_t *out;
    void *c; /* the h1_conn_t or h2s_conn_t */
    gw_conn_t *prev, *next;
    gw_req_t *reqs;      /* requests in progress */
    gw_req_t *free_reqs; /* finished ones, their buffers kept */
    int closing;         /* on_close runs: the connection is going, nothing to resume */
    struct sockaddr_storage peer;
    char peer_ip[INET6_ADDRSTRLEN];
    const mesh_peer_id_t *peer_id; /* what its TLS certificate proves (the server's; NULL) */
};

struct gw_req {
    gw_req_t *next;
    gw_conn_t *conn;
    uint64_t id;
    gw_api_t *api;
    const gw_method_t *m;
    const gw_route_t *route;
    mesh_proxy_call_t *call;
    uint64_t timeout_ms;
    int streaming, sse, http_started, paused, answered, n_msgs, bad_response;
    int req_stream;  /* client-streaming or bidi: each NDJSON line of the body is a message */
    int req_done;    /* the HTTP request ended */
    int req_full;    /* the call's request buffer is full: wait for on_req_drain */
    int body_paused; /* the client's body is paused (gw_out_t.pause) */
    int req_ended;   /* the end of the request stream was sent to the call */
    int drained;     /* on_req_drain came (also inside mesh_proxy_call_send) */
    int in_lines;    /* stream_lines runs */
    int grpc;        /* a gRPC call to gRPC's own services, passed through raw ("raw gRPC") */
    gw_buf_t body;   /* the request body (JSON) */
    gw_buf_t params; /* protobuf of the path variables and query parameters */
    gw_buf_t pb;     /* the framed request message */
    gw_buf_t meta;   /* request metadata: name, value, name, value ... (NUL-separated) */
    gw_buf_t fields; /* mesh_proxy_field_t[] over meta */
    gw_buf_t rmeta;  /* response header fields: "Grpc-Metadata-n", value ... (NUL-separated) */
    gw_buf_t hdrs;   /* h1_conn_hdr_t[] over rmeta */
    gw_buf_t out;    /* JSON being written */
    mesh_grpc_deframer_t dfr;
    char err[256];
};

/* ---- requests ----------------------------------------------------------------------------- */

static int on_message(void *arg, int compressed, const uint8_t *msg, size_t len);
static int call_open(gw_req_t *r);
static void request_failed(gw_req_t *r, int http_status, int code, const char *prefix);
static void stream_lines(gw_req_t *r);
static void raw_pump(gw_req_t *r);
static void raw_head(gw_req_t *r, int end_stream);
static void raw_end(gw_req_t *r, int status, const char *msg, size_t ml);

static gw_req_t *req_new(gw_conn_t *k, uint64_t id)
{
    gw_req_t *r = k->free_reqs;
    if (r) {
        k->free_reqs = r->next;
    } else {
        r = calloc(1, sizeof(*r));
        if (!r)
            return NULL;
        mesh_grpc_deframer_init(&r->dfr, 0, on_message, r);
    }
    gw_buf_t keep[9] = {r->body, r->params, r->pb, r->meta, r->fields, r->rmeta, r->hdrs, r->out};
    mesh_grpc_deframer_t dfr = r->dfr;
    memset(r, 0, sizeof(*r));
    r->body = keep[0];
    r->params = keep[1];
    r->pb = keep[2];
    r->meta = keep[3];
    r->fields = keep[4];
    r->rmeta = keep[5];
    r->hdrs = keep[6];
    r->out = keep[7];
    r->body.len = r->params.len = r->pb.len = r->meta.len = r->fields.len = 0;
    r->rmeta.len = r->hdrs.len = r->out.len = 0;
    r->dfr = dfr;
    r->dfr.prefix_have = r->dfr.buf_have = 0;
    r->dfr.msg_len = 0;
    r->conn = k;
    r->id = id;
    r->next = k->reqs;
    k->reqs = r;
    return r;
}

static gw_req_t *req_find(gw_conn_t *k, uint64_t id)
{
    for (gw_req_t *r = k->reqs; r; r = r->next)
        if (r->id == id)
            return r;
    return NULL;
}

static void req_destroy(gw_req_t *r)
{
    gw_buf_free(&r->body);
    gw_buf_free(&r->params);
    gw_buf_free(&r->pb);
    gw_buf_free(&r->meta);
    gw_buf_free(&r->fields);
    gw_buf_free(&r->rmeta);
    gw_buf_free(&r->hdrs);
    gw_buf_free(&r->out);
    mesh_grpc_deframer_destroy(&r->dfr);
    free(r);
}

/* The request is over on our side: cancel its call if any, keep the object for reuse. */
static void req_free(gw_req_t *r)
{
    gw_conn_t *k = r->conn;
    if (r->body_paused && !k->closing)
        k->out->resume(k->c, r->id); /* the rest of the body is read (and dropped) */
    r->body_paused = 0;
    if (r->call) {
        mesh_proxy_call_cancel(r->call);
        r->call = NULL;
    }
    gw_api_unref(r->api);
    r->api = NULL;
    for (gw_req_t **p = &k->reqs; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    r->next = k->free_reqs;
    k->free_reqs = r;
}

/* ---- answers ------------------------------------------------------------------------------ */

/* The response header fields of r (rmeta) as an array, plus extra ones. */
static const h1_conn_hdr_t *resp_headers(gw_req_t *r, const h1_conn_hdr_t *extra, size_t n_extra,
                                         size_t *n)
{
    r->hdrs.len = 0;
    if (!gw_buf_put(&r->hdrs, extra, n_extra * sizeof(*extra)))
        return NULL;
    const char *p = (const char *)r->rmeta.data, *end = p ? p + r->rmeta.len : p;
    while (p < end) {
        h1_conn_hdr_t h;
        h.name = p;
        h.name_len = strlen(p);
        p += h.name_len + 1;
        h.value = p;
        h.value_len = strlen(p);
        p += h.value_len + 1;
        if (!gw_buf_put(&r->hdrs, &h, sizeof(h)))
            return NULL;
    }
    *n = r->hdrs.len / sizeof(h1_conn_hdr_t);
    return (const h1_conn_hdr_t *)(void *)r->hdrs.data;
}

static const h1_conn_hdr_t json_ct = {"Content-Type", 12, "application/json", 16};

/* Answers r with an error: HTTP status from the gRPC code, the JSON error body. */
static void answer_error(gw_req_t *r, int http_status, int code, const char *msg, size_t ml)
{
    gw_conn_t *k = r->conn;
    r->answered = 1;
    r->out.len = 0;
    if (http_status == 0)
        http_status = gw_http_status_from_grpc(code);
    if (gw_error_json(code, msg, ml, &r->out) != 0 || !gw_buf_put(&r->out, "\n", 1)) {
        k->out->respond_error(k->c, r->id, 500, "meshd: gateway: out of memory");
        return;
    }
    size_t n;
    const h1_conn_hdr_t *h = resp_headers(r, &json_ct, 1, &n);
    if (!h || k->out->respond(k->c, r->id, http_status, h, n, (int64_t)r->out.len) != 0)
        return;
    k->out->body(k->c, r->id, r->out.data, r->out.len);
    k->out->end(k->c, r->id);
}

static void answer_errorf(gw_req_t *r, int http_status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void answer_errorf(gw_req_t *r, int http_status, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    answer_error(r, http_status, code, msg,
                 n < 0                     ? 0
                 : (size_t)n < sizeof(msg) ? (size_t)n
                                           : sizeof(msg) - 1);
}

/* Starts the chunked 200 of a server stream. */
static int stream_begin(gw_req_t *r)
{
    static const h1_conn_hdr_t ndjson = {"Content-Type", 12, "application/x-ndjson", 20};
    static const h1_conn_hdr_t sse = {"Content-Type", 12, "text/event-stream", 17};
    size_t n;
    const h1_conn_hdr_t *h = resp_headers(r, r->sse ? &sse : &ndjson, 1, &n);
    r->http_started = 1;
    return h ? r->conn->out->respond(r->conn->c, r->id, 200, h, n, -1) : -1;
}

/* Writes r->out as one line (NDJSON) or one event (SSE, event non-NULL for a named one). */
static void stream_write(gw_req_t *r, const uint8_t *json, size_t len, const char *event)
{
    gw_buf_t *o = &r->out;
    o->len = 0;
    if (r->sse) {
        if (event) {
            gw_buf_put(o, "event: ", 7);
            gw_buf_put(o, event, strlen(event));
            gw_buf_put(o, "\n", 1);
        }
        gw_buf_put(o, "data: ", 6);
        gw_buf_put(o, json, len);
        gw_buf_put(o, "\n\n", 2);
    } else {
        gw_buf_put(o, json, len);
        gw_buf_put(o, "\n", 1);
    }
    if (r->conn->out->body(r->conn->c, r->id, o->data, o->len) == 1)
        r->paused = 1;
}

/* Ends a streamed answer with an error: a last line {"error":{...}} (NDJSON) or an
 * `event: error` (SSE). */
static void stream_error(gw_req_t *r, int code, const char *msg, size_t ml)
{
    gw_buf_t e = {0};
    if (gw_error_json(code, msg, ml, &e) == 0) {
        if (r->sse) {
            stream_write(r, e.data, e.len, "error");
        } else {
            gw_buf_t line = {0};
            gw_buf_put(&line, "{\"error\":", 9);
            gw_buf_put(&line, e.data, e.len);
            gw_buf_put(&line, "}", 1);
            stream_write(r, line.data, line.len, NULL);
            gw_buf_free(&line);
        }
    }
    gw_buf_free(&e);
    r->conn->out->end(r->conn->c, r->id);
}

/* ---- the call's downstream side ------------------------------------------------------------- */

/* Whether a response field goes back to the client as Grpc-Metadata-*. */
static int forwarded_meta(const char *n, size_t nl)
{
    if (nl >= 5 && memcmp(n, "grpc-", 5) == 0)
        return 0;
    return !(nl == 12 && memcmp(n, "content-type", 12) == 0);
}

static void collect_meta(gw_req_t *r, int trailers, const char *prefix)
{
    const char *n, *v;
    size_t nl, vl;
    int rc;
    for (size_t i = 0;
         (rc = mesh_proxy_call_resp_field(r->call, trailers, i, &n, &nl, &v, &vl)) >= 0; i++) {
        if (rc == 0 || !forwarded_meta(n, nl) || memchr(v, '\0', vl))
            continue;
        if (nl > 4 && memcmp(n + nl - 4, "-bin", 4) == 0)
            continue; /* binary metadata is not text: not forwarded */
        gw_buf_put(&r->rmeta, prefix, strlen(prefix));
        gw_buf_put(&r->rmeta, n, nl);
        gw_buf_put(&r->rmeta, "", 1);
        gw_buf_put(&r->rmeta, v, vl);
        gw_buf_put(&r->rmeta, "", 1);
    }
}

static void ds_on_head(void *ud, mesh_proxy_call_t *c, int end_stream)
{
    (void)c;
    gw_req_t *r = ud;
    if (r->grpc) {
        raw_head(r, end_stream);
        return;
    }
    collect_meta(ud, 0, "Grpc-Metadata-");
}

static int on_message(void *arg, int compressed, const uint8_t *msg, size_t len)
{
    gw_req_t *r = arg;
    if (compressed) {
        snprintf(r->err, sizeof(r->err), "meshd: gateway: the upstream sent a compressed message");
        r->bad_response = 1;
        return 1;
    }
    if (!r->streaming) {
        if (r->n_msgs++ > 0)
            return 0; /* a unary call answers once: more is the upstream's error, dropped */
        r->out.len = 0;
        if (gw_encode_response(r->api, r->m, r->route->response_body, msg, len, &r->out, r->err,
                               sizeof(r->err)) != 0) {
            r->bad_response = 1;
            return 1;
        }
        return 0;
    }
    r->n_msgs++;
    if (!r->http_started && stream_begin(r) != 0)
        return 1;
    gw_buf_t json = {0};
    /* (r->out is the line being written; the message JSON goes into its own buffer first) */
    if (gw_encode_response(r->api, r->m, r->route->response_body, msg, len, &json, r->err,
                           sizeof(r->err)) != 0) {
        gw_buf_free(&json);
        r->bad_response = 1;
        return 1;
    }
    stream_write(r, json.data, json.len, NULL);
    gw_buf_free(&json);
    return 0;
}

/* Moves response bytes from the call to the client while the client keeps up. */
static void pump(gw_req_t *r)
{
    if (r->grpc) {
        raw_pump(r);
        return;
    }
    while (r->call && !r->paused && !r->bad_response) {
        const uint8_t *d;
        size_t n = mesh_proxy_call_resp_peek(r->call, &d);
        if (n == 0)
            return;
        int rc = mesh_grpc_deframer_feed(&r->dfr, d, n);
        mesh_proxy_call_resp_consume(r->call, n);
        if (rc < 0 && !r->bad_response) {
            snprintf(r->err, sizeof(r->err),
                     "meshd: gateway: malformed or too large message from the upstream");
            r->bad_response = 1;
        }
    }
    if (r->bad_response && r->call) {
        mesh_proxy_call_cancel(r->call);
        r->call = NULL;
        if (r->http_started) {
            gw_buf_t e = {0};
            if (gw_error_json(MESH_GRPC_INTERNAL, r->err, strlen(r->err), &e) == 0)
                stream_write(r, e.data, e.len, "error");
            gw_buf_free(&e);
            r->conn->out->end(r->conn->c, r->id);
        } else {
            answer_error(r, 502, MESH_GRPC_INTERNAL, r->err, strlen(r->err));
        }
        req_free(r);
    }
}

static void ds_on_data(void *ud, mesh_proxy_call_t *c)
{
    (void)c;
    pump(ud);
}

static void ds_on_end(void *ud, mesh_proxy_call_t *c, int status, const char *msg, size_t ml)
{
    gw_req_t *r = ud;
    r->call = NULL;
    if (r->grpc) {
        raw_end(r, status, msg, ml);
        return;
    }
    if (!mesh_grpc_deframer_idle(&r->dfr) && status == 0) {
        status = MESH_GRPC_INTERNAL;
        msg = "meshd: gateway: the upstream's last message is truncated";
        ml = strlen(msg);
    }
    if (r->streaming) {
        if (r->http_started) {
            if (status != 0)
                stream_error(r, status, msg, ml);
            else
                r->conn->out->end(r->conn->c, r->id);
        } else if (status == 0) {
            collect_meta(r, 0, "Grpc-Metadata-");
            stream_begin(r);
            r->conn->out->end(r->conn->c, r->id);
        } else {
            answer_error(r, 0, status, msg, ml);
        }
        req_free(r);
        return;
    }
    if (status == 0 && r->n_msgs != 1) {
        status = MESH_GRPC_INTERNAL;
        msg = r->n_msgs ? "meshd: gateway: the upstream answered a unary call with several messages"
                        : "meshd: gateway: the upstream answered without a message";
        ml = strlen(msg);
    }
    if (status != 0) {
        answer_error(r, 0, status, msg, ml);
        req_free(r);
        return;
    }
    /* (the call's trailers are readable during on_end) */
    r->call = c;
    collect_meta(r, 1, "Grpc-Trailer-");
    r->call = NULL;
    size_t n;
    const h1_conn_hdr_t *h = resp_headers(r, &json_ct, 1, &n);
    if (h && r->conn->out->respond(r->conn->c, r->id, 200, h, n, (int64_t)r->out.len + 1) == 0) {
        r->conn->out->body(r->conn->c, r->id, r->out.data, r->out.len);
        r->conn->out->body(r->conn->c, r->id, "\n", 1);
        r->conn->out->end(r->conn->c, r->id);
    }
    r->answered = 1;
    req_free(r);
}

/* The call's request buffer drained below half: send the lines waiting, read on. */
static void ds_on_req_drain(void *ud, mesh_proxy_call_t *c)
{
    (void)c;
    gw_req_t *r = ud;
    r->req_full = 0;
    r->drained = 1;
    if (r->grpc && r->body_paused && !r->conn->closing) {
        r->body_paused = 0;
        r->conn->out->resume(r->conn->c, r->id);
        return;
    }
    if (r->req_stream && !r->in_lines)
        stream_lines(r);
}

/* The client's certificate identity, for the filters (identity rules, the caller's ID). */
static const mesh_peer_id_t *ds_peer_identity(void *ud, const mesh_proxy_call_t *c)
{
    (void)c;
    gw_req_t *r = ud;
    return r->conn->peer_id;
}

static const mesh_proxy_downstream_t ds_ops = {
    .on_head = ds_on_head,
    .on_data = ds_on_data,
    .on_end = ds_on_end,
    .on_req_drain = ds_on_req_drain,
    .peer_identity = ds_peer_identity,
};

/* ---- raw gRPC: gRPC's own services on the HTTP port ---------------------------------------- *
 *
 * A request with content-type application/grpc whose path is one of gRPC's own services
 * ("/grpc.", e.g. /grpc.health.v1.Health/Check, grpc.reflection.*) is not transcoded: its bytes
 * go to the engine as they are (mesh_proxy_call_start), which answers it itself (health at the
 * mesh entry, transport/proxy_local.h) or routes it like any gRPC call, and the response's
 * bytes come back as they are, ended by grpc-status and grpc-message trailers. So probes and
 * load balancers can check the gateway on the one port they know. HTTP/2 only (gRPC is). */

static const gw_out_t h2_out; /* (below) */

static const h1_conn_hdr_t grpc_ct = {"content-type", 12, "application/grpc", 16};

/* Whether head is a raw gRPC request for gRPC's own services. */
static int raw_grpc(const h1_conn_head_t *head)
{
    const h1_conn_hdr_t *ct = h1_conn_head_find(head, "content-type");
    return ct && ct->value_len >= 16 && strncasecmp(ct->value, "application/grpc", 16) == 0 &&
           (ct->value_len == 16 || ct->value[16] == '+' || ct->value[16] == ';') &&
           head->target_len > 6 && memcmp(head->target, "/grpc.", 6) == 0;
}

/* The response headers of a raw call (once). */
static void raw_head(gw_req_t *r, int end_stream)
{
    (void)end_stream; /* a Trailers-Only answer: headers now, its status with on_end */
    if (r->http_started)
        return;
    if (r->conn->out->respond(r->conn->c, r->id, 200, &grpc_ct, 1, -1) == 0)
        r->http_started = 1;
}

/* Ends a raw call's response with its status (headers first if none went yet). */
static void raw_finish(gw_req_t *r, int status, const char *msg, size_t ml)
{
    gw_conn_t *k = r->conn;
    raw_head(r, 1);
    char st[12], enc[900];
    snprintf(st, sizeof(st), "%d", status);
    long el = ml ? mesh_grpc_message_encode(msg, ml > 290 ? 290 : ml, enc, sizeof(enc)) : 0;
    h1_conn_hdr_t t[2] = {{"grpc-status", 11, st, strlen(st)},
                          {"grpc-message", 12, enc, el > 0 ? (size_t)el : 0}};
    if (r->http_started && h2s_conn_end_trailers(k->c, r->id, t, el > 0 ? 2 : 1) != 0)
        k->out->end(k->c, r->id);
    r->answered = 1;
}

/* Starts a raw gRPC call for head (HTTP/2 only). */
static void raw_open(gw_req_t *r, const h1_conn_head_t *head)
{
    gw_conn_t *k = r->conn;
    r->grpc = 1;
    if (k->out != &h2_out) {
        answer_errorf(r, 415, MESH_GRPC_UNIMPLEMENTED,
                      "meshd: gateway: gRPC calls need HTTP/2 (this is HTTP/1.1)");
        return;
    }
    uint64_t timeout_ms = 0;
    const h1_conn_hdr_t *tmo = h1_conn_head_find(head, "grpc-timeout");
    uint64_t ns;
    if (tmo && mesh_grpc_timeout_parse(tmo->value, tmo->value_len, &ns) == 0)
        timeout_ms = ns / 1000000 + (ns % 1000000 != 0);
    k->out->body_limit(k->c, r->id, 0); /* the body streams into the call */
    mesh_proxy_call_req_t creq = {
        .path = head->target,
        .path_len = head->target_len,
        .peer = (const struct sockaddr *)&k->peer,
        .timeout_ms = timeout_ms,
    };
    if (mesh_proxy_call_start(k->f->engine, &creq, &ds_ops, r, &r->call) != 0) {
        const char *m = "meshd: gateway: cannot start the call";
        raw_finish(r, MESH_GRPC_INTERNAL, m, strlen(m));
    }
}

/* Moves a raw call's response bytes to the client while it keeps up. */
static void raw_pump(gw_req_t *r)
{
    while (r->call && !r->paused) {
        const uint8_t *d;
        size_t n = mesh_proxy_call_resp_peek(r->call, &d);
        if (n == 0)
            return;
        raw_head(r, 0);
        int rc = r->conn->out->body(r->conn->c, r->id, d, n);
        mesh_proxy_call_resp_consume(r->call, n);
        if (rc == 1)
            r->paused = 1; /* conn_drain pumps again */
    }
}

/* The raw call ended: its status as trailers; r is done. */
static void raw_end(gw_req_t *r, int status, const char *msg, size_t ml)
{
    raw_finish(r, status, msg, ml);
    req_free(r);
}

/* ---- HTTP requests ------------------------------------------------------------------------ */

static int ieq(const char *a, size_t al, const char *b)
{
    size_t bl = strlen(b);
    return al == bl && strncasecmp(a, b, bl) == 0;
}

/* Whether a lower-cased metadata name may be sent upstream (the engine writes the others). */
static int meta_name_ok(const char *n, size_t nl)
{
    static const char *const reserved[] = {
        "content-type", "te",         "grpc-timeout",     "grpc-status",
        "connection",   "keep-alive", "proxy-connection", "transfer-encoding",
        "upgrade",      "host",       "content-length"};
    if (nl == 0)
        return 0;
    for (size_t i = 0; i < nl; i++) {
        char ch = n[i];
        if (ch <= ' ' || ch >= 127 || ch == ':' || (ch >= 'A' && ch <= 'Z'))
            return 0;
    }
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strlen(reserved[i]) == nl && memcmp(reserved[i], n, nl) == 0)
            return 0;
    return 1;
}

static void meta_add(gw_req_t *r, const char *n, size_t nl, const char *v, size_t vl)
{
    char lower[128];
    if (nl >= sizeof(lower) || memchr(v, '\0', vl))
        return;
    for (size_t i = 0; i < nl; i++)
        lower[i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] + 32 : n[i]);
    if (!meta_name_ok(lower, nl))
        return;
    gw_buf_put(&r->meta, lower, nl);
    gw_buf_put(&r->meta, "", 1);
    gw_buf_put(&r->meta, v, vl);
    gw_buf_put(&r->meta, "", 1);
}

/* Whether a request header is on the configured allow-list (--gateway-headers). */
static int allowed(const gw_front_t *f, const char *n, size_t nl)
{
    for (size_t i = 0; i < f->cfg.n_headers; i++)
        if (ieq(n, nl, f->cfg.headers[i]))
            return 1;
    return 0;
}

/* Copies the request headers that become metadata; -1 with r answered on a bad one. */
static int take_headers(gw_req_t *r, const h1_conn_head_t *head)
{
    gw_conn_t *k = r->conn;
    const char *xff = NULL;
    size_t xffl = 0;
    uint64_t xrt = 0;
    for (size_t i = 0; i < head->n_headers; i++) {
        const h1_conn_hdr_t *h = &head->headers[i];
        if (h->name_len > 14 && strncasecmp(h->name, "grpc-metadata-", 14) == 0) {
            meta_add(r, h->name + 14, h->name_len - 14, h->value, h->value_len);
        } else if (ieq(h->name, h->name_len, "authorization") ||
                   ieq(h->name, h->name_len, "x-request-id") ||
                   ieq(h->name, h->name_len, "traceparent") ||
                   ieq(h->name, h->name_len, "tracestate")) {
            meta_add(r, h->name, h->name_len, h->value, h->value_len);
        } else if (allowed(k->f, h->name, h->name_len)) {
            meta_add(r, h->name, h->name_len, h->value, h->value_len);
        } else if (ieq(h->name, h->name_len, "x-forwarded-for")) {
            xff = h->value;
            xffl = h->value_len;
        } else if (ieq(h->name, h->name_len, "grpc-timeout")) {
            uint64_t ns;
            if (mesh_grpc_timeout_parse(h->value, h->value_len, &ns) < 0) {
                answer_errorf(r, 400, MESH_GRPC_INVALID_ARGUMENT,
                              "meshd: gateway: malformed Grpc-Timeout %.*s (e.g. 500m, 2S)",
                              (int)(h->value_len > 32 ? 32 : h->value_len), h->value);
                return -1;
            }
            r->timeout_ms = ns / 1000000 + (ns % 1000000 != 0);
            if (r->timeout_ms == 0)
                r->timeout_ms = 1;
        } else if (ieq(h->name, h->name_len, "x-request-timeout")) {
            if (gw_req_timeout_parse(h->value, h->value_len, &xrt) < 0) {
                answer_errorf(r, 400, MESH_GRPC_INVALID_ARGUMENT,
                              "meshd: gateway: malformed X-Request-Timeout %.*s (seconds as 2 "
                              "or 0.5, or a duration as 1.5s or 200ms)",
                              (int)(h->value_len > 32 ? 32 : h->value_len), h->value);
                return -1;
            }
        } else if (ieq(h->name, h->name_len, "accept")) {
            for (size_t j = 0; j + 17 <= h->value_len; j++)
                if (strncasecmp(h->value + j, "text/event-stream", 17) == 0)
                    r->sse = 1;
        }
    }
    if (k->peer_ip[0]) {
        char v[512]; /* "XFF, PEER" (at most 400 + 2 + INET6_ADDRSTRLEN) */
        size_t n = 0, pl = strlen(k->peer_ip);
        if (xff) {
            n = xffl > 400 ? 400 : xffl;
            memcpy(v, xff, n);
            v[n++] = ',';
            v[n++] = ' ';
        }
        memcpy(v + n, k->peer_ip, pl);
        meta_add(r, "x-forwarded-for", 15, v, n + pl);
    }
    if (!r->timeout_ms)
        r->timeout_ms = xrt; /* Grpc-Timeout wins when both are given */
    uint64_t max = k->f->cfg.max_timeout_ms;
    if (!r->timeout_ms)
        r->timeout_ms = k->f->cfg.default_timeout_ms;
    else if (max && r->timeout_ms > max)
        r->timeout_ms = max;
    return 0;
}

/* What the routing table says of path[0..len) when the API has no route for it: 1 when it is
 * /pkg.Service/Method of a routed service the API does not know (its schema is still being
 * learned: 503, not 404), -1 when no such service is routed at all (404 even before any API),
 * 0 when it cannot tell (not a gRPC path, no table). */
static int learning(const gw_front_t *f, const char *path, size_t len)
{
    const mesh_routes_t *t = mesh_proxy_worker_routes(f->engine);
    const mesh_route_service_t *svc;
    mesh_route_status_t st = t ? mesh_routes_lookup(t, path, len, &svc) : MESH_ROUTE_BAD_PATH;
    if (st == MESH_ROUTE_NO_SERVICE)
        return -1;
    return st == MESH_ROUTE_FOUND && (!f->api || !gw_api_method(f->api, path, len));
}

static void req_head(gw_conn_t *k, uint64_t id, const h1_conn_head_t *head)
{
    gw_front_t *f = k->f;
    gw_req_t *r = req_new(k, id);
    if (!r) {
        k->out->respond_error(k->c, id, 500, "meshd: gateway: out of memory");
        return;
    }
    if (raw_grpc(head)) {
        raw_open(r, head);
        return;
    }
    const char *q = memchr(head->target, '?', head->target_len);
    int pl = (int)(q ? (size_t)(q - head->target) : head->target_len);
    gw_match_t match;
    gw_route_result_t rr = GW_ROUTE_NOT_FOUND;
    if (f->api) {
        r->api = gw_api_ref(f->api);
        rr = gw_routes_lookup(gw_api_routes(r->api), head->method, strlen(head->method),
                              head->target, head->target_len, &match);
    }
    int known = rr == GW_ROUTE_NOT_FOUND ? learning(f, head->target, (size_t)pl) : 0;
    if (known > 0) {
        answer_errorf(r, 503, MESH_GRPC_UNAVAILABLE,
                      "meshd: gateway: the schema of %.*s is not known yet: it is being learned "
                      "from its instances by reflection (GET /v1/gateway/schemas); retry shortly",
                      pl > 200 ? 200 : pl, head->target);
        return;
    }
    if (!f->api && known == 0) {
        answer_errorf(r, 503, MESH_GRPC_UNAVAILABLE, "meshd: gateway: no API schema loaded yet");
        return;
    }
    if (rr == GW_ROUTE_NOT_FOUND) {
        answer_errorf(r, 404, MESH_GRPC_NOT_FOUND, "meshd: gateway: no route for %s %.*s",
                      head->method, pl > 200 ? 200 : pl, head->target);
        return;
    }
    if (rr == GW_ROUTE_METHOD_NOT_ALLOWED) {
        answer_errorf(r, 405, MESH_GRPC_UNIMPLEMENTED,
                      "meshd: gateway: method %s not allowed for %.*s", head->method,
                      pl > 200 ? 200 : pl, head->target);
        return;
    }
    r->route = match.route;
    r->m = gw_api_method(r->api, r->route->grpc_path, strlen(r->route->grpc_path));
    if (!r->m) {
        answer_errorf(r, 404, MESH_GRPC_NOT_FOUND, "meshd: gateway: no method %s",
                      r->route->grpc_path);
        return;
    }
    r->req_stream = r->m->kind == MESH_CALL_CLIENT_STREAMING || r->m->kind == MESH_CALL_BIDI;
    r->streaming = r->m->kind == MESH_CALL_SERVER_STREAMING || r->m->kind == MESH_CALL_BIDI;
    const h1_conn_hdr_t *ct = h1_conn_head_find(head, "content-type");
    if (head->has_body && r->route->body && *r->route->body && ct &&
        !(ct->value_len >= 16 && strncasecmp(ct->value, "application/json", 16) == 0)) {
        answer_errorf(r, 415, MESH_GRPC_INVALID_ARGUMENT,
                      "meshd: gateway: content-type %.*s: the body must be application/json",
                      (int)(ct->value_len > 100 ? 100 : ct->value_len), ct->value);
        return;
    }
    if (take_headers(r, head) != 0)
        return;
    if (gw_encode_params(r->api, r->m, &match, &r->params, r->err, sizeof(r->err)) != 0) {
        answer_errorf(r, 400, MESH_GRPC_INVALID_ARGUMENT, "meshd: gateway: %s", r->err);
        return;
    }
    if (r->req_stream) {
        /* The request's messages follow as its body's lines arrive; the body is consumed as
         * it comes (paused while the call is full), so only a line is bounded by max_body. */
        k->out->body_limit(k->c, id, 0);
        call_open(r);
    }
}

static void req_body(gw_conn_t *k, uint64_t id, const char *data, size_t len)
{
    gw_req_t *r = req_find(k, id);
    if (!r || r->answered)
        return;
    if (r->grpc) {
        if (r->call && mesh_proxy_call_send(r->call, data, len, 0) == 1 && !r->body_paused) {
            r->body_paused = 1; /* until on_req_drain */
            k->out->pause(k->c, id);
        }
        return;
    }
    if (!gw_buf_put(&r->body, data, len)) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        request_failed(r, 500, MESH_GRPC_RESOURCE_EXHAUSTED, "");
        return;
    }
    if (r->req_stream)
        stream_lines(r);
}

/* The client's request is bad (r->err says why, after prefix): answered with status, or for
 * a request stream whose call runs, the call is cancelled and the answer (or, once a streamed
 * answer began, a last error line) says so. */
static void request_failed(gw_req_t *r, int http_status, int code, const char *prefix)
{
    char msg[600];
    snprintf(msg, sizeof(msg), "meshd: gateway: %s%s", prefix, r->err);
    if (r->call) {
        mesh_proxy_call_cancel(r->call);
        r->call = NULL;
    }
    if (r->http_started) {
        stream_error(r, code, msg, strlen(msg));
        r->answered = 1;
    } else {
        answer_error(r, http_status, code, msg, strlen(msg));
    }
}

/* The request message of JSON json (len bytes) plus the path variables and query parameters,
 * framed, in r->pb. 0, or -1 with r answered (or, for a request stream begun, failed). */
static int encode_msg(gw_req_t *r, const char *json, size_t len)
{
    uint8_t prefix[MESH_GRPC_PREFIX_LEN] = {0};
    r->pb.len = 0;
    gw_buf_put(&r->pb, prefix, sizeof(prefix));
    if (gw_encode_body(r->api, r->m, r->route->body, json, len, &r->pb, r->err, sizeof(r->err)) !=
        0) {
        request_failed(r, 400, MESH_GRPC_INVALID_ARGUMENT, "bad request body: ");
        return -1;
    }
    if (!gw_buf_put(&r->pb, r->params.data, r->params.len)) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        request_failed(r, 500, MESH_GRPC_RESOURCE_EXHAUSTED, "");
        return -1;
    }
    mesh_grpc_frame_prefix(r->pb.data, 0, (uint32_t)(r->pb.len - MESH_GRPC_PREFIX_LEN));
    return 0;
}

/* Starts r's call (no request bytes yet). 0, or -1 with r answered. */
static int call_open(gw_req_t *r)
{
    gw_conn_t *k = r->conn;
    const char *p = (const char *)r->meta.data, *end = p ? p + r->meta.len : p;
    while (p < end) {
        mesh_proxy_field_t fl;
        fl.name = p;
        fl.name_len = strlen(p);
        p += fl.name_len + 1;
        fl.value = p;
        fl.value_len = strlen(p);
        p += fl.value_len + 1;
        gw_buf_put(&r->fields, &fl, sizeof(fl));
    }
    mesh_proxy_call_req_t creq = {
        .path = r->route->grpc_path,
        .path_len = strlen(r->route->grpc_path),
        .fields = (const mesh_proxy_field_t *)(void *)r->fields.data,
        .n_fields = r->fields.len / sizeof(mesh_proxy_field_t),
        .peer = (const struct sockaddr *)&k->peer,
        .timeout_ms = r->timeout_ms,
    };
    if (mesh_proxy_call_start(k->f->engine, &creq, &ds_ops, r, &r->call) != 0) {
        answer_errorf(r, 500, MESH_GRPC_INTERNAL, "meshd: gateway: cannot start the call");
        return -1;
    }
    return 0;
}

static void start_call(gw_req_t *r)
{
    if (encode_msg(r, (const char *)r->body.data, r->body.len) != 0 || call_open(r) != 0)
        return;
    if (r->call)
        mesh_proxy_call_send(r->call, r->pb.data, r->pb.len, 1);
}

static void send_lines(gw_req_t *r);

/* Pauses the client's body while the call is full, resumes it otherwise: also once r is
 * answered or its call gone, so the rest of the body is read (and dropped) and the connection
 * or stream moves on. */
static void body_flow(gw_req_t *r)
{
    gw_conn_t *k = r->conn;
    int want = r->req_full && !r->req_done && r->call && !r->answered;
    if (want && !r->body_paused) {
        r->body_paused = 1;
        k->out->pause(k->c, r->id);
    } else if (!want && r->body_paused) {
        r->body_paused = 0;
        k->out->resume(k->c, r->id);
    }
}

/*
 * Sends every complete line of r->body as one request message (the last, unterminated one
 * too once the request ended); blank lines are skipped; then the end of the request stream.
 * Bytes of an unfinished line, and lines the call cannot take yet, stay in r->body.
 *
 * Backpressure: when the call's request buffer is full (mesh_proxy_call_send returned 1) the
 * lines wait and the client's body is paused (HTTP/1.1: the connection stops reading; HTTP/2:
 * the stream's window stays shut), until the call drains (ds_on_req_drain). So a long request
 * stream costs the gateway about one stream buffer, one read and one window, whatever its
 * length; only one line is bounded by max_body.
 */
static void stream_lines(gw_req_t *r)
{
    send_lines(r);
    body_flow(r);
}

/* The sending part of stream_lines. */
static void send_lines(gw_req_t *r)
{
    gw_conn_t *k = r->conn;
    size_t start = 0;
    const char *b = (const char *)r->body.data;
    int end = r->req_done;
    while (r->call && !r->answered && !r->req_full) {
        const char *nl = b ? memchr(b + start, '\n', r->body.len - start) : NULL;
        if (!nl && !end)
            break;
        size_t stop = nl ? (size_t)(nl - b) : r->body.len;
        size_t i = start;
        while (i < stop && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r'))
            i++;
        if (i < stop) {
            if (encode_msg(r, b + start, stop - start) != 0)
                return;
            r->drained = 0;
            r->in_lines = 1;
            int full = mesh_proxy_call_send(r->call, r->pb.data, r->pb.len, 0) == 1;
            r->in_lines = 0;
            if (full && !r->drained)
                r->req_full = 1;
        }
        start = nl ? stop + 1 : r->body.len;
        if (!nl)
            break;
    }
    if (start && r->body.data) {
        memmove(r->body.data, r->body.data + start, r->body.len - start);
        r->body.len -= start;
    }
    if (!r->call || r->answered)
        return;
    uint64_t max_line = k->f->cfg.http.conn.max_body;
    if (!end && max_line && r->body.len > max_line && !memchr(r->body.data, '\n', r->body.len)) {
        snprintf(r->err, sizeof(r->err),
                 "a line of the request stream is over %llu bytes (--gateway-max-body)",
                 (unsigned long long)max_line);
        request_failed(r, 413, MESH_GRPC_RESOURCE_EXHAUSTED, "");
        return;
    }
    if (end && !r->req_full && !r->req_ended && r->body.len == 0) {
        r->req_ended = 1;
        mesh_proxy_call_send(r->call, NULL, 0, 1);
    }
}

static void req_end(gw_conn_t *k, uint64_t id)
{
    gw_req_t *r = req_find(k, id);
    if (!r)
        return;
    if (r->grpc) {
        r->req_done = 1;
        if (r->call)
            mesh_proxy_call_send(r->call, NULL, 0, 1); /* ds_on_end answers and frees r */
        else if (r->answered)
            req_free(r);
        return;
    }
    if (r->answered && !r->call) {
        req_free(r);
        return;
    }
    if (r->req_stream) {
        r->req_done = 1;
        stream_lines(r); /* the call answers (ds_on_end frees r) */
        if (r->answered && !r->call)
            req_free(r);
        return;
    }
    start_call(r);
    if (r->answered && !r->call)
        req_free(r);
}

static void req_error(gw_conn_t *k, uint64_t id)
{
    gw_req_t *r = req_find(k, id);
    if (r)
        req_free(r);
}

static void conn_drain(gw_conn_t *k)
{
    for (gw_req_t *r = k->reqs, *next; r; r = next) {
        next = r->next;
        if (r->paused) {
            r->paused = 0;
            pump(r); /* may free r */
        }
    }
}

/* ---- the two protocols' callbacks and output, onto the one request logic above ----------------
 */

static int h1o_respond(void *c, uint64_t id, int status, const h1_conn_hdr_t *h, size_t n,
                       int64_t cl)
{
    return h1_conn_respond(c, id, status, h, n, cl);
}

static int h1o_body(void *c, uint64_t id, const void *data, size_t len)
{
    return h1_conn_body(c, id, data, len);
}

static int h1o_end(void *c, uint64_t id)
{
    return h1_conn_end(c, id);
}

static int h1o_error(void *c, uint64_t id, int status, const char *message)
{
    return h1_conn_respond_error(c, id, status, message);
}

static void h1o_pause(void *c, uint64_t id)
{
    (void)id; /* one request body at a time is read on an HTTP/1.1 connection */
    h1_conn_pause(c);
}

static void h1o_resume(void *c, uint64_t id)
{
    (void)id;
    h1_conn_resume(c);
}

static void h1o_body_limit(void *c, uint64_t id, uint64_t max_body)
{
    h1_conn_body_limit(c, id, max_body);
}

static const gw_out_t h1_out = {h1o_respond, h1o_body,   h1o_end,       h1o_error,
                                h1o_pause,   h1o_resume, h1o_body_limit};

static int h2o_respond(void *c, uint64_t id, int status, const h1_conn_hdr_t *h, size_t n,
                       int64_t cl)
{
    return h2s_conn_respond(c, id, status, h, n, cl);
}

static int h2o_body(void *c, uint64_t id, const void *data, size_t len)
{
    return h2s_conn_body(c, id, data, len);
}

static int h2o_end(void *c, uint64_t id)
{
    return h2s_conn_end(c, id);
}

static int h2o_error(void *c, uint64_t id, int status, const char *message)
{
    return h2s_conn_respond_error(c, id, status, message);
}

static void h2o_pause(void *c, uint64_t id)
{
    h2s_conn_pause(c, id);
}

static void h2o_resume(void *c, uint64_t id)
{
    h2s_conn_resume(c, id);
}

static void h2o_body_limit(void *c, uint64_t id, uint64_t max_body)
{
    h2s_conn_body_limit(c, id, max_body);
}

static const gw_out_t h2_out = {h2o_respond, h2o_body,   h2o_end,       h2o_error,
                                h2o_pause,   h2o_resume, h2o_body_limit};

static void h1_on_head(void *ud, h1_conn_t *c, uint64_t id, const h1_conn_head_t *head)
{
    (void)c;
    req_head(ud, id, head);
}

static void h1_on_body(void *ud, h1_conn_t *c, uint64_t id, const char *data, size_t len)
{
    (void)c;
    req_body(ud, id, data, len);
}

static void h1_on_end(void *ud, h1_conn_t *c, uint64_t id)
{
    (void)c;
    req_end(ud, id);
}

static void h1_on_error(void *ud, h1_conn_t *c, uint64_t id, int status, const char *why)
{
    (void)c;
    (void)status;
    (void)why;
    req_error(ud, id);
}

static void h1_on_drain(void *ud, h1_conn_t *c)
{
    (void)c;
    conn_drain(ud);
}

static void h2_on_head(void *ud, h2s_conn_t *c, uint64_t id, const h1_conn_head_t *head)
{
    (void)c;
    req_head(ud, id, head);
}

static void h2_on_body(void *ud, h2s_conn_t *c, uint64_t id, const char *data, size_t len)
{
    (void)c;
    req_body(ud, id, data, len);
}

static void h2_on_end(void *ud, h2s_conn_t *c, uint64_t id)
{
    (void)c;
    req_end(ud, id);
}

static void h2_on_error(void *ud, h2s_conn_t *c, uint64_t id, int status, const char *why)
{
    (void)c;
    (void)status;
    (void)why;
    req_error(ud, id);
}

static void h2_on_drain(void *ud, h2s_conn_t *c)
{
    (void)c;
    conn_drain(ud);
}

static void *conn_open(gw_front_t *f, const gw_out_t *out, void *c)
{
    gw_conn_t *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->f = f;
    k->out = out;
    k->c = c;
    const struct sockaddr *sa = h1_srv_peer(f->srv);
    k->peer_id = h1_srv_peer_identity(f->srv);
    if (sa->sa_family == AF_INET) {
        memcpy(&k->peer, sa, sizeof(struct sockaddr_in));
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, k->peer_ip,
                  sizeof(k->peer_ip));
    } else if (sa->sa_family == AF_INET6) {
        memcpy(&k->peer, sa, sizeof(struct sockaddr_in6));
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, k->peer_ip,
                  sizeof(k->peer_ip));
    }
    k->next = f->conns;
    if (f->conns)
        f->conns->prev = k;
    f->conns = k;
    return k;
}

static void *on_open(void *srv_ud, h1_conn_t *c)
{
    return conn_open(srv_ud, &h1_out, c);
}

static void *on_open_h2(void *srv_ud, h2s_conn_t *c)
{
    return conn_open(srv_ud, &h2_out, c);
}

static void on_close(void *conn_ud)
{
    gw_conn_t *k = conn_ud;
    if (!k)
        return;
    k->closing = 1;
    while (k->reqs)
        req_free(k->reqs);
    while (k->free_reqs) {
        gw_req_t *r = k->free_reqs;
        k->free_reqs = r->next;
        req_destroy(r);
    }
    if (k->prev)
        k->prev->next = k->next;
    else
        k->f->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    free(k);
}

/* ---- the front end ------------------------------------------------------------------------ */

uint64_t gw_front_req_buffered(const gw_front_t *f)
{
    uint64_t n = 0;
    for (const gw_conn_t *k = f->conns; k; k = k->next)
        for (const gw_req_t *r = k->reqs; r; r = r->next)
            if (r->req_stream)
                n += r->body.len + (r->call ? mesh_proxy_call_req_buffered(r->call) : 0);
    return n;
}

gw_front_t *gw_front_new(uv_loop_t *loop, mesh_proxy_worker_t *engine, const gw_front_config_t *cfg)
{
    gw_front_t *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->loop = loop;
    f->engine = engine;
    f->cfg = *cfg;
    snprintf(f->host, sizeof(f->host), "%s", cfg->host && *cfg->host ? cfg->host : "0.0.0.0");
    f->cfg.host = f->host;
    f->cfg.n_headers = 0;
    for (size_t i = 0; i < cfg->n_headers && i < GW_FRONT_MAX_HEADERS; i++) {
        snprintf(f->hname[i], sizeof(f->hname[i]), "%s", cfg->headers[i]);
        f->hptr[f->cfg.n_headers++] = f->hname[i];
    }
    f->cfg.headers = f->hptr;
    h1_srv_config_t hc = cfg->http;
    hc.reuseport = 1;
    if (!hc.name)
        hc.name = ACTOR;
    h1_srv_handler_t h = {
        .on_open = on_open,
        .on_close = on_close,
        .cbs = {.on_head = h1_on_head,
                .on_body = h1_on_body,
                .on_end = h1_on_end,
                .on_error = h1_on_error,
                .on_drain = h1_on_drain},
        .on_open_h2 = on_open_h2,
        .h2cbs = {.on_head = h2_on_head,
                  .on_body = h2_on_body,
                  .on_end = h2_on_end,
                  .on_error = h2_on_error,
                  .on_drain = h2_on_drain},
    };
    f->srv = h1_srv_new(loop, &hc, &h, f);
    if (!f->srv) {
        free(f);
        return NULL;
    }
    int rc = h1_srv_listen(f->srv, f->host, cfg->port);
    if (rc < 0) {
        mesh_error(ACTOR, "worker %d: cannot listen on %s:%d: %s", cfg->worker_index, f->host,
                   cfg->port, uv_strerror(rc));
        f->freeing = 1;
        h1_srv_close(f->srv, NULL, NULL);
        free(f);
        return NULL;
    }
    mesh_info(ACTOR, "worker %d: HTTP/JSON on %s:%d", cfg->worker_index, f->host,
              h1_srv_port(f->srv));
    return f;
}

int gw_front_port(const gw_front_t *f)
{
    return f->srv ? h1_srv_port(f->srv) : -1;
}

void gw_front_set_api(gw_front_t *f, gw_api_t *api)
{
    gw_api_unref(f->api);
    f->api = api;
}

static void on_srv_closed(void *ud)
{
    gw_front_t *f = ud;
    f->srv = NULL;
    if (f->drain_done) {
        void (*done)(void *) = f->drain_done;
        f->drain_done = NULL;
        done(f->drain_arg);
    }
    if (f->freeing) {
        gw_api_unref(f->api);
        free(f);
    }
}

void gw_front_drain(gw_front_t *f, void (*done)(void *), void *arg)
{
    f->drain_done = done;
    f->drain_arg = arg;
    /* long-lived calls the engine answers itself (health's Watch) end now: the front's drain
     * waits for its requests, and the engine's own GOAWAY comes only after it */
    mesh_proxy_worker_end_local_calls(f->engine);
    if (f->srv)
        h1_srv_shutdown(f->srv, on_srv_closed, f);
    else
        on_srv_closed(f);
}

void gw_front_free(gw_front_t *f)
{
    f->drain_done = NULL;
    f->freeing = 1;
    /* cancel every call now, while the engine still runs */
    for (gw_conn_t *k = f->conns; k; k = k->next)
        for (gw_req_t *r = k->reqs; r; r = r->next)
            if (r->call) {
                mesh_proxy_call_cancel(r->call);
                r->call = NULL;
            }
    if (f->srv)
        h1_srv_close(f->srv, on_srv_closed, f);
    else
        on_srv_closed(f);
}
