/*
 * common/peer_id.h: who the peer of a connection is, as its verified certificate says, in plain
 * strings: the meshd node's SPIFFE ID and the service SPIFFE IDs beside it.
 *
 * The transport reads it once per TLS connection, when the handshake completes with a client
 * certificate that verified (transport/tls_peer.c, over ca/peer_identity.h), and every call on
 * that connection hands the same object to its filters; the policy chain takes the caller's
 * identity from it (policy/call_identity.h) without knowing TLS or certificates. One
 * allocation holds everything; nothing is formatted per call.
 */
#ifndef MESH_PEER_ID_H
#define MESH_PEER_ID_H

#include <stddef.h>

/** One string with its length (NUL-terminated as well). */
typedef struct mesh_peer_id_str {
    const char *p;
    size_t len;
} mesh_peer_id_str_t;

/** A peer's identity. Immutable once made. */
typedef struct mesh_peer_id {
    mesh_peer_id_str_t node_uri;   /* "spiffe://<td>/node/<node>" */
    const char *trust_domain;      /* "<td>" */
    const char *node;              /* "<node>" */
    const mesh_peer_id_str_t *svc; /* "spiffe://<td>/svc/<pkg.Service>", n_svc of them */
    size_t n_svc;
} mesh_peer_id_t;

/** Makes an identity of trust domain td, node name node and the service names svcs (n of them;
 *  "pkg.Service"). The names are not checked here (the certificate reader did). NULL when out
 *  of memory. */
mesh_peer_id_t *mesh_peer_id_new(const char *td, const char *node, const char *const *svcs,
                                 size_t n);

/** Frees id (NULL is fine). */
void mesh_peer_id_free(mesh_peer_id_t *id);

#endif
