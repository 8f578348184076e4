/*
 * grpc/descriptors.c: the descriptor pool and service model behind grpc/descriptors.h.
 *
 * Files are unpacked with protobuf-c's generated descriptor.proto code. Each unpacked message
 * that owns files (one FileDescriptorProto, or a whole FileDescriptorSet) is kept in `owners`
 * and freed with the pool; `files` borrows the distinct files from them. Building the model
 * makes two sorted indexes: message types by fully qualified name and methods by gRPC path,
 * so lookups are binary searches that allocate nothing.
 */
#include "grpc/descriptors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file_read.h"

#define DESC_SET_FILE_MAX (64u << 20)

typedef struct {
    char *name; /* fully qualified, no leading dot */
    const Google__Protobuf__DescriptorProto *msg;
} msg_entry_t;

struct mesh_desc_pool {
    ProtobufCMessage **owners;
    size_t n_owners, cap_owners;
    Google__Protobuf__FileDescriptorProto **files;
    size_t n_files, cap_files;

    mesh_desc_service_t *services;
    size_t n_services;
    msg_entry_t *msgs;
    size_t n_msgs, cap_msgs;
    const mesh_desc_method_t **by_path;
    size_t n_methods;

    char err[256];
};

static void set_err(mesh_desc_pool_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_err(mesh_desc_pool_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof(p->err), fmt, ap);
    va_end(ap);
}

const char *mesh_call_kind_name(mesh_call_kind_t kind)
{
    switch (kind) {
    case MESH_CALL_UNARY:
        return "unary";
    case MESH_CALL_SERVER_STREAMING:
        return "server_streaming";
    case MESH_CALL_CLIENT_STREAMING:
        return "client_streaming";
    case MESH_CALL_BIDI:
        return "bidi";
    }
    return "unknown";
}

mesh_desc_pool_t *mesh_desc_pool_new(void)
{
    return calloc(1, sizeof(mesh_desc_pool_t));
}

static void model_clear(mesh_desc_pool_t *p)
{
    for (size_t i = 0; i < p->n_services; i++) {
        mesh_desc_service_t *s = &p->services[i];
        for (size_t j = 0; j < s->n_methods; j++) {
            free((char *)s->methods[j].path);
            free((char *)s->methods[j].input_type);
            free((char *)s->methods[j].output_type);
        }
        free(s->methods);
        free((char *)s->name);
    }
    free(p->services);
    p->services = NULL;
    p->n_services = 0;
    for (size_t i = 0; i < p->n_msgs; i++)
        free(p->msgs[i].name);
    free(p->msgs);
    p->msgs = NULL;
    p->n_msgs = p->cap_msgs = 0;
    free(p->by_path);
    p->by_path = NULL;
    p->n_methods = 0;
}

void mesh_desc_pool_free(mesh_desc_pool_t *p)
{
    if (!p)
        return;
    model_clear(p);
    for (size_t i = 0; i < p->n_owners; i++)
        protobuf_c_message_free_unpacked(p->owners[i], NULL);
    free(p->owners);
    free(p->files);
    free(p);
}

const char *mesh_desc_pool_error(const mesh_desc_pool_t *p)
{
    return p->err;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need)
        n *= 2;
    void *a = realloc(*arr, n * elem);
    if (!a)
        return -1;
    *arr = a;
    *cap = n;
    return 0;
}

const Google__Protobuf__FileDescriptorProto *mesh_desc_pool_find_file(const mesh_desc_pool_t *p,
                                                                      const char *name)
{
    for (size_t i = 0; i < p->n_files; i++)
        if (strcmp(p->files[i]->name, name) == 0)
            return p->files[i];
    return NULL;
}

size_t mesh_desc_pool_file_count(const mesh_desc_pool_t *p)
{
    return p->n_files;
}

const Google__Protobuf__FileDescriptorProto *mesh_desc_pool_file(const mesh_desc_pool_t *p,
                                                                 size_t i)
{
    return i < p->n_files ? p->files[i] : NULL;
}

/* Takes a file borrowed from an owner into the index; 1 if a file of that name is present. */
static int take_file(mesh_desc_pool_t *p, Google__Protobuf__FileDescriptorProto *f)
{
    if (!f->name || !f->name[0]) {
        set_err(p, "a FileDescriptorProto has no name");
        return -1;
    }
    if (mesh_desc_pool_find_file(p, f->name))
        return 1;
    if (grow((void **)&p->files, &p->cap_files, p->n_files + 1, sizeof(*p->files)) < 0) {
        set_err(p, "out of memory");
        return -1;
    }
    p->files[p->n_files++] = f;
    return 0;
}

static int add_owner(mesh_desc_pool_t *p, ProtobufCMessage *m)
{
    if (grow((void **)&p->owners, &p->cap_owners, p->n_owners + 1, sizeof(*p->owners)) < 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        set_err(p, "out of memory");
        return -1;
    }
    p->owners[p->n_owners++] = m;
    return 0;
}

int mesh_desc_pool_add_file(mesh_desc_pool_t *p, const uint8_t *data, size_t len)
{
    Google__Protobuf__FileDescriptorProto *f =
        google__protobuf__file_descriptor_proto__unpack(NULL, len, data);
    if (!f) {
        set_err(p, "not a valid serialized FileDescriptorProto (%zu bytes)", len);
        return -1;
    }
    int rc = take_file(p, f);
    if (rc != 0) {
        google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
        return rc;
    }
    if (add_owner(p, &f->base) < 0) {
        p->n_files--;
        return -1;
    }
    return 0;
}

int mesh_desc_pool_add_set(mesh_desc_pool_t *p, const uint8_t *data, size_t len)
{
    Google__Protobuf__FileDescriptorSet *set =
        google__protobuf__file_descriptor_set__unpack(NULL, len, data);
    if (!set) {
        set_err(p, "not a valid serialized FileDescriptorSet (%zu bytes)", len);
        return -1;
    }
    size_t before = p->n_files;
    for (size_t i = 0; i < set->n_file; i++) {
        if (take_file(p, set->file[i]) < 0) {
            p->n_files = before;
            google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
            return -1;
        }
    }
    if (add_owner(p, &set->base) < 0) {
        p->n_files = before;
        return -1;
    }
    return (int)(p->n_files - before);
}

int mesh_desc_pool_load_set_file(mesh_desc_pool_t *p, const char *path)
{
    char why[600];
    size_t len;
    char *buf = mesh_file_read(path, DESC_SET_FILE_MAX, 0, &len, why, sizeof(why));
    if (!buf) {
        set_err(p, "cannot open descriptor set %s", why);
        return -1;
    }
    int rc = mesh_desc_pool_add_set(p, (const uint8_t *)buf, len);
    if (rc < 0) {
        char inner[200];
        snprintf(inner, sizeof(inner), "%s", p->err);
        set_err(p, "%s: %s", path, inner);
    }
    free(buf);
    return rc;
}

size_t mesh_desc_pool_missing_deps(const mesh_desc_pool_t *p, const char **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_files; i++) {
        const Google__Protobuf__FileDescriptorProto *f = p->files[i];
        for (size_t d = 0; d < f->n_dependency; d++) {
            const char *dep = f->dependency[d];
            if (!dep || mesh_desc_pool_find_file(p, dep))
                continue;
            int seen = 0;
            for (size_t k = 0; k < n && k < cap; k++)
                if (strcmp(out[k], dep) == 0)
                    seen = 1;
            if (seen)
                continue;
            if (n < cap)
                out[n] = dep;
            n++;
        }
    }
    return n;
}

/* "a" + "." + "b", or "b" when a is empty. */
static char *join_name(const char *a, const char *b)
{
    char *s = NULL;
    if (a && a[0]) {
        if (asprintf(&s, "%s.%s", a, b) < 0)
            return NULL;
        return s;
    }
    return strdup(b);
}

static int index_messages(mesh_desc_pool_t *p, const char *scope,
                          Google__Protobuf__DescriptorProto *const *msgs, size_t n, int depth)
{
    if (depth > 64) {
        set_err(p, "message nesting deeper than 64 levels in %s", scope);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const Google__Protobuf__DescriptorProto *m = msgs[i];
        if (!m->name || !m->name[0]) {
            set_err(p, "a message in %s has no name", scope[0] ? scope : "(root)");
            return -1;
        }
        if (grow((void **)&p->msgs, &p->cap_msgs, p->n_msgs + 1, sizeof(*p->msgs)) < 0)
            goto oom;
        char *name = join_name(scope, m->name);
        if (!name)
            goto oom;
        p->msgs[p->n_msgs].name = name;
        p->msgs[p->n_msgs].msg = m;
        p->n_msgs++;
        if (index_messages(p, name, m->nested_type, m->n_nested_type, depth + 1) < 0)
            return -1;
    }
    return 0;
oom:
    set_err(p, "out of memory");
    return -1;
}

static int cmp_msg(const void *a, const void *b)
{
    return strcmp(((const msg_entry_t *)a)->name, ((const msg_entry_t *)b)->name);
}

static int cmp_msg_key(const void *key, const void *e)
{
    return strcmp(key, ((const msg_entry_t *)e)->name);
}

const Google__Protobuf__DescriptorProto *mesh_desc_pool_find_message(const mesh_desc_pool_t *p,
                                                                     const char *name)
{
    if (name[0] == '.')
        name++;
    if (!p->msgs)
        return NULL;
    const msg_entry_t *e = bsearch(name, p->msgs, p->n_msgs, sizeof(*p->msgs), cmp_msg_key);
    return e ? e->msg : NULL;
}

/* Resolves a method's type reference to a fully qualified name owned by the caller. */
static char *resolve_type(mesh_desc_pool_t *p, const char *pkg, const char *type)
{
    if (!type || !type[0])
        return NULL;
    if (type[0] == '.')
        return mesh_desc_pool_find_message(p, type) ? strdup(type + 1) : NULL;
    /* Relative reference (protoc always writes absolute ones): try the package scope first. */
    char *fq = join_name(pkg, type);
    if (fq && mesh_desc_pool_find_message(p, fq))
        return fq;
    free(fq);
    return mesh_desc_pool_find_message(p, type) ? strdup(type) : NULL;
}

static int wanted(const char *name, const char *const *only, size_t n_only)
{
    if (!only)
        return 1;
    for (size_t i = 0; i < n_only; i++)
        if (only[i] && strcmp(only[i], name) == 0)
            return 1;
    return 0;
}

static int build_service(mesh_desc_pool_t *p, const Google__Protobuf__FileDescriptorProto *f,
                         const Google__Protobuf__ServiceDescriptorProto *sd, char *name)
{
    mesh_desc_service_t *s = &p->services[p->n_services];
    memset(s, 0, sizeof(*s));
    s->name = name;
    s->file = f->name;
    p->n_services++; /* from here on model_clear() frees what s holds */
    s->methods = calloc(sd->n_method ? sd->n_method : 1, sizeof(*s->methods));
    if (!s->methods) {
        set_err(p, "out of memory");
        return -1;
    }
    for (size_t j = 0; j < sd->n_method; j++) {
        const Google__Protobuf__MethodDescriptorProto *md = sd->method[j];
        mesh_desc_method_t *m = &s->methods[s->n_methods];
        if (!md->name || !md->name[0] || strchr(md->name, '/')) {
            set_err(p, "service %s in %s: method #%zu has no valid name", name, f->name, j);
            return -1;
        }
        m->name = md->name;
        m->proto = md;
        m->kind = (md->has_client_streaming && md->client_streaming ? 2 : 0) |
                  (md->has_server_streaming && md->server_streaming ? 1 : 0);
        if (asprintf((char **)&m->path, "/%s/%s", name, md->name) < 0) {
            m->path = NULL;
            set_err(p, "out of memory");
            return -1;
        }
        s->n_methods++;
        m->input_type = resolve_type(p, f->package, md->input_type);
        m->output_type = resolve_type(p, f->package, md->output_type);
        if (!m->input_type || !m->output_type) {
            const char *t = !m->input_type ? md->input_type : md->output_type;
            set_err(p, "method %s: message type %s not found in the descriptors (missing file?)",
                    m->path, t && t[0] ? t : "(empty)");
            return -1;
        }
    }
    return 0;
}

static int cmp_service(const void *a, const void *b)
{
    return strcmp(((const mesh_desc_service_t *)a)->name, ((const mesh_desc_service_t *)b)->name);
}

static int cmp_path(const void *a, const void *b)
{
    return strcmp((*(const mesh_desc_method_t *const *)a)->path,
                  (*(const mesh_desc_method_t *const *)b)->path);
}

static int cmp_path_key(const void *key, const void *e)
{
    return strcmp(key, (*(const mesh_desc_method_t *const *)e)->path);
}

int mesh_desc_pool_build(mesh_desc_pool_t *p, const char *const *only, size_t n_only)
{
    model_clear(p);
    p->err[0] = '\0';
    size_t n_sd = 0;
    for (size_t i = 0; i < p->n_files; i++) {
        const Google__Protobuf__FileDescriptorProto *f = p->files[i];
        if (index_messages(p, f->package ? f->package : "", f->message_type, f->n_message_type, 0) <
            0)
            goto fail;
        n_sd += f->n_service;
    }
    if (p->n_msgs)
        qsort(p->msgs, p->n_msgs, sizeof(*p->msgs), cmp_msg);

    p->services = calloc(n_sd ? n_sd : 1, sizeof(*p->services));
    if (!p->services) {
        set_err(p, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < p->n_files; i++) {
        const Google__Protobuf__FileDescriptorProto *f = p->files[i];
        for (size_t k = 0; k < f->n_service; k++) {
            const Google__Protobuf__ServiceDescriptorProto *sd = f->service[k];
            if (!sd->name || !sd->name[0]) {
                set_err(p, "a service in %s has no name", f->name);
                goto fail;
            }
            char *name = join_name(f->package, sd->name);
            if (!name) {
                set_err(p, "out of memory");
                goto fail;
            }
            if (!wanted(name, only, n_only) || mesh_desc_pool_find_service(p, name)) {
                free(name);
                continue;
            }
            if (build_service(p, f, sd, name) < 0)
                goto fail;
        }
    }
    for (size_t i = 0; only && i < n_only; i++) {
        if (only[i] && !mesh_desc_pool_find_service(p, only[i])) {
            set_err(p, "service %s not found in the descriptors", only[i]);
            goto fail;
        }
    }
    qsort(p->services, p->n_services, sizeof(*p->services), cmp_service);

    size_t n_methods = 0;
    for (size_t i = 0; i < p->n_services; i++)
        n_methods += p->services[i].n_methods;
    p->by_path = calloc(n_methods ? n_methods : 1, sizeof(*p->by_path));
    if (!p->by_path) {
        set_err(p, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < p->n_services; i++)
        for (size_t j = 0; j < p->services[i].n_methods; j++)
            p->by_path[p->n_methods++] = &p->services[i].methods[j];
    qsort(p->by_path, p->n_methods, sizeof(*p->by_path), cmp_path);
    return 0;
fail:
    model_clear(p);
    return -1;
}

size_t mesh_desc_pool_service_count(const mesh_desc_pool_t *p)
{
    return p->n_services;
}

const mesh_desc_service_t *mesh_desc_pool_service(const mesh_desc_pool_t *p, size_t i)
{
    return i < p->n_services ? &p->services[i] : NULL;
}

const mesh_desc_service_t *mesh_desc_pool_find_service(const mesh_desc_pool_t *p, const char *name)
{
    /* Linear: used while building (unsorted) and rarely afterwards. */
    for (size_t i = 0; i < p->n_services; i++)
        if (strcmp(p->services[i].name, name) == 0)
            return &p->services[i];
    return NULL;
}

const mesh_desc_method_t *mesh_desc_pool_find_method(const mesh_desc_pool_t *p, const char *path)
{
    if (!p->by_path)
        return NULL;
    const mesh_desc_method_t *const *m =
        bsearch(path, p->by_path, p->n_methods, sizeof(*p->by_path), cmp_path_key);
    return m ? *m : NULL;
}
