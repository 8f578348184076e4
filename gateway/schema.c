/*
 * gateway/schema.c: builds the transcoder's schema tables from FileDescriptorProtos.
 *
 * Building runs once per service version and may allocate freely: every table and string lives
 * in one arena owned by the schema, so freeing is one walk over the arena's blocks. The parsed
 * descriptor protos are dropped once the tables are built.
 */
#include "gateway/schema.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/descriptors.h"

/* ---- arena ------------------------------------------------------------------------------ */

typedef struct gw_arena_block {
    struct gw_arena_block *next;
    size_t used, cap;
    max_align_t data[];
} gw_arena_block_t;

struct gw_schema {
    atomic_int refs;
    gw_arena_block_t *arena;
    gw_message_t *messages; /* sorted by full_name */
    size_t n_messages;
    gw_enum_t *enums; /* sorted by full_name */
    size_t n_enums;
};

static void *arena_alloc(gw_schema_t *s, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    gw_arena_block_t *b = s->arena;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = s->arena;
        s->arena = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

static char *arena_strdup(gw_schema_t *s, const char *str)
{
    size_t n = strlen(str);
    char *p = arena_alloc(s, n + 1);
    if (p)
        memcpy(p, str, n + 1);
    return p;
}

static void schema_free(gw_schema_t *s)
{
    gw_arena_block_t *b = s->arena;
    while (b) {
        gw_arena_block_t *n = b->next;
        free(b);
        b = n;
    }
    free(s);
}

/* ---- build state ------------------------------------------------------------------------- */

typedef struct {
    const char *full_name; /* malloc'd during build, then copied into the arena */
    const Google__Protobuf__DescriptorProto *msg;
    const Google__Protobuf__EnumDescriptorProto *enm;
    const Google__Protobuf__FileDescriptorProto *file;
} type_rec_t;

typedef struct {
    gw_schema_t *s;
    Google__Protobuf__FileDescriptorProto **files;
    size_t n_files, cap_files;
    type_rec_t *msgs, *enums;
    size_t n_msgs, cap_msgs, n_enums, cap_enums;
    char *err;
    size_t errlen;
    bool oom;
} build_t;

static void set_err(build_t *b, const char *fmt, ...)
{
    if (!b->err || b->errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err, b->errlen, fmt, ap);
    va_end(ap);
}

static int add_file(build_t *b, const uint8_t *data, size_t len)
{
    Google__Protobuf__FileDescriptorProto *f =
        google__protobuf__file_descriptor_proto__unpack(NULL, len, data);
    if (!f) {
        set_err(b, "a FileDescriptorProto (%zu bytes) does not parse", len);
        return -1;
    }
    if (!f->name || !f->name[0]) {
        google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
        set_err(b, "a FileDescriptorProto has no name");
        return -1;
    }
    for (size_t i = 0; i < b->n_files; i++) {
        if (strcmp(b->files[i]->name, f->name) == 0) {
            google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
            return 0; /* duplicate: the first copy wins */
        }
    }
    if (b->n_files == b->cap_files) {
        size_t cap = b->cap_files ? b->cap_files * 2 : 16;
        void *p = realloc(b->files, cap * sizeof(*b->files));
        if (!p) {
            google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
            set_err(b, "out of memory");
            return -1;
        }
        b->files = p;
        b->cap_files = cap;
    }
    b->files[b->n_files++] = f;
    return 0;
}

static int push_rec(build_t *b, type_rec_t **arr, size_t *n, size_t *cap, type_rec_t r)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        void *p = realloc(*arr, nc * sizeof(**arr));
        if (!p) {
            free((void *)r.full_name);
            set_err(b, "out of memory");
            return -1;
        }
        *arr = p;
        *cap = nc;
    }
    (*arr)[(*n)++] = r;
    return 0;
}

static char *join_name(const char *scope, const char *name)
{
    size_t a = strlen(scope), n = strlen(name);
    char *p = malloc(a + n + 2);
    if (!p)
        return NULL;
    if (a) {
        memcpy(p, scope, a);
        p[a] = '.';
        memcpy(p + a + 1, name, n + 1);
    } else {
        memcpy(p, name, n + 1);
    }
    return p;
}

static int collect_enum(build_t *b, const Google__Protobuf__FileDescriptorProto *f,
                        const char *scope, const Google__Protobuf__EnumDescriptorProto *e)
{
    if (!e->name) {
        set_err(b, "file %s: an enum has no name", f->name);
        return -1;
    }
    char *full = join_name(scope, e->name);
    if (!full) {
        set_err(b, "out of memory");
        return -1;
    }
    type_rec_t r = {.full_name = full, .enm = e, .file = f};
    return push_rec(b, &b->enums, &b->n_enums, &b->cap_enums, r);
}

static int collect_msg(build_t *b, const Google__Protobuf__FileDescriptorProto *f,
                       const char *scope, const Google__Protobuf__DescriptorProto *m, int depth)
{
    if (!m->name) {
        set_err(b, "file %s: a message has no name", f->name);
        return -1;
    }
    if (depth > 64) {
        set_err(b, "file %s: messages nested too deeply", f->name);
        return -1;
    }
    char *full = join_name(scope, m->name);
    if (!full) {
        set_err(b, "out of memory");
        return -1;
    }
    type_rec_t r = {.full_name = full, .msg = m, .file = f};
    if (push_rec(b, &b->msgs, &b->n_msgs, &b->cap_msgs, r) < 0)
        return -1;
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (collect_msg(b, f, full, m->nested_type[i], depth + 1) < 0)
            return -1;
    for (size_t i = 0; i < m->n_enum_type; i++)
        if (collect_enum(b, f, full, m->enum_type[i]) < 0)
            return -1;
    return 0;
}

static int cmp_rec(const void *a, const void *b)
{
    return strcmp(((const type_rec_t *)a)->full_name, ((const type_rec_t *)b)->full_name);
}

static int find_rec(const type_rec_t *arr, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(arr[mid].full_name, name);
        if (c == 0)
            return (int)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* protobuf's ToJsonName: drop underscores, upper-case the letter after one. */
static char *json_name_of(gw_schema_t *s, const char *name)
{
    size_t n = strlen(name);
    char *out = arena_alloc(s, n + 1);
    if (!out)
        return NULL;
    size_t j = 0;
    bool up = false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c == '_') {
            up = true;
            continue;
        }
        if (up && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        up = false;
        out[j++] = c;
    }
    out[j] = 0;
    return out;
}

static gw_wkt_t wkt_of(const char *full)
{
    static const struct {
        const char *name;
        gw_wkt_t wkt;
    } tab[] = {
        {"google.protobuf.Any", GW_WKT_ANY},
        {"google.protobuf.Timestamp", GW_WKT_TIMESTAMP},
        {"google.protobuf.Duration", GW_WKT_DURATION},
        {"google.protobuf.FieldMask", GW_WKT_FIELD_MASK},
        {"google.protobuf.Struct", GW_WKT_STRUCT},
        {"google.protobuf.Value", GW_WKT_VALUE},
        {"google.protobuf.ListValue", GW_WKT_LIST_VALUE},
        {"google.protobuf.Empty", GW_WKT_EMPTY},
        {"google.protobuf.DoubleValue", GW_WKT_WRAPPER},
        {"google.protobuf.FloatValue", GW_WKT_WRAPPER},
        {"google.protobuf.Int64Value", GW_WKT_WRAPPER},
        {"google.protobuf.UInt64Value", GW_WKT_WRAPPER},
        {"google.protobuf.Int32Value", GW_WKT_WRAPPER},
        {"google.protobuf.UInt32Value", GW_WKT_WRAPPER},
        {"google.protobuf.BoolValue", GW_WKT_WRAPPER},
        {"google.protobuf.StringValue", GW_WKT_WRAPPER},
        {"google.protobuf.BytesValue", GW_WKT_WRAPPER},
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (strcmp(tab[i].name, full) == 0)
            return tab[i].wkt;
    return GW_WKT_NONE;
}

static int cmp_json(const void *a, const void *b)
{
    return strcmp((*(const gw_field_t *const *)a)->json_name,
                  (*(const gw_field_t *const *)b)->json_name);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const gw_field_t *const *)a)->name, (*(const gw_field_t *const *)b)->name);
}

static int cmp_field_num(const void *a, const void *b)
{
    uint32_t x = ((const gw_field_t *)a)->number, y = ((const gw_field_t *)b)->number;
    return x < y ? -1 : x > y;
}

static int cmp_ev_num(const void *a, const void *b)
{
    const gw_enum_value_t *x = a, *y = b;
    return x->number < y->number ? -1 : x->number > y->number;
}

static int cmp_ev_name(const void *a, const void *b)
{
    return strcmp(((const gw_enum_value_t *)a)->name, ((const gw_enum_value_t *)b)->name);
}

static int build_enum(build_t *b, gw_enum_t *out, const type_rec_t *r)
{
    gw_schema_t *s = b->s;
    const Google__Protobuf__EnumDescriptorProto *e = r->enm;
    out->full_name = arena_strdup(s, r->full_name);
    out->null_value = strcmp(r->full_name, "google.protobuf.NullValue") == 0;
    size_t n = e->n_value;
    gw_enum_value_t *byname = arena_alloc(s, (n ? n : 1) * sizeof(*byname));
    gw_enum_value_t *bynum = arena_alloc(s, (n ? n : 1) * sizeof(*bynum));
    if (!out->full_name || !byname || !bynum)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!e->value[i]->name) {
            set_err(b, "file %s: enum %s: a value has no name", r->file->name, r->full_name);
            return -2;
        }
        byname[i].name = arena_strdup(s, e->value[i]->name);
        if (!byname[i].name)
            return -1;
        byname[i].number = e->value[i]->number;
        bynum[i] = byname[i];
    }
    /* Stable "first declared wins" for aliases: mergesort is not available, so sort and then
     * keep, for each number, the value declared first. */
    qsort(bynum, n, sizeof(*bynum), cmp_ev_num);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && bynum[m - 1].number == bynum[i].number)
            continue;
        /* pick the first declared with this number */
        for (size_t k = 0; k < n; k++) {
            if (e->value[k]->number == bynum[i].number) {
                bynum[m].number = bynum[i].number;
                bynum[m].name = arena_strdup(s, e->value[k]->name);
                break;
            }
        }
        m++;
    }
    qsort(byname, n, sizeof(*byname), cmp_ev_name);
    out->by_name = byname;
    out->n_values = n;
    out->by_number = bynum;
    out->n_by_number = m;
    return 0;
}

static int build_msg(build_t *b, gw_message_t *out, const type_rec_t *r)
{
    gw_schema_t *s = b->s;
    const Google__Protobuf__DescriptorProto *m = r->msg;
    const char *fname = r->file->name;
    bool proto3 = r->file->syntax && strcmp(r->file->syntax, "proto3") == 0;
    out->full_name = arena_strdup(s, r->full_name);
    out->wkt = wkt_of(r->full_name);
    out->map_entry = m->options && m->options->has_map_entry && m->options->map_entry;
    size_t n = m->n_field;
    gw_field_t *fields = arena_alloc(s, (n ? n : 1) * sizeof(*fields));
    const gw_field_t **byj = arena_alloc(s, (n ? n : 1) * sizeof(*byj));
    const gw_field_t **byn = arena_alloc(s, (n ? n : 1) * sizeof(*byn));
    const char **oneofs = arena_alloc(s, (m->n_oneof_decl ? m->n_oneof_decl : 1) * sizeof(char *));
    if (!out->full_name || !fields || !byj || !byn || !oneofs)
        return -1;
    for (size_t i = 0; i < m->n_oneof_decl; i++) {
        oneofs[i] = arena_strdup(s, m->oneof_decl[i]->name ? m->oneof_decl[i]->name : "");
        if (!oneofs[i])
            return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const Google__Protobuf__FieldDescriptorProto *fd = m->field[i];
        gw_field_t *f = &fields[i];
        if (!fd->name || !fd->has_number || fd->number <= 0 || !fd->has_type) {
            set_err(b, "file %s: message %s: field %zu lacks a name, number or type", fname,
                    r->full_name, i);
            return -2;
        }
        f->name = arena_strdup(s, fd->name);
        f->json_name = fd->json_name && fd->json_name[0] ? arena_strdup(s, fd->json_name)
                                                         : json_name_of(s, fd->name);
        if (!f->name || !f->json_name)
            return -1;
        f->number = (uint32_t)fd->number;
        f->type = (gw_type_t)fd->type;
        if (f->type < GW_TYPE_DOUBLE || f->type > GW_TYPE_SINT64) {
            set_err(b, "file %s: message %s field %s: unknown type %d", fname, r->full_name,
                    fd->name, (int)fd->type);
            return -2;
        }
        f->repeated = fd->has_label &&
                      fd->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED;
        f->proto3_optional = fd->has_proto3_optional && fd->proto3_optional;
        f->oneof_index = -1;
        if (fd->has_oneof_index) {
            if (fd->oneof_index < 0 || (size_t)fd->oneof_index >= m->n_oneof_decl) {
                set_err(b, "file %s: message %s field %s: oneof index %d out of range", fname,
                        r->full_name, fd->name, fd->oneof_index);
                return -2;
            }
            if (!f->proto3_optional)
                f->oneof_index = fd->oneof_index;
        }
        bool scalar = f->type != GW_TYPE_STRING && f->type != GW_TYPE_BYTES &&
                      f->type != GW_TYPE_MESSAGE && f->type != GW_TYPE_GROUP;
        if (f->repeated && scalar) {
            if (fd->options && fd->options->has_packed)
                f->packed = fd->options->packed;
            else
                f->packed = proto3;
        }
        f->has_presence = !f->repeated && (f->type == GW_TYPE_MESSAGE || f->type == GW_TYPE_GROUP ||
                                           f->oneof_index >= 0 || f->proto3_optional || !proto3);
        if (f->type == GW_TYPE_MESSAGE || f->type == GW_TYPE_GROUP || f->type == GW_TYPE_ENUM) {
            const char *tn = fd->type_name ? fd->type_name : "";
            const char *key = tn[0] == '.' ? tn + 1 : tn;
            if (f->type == GW_TYPE_ENUM) {
                int k = find_rec(b->enums, b->n_enums, key);
                if (k < 0) {
                    set_err(b, "file %s: message %s field %s: type %s not found", fname,
                            r->full_name, fd->name, tn[0] ? tn : "(none)");
                    return -2;
                }
                f->enumeration = &s->enums[k];
            } else {
                int k = find_rec(b->msgs, b->n_msgs, key);
                if (k < 0) {
                    set_err(b, "file %s: message %s field %s: type %s not found", fname,
                            r->full_name, fd->name, tn[0] ? tn : "(none)");
                    return -2;
                }
                f->message = &s->messages[k];
            }
        }
    }
    qsort(fields, n, sizeof(*fields), cmp_field_num);
    for (size_t i = 0; i + 1 < n; i++) {
        if (fields[i].number == fields[i + 1].number) {
            set_err(b, "file %s: message %s: field number %u used twice", fname, r->full_name,
                    fields[i].number);
            return -2;
        }
    }
    for (size_t i = 0; i < n; i++)
        byj[i] = byn[i] = &fields[i];
    qsort(byj, n, sizeof(*byj), cmp_json);
    qsort(byn, n, sizeof(*byn), cmp_name);
    out->fields = fields;
    out->n_fields = n;
    out->by_json_name = byj;
    out->by_name = byn;
    out->oneof_names = oneofs;
    out->n_oneofs = m->n_oneof_decl;
    if (out->map_entry) {
        const gw_field_t *k = gw_message_field_by_number(out, 1);
        const gw_field_t *v = gw_message_field_by_number(out, 2);
        if (n != 2 || !k || !v || k->repeated || v->repeated) {
            set_err(b, "file %s: map entry %s must have fields key = 1 and value = 2", fname,
                    r->full_name);
            return -2;
        }
    }
    return 0;
}

static void build_cleanup(build_t *b)
{
    for (size_t i = 0; i < b->n_files; i++)
        google__protobuf__file_descriptor_proto__free_unpacked(b->files[i], NULL);
    free(b->files);
    for (size_t i = 0; i < b->n_msgs; i++)
        free((void *)b->msgs[i].full_name);
    for (size_t i = 0; i < b->n_enums; i++)
        free((void *)b->enums[i].full_name);
    free(b->msgs);
    free(b->enums);
}

static gw_schema_t *build_finish(build_t *b)
{
    /* The built-in well-known types, unless the caller supplied those files. */
    size_t wlen;
    const uint8_t *wset = gw_wkt_descriptor_set(&wlen);
    Google__Protobuf__FileDescriptorSet *ws =
        google__protobuf__file_descriptor_set__unpack(NULL, wlen, wset);
    if (!ws) {
        set_err(b, "the built-in well-known type descriptors do not parse");
        return NULL;
    }
    for (size_t i = 0; i < ws->n_file; i++) {
        uint8_t *buf =
            malloc(google__protobuf__file_descriptor_proto__get_packed_size(ws->file[i]));
        if (!buf)
            break;
        size_t n = google__protobuf__file_descriptor_proto__pack(ws->file[i], buf);
        int rc = add_file(b, buf, n);
        free(buf);
        if (rc < 0)
            break;
    }
    google__protobuf__file_descriptor_set__free_unpacked(ws, NULL);

    for (size_t i = 0; i < b->n_files; i++) {
        const Google__Protobuf__FileDescriptorProto *f = b->files[i];
        for (size_t d = 0; d < f->n_dependency; d++) {
            bool found = false;
            for (size_t k = 0; k < b->n_files && !found; k++)
                found = strcmp(b->files[k]->name, f->dependency[d]) == 0;
            if (!found) {
                set_err(b, "file %s: dependency %s not found", f->name, f->dependency[d]);
                return NULL;
            }
        }
        const char *pkg = f->package ? f->package : "";
        for (size_t k = 0; k < f->n_message_type; k++)
            if (collect_msg(b, f, pkg, f->message_type[k], 0) < 0)
                return NULL;
        for (size_t k = 0; k < f->n_enum_type; k++)
            if (collect_enum(b, f, pkg, f->enum_type[k]) < 0)
                return NULL;
    }
    qsort(b->msgs, b->n_msgs, sizeof(*b->msgs), cmp_rec);
    qsort(b->enums, b->n_enums, sizeof(*b->enums), cmp_rec);
    for (size_t i = 0; i + 1 < b->n_msgs; i++)
        if (strcmp(b->msgs[i].full_name, b->msgs[i + 1].full_name) == 0) {
            set_err(b, "file %s: message %s is also defined in file %s", b->msgs[i + 1].file->name,
                    b->msgs[i].full_name, b->msgs[i].file->name);
            return NULL;
        }
    for (size_t i = 0; i + 1 < b->n_enums; i++)
        if (strcmp(b->enums[i].full_name, b->enums[i + 1].full_name) == 0) {
            set_err(b, "file %s: enum %s is also defined in file %s", b->enums[i + 1].file->name,
                    b->enums[i].full_name, b->enums[i].file->name);
            return NULL;
        }

    gw_schema_t *s = calloc(1, sizeof(*s));
    if (!s) {
        set_err(b, "out of memory");
        return NULL;
    }
    atomic_init(&s->refs, 1);
    b->s = s;
    s->messages = arena_alloc(s, (b->n_msgs ? b->n_msgs : 1) * sizeof(gw_message_t));
    s->enums = arena_alloc(s, (b->n_enums ? b->n_enums : 1) * sizeof(gw_enum_t));
    if (!s->messages || !s->enums)
        goto oom;
    s->n_messages = b->n_msgs;
    s->n_enums = b->n_enums;
    for (size_t i = 0; i < b->n_enums; i++) {
        int rc = build_enum(b, &s->enums[i], &b->enums[i]);
        if (rc == -1)
            goto oom;
        if (rc < 0)
            goto fail;
    }
    for (size_t i = 0; i < b->n_msgs; i++) {
        int rc = build_msg(b, &s->messages[i], &b->msgs[i]);
        if (rc == -1)
            goto oom;
        if (rc < 0)
            goto fail;
    }
    return s;
oom:
    set_err(b, "out of memory");
fail:
    schema_free(s);
    return NULL;
}

gw_schema_t *gw_schema_build(const uint8_t *const *files, const size_t *lens, size_t n, char *err,
                             size_t errlen)
{
    build_t b = {.err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = 0;
    gw_schema_t *s = NULL;
    for (size_t i = 0; i < n; i++)
        if (add_file(&b, files[i], lens[i]) < 0)
            goto done;
    s = build_finish(&b);
done:
    build_cleanup(&b);
    return s;
}

gw_schema_t *gw_schema_build_set(const uint8_t *set, size_t len, char *err, size_t errlen)
{
    build_t b = {.err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = 0;
    Google__Protobuf__FileDescriptorSet *fs =
        google__protobuf__file_descriptor_set__unpack(NULL, len, set);
    if (!fs) {
        set_err(&b, "the FileDescriptorSet (%zu bytes) does not parse", len);
        return NULL;
    }
    gw_schema_t *s = NULL;
    for (size_t i = 0; i < fs->n_file; i++) {
        size_t n = google__protobuf__file_descriptor_proto__get_packed_size(fs->file[i]);
        uint8_t *buf = malloc(n ? n : 1);
        if (!buf) {
            set_err(&b, "out of memory");
            goto done;
        }
        google__protobuf__file_descriptor_proto__pack(fs->file[i], buf);
        int rc = add_file(&b, buf, n);
        free(buf);
        if (rc < 0)
            goto done;
    }
    s = build_finish(&b);
done:
    google__protobuf__file_descriptor_set__free_unpacked(fs, NULL);
    build_cleanup(&b);
    return s;
}

gw_schema_t *gw_schema_build_from_pool(const struct mesh_desc_pool *pool, char *err, size_t errlen)
{
    build_t b = {.err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = 0;
    gw_schema_t *s = NULL;
    size_t n = mesh_desc_pool_file_count(pool);
    for (size_t i = 0; i < n; i++) {
        const Google__Protobuf__FileDescriptorProto *f = mesh_desc_pool_file(pool, i);
        size_t len = google__protobuf__file_descriptor_proto__get_packed_size(f);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf) {
            set_err(&b, "out of memory");
            goto done;
        }
        google__protobuf__file_descriptor_proto__pack(f, buf);
        int rc = add_file(&b, buf, len);
        free(buf);
        if (rc < 0)
            goto done;
    }
    s = build_finish(&b);
done:
    build_cleanup(&b);
    return s;
}

gw_schema_t *gw_schema_ref(gw_schema_t *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void gw_schema_unref(gw_schema_t *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        schema_free(s);
}

static const char *skip_dot(const char *name)
{
    return name[0] == '.' ? name + 1 : name;
}

const gw_message_t *gw_schema_find_message(const gw_schema_t *s, const char *name)
{
    name = skip_dot(name);
    size_t lo = 0, hi = s->n_messages;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->messages[mid].full_name, name);
        if (c == 0)
            return &s->messages[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const gw_enum_t *gw_schema_find_enum(const gw_schema_t *s, const char *name)
{
    name = skip_dot(name);
    size_t lo = 0, hi = s->n_enums;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->enums[mid].full_name, name);
        if (c == 0)
            return &s->enums[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

size_t gw_schema_message_count(const gw_schema_t *s)
{
    return s->n_messages;
}

const gw_field_t *gw_message_field_by_number(const gw_message_t *m, uint32_t number)
{
    size_t lo = 0, hi = m->n_fields;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint32_t x = m->fields[mid].number;
        if (x == number)
            return &m->fields[mid];
        if (x < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* strcmp of a NUL-terminated string against n bytes. */
static int cmp_n(const char *a, const char *b, size_t n)
{
    int c = strncmp(a, b, n);
    if (c)
        return c;
    return a[n] ? 1 : (memchr(b, 0, n) ? -1 : 0);
}

static const gw_field_t *search_fields(const gw_field_t *const *arr, size_t n, bool json,
                                       const char *name, size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmp_n(json ? arr[mid]->json_name : arr[mid]->name, name, len);
        if (c == 0)
            return arr[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const gw_field_t *gw_message_field_by_json(const gw_message_t *m, const char *name, size_t n)
{
    const gw_field_t *f = search_fields(m->by_json_name, m->n_fields, true, name, n);
    return f ? f : search_fields(m->by_name, m->n_fields, false, name, n);
}

const gw_enum_value_t *gw_enum_by_number(const gw_enum_t *e, int32_t number)
{
    size_t lo = 0, hi = e->n_by_number;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int32_t x = e->by_number[mid].number;
        if (x == number)
            return &e->by_number[mid];
        if (x < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const gw_enum_value_t *gw_enum_by_name(const gw_enum_t *e, const char *name, size_t n)
{
    size_t lo = 0, hi = e->n_values;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmp_n(e->by_name[mid].name, name, n);
        if (c == 0)
            return &e->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
