/*
 * transport/h2_field_cache.h: a connection's memo of header fields that passed the checks,
 * keyed by HPACK's shared buffers and the field's place in its block.
 *
 * A field the peer sends indexed (nearly every field of a gRPC call after the first on a
 * connection) reaches nghttp2's on_header2 callback as the same pair of reference-counted
 * buffers (nghttp2_rcbuf) every time: its decoder's table entry, or the static table's. Name
 * and value checks that passed once need not run again for the same pair: the cache remembers
 * the pair with the name's class (mesh_h2_name_t), holding a reference on both buffers so that
 * neither can be freed and its address reused for other bytes while remembered. What depends on
 * the header block (pseudo-header order and kind, a regular field after them) is still checked
 * for every field (mesh_h2_field_recheck).
 *
 * One entry per place in a block: a client sends its fields in the same order on every call,
 * so the i-th field of a block is looked for only in entry i (the first 10 of a request or
 * response, the first 6 of trailers; later fields are checked in full). Fields sent as literals
 * (":path" and "content-length" from nghttp2's encoder, per-call values) come in new buffers
 * every time: after two misses in a row an entry stops taking new fields, trying again every
 * eighth miss, so a literal costs no reference counting; when its name is the entry's (a name
 * from HPACK's static or dynamic table), only the value is checked anew. 16 entries, 384 bytes a
 * connection. Not thread-safe: one per nghttp2 session, on its thread.
 */
#ifndef MESH_H2_FIELD_CACHE_H
#define MESH_H2_FIELD_CACHE_H

#include <nghttp2/nghttp2.h>

#include "transport/h2_fields.h"

#define MESH_H2_FIELD_CACHE_N        16
#define MESH_H2_FIELD_CACHE_TRAILERS 10 /* where the entries of trailers' fields start */

typedef struct mesh_h2_field_cache {
    struct {
        nghttp2_rcbuf *name, *value; /* NULL: empty; both referenced while here */
        uint8_t id;                  /* what mesh_h2_field_check returned for them */
        uint8_t misses;              /* in a row */
    } e[MESH_H2_FIELD_CACHE_N];
} mesh_h2_field_cache_t;

/** The entry of a block's i-th field (-1: none). */
static inline int mesh_h2_field_cache_slot(mesh_h2_block_t block, unsigned i)
{
    unsigned base = block == MESH_H2_TRAILERS ? MESH_H2_FIELD_CACHE_TRAILERS : 0;
    unsigned end = block == MESH_H2_TRAILERS ? MESH_H2_FIELD_CACHE_N : MESH_H2_FIELD_CACHE_TRAILERS;
    return base + i < end ? (int)(base + i) : -1;
}

/** The full check of a field not found in entry s, remembering it there when it passes. */
int mesh_h2_field_cache_miss(mesh_h2_field_cache_t *c, int s, mesh_h2_fields_t *f,
                             mesh_h2_block_t block, nghttp2_rcbuf *name, nghttp2_rcbuf *value,
                             const nghttp2_vec *n, const nghttp2_vec *v);

/** mesh_h2_field_check for a field given as nghttp2's buffers: the same result (the name's
 *  class, or -1 with f->problem set), with the checks of the name and value skipped when this
 *  pair passed them before in the same place of a block. n and v: the buffers' bytes
 *  (nghttp2_rcbuf_get_buf). Counts the block's fields in f->n. (Inline: the hit is the common
 *  case, a few instructions in the caller.) */
static inline int mesh_h2_field_cache_check(mesh_h2_field_cache_t *c, mesh_h2_fields_t *f,
                                            mesh_h2_block_t block, nghttp2_rcbuf *name,
                                            nghttp2_rcbuf *value, const nghttp2_vec *n,
                                            const nghttp2_vec *v)
{
    int s = mesh_h2_field_cache_slot(block, f->n++);
    if (s >= 0 && c->e[s].name == name && c->e[s].value == value) {
        c->e[s].misses = 0;
        return mesh_h2_field_recheck(f, block, (mesh_h2_name_t)c->e[s].id);
    }
    return mesh_h2_field_cache_miss(c, s, f, block, name, value, n, v);
}

/** Drops every entry and its references (the connection is closing). */
void mesh_h2_field_cache_clear(mesh_h2_field_cache_t *c);

#endif
