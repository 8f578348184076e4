/*
 * transport/tls_peer.c: a TLS peer's verified meshd identity (see transport/tls_peer.h).
 */
#include "transport/tls_peer.h"

#include <stdio.h>
#include <string.h>

#include "ca/peer_identity.h"
#include "common/ssl_lib.h"

mesh_peer_id_t *mesh_tls_peer_id(const mesh_tls_t *t, char *why, size_t whylen)
{
    if (why && whylen)
        why[0] = '\0';
    if (!t->established || !t->ssl)
        return NULL;
    const mesh_ssl_t *S = t->ctx->S;
    X509 *x = S->ssl_get1_peer_cert(t->ssl);
    if (!x)
        return NULL;
    mesh_peer_id_t *id = NULL;
    char err[256];
    ca_peer_identity_t pi;
    if (S->ssl_get_verify_result(t->ssl) != X509_V_OK) {
        snprintf(err, sizeof(err), "the certificate did not verify");
    } else if (ca_peer_identity_from_x509(x, NULL, &pi, err, sizeof(err)) == 0) {
        id = mesh_peer_id_new(pi.trust_domain, pi.node, (const char *const *)pi.services,
                              pi.n_services);
        if (!id)
            snprintf(err, sizeof(err), "out of memory");
        ca_peer_identity_destroy(&pi);
    }
    S->x509_free(x);
    if (!id && why)
        snprintf(why, whylen, "%s", err);
    return id;
}
