/*
 * transport/tls_ctx.c: TLS contexts made from certificate, key and CA files, with the checks
 * that turn a bad file into an error a person can act on (the file and the reason): unreadable,
 * not PEM, expired, not yet valid, a key that does not match, a CA that does not verify the
 * certificate. Also the ALPN choice of server contexts and reference counting.
 */
#include "transport/tls.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/ssl_lib.h"

/* Why the last OpenSSL call failed, or fallback when the queue is empty. */
static const char *ossl_reason(const mesh_ssl_t *S, const char *fallback)
{
    unsigned long e = S->err_peek_last_error();
    const char *r = e ? S->err_reason_string(e) : NULL;
    return r ? r : fallback;
}

static void fmt_time(const mesh_ssl_t *S, const ASN1_TIME *t, char *out, size_t len)
{
    struct tm tm;
    if (!t || S->asn1_time_to_tm(t, &tm) != 1 || !strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(out, len, "(unreadable date)");
}

static FILE *open_file(const char *what, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        snprintf(err, errlen, "%s %s: cannot read: %s", what, path, strerror(errno));
    return f;
}

typedef STACK_OF(X509) x509_stack_t;

/* Reads the certificate file: the leaf in *leaf and the certificates after it in *chain. */
static int read_certs(const mesh_ssl_t *S, const char *path, X509 **leaf, x509_stack_t **chain,
                      char *err, size_t errlen)
{
    FILE *f = open_file("certificate", path, err, errlen);
    if (!f)
        return -1;
    *leaf = S->pem_read_x509(f, NULL, NULL, NULL);
    if (!*leaf) {
        snprintf(err, errlen, "certificate %s: no PEM certificate in it (%s)", path,
                 ossl_reason(S, "empty"));
        fclose(f);
        return -1;
    }
    *chain = (x509_stack_t *)S->sk_new_null();
    X509 *x;
    while (*chain && (x = S->pem_read_x509(f, NULL, NULL, NULL)) != NULL)
        S->sk_push((OPENSSL_STACK *)*chain, x);
    S->err_clear_error(); /* the end of the file reads as "no start line" */
    fclose(f);
    return 0;
}

static void free_chain(const mesh_ssl_t *S, x509_stack_t *chain)
{
    if (chain)
        S->sk_pop_free((OPENSSL_STACK *)chain, (void (*)(void *))S->x509_free);
}

/* The certificate is in its validity period. */
static int check_dates(const mesh_ssl_t *S, const char *path, X509 *x, char *err, size_t errlen)
{
    char when[64];
    const ASN1_TIME *nb = S->x509_not_before(x), *na = S->x509_not_after(x);
    if (nb && S->x509_cmp_current_time(nb) > 0) {
        fmt_time(S, nb, when, sizeof(when));
        snprintf(err, errlen, "certificate %s is not valid yet: it starts on %s", path, when);
        return -1;
    }
    if (na && S->x509_cmp_current_time(na) < 0) {
        fmt_time(S, na, when, sizeof(when));
        snprintf(err, errlen, "certificate %s has expired: it ended on %s", path, when);
        return -1;
    }
    return 0;
}

/* The CA file verifies the certificate (with the chain that follows it in its file). */
static int check_ca(const mesh_ssl_t *S, const char *ca, const char *cert, X509 *leaf,
                    x509_stack_t *chain, char *err, size_t errlen)
{
    X509_STORE *st = S->store_new();
    X509_STORE_CTX *sc = S->store_ctx_new();
    int rv = -1;
    if (!st || !sc) {
        snprintf(err, errlen, "out of memory");
    } else if (S->store_load_file(st, ca) != 1) {
        snprintf(err, errlen, "CA %s: no PEM certificate in it (%s)", ca,
                 ossl_reason(S, "unreadable"));
    } else if (S->store_ctx_init(sc, st, leaf, chain) != 1) {
        snprintf(err, errlen, "out of memory");
    } else if (S->verify_cert(sc) != 1) {
        snprintf(err, errlen, "CA %s does not verify certificate %s: %s", ca, cert,
                 S->verify_cert_error_string(S->store_ctx_get_error(sc)));
    } else {
        rv = 0;
    }
    if (sc)
        S->store_ctx_free(sc);
    if (st)
        S->store_free(st);
    S->err_clear_error();
    return rv;
}

/* Loads and checks the certificate and key into the context. */
static int load_identity(const mesh_ssl_t *S, SSL_CTX *c, const mesh_tls_conf_t *conf, int server,
                         char *err, size_t errlen)
{
    X509 *leaf = NULL;
    x509_stack_t *chain = NULL;
    EVP_PKEY *key = NULL;
    int rv = -1;
    if (read_certs(S, conf->cert_file, &leaf, &chain, err, errlen) < 0)
        return -1;
    if (check_dates(S, conf->cert_file, leaf, err, errlen) < 0)
        goto out;
    FILE *f = open_file("key", conf->key_file, err, errlen);
    if (!f)
        goto out;
    key = S->pem_read_pkey(f, NULL, NULL, NULL);
    fclose(f);
    if (!key) {
        snprintf(err, errlen, "key %s: no PEM private key in it (%s)", conf->key_file,
                 ossl_reason(S, "empty"));
        goto out;
    }
    if (S->x509_check_private_key(leaf, key) != 1) {
        snprintf(err, errlen, "key %s does not match certificate %s", conf->key_file,
                 conf->cert_file);
        goto out;
    }
    /* A server's CA (the one that verifies its clients) must verify the server's own
     * certificate too: one trust bundle for the mesh, and a wrong file is caught at start. */
    if (server && conf->ca_file && *conf->ca_file &&
        check_ca(S, conf->ca_file, conf->cert_file, leaf, chain, err, errlen) < 0)
        goto out;
    if (S->ctx_use_chain_file(c, conf->cert_file) != 1 || S->ctx_use_key(c, key) != 1 ||
        S->ctx_check_key(c) != 1) {
        snprintf(err, errlen, "certificate %s: %s", conf->cert_file,
                 ossl_reason(S, "refused by OpenSSL"));
        goto out;
    }
    rv = 0;
out:
    if (key)
        S->pkey_free(key);
    S->x509_free(leaf);
    free_chain(S, chain);
    S->err_clear_error();
    return rv;
}

/* Server: picks the first of our protocols the client offers; none in common is fatal. A client
 * that offers no ALPN at all is served (the callback is not called). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    mesh_tls_ctx_t *ctx = arg;
    for (unsigned i = 0; i < ctx->alpn_len; i += 1u + ctx->alpn[i]) {
        for (unsigned j = 0; j < inlen; j += 1u + in[j]) {
            if (in[j] == ctx->alpn[i] && j + 1u + in[j] <= inlen &&
                memcmp(in + j + 1, ctx->alpn + i + 1, in[j]) == 0) {
                *out = in + j + 1;
                *outlen = in[j];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* "h2,http/1.1" -> wire format. */
static int parse_alpn(mesh_tls_ctx_t *ctx, const char *list, char *err, size_t errlen)
{
    ctx->alpn_len = 0;
    if (!list)
        return 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || n > 255 || ctx->alpn_len + 1 + n > sizeof(ctx->alpn)) {
            snprintf(err, errlen, "bad ALPN list \"%s\"", list);
            return -1;
        }
        ctx->alpn[ctx->alpn_len++] = (unsigned char)n;
        memcpy(ctx->alpn + ctx->alpn_len, p, n);
        ctx->alpn_len += (unsigned)n;
        p += n + (e ? 1 : 0);
    }
    return 0;
}

mesh_tls_ctx_t *mesh_tls_ctx_new(const mesh_tls_conf_t *conf, int server, char *err, size_t errlen)
{
    const mesh_ssl_t *S = mesh_ssl(err, errlen);
    if (!S)
        return NULL;
    int has_cert = conf->cert_file && *conf->cert_file;
    int has_ca = conf->ca_file && *conf->ca_file;
    if (server && !has_cert) {
        snprintf(err, errlen, "a TLS listener needs a certificate and a key");
        return NULL;
    }
    if (has_cert && !(conf->key_file && *conf->key_file)) {
        snprintf(err, errlen, "certificate %s: no key file given", conf->cert_file);
        return NULL;
    }
    if (server && conf->client_auth != MESH_TLS_CLIENT_AUTH_NONE && !has_ca) {
        snprintf(err, errlen, "client certificates need a CA to verify them (--tls-ca)");
        return NULL;
    }
    if (!server && !has_ca) {
        snprintf(err, errlen, "upstream TLS needs a CA to verify the servers");
        return NULL;
    }
    mesh_tls_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ctx->S = S;
    ctx->server = server;
    atomic_init(&ctx->refs, 1);
    snprintf(ctx->desc, sizeof(ctx->desc), "%s %s", has_cert ? "certificate" : "CA",
             has_cert ? conf->cert_file : conf->ca_file);
    if (parse_alpn(ctx, conf->alpn, err, errlen) < 0)
        goto fail;
    ctx->ssl_ctx = S->ctx_new(server ? S->server_method() : S->client_method());
    if (!ctx->ssl_ctx) {
        snprintf(err, errlen, "cannot make a TLS context: %s", ossl_reason(S, "out of memory"));
        goto fail;
    }
    SSL_CTX *c = ctx->ssl_ctx;
    S->ctx_ctrl(c, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL);
    S->ctx_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                              SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Partial writes never happen on memory BIOs, but the buffer may move between calls. */
    S->ctx_ctrl(c, SSL_CTRL_MODE, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS,
                NULL);
    if (has_cert && load_identity(S, c, conf, server, err, errlen) < 0)
        goto fail;
    if (has_ca && S->ctx_load_verify(c, conf->ca_file, NULL) != 1) {
        snprintf(err, errlen, "CA %s: no PEM certificate in it (%s)", conf->ca_file,
                 ossl_reason(S, "unreadable"));
        goto fail;
    }
    if (server) {
        /* Session resumption: tickets (OpenSSL's default, keys per context) and the session
         * cache; a session id context is required once client certificates are asked for. */
        static const unsigned char sid[] = "meshd";
        S->ctx_set_sid_ctx(c, sid, sizeof(sid) - 1);
        if (ctx->alpn_len)
            S->ctx_set_alpn_select_cb(c, alpn_select, ctx);
        if (conf->client_auth != MESH_TLS_CLIENT_AUTH_NONE) {
            int mode = SSL_VERIFY_PEER;
            if (conf->client_auth == MESH_TLS_CLIENT_AUTH_REQUIRE)
                mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
            S->ctx_set_verify(c, mode, NULL);
            STACK_OF(X509_NAME) *names = S->load_client_ca_file(conf->ca_file);
            if (names)
                S->ctx_set_client_ca_list(c, names);
        }
    } else {
        /* Resumption of upstream sessions: new sessions go to the connection's slot
         * (mesh_tls_use_session), never to OpenSSL's own cache. */
        S->ctx_ctrl(c, SSL_CTRL_SET_SESS_CACHE_MODE,
                    SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE, NULL);
        S->ctx_sess_set_new_cb(c, mesh_tls_on_new_session);
        S->ctx_set_verify(c, SSL_VERIFY_PEER, NULL);
        if (ctx->alpn_len && S->ctx_set_alpn_protos(c, ctx->alpn, ctx->alpn_len) != 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    S->err_clear_error();
    return ctx;
fail:
    S->err_clear_error();
    if (ctx->ssl_ctx)
        S->ctx_free(ctx->ssl_ctx);
    free(ctx);
    return NULL;
}

void mesh_tls_ctx_share_tickets(mesh_tls_ctx_t *from, mesh_tls_ctx_t *to)
{
    unsigned char keys[80]; /* name, HMAC and AES keys: OpenSSL's 80-byte layout */
    if (!from || !to || !from->server || !to->server)
        return;
    if (from->S->ctx_ctrl(from->ssl_ctx, SSL_CTRL_GET_TLSEXT_TICKET_KEYS, sizeof(keys), keys) > 0)
        to->S->ctx_ctrl(to->ssl_ctx, SSL_CTRL_SET_TLSEXT_TICKET_KEYS, sizeof(keys), keys);
    memset(keys, 0, sizeof(keys));
}

void mesh_tls_ctx_ref(mesh_tls_ctx_t *ctx)
{
    atomic_fetch_add(&ctx->refs, 1);
}

void mesh_tls_ctx_unref(mesh_tls_ctx_t *ctx)
{
    if (!ctx || atomic_fetch_sub(&ctx->refs, 1) != 1)
        return;
    ctx->S->ctx_free(ctx->ssl_ctx);
    free(ctx);
}
