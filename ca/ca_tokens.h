/*
 * ca/ca_tokens.h: the mesh CA's bootstrap tokens (--ca-tokens FILE): who may obtain a
 * certificate for which node and which services.
 *
 * The file, one token per line (blank lines and lines starting with '#' are skipped):
 *
 *     TOKEN  NODE-PATTERN  SERVICES
 *
 *   TOKEN         16..256 printable ASCII characters without spaces (a secret: the file should
 *                 be 0600); each token once
 *   NODE-PATTERN  a shell glob (fnmatch: * ? [...]) the requested node name must match:
 *                 "web-*", "node-1", "*"
 *   SERVICES      a comma-separated list of globs each requested service must match one of:
 *                 "shop.Cart,shop.Order*"; "*" allows any service; "-" allows none (the node
 *                 certificate only)
 * Fields are separated by spaces or tabs. Errors name FILE:LINE and the cause. Parsing is
 * sans-I/O (text in) and fuzzed (tests/fuzz/ca).
 */
#ifndef CA_TOKENS_H
#define CA_TOKENS_H

#include <stddef.h>

/** Shortest and longest token. */
#define CA_TOKEN_MIN 16
#define CA_TOKEN_MAX 256

/** One line of the file. */
typedef struct ca_token {
    char *token;
    size_t token_len;
    char *node_pattern;
    char **services; /* globs; n_services 0 means none allowed */
    size_t n_services;
    unsigned line;
} ca_token_t;

/** A parsed token file. */
typedef struct ca_tokens {
    ca_token_t *v;
    size_t n;
} ca_tokens_t;

/** Parses text[0..len) read from the file name (for errors). 0, or -1 with "NAME:LINE: why" in
 *  err (t is then empty). */
int ca_tokens_parse(ca_tokens_t *t, const char *name, const char *text, size_t len, char *err,
                    size_t errlen);

/** The entry of a presented token (compared in constant time per entry), or NULL. */
const ca_token_t *ca_tokens_find(const ca_tokens_t *t, const char *tok, size_t len);

/** 1 when tok may obtain a certificate for node and every one of services; else 0 with the
 *  first refused name in err. */
int ca_token_allows(const ca_token_t *tok, const char *node, const char *const *services,
                    size_t n_services, char *err, size_t errlen);

/** Frees what t holds. */
void ca_tokens_destroy(ca_tokens_t *t);

#endif
