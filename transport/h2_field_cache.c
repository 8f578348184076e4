/*
 * transport/h2_field_cache.c: the memo of checked header fields (see h2_field_cache.h).
 */
#include "transport/h2_field_cache.h"

/* A miss: the full check, and the pair remembered in entry s when it passes (s < 0: no entry). */
int mesh_h2_field_cache_miss(mesh_h2_field_cache_t *c, int s, mesh_h2_fields_t *f,
                             mesh_h2_block_t block, nghttp2_rcbuf *name, nghttp2_rcbuf *value,
                             const nghttp2_vec *n, const nghttp2_vec *v)
{
    /* The same name buffer with a new value (a literal under a name from HPACK's tables, as
     * nghttp2's encoder sends `:path` and `content-length`): only the value is checked anew. */
    int id = s >= 0 && c->e[s].name == name
                 ? mesh_h2_field_check_value(f, block, (mesh_h2_name_t)c->e[s].id, v->base, v->len)
                 : mesh_h2_field_check(f, block, n->base, n->len, v->base, v->len);
    if (id < 0 || s < 0)
        return id; /* a bad field is never remembered: checked (and refused) every time */
    uint8_t m = c->e[s].misses < 255 ? c->e[s].misses + 1 : 8;
    c->e[s].misses = m;
    if (m > 2 && (m & 7) != 0)
        return id; /* a literal's place: new buffers every time */
    nghttp2_rcbuf_incref(name);
    nghttp2_rcbuf_incref(value);
    if (c->e[s].name) {
        nghttp2_rcbuf_decref(c->e[s].name);
        nghttp2_rcbuf_decref(c->e[s].value);
    }
    c->e[s].name = name;
    c->e[s].value = value;
    c->e[s].id = (uint8_t)id;
    return id;
}

void mesh_h2_field_cache_clear(mesh_h2_field_cache_t *c)
{
    for (int i = 0; i < MESH_H2_FIELD_CACHE_N; i++)
        if (c->e[i].name) {
            nghttp2_rcbuf_decref(c->e[i].name);
            nghttp2_rcbuf_decref(c->e[i].value);
            c->e[i].name = c->e[i].value = NULL;
        }
}
