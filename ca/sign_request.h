/*
 * ca/sign_request.h: the body of POST /v1/ca/sign, read from untrusted bytes (sans-I/O, fuzzed
 * by tests/fuzz/ca/fuzz_sign_request.c):
 *   {"csr": PEM, "node": NAME, "services": [NAME...], "dns": [NAME...], "ips": [ADDR...],
 *    "lifetime_seconds": N}
 * csr and node are required strings; the arrays hold strings only (absent or empty: none);
 * lifetime_seconds is an integer >= 1 when present. Other members are ignored. Names are
 * checked later, by the signing core (ca/ca_sign.h) and the token (ca/ca_tokens.h).
 */
#ifndef CA_SIGN_REQUEST_H
#define CA_SIGN_REQUEST_H

#include <stddef.h>
#include <stdint.h>

/** A parsed body; the strings point into the parsed JSON, freed by ca_sign_request_destroy. */
typedef struct ca_sign_request {
    void *json; /* the jansson tree */
    const char *csr, *node;
    const char **services, **dns, **ips;
    size_t n_services, n_dns, n_ips;
    int64_t lifetime_s; /* 0 when absent */
} ca_sign_request_t;

/** Parses data[0..len). 0, or -1 with the reason in err (r is then empty). */
int ca_sign_request_parse(ca_sign_request_t *r, const char *data, size_t len, char *err,
                          size_t errlen);

/** Frees what r holds. */
void ca_sign_request_destroy(ca_sign_request_t *r);

#endif
