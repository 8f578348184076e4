/*
 * common/peer_id.c: a peer's certificate identity as plain strings (see common/peer_id.h).
 */
#include "common/peer_id.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes "spiffe://td/kind/name" at *at (room for it was counted) and records it in s. */
static void put_uri(char **at, mesh_peer_id_str_t *s, const char *td, const char *kind,
                    const char *name)
{
    int n = sprintf(*at, "spiffe://%s/%s/%s", td, kind, name);
    s->p = *at;
    s->len = (size_t)n;
    *at += n + 1;
}

mesh_peer_id_t *mesh_peer_id_new(const char *td, const char *node, const char *const *svcs,
                                 size_t n)
{
    size_t tdl = strlen(td), nl = strlen(node);
    size_t need = sizeof(mesh_peer_id_t) + n * sizeof(mesh_peer_id_str_t);
    need += (tdl + 1) + (nl + 1) + (9 + tdl + 6 + nl + 1);
    for (size_t i = 0; i < n; i++)
        need += 9 + tdl + 5 + strlen(svcs[i]) + 1;
    mesh_peer_id_t *id = calloc(1, need);
    if (!id)
        return NULL;
    mesh_peer_id_str_t *sv = (mesh_peer_id_str_t *)(id + 1);
    char *at = (char *)(sv + n);
    memcpy(at, td, tdl + 1);
    id->trust_domain = at;
    at += tdl + 1;
    memcpy(at, node, nl + 1);
    id->node = at;
    at += nl + 1;
    put_uri(&at, &id->node_uri, td, "node", node);
    for (size_t i = 0; i < n; i++)
        put_uri(&at, &sv[i], td, "svc", svcs[i]);
    id->svc = sv;
    id->n_svc = n;
    return id;
}

void mesh_peer_id_free(mesh_peer_id_t *id)
{
    free(id);
}
