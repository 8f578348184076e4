/*
 * policy/call_identity.h: who a call is from at this node, decided once per call by the
 * chain's identity step from plain data: the identity token header, the peer's certificate
 * identity (common/peer_id.h, read by the transport once per TLS connection) and the mesh
 * secret.
 *
 * The rule, in order:
 *  1. A token (x-meshd-identity-token) that arrives over mTLS from a meshd node (the peer's
 *     verified certificate names spiffe://<td>/node/<node>) that may forward identities (every
 *     node, or those `identity.forwarders` names) is believed as it stands: the certificate
 *     proves which node forwards the call, and that node vouches for the caller it verified (a
 *     JWT subject, a signing client, an SSO user...). Its format, expiry and path are checked;
 *     its MAC is not needed (a node without a mesh secret sends none).
 *  2. Otherwise (plaintext, a client certificate that names no meshd node, a node that is not
 *     a forwarder) a token is
 *     believed only when its HMAC verifies with the mesh secret; without a secret it is never
 *     believed. A token not believed is stripped, as before.
 *  3. Without a believed token, a peer with a meshd certificate is the caller itself: the
 *     identity is its node's SPIFFE ID (sub = "spiffe://<td>/node/<node>", source "mtls"). So
 *     a bad token from a node gives the node's own identity, which it has anyway.
 *  4. Otherwise the call is anonymous (authn may still establish an identity).
 * Pure: no I/O, no clock (the caller passes now), no allocation.
 */
#ifndef POL_CALL_IDENTITY_H
#define POL_CALL_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "common/peer_id.h"
#include "policy/mesh_identity.h"

/** Where the identity came from. */
typedef enum {
    POL_CID_NONE = 0,   /* anonymous */
    POL_CID_TOKEN_MTLS, /* the token, from a meshd node over mTLS */
    POL_CID_TOKEN_HMAC, /* the token, its HMAC verified with the mesh secret */
    POL_CID_PEER,       /* the peer certificate's node SPIFFE ID */
} pol_cid_t;

/** What the decision looks at. */
typedef struct pol_cid_in {
    const mesh_peer_id_t *peer;      /* NULL: h2c, or no meshd certificate */
    int peer_forwards;               /* 1: peer may vouch for the callers it forwards */
    const pol_identity_keys_t *keys; /* NULL: no mesh secret */
    const char *token;               /* the token header's value; NULL: none */
    size_t token_len;
    const char *path; /* the call's :path */
    size_t path_len;
    int64_t now; /* Unix seconds */
} pol_cid_in_t;

/**
 * Decides. out receives the identity (sub, source, claims) unless POL_CID_NONE (then out->sub
 * is ""). *token_result (may be NULL) says what became of a token: POL_IDENTITY_OK when it was
 * believed, POL_IDENTITY_ABSENT when there was none, else why it was not
 * (POL_IDENTITY_UNTRUSTED: no mesh secret and no mTLS from a node).
 */
pol_cid_t pol_call_identity(const pol_cid_in_t *in, pol_identity_t *out,
                            pol_identity_result_t *token_result);

/** "none", "token over mTLS", "token with HMAC", "peer certificate". */
const char *pol_cid_name(pol_cid_t c);

#endif
