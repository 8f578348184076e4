/*
 * policy/call_identity.c: the caller's identity at this node from the identity token, the
 * peer's certificate and the mesh secret (see policy/call_identity.h).
 */
#include "policy/call_identity.h"

#include <string.h>

pol_cid_t pol_call_identity(const pol_cid_in_t *in, pol_identity_t *out,
                            pol_identity_result_t *token_result)
{
    pol_identity_result_t tr = POL_IDENTITY_ABSENT;
    pol_cid_t got = POL_CID_NONE;
    if (in->token) {
        if (in->peer && in->peer_forwards) {
            tr = pol_identity_read(in->token, in->token_len, in->path, in->path_len, in->now, out);
            got = POL_CID_TOKEN_MTLS;
        } else if (in->keys) {
            tr = pol_identity_verify(in->keys, in->token, in->token_len, in->path, in->path_len,
                                     in->now, out);
            got = POL_CID_TOKEN_HMAC;
        } else {
            tr = POL_IDENTITY_UNTRUSTED;
        }
        if (tr != POL_IDENTITY_OK)
            got = POL_CID_NONE;
    }
    if (token_result)
        *token_result = tr;
    if (got != POL_CID_NONE)
        return got;
    if (in->peer && in->peer->node_uri.len <= POL_IDENTITY_SUB_MAX) {
        /* Only what the chain reads of an identity: no memset of the claims per call. */
        memcpy(out->sub, in->peer->node_uri.p, in->peer->node_uri.len + 1);
        memcpy(out->source, POL_IDENTITY_SOURCE_MTLS, sizeof(POL_IDENTITY_SOURCE_MTLS));
        out->nclaims = 0;
        out->exp = 0;
        out->previous_key = 0;
        return POL_CID_PEER;
    }
    out->sub[0] = '\0';
    return POL_CID_NONE;
}

const char *pol_cid_name(pol_cid_t c)
{
    switch (c) {
    case POL_CID_NONE:
        return "none";
    case POL_CID_TOKEN_MTLS:
        return "token over mTLS";
    case POL_CID_TOKEN_HMAC:
        return "token with HMAC";
    case POL_CID_PEER:
        return "peer certificate";
    }
    return "?";
}
