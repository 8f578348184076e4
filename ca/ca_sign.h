/*
 * ca/ca_sign.h: the mesh CA's signing core, sans-I/O: a certificate request (PEM), the root,
 * the identity to certify and the time in; a leaf certificate (PEM chain) out.
 *
 * The identity comes from the request's JSON fields (node, services, dns, ips), already
 * checked against the bootstrap token (ca/ca_tokens.h); the CSR contributes its public key
 * only: its subject and extensions are ignored, so a CSR cannot smuggle in a name.
 *
 * The leaf: subject CN=<node>, O=<trust domain>; a random 127-bit serial; notBefore
 * now - CA_SKEW_S, notAfter now + lifetime (default CA_SIGN_DEFAULT_LIFETIME_S);
 * basicConstraints critical CA:FALSE; keyUsage critical digitalSignature+keyEncipherment;
 * extendedKeyUsage serverAuth+clientAuth; subject and authority key identifiers; subjectAltName
 *   URI:spiffe://<td>/node/<node>, URI:spiffe://<td>/svc/<service> for each service,
 *   DNS:<name> for each dns, IP:<address> for each ip.
 * Refused (with a code and a sentence): a CSR that is not PEM or whose self-signature does not
 * verify, a weak key (RSA under 2048 bits, EC under 256), a key type other than RSA, EC or
 * Ed25519, names outside ca/spiffe.h's sets, a DNS name or IP that does not parse, more than
 * CA_SIGN_MAX_NAMES names.
 */
#ifndef CA_SIGN_H
#define CA_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "ca/ca_root.h"

/** The default lifetime of a leaf: 24 h. */
#define CA_SIGN_DEFAULT_LIFETIME_S (24 * 3600)
/** Most services + DNS names + IPs in one certificate. */
#define CA_SIGN_MAX_NAMES 256

/** Why a request was refused. */
typedef enum {
    CA_SIGN_OK = 0,
    CA_SIGN_BAD_REQUEST = 1, /* a name, DNS name, IP or lifetime is not valid */
    CA_SIGN_BAD_CSR = 2,     /* not a PEM certificate request */
    CA_SIGN_CSR_SIGNATURE = 3,
    CA_SIGN_WEAK_KEY = 4, /* too short, or a key type we do not certify */
    CA_SIGN_INTERNAL = 5, /* libcrypto missing or out of memory */
} ca_sign_err_t;

/** What to certify. */
typedef struct ca_sign_req {
    const char *csr_pem;
    size_t csr_len;
    const char *node;
    const char *const *services;
    size_t n_services;
    const char *const *dns;
    size_t n_dns;
    const char *const *ips;
    size_t n_ips;
    int64_t lifetime_s; /* 0: CA_SIGN_DEFAULT_LIFETIME_S */
} ca_sign_req_t;

/** An issued certificate. */
typedef struct ca_issued {
    char *cert_pem;  /* the leaf */
    char *chain_pem; /* the leaf, then the root */
    int64_t not_before, not_after;
    char serial[33]; /* hex */
} ca_issued_t;

/** A short name of a code ("csr_signature", ...), for JSON errors and metrics. */
const char *ca_sign_err_name(ca_sign_err_t e);

/** Signs req with root at now. CA_SIGN_OK with *out filled (ca_issued_destroy), or a code with
 *  a sentence in err. */
ca_sign_err_t ca_sign(const ca_root_t *root, const ca_sign_req_t *req, int64_t now,
                      ca_issued_t *out, char *err, size_t errlen);

/** Frees what out holds. */
void ca_issued_destroy(ca_issued_t *out);

#endif
