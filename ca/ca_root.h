/*
 * ca/ca_root.h: the mesh CA's root: a new ECDSA P-256 key and its self-signed certificate
 * (`meshd ca init`), and reading a root back (the CA node, --ca-dir).
 *
 * The root certificate: subject and issuer "CN=meshd mesh CA, O=<trust domain>", a random
 * serial, valid from now - CA_SKEW_S for the given days, basicConstraints critical CA:TRUE,
 * keyUsage critical keyCertSign+cRLSign, a subject key identifier, and one URI SAN
 * spiffe://<trust domain> (how a CA node learns its trust domain from the file alone).
 * Sans-I/O: the time comes in, objects go out; the CLI writes the files.
 */
#ifndef CA_ROOT_H
#define CA_ROOT_H

#include <stddef.h>
#include <stdint.h>

#include "ca/ca_pem.h"
#include "ca/spiffe.h"

/** Seconds certificates start before their issue time, for peers whose clocks run behind. */
#define CA_SKEW_S 60

/** File names inside a CA directory. */
#define CA_ROOT_KEY_FILE  "ca-key.pem"
#define CA_ROOT_CERT_FILE "ca-cert.pem"

/** A root: its key and certificate, the certificate's PEM and the trust domain. */
typedef struct ca_root {
    EVP_PKEY *key;
    X509 *cert;
    char *cert_pem;
    char trust_domain[SPF_TD_MAX + 1];
} ca_root_t;

/** Makes a new root for trust_domain valid for days from now. 0, or -1 with the reason. */
int ca_root_create(ca_root_t *r, const char *trust_domain, int days, int64_t now, char *err,
                   size_t errlen);

/** Reads a root from its PEM texts: the key must match the certificate, the certificate must
 *  be a CA and carry spiffe://<trust domain>. 0, or -1 with the reason. */
int ca_root_load(ca_root_t *r, const char *key_pem, size_t key_len, const char *cert_pem,
                 size_t cert_len, char *err, size_t errlen);

/** Frees what r holds (r itself is the caller's). */
void ca_root_destroy(ca_root_t *r);

#endif
