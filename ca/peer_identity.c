/*
 * ca/peer_identity.c: a peer certificate's meshd SPIFFE identity (see ca/peer_identity.h).
 */
#include "ca/peer_identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ca_peer_identity_destroy(ca_peer_identity_t *id)
{
    for (size_t i = 0; i < id->n_services; i++)
        free(id->services[i]);
    free(id->services);
    memset(id, 0, sizeof(*id));
}

int ca_peer_identity_has_service(const ca_peer_identity_t *id, const char *service)
{
    for (size_t i = 0; i < id->n_services; i++)
        if (strcmp(id->services[i], service) == 0)
            return 1;
    return 0;
}

/* Records one parsed ID into out. 0, or -1 with the reason. */
static int take(ca_peer_identity_t *out, const char *td, spf_kind_t kind, const char *name,
                char *err, size_t errlen)
{
    if (!out->trust_domain[0]) {
        snprintf(out->trust_domain, sizeof(out->trust_domain), "%s", td);
    } else if (strcmp(out->trust_domain, td) != 0) {
        snprintf(err, errlen, "the certificate names two trust domains (%s and %s)",
                 out->trust_domain, td);
        return -1;
    }
    if (kind == SPF_KIND_NODE) {
        if (out->node[0]) {
            snprintf(err, errlen, "the certificate names two nodes (%s and %s)", out->node, name);
            return -1;
        }
        snprintf(out->node, sizeof(out->node), "%s", name);
        return 0;
    }
    if (ca_peer_identity_has_service(out, name))
        return 0;
    char **v = realloc(out->services, (out->n_services + 1) * sizeof(*v));
    if (!v || !(v[out->n_services] = strdup(name))) {
        if (v)
            out->services = v;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    out->services = v;
    out->n_services++;
    return 0;
}

int ca_peer_identity_from_x509(const X509 *x, const char *trust_domain, ca_peer_identity_t *out,
                               char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const mesh_crypto_t *C = ca_crypto(err, errlen);
    if (!C)
        return -1;
    GENERAL_NAMES *gens = C->x509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int n = gens ? C->sk_num((const OPENSSL_STACK *)gens) : 0;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const GENERAL_NAME *g = C->sk_value((const OPENSSL_STACK *)gens, i);
        if (g->type != GEN_URI)
            continue;
        const char *s = (const char *)C->asn1_string_data(g->d.uniformResourceIdentifier);
        int len = C->asn1_string_length(g->d.uniformResourceIdentifier);
        char td[SPF_TD_MAX + 1], name[SPF_NAME_MAX + 1];
        spf_kind_t kind;
        if (len <= 0 || spf_parse(s, (size_t)len, td, &kind, name) != 0)
            continue; /* not a meshd ID */
        rc = take(out, td, kind, name, err, errlen);
    }
    C->general_names_free(gens);
    C->err_clear_error();
    if (rc == 0 && !out->node[0]) {
        snprintf(err, errlen,
                 "the certificate has no meshd identity (URI SAN "
                 "spiffe://<trust domain>/node/<node>)");
        rc = -1;
    }
    if (rc == 0 && trust_domain && strcmp(trust_domain, out->trust_domain) != 0) {
        snprintf(err, errlen, "the certificate's trust domain is %s, not %s", out->trust_domain,
                 trust_domain);
        rc = -1;
    }
    if (rc != 0)
        ca_peer_identity_destroy(out);
    return rc;
}
