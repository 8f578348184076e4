/*
 * transport/tls_peer.h: the identity a TLS connection's peer proved with its certificate.
 *
 * Read once per connection, when the server side's handshake completes: a client certificate
 * that verified against the listener's CA (--tls-client-auth optional or require) and names a
 * meshd node (URI SAN spiffe://<td>/node/<node>, and spiffe://<td>/svc/<service> for the
 * services it owns; ca/peer_identity.h) becomes a mesh_peer_id_t (common/peer_id.h), which the
 * proxy engine hands to its filters with every call of the connection
 * (mesh_proxy_call_peer_identity). A certificate without a meshd identity proves nothing to the
 * policy chain: the connection is then treated like one without a certificate.
 */
#ifndef MESH_TLS_PEER_H
#define MESH_TLS_PEER_H

#include "common/peer_id.h"
#include "transport/tls.h"

/**
 * The identity t's peer proved (a new object: mesh_peer_id_free), or NULL when it sent no
 * certificate, its certificate did not verify, or names no meshd node (then why, when not
 * NULL, says so; "" for no certificate). Call once the handshake is done.
 */
mesh_peer_id_t *mesh_tls_peer_id(const mesh_tls_t *t, char *why, size_t whylen);

#endif
