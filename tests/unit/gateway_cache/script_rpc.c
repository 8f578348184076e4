/*
 * tests/unit/gateway_cache/script_rpc.c: the scripted world of script_rpc.h.
 *
 * Seams and their calls are kept until the world is freed (a freed seam is only marked), so a
 * scheduled answer can always check whether its call is still wanted.
 */
#include "script_rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

typedef struct sr_call {
    struct sr_call *next;
    uint64_t tag;
    int live;
    int alpha;
} sr_call_t;

typedef struct sr_rpc {
    mesh_rpc_t super;
    struct sr_rpc *next;
    sr_world_t *w;
    char *addr;
    int live;
    sr_call_t *calls;
} sr_rpc_t;

struct sr_app {
    struct sr_app *next;
    char *addr; /* NULL: the default app */
    sr_mode_t mode;
    uint8_t **data;
    size_t *len;
    char **fname; /* each file's name */
    char **svcs;  /* each file's services, full names separated by '\n' */
    size_t n;
    unsigned calls;
};

typedef struct sr_pkt {
    struct sr_pkt *next;
    sr_rpc_t *rpc;
    mesh_rpc_event_t *ev;
} sr_pkt_t;

struct sr_world {
    mesh_exec_t *sim;
    uint64_t latency;
    sr_app_t *apps;
    sr_app_t *dflt;
    sr_rpc_t *rpcs;
    sr_pkt_t *pkts; /* every packet, freed with the world */
    unsigned calls;
};

static void *xcalloc(size_t n, size_t s)
{
    void *p = calloc(n ? n : 1, s);
    if (!p)
        abort();
    return p;
}

static void app_clear(sr_app_t *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->data[i]);
        free(a->fname[i]);
        free(a->svcs[i]);
    }
    free(a->data);
    free(a->len);
    free(a->fname);
    free(a->svcs);
    a->data = NULL;
    a->len = NULL;
    a->fname = a->svcs = NULL;
    a->n = 0;
}

sr_world_t *sr_world_new(mesh_exec_t *sim, uint64_t latency_ns)
{
    sr_world_t *w = xcalloc(1, sizeof(*w));
    w->sim = sim;
    w->latency = latency_ns;
    w->dflt = xcalloc(1, sizeof(*w->dflt));
    return w;
}

void sr_world_free(sr_world_t *w)
{
    if (!w)
        return;
    for (sr_app_t *a = w->apps, *n; a; a = n) {
        n = a->next;
        app_clear(a);
        free(a->addr);
        free(a);
    }
    app_clear(w->dflt);
    free(w->dflt);
    for (sr_rpc_t *r = w->rpcs, *n; r; r = n) {
        n = r->next;
        for (sr_call_t *c = r->calls, *cn; c; c = cn) {
            cn = c->next;
            free(c);
        }
        free(r->addr);
        free(r);
    }
    for (sr_pkt_t *p = w->pkts, *n; p; p = n) {
        n = p->next;
        mesh_rpc_event_free(p->ev);
        free(p);
    }
    free(w);
}

sr_app_t *sr_app(sr_world_t *w, const char *addr)
{
    if (!addr)
        return w->dflt;
    for (sr_app_t *a = w->apps; a; a = a->next)
        if (strcmp(a->addr, addr) == 0)
            return a;
    sr_app_t *a = xcalloc(1, sizeof(*a));
    a->addr = strdup(addr);
    a->next = w->apps;
    w->apps = a;
    return a;
}

static sr_app_t *app_at(sr_world_t *w, const char *addr)
{
    for (sr_app_t *a = w->apps; a; a = a->next)
        if (strcmp(a->addr, addr) == 0)
            return a;
    return w->dflt;
}

void sr_app_set_mode(sr_app_t *a, sr_mode_t mode)
{
    a->mode = mode;
}

void sr_app_set_files(sr_app_t *a, const sr_file_t *files, size_t n)
{
    app_clear(a);
    a->data = xcalloc(n, sizeof(*a->data));
    a->len = xcalloc(n, sizeof(*a->len));
    a->fname = xcalloc(n, sizeof(*a->fname));
    a->svcs = xcalloc(n, sizeof(*a->svcs));
    for (size_t i = 0; i < n; i++) {
        Google__Protobuf__FileDescriptorProto *f =
            google__protobuf__file_descriptor_proto__unpack(NULL, files[i].len, files[i].data);
        if (!f)
            abort();
        a->fname[i] = strdup(f->name);
        size_t cap = 2;
        for (size_t k = 0; k < f->n_service; k++)
            cap += strlen(f->package ? f->package : "") + strlen(f->service[k]->name) + 3;
        a->svcs[i] = xcalloc(cap, 1);
        for (size_t k = 0; k < f->n_service; k++) {
            strcat(a->svcs[i], "\n");
            if (f->package && f->package[0]) {
                strcat(a->svcs[i], f->package);
                strcat(a->svcs[i], ".");
            }
            strcat(a->svcs[i], f->service[k]->name);
        }
        strcat(a->svcs[i], "\n");
        google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
        a->data[i] = malloc(files[i].len ? files[i].len : 1);
        if (!a->data[i])
            abort();
        memcpy(a->data[i], files[i].data, files[i].len);
        a->len[i] = files[i].len;
    }
    a->n = n;
}

unsigned sr_app_calls(const sr_app_t *a)
{
    return a->calls;
}

unsigned sr_world_calls(const sr_world_t *w)
{
    return w->calls;
}

/* ---- answers -------------------------------------------------------------------------------- */

static sr_call_t *call_of(sr_rpc_t *r, uint64_t tag)
{
    for (sr_call_t *c = r->calls; c; c = c->next)
        if (c->tag == tag)
            return c;
    return NULL;
}

static void at_client(void *arg)
{
    sr_pkt_t *p = arg;
    mesh_rpc_event_t *ev = p->ev;
    sr_call_t *c = call_of(p->rpc, ev->tag);
    if (!p->rpc->live || !c || !c->live)
        return; /* freed with the world */
    if (ev->kind == MESH_RPC_END)
        c->live = 0;
    p->ev = NULL;
    p->rpc->super.deliver(p->rpc->super.ud, ev);
}

static void schedule(sr_rpc_t *r, mesh_rpc_event_t *ev)
{
    if (!ev)
        abort();
    sr_pkt_t *p = xcalloc(1, sizeof(*p));
    p->rpc = r;
    p->ev = ev;
    p->next = r->w->pkts;
    r->w->pkts = p;
    if (mesh_sim_call_at(r->w->sim, mesh_sim_now(r->w->sim) + r->w->latency, at_client, p) < 0)
        abort();
}

static void end_call(sr_rpc_t *r, uint64_t tag, int status, mesh_grpc_conn_reason_t reason,
                     const char *text)
{
    mesh_rpc_event_t *ev = mesh_rpc_event_new(MESH_RPC_END, tag, text, NULL, 0);
    if (!ev)
        abort();
    ev->status = status;
    ev->reason = reason;
    schedule(r, ev);
}

/* The file of app a defining service svc ("pkg.Name"), or -1. */
static int file_of_service(const sr_app_t *a, const char *svc)
{
    char key[300];
    snprintf(key, sizeof(key), "\n%s\n", svc);
    for (size_t i = 0; i < a->n; i++)
        if (strstr(a->svcs[i], key))
            return (int)i;
    return -1;
}

static int file_by_name(const sr_app_t *a, const char *name)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->fname[i], name) == 0)
            return (int)i;
    return -1;
}

static void answer(sr_rpc_t *r, uint64_t tag, const uint8_t *msg, size_t len)
{
    sr_app_t *a = app_at(r->w, r->addr);
    Grpc__Reflection__V1__ServerReflectionRequest *req =
        grpc__reflection__v1__server_reflection_request__unpack(NULL, len, msg);
    Grpc__Reflection__V1__ServerReflectionResponse resp =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    Grpc__Reflection__V1__FileDescriptorResponse fr =
        GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
    Grpc__Reflection__V1__ErrorResponse er = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
    ProtobufCBinaryData one;
    int ix = -1;
    if (req &&
        req->message_request_case ==
            GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL)
        ix = file_of_service(a, req->file_containing_symbol);
    else if (req &&
             req->message_request_case ==
                 GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME)
        ix = file_by_name(a, req->file_by_filename);
    if (ix >= 0) {
        one.data = a->data[ix];
        one.len = a->len[ix];
        fr.n_file_descriptor_proto = 1;
        fr.file_descriptor_proto = &one;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        resp.file_descriptor_response = &fr;
    } else {
        er.error_code = 5;
        er.error_message = "not found";
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        resp.error_response = &er;
    }
    size_t n = grpc__reflection__v1__server_reflection_response__get_packed_size(&resp);
    uint8_t *buf = xcalloc(n, 1);
    grpc__reflection__v1__server_reflection_response__pack(&resp, buf);
    schedule(r, mesh_rpc_event_new(MESH_RPC_MESSAGE, tag, NULL, buf, n));
    free(buf);
    if (req)
        grpc__reflection__v1__server_reflection_request__free_unpacked(req, NULL);
}

/* ---- the seam ------------------------------------------------------------------------------- */

static void op_connect(mesh_rpc_t *rpc)
{
    (void)rpc;
}

static int op_call_start(mesh_rpc_t *rpc, uint64_t tag, const char *path, uint64_t timeout_ms)
{
    (void)timeout_ms;
    sr_rpc_t *r = (sr_rpc_t *)rpc;
    if (!r->live || !path)
        return -1;
    sr_app_t *a = app_at(r->w, r->addr);
    sr_call_t *c = xcalloc(1, sizeof(*c));
    c->tag = tag;
    c->live = 1;
    c->alpha = strcmp(path, MESH_REFLECT_V1ALPHA_PATH) == 0;
    c->next = r->calls;
    r->calls = c;
    a->calls++;
    r->w->calls++;
    switch (a->mode) {
    case SR_SERVE:
        break;
    case SR_V1ALPHA_ONLY:
        if (!c->alpha)
            end_call(r, tag, 12, MESH_GRPC_CONN_OK, "unknown service");
        break;
    case SR_NO_REFLECTION:
        end_call(r, tag, 12, MESH_GRPC_CONN_OK, "unknown service");
        break;
    case SR_SILENT:
        break;
    case SR_REFUSE:
        end_call(r, tag, 14, MESH_GRPC_CONN_REFUSED, "connection refused");
        break;
    }
    return 0;
}

static int op_call_send(mesh_rpc_t *rpc, uint64_t tag, const uint8_t *msg, size_t len)
{
    sr_rpc_t *r = (sr_rpc_t *)rpc;
    sr_call_t *c = call_of(r, tag);
    if (!r->live || !c || !c->live)
        return -1;
    sr_app_t *a = app_at(r->w, r->addr);
    if (a->mode == SR_SERVE || (a->mode == SR_V1ALPHA_ONLY && c->alpha))
        answer(r, tag, msg, len);
    return 0;
}

static void op_call_close_send(mesh_rpc_t *rpc, uint64_t tag)
{
    (void)rpc;
    (void)tag;
}

static void op_call_cancel(mesh_rpc_t *rpc, uint64_t tag)
{
    sr_call_t *c = call_of((sr_rpc_t *)rpc, tag);
    if (c)
        c->live = 0;
}

static void op_free(mesh_rpc_t *rpc)
{
    ((sr_rpc_t *)rpc)->live = 0;
}

static const mesh_rpc_ops_t sr_ops = {
    .connect = op_connect,
    .call_start = op_call_start,
    .call_send = op_call_send,
    .call_close_send = op_call_close_send,
    .call_cancel = op_call_cancel,
    .free = op_free,
};

mesh_rpc_t *sr_factory(void *arg, mesh_actor_t *self, const char *addr, mesh_rpc_deliver_fn deliver,
                       void *deliver_ud)
{
    (void)self;
    sr_world_t *w = arg;
    sr_rpc_t *r = xcalloc(1, sizeof(*r));
    r->super.ops = &sr_ops;
    r->super.deliver = deliver;
    r->super.ud = deliver_ud;
    r->w = w;
    r->addr = strdup(addr);
    r->live = 1;
    r->next = w->rpcs;
    w->rpcs = r;
    return &r->super;
}
