/*
 * grpc/reflect_server.c: the index and the answers behind grpc/reflect_server.h.
 *
 * The index is built once per snapshot on the control loop (it allocates freely): every file of
 * the pool, and the embedded files of gRPC's own services the pool lacks, is packed again into
 * its own bytes, its imports resolved to indexes, and two sorted arrays are
 * made, symbols (name -> file) and extensions ((extended type, number) -> file). Answers
 * (worker threads) decode the request with protobuf-c, look up by binary search and pack one
 * response; they allocate only that request's buffers, never the index (it is immutable and
 * shared by reference).
 */
#include "grpc/reflect_server.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/reflection/v1/reflection.pb-c.h"

/* The embedded FileDescriptorSet of health.proto and both reflection.proto (grpc/CMakeLists). */
extern const unsigned char mesh_grpc_infra_set_bytes[];
extern const size_t mesh_grpc_infra_set_bytes_len;

typedef Grpc__Reflection__V1__ServerReflectionRequest req_t;
typedef Grpc__Reflection__V1__ServerReflectionResponse resp_t;

/* The longest name, file name or message the answers accept or produce. */
#define NAME_MAX_LEN 1024

typedef struct {
    char *name;
    uint8_t *data;
    size_t len;
    size_t *deps; /* indexes of the imported files the index holds */
    size_t n_deps;
    char *conflict; /* NULL, or why this file cannot be answered */
} rfile_t;

typedef struct {
    char *name; /* fully qualified, no leading dot */
    size_t file;
} rsym_t;

typedef struct {
    char *extendee; /* fully qualified, no leading dot */
    int32_t number;
    size_t file;
} rext_t;

struct mesh_rsrv_index {
    atomic_size_t refs;
    uint64_t generation;
    rfile_t *files; /* sorted by name */
    size_t n_files;
    rsym_t *syms; /* sorted by name */
    size_t n_syms, cap_syms;
    rext_t *exts; /* sorted by (extendee, number) */
    size_t n_exts, cap_exts;
    char **unf; /* unfetchable services: name, why, name, why, ... */
    size_t n_unf;
};

/* ---- building ---- */

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = n;
    return 0;
}

static char *join(const char *scope, const char *name)
{
    if (!name)
        return NULL;
    size_t a = scope ? strlen(scope) : 0, b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s)
        return NULL;
    if (a) {
        memcpy(s, scope, a);
        s[a] = '.';
        memcpy(s + a + 1, name, b + 1);
    } else {
        memcpy(s, name, b + 1);
    }
    return s;
}

/* Adds scope.name as a symbol of file (takes nothing: copies). */
static int add_sym(mesh_rsrv_index_t *ix, const char *scope, const char *name, size_t file)
{
    char *full = join(scope, name);
    if (!full || grow((void **)&ix->syms, &ix->cap_syms, ix->n_syms + 1, sizeof(rsym_t)) < 0) {
        free(full);
        return -1;
    }
    ix->syms[ix->n_syms++] = (rsym_t){full, file};
    return 0;
}

static int add_ext(mesh_rsrv_index_t *ix, const Google__Protobuf__FieldDescriptorProto *f,
                   const char *scope, size_t file)
{
    if (add_sym(ix, scope, f->name, file) < 0)
        return -1;
    if (!f->extendee || !f->has_number)
        return 0;
    const char *e = f->extendee[0] == '.' ? f->extendee + 1 : f->extendee;
    char *copy = strdup(e);
    if (!copy || grow((void **)&ix->exts, &ix->cap_exts, ix->n_exts + 1, sizeof(rext_t)) < 0) {
        free(copy);
        return -1;
    }
    ix->exts[ix->n_exts++] = (rext_t){copy, f->number, file};
    return 0;
}

static int index_enum(mesh_rsrv_index_t *ix, const Google__Protobuf__EnumDescriptorProto *e,
                      const char *scope, size_t file)
{
    if (add_sym(ix, scope, e->name, file) < 0)
        return -1;
    /* enum values live in the enum's enclosing scope, as in C++ */
    for (size_t i = 0; i < e->n_value; i++)
        if (e->value[i]->name && add_sym(ix, scope, e->value[i]->name, file) < 0)
            return -1;
    return 0;
}

static int index_message(mesh_rsrv_index_t *ix, const Google__Protobuf__DescriptorProto *m,
                         const char *scope, size_t file, int depth)
{
    if (!m->name || depth > 64)
        return 0;
    char *full = join(scope, m->name);
    if (!full || add_sym(ix, NULL, full, file) < 0) {
        free(full);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < m->n_field; i++)
        if (m->field[i]->name)
            rc = add_sym(ix, full, m->field[i]->name, file);
    for (size_t i = 0; rc == 0 && i < m->n_oneof_decl; i++)
        if (m->oneof_decl[i]->name)
            rc = add_sym(ix, full, m->oneof_decl[i]->name, file);
    for (size_t i = 0; rc == 0 && i < m->n_extension; i++)
        if (m->extension[i]->name)
            rc = add_ext(ix, m->extension[i], full, file);
    for (size_t i = 0; rc == 0 && i < m->n_enum_type; i++)
        if (m->enum_type[i]->name)
            rc = index_enum(ix, m->enum_type[i], full, file);
    for (size_t i = 0; rc == 0 && i < m->n_nested_type; i++)
        rc = index_message(ix, m->nested_type[i], full, file, depth + 1);
    free(full);
    return rc;
}

static int index_file(mesh_rsrv_index_t *ix, const Google__Protobuf__FileDescriptorProto *f,
                      size_t file)
{
    const char *pkg = f->package && f->package[0] ? f->package : NULL;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < f->n_message_type; i++)
        rc = index_message(ix, f->message_type[i], pkg, file, 0);
    for (size_t i = 0; rc == 0 && i < f->n_enum_type; i++)
        if (f->enum_type[i]->name)
            rc = index_enum(ix, f->enum_type[i], pkg, file);
    for (size_t i = 0; rc == 0 && i < f->n_extension; i++)
        if (f->extension[i]->name)
            rc = add_ext(ix, f->extension[i], pkg, file);
    for (size_t i = 0; rc == 0 && i < f->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *s = f->service[i];
        if (!s->name)
            continue;
        char *full = join(pkg, s->name);
        rc = full ? add_sym(ix, NULL, full, file) : -1;
        for (size_t k = 0; rc == 0 && k < s->n_method; k++)
            if (s->method[k]->name)
                rc = add_sym(ix, full, s->method[k]->name, file);
        free(full);
    }
    return rc;
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const rfile_t *)a)->name, ((const rfile_t *)b)->name);
}

static int cmp_sym(const void *a, const void *b)
{
    const rsym_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    /* one name defined twice: the first file (by name) answers, deterministically */
    return c ? c : (x->file > y->file) - (x->file < y->file);
}

static int cmp_ext(const void *a, const void *b)
{
    const rext_t *x = a, *y = b;
    int c = strcmp(x->extendee, y->extendee);
    if (c)
        return c;
    return (x->number > y->number) - (x->number < y->number);
}

static const rfile_t *find_file(const mesh_rsrv_index_t *ix, const char *name)
{
    size_t lo = 0, hi = ix->n_files;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, ix->files[mid].name);
        if (c == 0)
            return &ix->files[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* The first symbol entry of name (lowest file), or NULL. */
static const rsym_t *find_sym(const mesh_rsrv_index_t *ix, const char *name)
{
    size_t lo = 0, hi = ix->n_syms;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ix->syms[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ix->n_syms && strcmp(ix->syms[lo].name, name) == 0 ? &ix->syms[lo] : NULL;
}

/* The first extension entry of extendee (with number >= number), as an index. */
static size_t ext_lower(const mesh_rsrv_index_t *ix, const char *extendee, int32_t number)
{
    rext_t key = {(char *)extendee, number, 0};
    size_t lo = 0, hi = ix->n_exts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_ext(&ix->exts[mid], &key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The pool's files, then the embedded files of gRPC's own services the pool lacks. */
static const Google__Protobuf__FileDescriptorProto **
all_files(const mesh_desc_pool_t *pool, const Google__Protobuf__FileDescriptorSet *infra, size_t *n)
{
    size_t np = pool ? mesh_desc_pool_file_count(pool) : 0, ni = infra ? infra->n_file : 0;
    const Google__Protobuf__FileDescriptorProto **all = malloc((np + ni + 1) * sizeof(*all));
    if (!all)
        return NULL;
    *n = 0;
    for (size_t i = 0; i < np; i++)
        all[(*n)++] = mesh_desc_pool_file(pool, i);
    for (size_t i = 0; i < ni; i++)
        if (infra->file[i]->name && !(pool && mesh_desc_pool_find_file(pool, infra->file[i]->name)))
            all[(*n)++] = infra->file[i];
    return all;
}

mesh_rsrv_index_t *mesh_rsrv_index_new(const mesh_desc_pool_t *pool, uint64_t generation)
{
    mesh_rsrv_index_t *ix = calloc(1, sizeof(*ix));
    if (ix)
        atomic_init(&ix->refs, 1);
    Google__Protobuf__FileDescriptorSet *infra = google__protobuf__file_descriptor_set__unpack(
        NULL, mesh_grpc_infra_set_bytes_len, mesh_grpc_infra_set_bytes);
    size_t n = 0;
    const Google__Protobuf__FileDescriptorProto **all = ix ? all_files(pool, infra, &n) : NULL;
    if (!ix || !all)
        goto fail;
    ix->generation = generation;
    if (n) {
        ix->files = calloc(n, sizeof(rfile_t));
        if (!ix->files)
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const Google__Protobuf__FileDescriptorProto *f = all[i];
        if (!f->name)
            continue;
        rfile_t *rf = &ix->files[ix->n_files];
        size_t len = google__protobuf__file_descriptor_proto__get_packed_size(f);
        rf->name = strdup(f->name);
        rf->data = malloc(len ? len : 1);
        if (!rf->name || !rf->data) {
            ix->n_files++;
            goto fail;
        }
        rf->len = google__protobuf__file_descriptor_proto__pack(f, rf->data);
        ix->n_files++;
    }
    if (ix->n_files) /* qsort wants a valid pointer even for no elements */
        qsort(ix->files, ix->n_files, sizeof(rfile_t), cmp_file);
    /* imports and symbols, by the sorted file indexes */
    for (size_t i = 0; i < n; i++) {
        const Google__Protobuf__FileDescriptorProto *f = all[i];
        if (!f->name)
            continue;
        size_t at = (size_t)(find_file(ix, f->name) - ix->files);
        rfile_t *rf = &ix->files[at];
        if (f->n_dependency) {
            rf->deps = calloc(f->n_dependency, sizeof(size_t));
            if (!rf->deps)
                goto fail;
        }
        for (size_t d = 0; d < f->n_dependency; d++) {
            const rfile_t *dep = f->dependency[d] ? find_file(ix, f->dependency[d]) : NULL;
            if (dep)
                rf->deps[rf->n_deps++] = (size_t)(dep - ix->files);
        }
        if (index_file(ix, f, at) < 0)
            goto fail;
    }
    if (ix->n_syms)
        qsort(ix->syms, ix->n_syms, sizeof(rsym_t), cmp_sym);
    if (ix->n_exts)
        qsort(ix->exts, ix->n_exts, sizeof(rext_t), cmp_ext);
    free(all);
    if (infra)
        google__protobuf__file_descriptor_set__free_unpacked(infra, NULL);
    return ix;
fail:
    free(all);
    if (infra)
        google__protobuf__file_descriptor_set__free_unpacked(infra, NULL);
    if (ix)
        mesh_rsrv_index_unref(ix);
    return NULL;
}

int mesh_rsrv_index_add_unfetchable(mesh_rsrv_index_t *ix, const char *service, const char *why)
{
    char **p = realloc(ix->unf, (ix->n_unf + 2) * sizeof(*p));
    if (!p)
        return -1;
    ix->unf = p;
    p[ix->n_unf] = strdup(service);
    p[ix->n_unf + 1] = strdup(why ? why : "");
    if (!p[ix->n_unf] || !p[ix->n_unf + 1]) {
        free(p[ix->n_unf]);
        free(p[ix->n_unf + 1]);
        return -1;
    }
    ix->n_unf += 2;
    return 0;
}

int mesh_rsrv_index_has_service(const mesh_rsrv_index_t *ix, const char *service)
{
    if (!ix)
        return 0;
    if (find_sym(ix, service))
        return 1;
    for (size_t i = 0; i < ix->n_unf; i += 2)
        if (strcmp(ix->unf[i], service) == 0)
            return 1;
    return 0;
}

int mesh_rsrv_index_add_conflict(mesh_rsrv_index_t *ix, const char *file, const char *message)
{
    rfile_t *f = (rfile_t *)find_file(ix, file);
    if (!f)
        return 0;
    char *m = strdup(message);
    if (!m)
        return -1;
    free(f->conflict);
    f->conflict = m;
    return 0;
}

mesh_rsrv_index_t *mesh_rsrv_index_ref(mesh_rsrv_index_t *ix)
{
    atomic_fetch_add_explicit(&ix->refs, 1, memory_order_relaxed);
    return ix;
}

void mesh_rsrv_index_unref(mesh_rsrv_index_t *ix)
{
    if (!ix || atomic_fetch_sub_explicit(&ix->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < ix->n_files; i++) {
        free(ix->files[i].name);
        free(ix->files[i].data);
        free(ix->files[i].deps);
        free(ix->files[i].conflict);
    }
    for (size_t i = 0; i < ix->n_syms; i++)
        free(ix->syms[i].name);
    for (size_t i = 0; i < ix->n_exts; i++)
        free(ix->exts[i].extendee);
    for (size_t i = 0; i < ix->n_unf; i++)
        free(ix->unf[i]);
    free(ix->files);
    free(ix->syms);
    free(ix->exts);
    free(ix->unf);
    free(ix);
}

uint64_t mesh_rsrv_index_generation(const mesh_rsrv_index_t *ix)
{
    return ix ? ix->generation : 0;
}

size_t mesh_rsrv_index_files(const mesh_rsrv_index_t *ix)
{
    return ix ? ix->n_files : 0;
}

size_t mesh_rsrv_index_symbols(const mesh_rsrv_index_t *ix)
{
    return ix ? ix->n_syms : 0;
}

/* ---- answering ---- */

typedef struct {
    resp_t resp;
    Grpc__Reflection__V1__ErrorResponse error;
    Grpc__Reflection__V1__FileDescriptorResponse fdr;
    Grpc__Reflection__V1__ExtensionNumberResponse enr;
    Grpc__Reflection__V1__ListServiceResponse lsr;
    char msg[NAME_MAX_LEN + 256];
} answer_t;

static void set_error(answer_t *a, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(answer_t *a, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->msg, sizeof(a->msg), fmt, ap);
    va_end(ap);
    a->error.error_code = code;
    a->error.error_message = a->msg;
    a->resp.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    a->resp.error_response = &a->error;
}

/* The service of names[0..n) whose package (or own name) covers symbol, longest match first
 * (names are "pkg.Svc"; step 1 for a plain list, 2 for name/why pairs), or -1. */
static long covering(const char *const *names, size_t n, size_t step, const char *symbol)
{
    long best = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < n; i += step) {
        const char *s = names[i];
        const char *dot = strrchr(s, '.');
        size_t plen = dot ? (size_t)(dot - s) : 0; /* the service's package */
        size_t slen = strlen(s);
        size_t m;
        if (strncmp(symbol, s, slen) == 0 && (symbol[slen] == 0 || symbol[slen] == '.'))
            m = slen + 1; /* under the service's own name: the best match */
        else if (plen == 0 || (strncmp(symbol, s, plen) == 0 && symbol[plen] == '.'))
            m = plen;
        else
            continue;
        if (best < 0 || m > best_len) {
            best = (long)i;
            best_len = m;
        }
    }
    return best;
}

typedef struct {
    const char *const *pending;
    size_t n_pending;
    int may_hold;
} ask_t;

/* A miss on name: HOLD when a pending service covers it and the caller may wait, else a
 * NOT_FOUND naming what is missing (and why, when the descriptors are not fetched yet or
 * cannot be). */
static mesh_rsrv_result_t miss(const mesh_rsrv_index_t *ix, answer_t *a, const ask_t *q,
                               const char *what, const char *name, int by_symbol)
{
    const char *owner = NULL;
    if (by_symbol) {
        long i = covering(q->pending, q->n_pending, 1, name);
        owner = i >= 0 ? q->pending[i] : NULL;
    } else if (q->n_pending) {
        owner = q->pending[0];
    }
    if (owner && q->may_hold)
        return MESH_RSRV_HOLD;
    if (owner) {
        char more[64] = "";
        if (!by_symbol && q->n_pending > 1)
            snprintf(more, sizeof(more), " and %zu more service%s", q->n_pending - 1,
                     q->n_pending == 2 ? "" : "s");
        set_error(a, MESH_RSRV_NOT_FOUND,
                  "meshd: %s '%.*s' not found: the descriptors of %s%s are not fetched yet", what,
                  NAME_MAX_LEN, name, owner, more);
        return MESH_RSRV_ANSWER;
    }
    long u = ix && by_symbol ? covering((const char *const *)ix->unf, ix->n_unf, 2, name) : -1;
    if (u >= 0)
        set_error(a, MESH_RSRV_NOT_FOUND, "meshd: %s '%.*s' not found: service %s: %s", what,
                  NAME_MAX_LEN, name, ix->unf[u], ix->unf[u + 1]);
    else
        set_error(a, MESH_RSRV_NOT_FOUND, "meshd: %s '%.*s' not found", what, NAME_MAX_LEN, name);
    return MESH_RSRV_ANSWER;
}

/* The files of an answer: start, then its imports transitively, each once (breadth first). */
static mesh_rsrv_result_t answer_files(const mesh_rsrv_index_t *ix, answer_t *a, size_t start,
                                       size_t **order_out, ProtobufCBinaryData **bins_out)
{
    size_t *order = malloc(ix->n_files * sizeof(size_t));
    uint8_t *seen = calloc(ix->n_files, 1);
    ProtobufCBinaryData *bins = malloc(ix->n_files * sizeof(*bins));
    if (!order || !seen || !bins) {
        free(order);
        free(seen);
        free(bins);
        return MESH_RSRV_BAD;
    }
    size_t n = 0;
    order[n++] = start;
    seen[start] = 1;
    for (size_t i = 0; i < n; i++) {
        const rfile_t *f = &ix->files[order[i]];
        for (size_t d = 0; d < f->n_deps; d++)
            if (!seen[f->deps[d]]) {
                seen[f->deps[d]] = 1;
                order[n++] = f->deps[d];
            }
    }
    free(seen);
    for (size_t i = 0; i < n; i++) {
        const rfile_t *f = &ix->files[order[i]];
        if (f->conflict) {
            set_error(a, MESH_RSRV_FAILED_PRECONDITION, "meshd: %s%s: %s", f->name,
                      i ? " (imported by the file asked for)" : "", f->conflict);
            free(order);
            free(bins);
            return MESH_RSRV_ANSWER;
        }
        bins[i] = (ProtobufCBinaryData){f->len, f->data};
    }
    a->fdr.n_file_descriptor_proto = n;
    a->fdr.file_descriptor_proto = bins;
    a->resp.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
    a->resp.file_descriptor_response = &a->fdr;
    *order_out = order;
    *bins_out = bins;
    return MESH_RSRV_ANSWER;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void bad(char *err, size_t errcap, const char *why)
{
    if (errcap)
        snprintf(err, errcap, "%s", why);
}

mesh_rsrv_result_t mesh_rsrv_answer(const mesh_rsrv_index_t *ix, const char *const *services,
                                    size_t n_services, const char *const *pending, size_t n_pending,
                                    int may_hold, const uint8_t *reqb, size_t len, uint8_t **out,
                                    size_t *out_len, char *err, size_t errcap)
{
    *out = NULL;
    *out_len = 0;
    const ask_t q = {pending, n_pending, may_hold};
    req_t *req = grpc__reflection__v1__server_reflection_request__unpack(NULL, len, reqb);
    if (!req) {
        bad(err, errcap, "meshd: not a ServerReflectionRequest");
        return MESH_RSRV_BAD;
    }
    answer_t *a = calloc(1, sizeof(*a));
    if (!a) {
        grpc__reflection__v1__server_reflection_request__free_unpacked(req, NULL);
        bad(err, errcap, "meshd: out of memory");
        return MESH_RSRV_BAD;
    }
    resp_t init = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    a->resp = init;
    Grpc__Reflection__V1__ErrorResponse e0 = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
    Grpc__Reflection__V1__FileDescriptorResponse f0 =
        GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
    Grpc__Reflection__V1__ExtensionNumberResponse n0 =
        GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
    Grpc__Reflection__V1__ListServiceResponse l0 =
        GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
    a->error = e0;
    a->fdr = f0;
    a->enr = n0;
    a->lsr = l0;
    a->resp.valid_host = req->host ? req->host : "";
    /* the echo carries what was asked, never the unknown fields of untrusted bytes */
    req_t echo = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    Grpc__Reflection__V1__ExtensionRequest echo_ext = GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;
    echo.host = req->host;
    echo.message_request_case = req->message_request_case;
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
        if (req->file_containing_extension) {
            echo_ext.containing_type = req->file_containing_extension->containing_type;
            echo_ext.extension_number = req->file_containing_extension->extension_number;
        }
        echo.file_containing_extension = &echo_ext;
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST__NOT_SET:
        break;
    default: /* the other cases are one string in the union */
        echo.list_services = req->list_services;
        break;
    }
    a->resp.original_request = &echo;

    mesh_rsrv_result_t rc = MESH_RSRV_ANSWER;
    size_t *order = NULL;
    ProtobufCBinaryData *bins = NULL;
    const char **names = NULL;
    Grpc__Reflection__V1__ServiceResponse *sr = NULL, **srp = NULL;
    int32_t *nums = NULL;
    static const mesh_rsrv_index_t empty = {0};
    const mesh_rsrv_index_t *x = ix ? ix : &empty;

    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES: {
        size_t n = n_services + 3, w = 0;
        names = malloc(n * sizeof(*names));
        sr = calloc(n, sizeof(*sr));
        srp = malloc(n * sizeof(*srp));
        if (!names || !sr || !srp) {
            rc = MESH_RSRV_BAD;
            break;
        }
        for (size_t i = 0; i < n_services; i++)
            names[i] = services[i];
        names[n_services] = MESH_RSRV_HEALTH_SERVICE;
        names[n_services + 1] = MESH_RSRV_V1_SERVICE;
        names[n_services + 2] = MESH_RSRV_V1ALPHA_SERVICE;
        qsort(names, n, sizeof(*names), cmp_cstr);
        Grpc__Reflection__V1__ServiceResponse s0 = GRPC__REFLECTION__V1__SERVICE_RESPONSE__INIT;
        for (size_t i = 0; i < n; i++) {
            if (w && strcmp(names[i], sr[w - 1].name) == 0)
                continue;
            sr[w] = s0;
            sr[w].name = (char *)names[i];
            srp[w] = &sr[w];
            w++;
        }
        a->lsr.n_service = w;
        a->lsr.service = srp;
        a->resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        a->resp.list_services_response = &a->lsr;
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL: {
        const char *sym = req->file_containing_symbol ? req->file_containing_symbol : "";
        if (sym[0] == '.')
            sym++;
        const rsym_t *s = find_sym(x, sym);
        if (s)
            rc = answer_files(x, a, s->file, &order, &bins);
        else
            rc = miss(ix, a, &q, "symbol", sym, 1);
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME: {
        const char *name = req->file_by_filename ? req->file_by_filename : "";
        const rfile_t *f = find_file(x, name);
        if (f)
            rc = answer_files(x, a, (size_t)(f - x->files), &order, &bins);
        else
            rc = miss(ix, a, &q, "file", name, 0);
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION: {
        const Grpc__Reflection__V1__ExtensionRequest *er = req->file_containing_extension;
        const char *type = er && er->containing_type ? er->containing_type : "";
        int32_t num = er ? er->extension_number : 0;
        if (type[0] == '.')
            type++;
        size_t at = ext_lower(x, type, num);
        if (at < x->n_exts && strcmp(x->exts[at].extendee, type) == 0 &&
            x->exts[at].number == num) {
            rc = answer_files(x, a, x->exts[at].file, &order, &bins);
        } else {
            char what[64];
            snprintf(what, sizeof(what), "extension %d of type", (int)num);
            rc = miss(ix, a, &q, what, type, 1);
        }
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE: {
        const char *type =
            req->all_extension_numbers_of_type ? req->all_extension_numbers_of_type : "";
        if (type[0] == '.')
            type++;
        const rsym_t *s = find_sym(x, type);
        if (!s) {
            rc = miss(ix, a, &q, "type", type, 1);
            break;
        }
        size_t lo = ext_lower(x, type, INT32_MIN), hi = lo;
        while (hi < x->n_exts && strcmp(x->exts[hi].extendee, type) == 0)
            hi++;
        nums = malloc((hi - lo + 1) * sizeof(*nums));
        if (!nums) {
            rc = MESH_RSRV_BAD;
            break;
        }
        for (size_t i = lo; i < hi; i++)
            nums[i - lo] = x->exts[i].number;
        a->enr.base_type_name = (char *)type;
        a->enr.n_extension_number = hi - lo;
        a->enr.extension_number = nums;
        a->resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
        a->resp.all_extension_numbers_response = &a->enr;
        break;
    }
    default:
        set_error(a, MESH_RSRV_UNIMPLEMENTED,
                  "meshd: the request asks nothing meshd knows (message_request case %d)",
                  (int)req->message_request_case);
        break;
    }

    if (rc == MESH_RSRV_ANSWER) {
        size_t n = grpc__reflection__v1__server_reflection_response__get_packed_size(&a->resp);
        *out = malloc(n ? n : 1);
        if (*out)
            *out_len = grpc__reflection__v1__server_reflection_response__pack(&a->resp, *out);
        else
            rc = MESH_RSRV_BAD;
    }
    if (rc == MESH_RSRV_BAD)
        bad(err, errcap, "meshd: out of memory");
    free(order);
    free(bins);
    free(names);
    free(sr);
    free(srp);
    free(nums);
    free(a);
    grpc__reflection__v1__server_reflection_request__free_unpacked(req, NULL);
    return rc;
}
