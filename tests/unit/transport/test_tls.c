/*
 * tests/unit/transport/test_tls.c: the sans-I/O TLS layer (transport/tls.h) against itself, a
 * server and a client context in one process with no socket: handshakes with ALPN, data both
 * ways, session resumption by ticket (and an upstream's session slot), client certificates
 * required and missing, a server name that does not match, a CA that does not verify, the
 * identity a client certificate proves (transport/tls_peer.h); and the start-up checks of
 * certificate files (expired, not yet valid, key that does not match, wrong CA, garbage,
 * missing) with the file and the reason in the error. Certificates come from
 * tests/tls/mkcerts.sh (openssl CLI).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ssl_lib.h"
#include "tests/check.h"
#include "transport/tls.h"
#include "transport/tls_holder.h"
#include "transport/tls_peer.h"

static char dir[256];

static const char *F(const char *name)
{
    static char bufs[8][512];
    static int i;
    char *b = bufs[i++ % 8];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

static mesh_tls_ctx_t *server_ctx(int client_auth, const char *alpn)
{
    char err[512];
    mesh_tls_conf_t c = {.cert_file = F("server.pem"),
                         .key_file = F("server.key"),
                         .ca_file = client_auth ? F("ca.pem") : NULL,
                         .client_auth = client_auth,
                         .alpn = alpn};
    mesh_tls_ctx_t *ctx = mesh_tls_ctx_new(&c, 1, err, sizeof(err));
    if (!ctx)
        fprintf(stderr, "server ctx: %s\n", err);
    CHECK(ctx);
    return ctx;
}

static mesh_tls_ctx_t *client_ctx(const char *ca, const char *cert, const char *alpn)
{
    char err[512];
    char key[64] = "";
    if (cert)
        snprintf(key, sizeof(key), "%.*s.key", (int)strlen(cert) - 4, cert);
    mesh_tls_conf_t c = {.cert_file = cert ? F(cert) : NULL,
                         .key_file = cert ? F(key) : NULL,
                         .ca_file = F(ca),
                         .alpn = alpn};
    mesh_tls_ctx_t *ctx = mesh_tls_ctx_new(&c, 0, err, sizeof(err));
    if (!ctx)
        fprintf(stderr, "client ctx: %s\n", err);
    CHECK(ctx);
    return ctx;
}

/* Moves a's waiting ciphertext into b; returns the number of bytes moved. */
static size_t move(mesh_tls_t *a, mesh_tls_t *b)
{
    const uint8_t *p;
    size_t n = mesh_tls_out_peek(a, &p);
    if (n) {
        CHECK_EQ(mesh_tls_feed(b, p, n), 0);
        mesh_tls_out_consume(a, n);
    }
    return n;
}

/* Runs both handshakes until neither moves; returns the client's and server's results. */
static void handshake(mesh_tls_t *cl, mesh_tls_t *sv, int *rc, int *rs)
{
    *rc = *rs = MESH_TLS_WANT;
    for (int round = 0; round < 20; round++) {
        if (*rc == MESH_TLS_WANT)
            *rc = mesh_tls_handshake(cl);
        size_t m = move(cl, sv);
        if (*rs == MESH_TLS_WANT)
            *rs = mesh_tls_handshake(sv);
        m += move(sv, cl);
        if (m == 0 && (*rc != MESH_TLS_WANT || *rs != MESH_TLS_WANT))
            break;
    }
}

/* Reads what arrived at t (after moving it) and checks it equals want. */
static void expect_data(mesh_tls_t *from, mesh_tls_t *to, const char *want)
{
    move(from, to);
    uint8_t buf[256];
    ssize_t n = mesh_tls_read(to, buf, sizeof(buf));
    CHECK_EQ(n, (ssize_t)strlen(want));
    CHECK(memcmp(buf, want, strlen(want)) == 0);
}

static void test_handshake_alpn_data(void)
{
    mesh_tls_ctx_t *sc = server_ctx(0, "h2"), *cc = client_ctx("ca.pem", NULL, "h2");
    mesh_tls_t s, c;
    CHECK_EQ(mesh_tls_init(&s, sc, NULL), 0);
    CHECK_EQ(mesh_tls_init(&c, cc, "127.0.0.1"), 0);
    int rc, rs;
    handshake(&c, &s, &rc, &rs);
    CHECK_EQ(rc, MESH_TLS_DONE);
    CHECK_EQ(rs, MESH_TLS_DONE);
    size_t n;
    const char *a = mesh_tls_alpn(&s, &n);
    CHECK(a && n == 2 && memcmp(a, "h2", 2) == 0);
    a = mesh_tls_alpn(&c, &n);
    CHECK(a && n == 2 && memcmp(a, "h2", 2) == 0);
    CHECK_STR(mesh_tls_version(&c), "TLSv1.3");
    CHECK_EQ(mesh_tls_write(&c, "ping", 4), 0);
    expect_data(&c, &s, "ping");
    CHECK_EQ(mesh_tls_write(&s, "pong!", 5), 0);
    expect_data(&s, &c, "pong!");
    /* Nothing more: reading says "want more", not an error. */
    uint8_t buf[16];
    CHECK_EQ(mesh_tls_read(&s, buf, sizeof(buf)), MESH_TLS_WANT);
    /* A large write comes out whole (several records). */
    static uint8_t big[100000], got[100000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    CHECK_EQ(mesh_tls_write(&c, big, sizeof(big)), 0);
    move(&c, &s);
    size_t have = 0;
    ssize_t k;
    while ((k = mesh_tls_read(&s, got + have, sizeof(got) - have)) > 0)
        have += (size_t)k;
    CHECK_EQ(have, sizeof(big));
    CHECK(memcmp(big, got, sizeof(big)) == 0);
    /* Ciphertext that arrives a byte at a time, read into a buffer smaller than a record: every
     * byte comes out once, "want" only while a record is incomplete (mesh_tls_read answers
     * "want" without asking the library when nothing is fed or buffered). */
    CHECK_EQ(mesh_tls_write(&c, big, 40000), 0);
    const uint8_t *ct;
    size_t ctn = mesh_tls_out_peek(&c, &ct);
    static uint8_t cts[50000];
    CHECK(ctn > 40000 && ctn <= sizeof(cts));
    memcpy(cts, ct, ctn);
    mesh_tls_out_consume(&c, ctn);
    have = 0;
    for (size_t i = 0; i < ctn; i++) {
        CHECK_EQ(mesh_tls_feed(&s, cts + i, 1), 0);
        while ((k = mesh_tls_read(&s, got + have, 1000)) > 0)
            have += (size_t)k;
        CHECK_EQ(k, MESH_TLS_WANT);
    }
    CHECK_EQ(have, 40000);
    CHECK(memcmp(big, got, 40000) == 0);
    CHECK_EQ(mesh_tls_read(&s, buf, sizeof(buf)), MESH_TLS_WANT);
    /* The peer's close_notify is still seen. */
    mesh_tls_close(&c);
    move(&c, &s);
    CHECK_EQ(mesh_tls_read(&s, buf, sizeof(buf)), MESH_TLS_CLOSED);
    mesh_tls_destroy(&c);
    mesh_tls_destroy(&s);
    mesh_tls_ctx_unref(cc);
    mesh_tls_ctx_unref(sc);
}

static void test_resumption(void)
{
    const mesh_ssl_t *S = mesh_ssl(NULL, 0);
    mesh_tls_ctx_t *sc = server_ctx(0, "h2"), *cc = client_ctx("ca.pem", NULL, "h2");
    SSL_SESSION *sess = NULL;
    for (int i = 0; i < 2; i++) {
        mesh_tls_t s, c;
        CHECK_EQ(mesh_tls_init(&s, sc, NULL), 0);
        CHECK_EQ(mesh_tls_init(&c, cc, "localhost"), 0);
        if (sess)
            CHECK_EQ(S->ssl_set_session(c.ssl, sess), 1);
        int rc, rs;
        handshake(&c, &s, &rc, &rs);
        CHECK_EQ(rc, MESH_TLS_DONE);
        CHECK_EQ(rs, MESH_TLS_DONE);
        /* TLS 1.3 tickets arrive after the handshake: read them. */
        uint8_t buf[16];
        CHECK_EQ(mesh_tls_read(&c, buf, sizeof(buf)), MESH_TLS_WANT);
        CHECK_EQ(mesh_tls_resumed(&s), i == 1);
        /* (A client resumes a TLS 1.3 ticket once: keep the newest.) */
        if (sess)
            S->session_free(sess);
        sess = S->ssl_get1_session(c.ssl);
        CHECK(sess);
        CHECK(S->session_is_resumable(sess));
        mesh_tls_close(&c); /* a close_notify keeps the session resumable */
        mesh_tls_destroy(&c);
        mesh_tls_destroy(&s);
    }
    S->session_free(sess);
    mesh_tls_ctx_unref(cc);
    mesh_tls_ctx_unref(sc);
}

/* The client side keeps an upstream's session in a slot: the second connection resumes it, and a
 * new client context (a reload) makes a full handshake once, then resumes again. */
static void test_upstream_session_slot(void)
{
    mesh_tls_ctx_t *sc = server_ctx(0, "h2");
    mesh_tls_ctx_t *cc[2] = {client_ctx("ca.pem", NULL, "h2"), client_ctx("ca.pem", NULL, "h2")};
    mesh_tls_session_t slot = {0};
    const int ctx_of[4] = {0, 0, 1, 1};
    const int resumed[4] = {0, 1, 0, 1};
    for (int i = 0; i < 4; i++) {
        mesh_tls_t s, c;
        CHECK_EQ(mesh_tls_init(&s, sc, NULL), 0);
        CHECK_EQ(mesh_tls_init(&c, cc[ctx_of[i]], "localhost"), 0);
        mesh_tls_use_session(&c, &slot);
        int rc, rs;
        handshake(&c, &s, &rc, &rs);
        CHECK_EQ(rc, MESH_TLS_DONE);
        CHECK_EQ(rs, MESH_TLS_DONE);
        uint8_t buf[16];
        CHECK_EQ(mesh_tls_read(&c, buf, sizeof(buf)), MESH_TLS_WANT); /* the tickets */
        CHECK_EQ(mesh_tls_resumed(&c), resumed[i]);
        CHECK_EQ(mesh_tls_resumed(&s), resumed[i]);
        CHECK(slot.sess != NULL);
        CHECK(slot.ctx == cc[ctx_of[i]]);
        mesh_tls_destroy(&c); /* no close_notify needed: the slot has the session */
        mesh_tls_destroy(&s);
    }
    uint64_t hs[2][2];
    mesh_tls_handshake_counts(hs); /* nobody counted: the h2 connection does that */
    CHECK_EQ(hs[0][1], 0);
    mesh_tls_session_clear(&slot);
    CHECK(slot.sess == NULL && slot.ctx == NULL);
    mesh_tls_ctx_unref(cc[0]);
    mesh_tls_ctx_unref(cc[1]);
    mesh_tls_ctx_unref(sc);
}

/* A handshake that must fail on the server (server_fails) or the client; returns the failed
 * side's class and checks its reason mentions want. */
static mesh_tls_fail_t failing(mesh_tls_ctx_t *sc, mesh_tls_ctx_t *cc, const char *name,
                               int server_fails, const char *want)
{
    mesh_tls_t s, c;
    CHECK_EQ(mesh_tls_init(&s, sc, NULL), 0);
    CHECK_EQ(mesh_tls_init(&c, cc, name), 0);
    int rc, rs;
    handshake(&c, &s, &rc, &rs);
    /* TLS 1.3 clients finish before the server checked their certificate: the server's verdict
     * reaches them as an alert on their first read. */
    if (rc == MESH_TLS_DONE) {
        uint8_t buf[16];
        move(&s, &c);
        rc = (int)mesh_tls_read(&c, buf, sizeof(buf));
    }
    mesh_tls_t *f = server_fails ? &s : &c;
    CHECK_EQ(server_fails ? rs : rc, MESH_TLS_FAIL);
    if (!strstr(mesh_tls_reason(f), want)) {
        fprintf(stderr, "reason \"%s\" lacks \"%s\"\n", mesh_tls_reason(f), want);
        CHECK(0);
    }
    mesh_tls_fail_t cls = f->fail_class;
    mesh_tls_destroy(&c);
    mesh_tls_destroy(&s);
    mesh_tls_ctx_unref(cc);
    mesh_tls_ctx_unref(sc);
    return cls;
}

static void test_failures(void)
{
    /* The client does not trust the server's CA. */
    CHECK_EQ(failing(server_ctx(0, "h2"), client_ctx("other-ca.pem", NULL, "h2"), "localhost", 0,
                     "unable to get local issuer certificate"),
             MESH_TLS_FAIL_VERIFY);
    /* The name the client dialed is not in the certificate. */
    CHECK_EQ(failing(server_ctx(0, "h2"), client_ctx("ca.pem", NULL, "h2"), "example.com", 0,
                     "hostname mismatch"),
             MESH_TLS_FAIL_VERIFY);
    CHECK_EQ(failing(server_ctx(0, "h2"), client_ctx("ca.pem", NULL, "h2"), "10.1.2.3", 0,
                     "IP address mismatch"),
             MESH_TLS_FAIL_VERIFY);
    /* A client certificate is required and none is sent. */
    CHECK_EQ(failing(server_ctx(MESH_TLS_CLIENT_AUTH_REQUIRE, "h2"),
                     client_ctx("ca.pem", NULL, "h2"), "localhost", 1,
                     "peer did not return a certificate"),
             MESH_TLS_FAIL_NO_PEER_CERT);
    /* A client certificate from another CA. */
    CHECK_EQ(failing(server_ctx(MESH_TLS_CLIENT_AUTH_OPTIONAL, "h2"),
                     client_ctx("ca.pem", "wrongca.pem", "h2"), "localhost", 1,
                     "certificate verify failed"),
             MESH_TLS_FAIL_VERIFY);
    /* No protocol in common. */
    CHECK_EQ(failing(server_ctx(0, "h2"), client_ctx("ca.pem", NULL, "http/1.1"), "localhost", 1,
                     "no application protocol"),
             MESH_TLS_FAIL_ALPN);
    /* Not TLS at all. */
    mesh_tls_ctx_t *sc = server_ctx(0, "h2");
    mesh_tls_t s;
    CHECK_EQ(mesh_tls_init(&s, sc, NULL), 0);
    const char *h2c = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    CHECK_EQ(mesh_tls_feed(&s, (const uint8_t *)h2c, strlen(h2c)), 0);
    CHECK_EQ(mesh_tls_handshake(&s), MESH_TLS_FAIL);
    CHECK_EQ(s.fail_class, MESH_TLS_FAIL_PROTOCOL);
    mesh_tls_fail_report(&s, "test", NULL); /* counted */
    uint64_t counts[MESH_TLS_FAIL_N];
    mesh_tls_fail_counts(counts);
    CHECK_EQ(counts[MESH_TLS_FAIL_PROTOCOL], 1);
    mesh_tls_destroy(&s);
    mesh_tls_ctx_unref(sc);
}

static void test_mtls_ok(void)
{
    mesh_tls_ctx_t *sc = server_ctx(MESH_TLS_CLIENT_AUTH_REQUIRE, "h2");
    mesh_tls_ctx_t *cc = client_ctx("ca.pem", "client.pem", "h2");
    mesh_tls_t s, c;
    CHECK_EQ(mesh_tls_init(&s, sc, NULL), 0);
    CHECK_EQ(mesh_tls_init(&c, cc, "::1"), 0);
    int rc, rs;
    handshake(&c, &s, &rc, &rs);
    CHECK_EQ(rc, MESH_TLS_DONE);
    CHECK_EQ(rs, MESH_TLS_DONE);
    X509 *peer = mesh_tls_peer_cert(&s);
    CHECK(peer);
    const mesh_ssl_t *S = mesh_ssl(NULL, 0);
    char name[128];
    S->x509_name_oneline(S->x509_subject(peer), name, sizeof(name));
    CHECK_STR(name, "/CN=client");
    S->x509_free(peer);
    mesh_tls_destroy(&c);
    mesh_tls_destroy(&s);
    mesh_tls_ctx_unref(cc);
    mesh_tls_ctx_unref(sc);
}

/* What a client certificate proves, read once the handshake is done (transport/tls_peer.h): a
 * meshd node's SPIFFE IDs; a certificate of another form or none proves nothing. */
static void test_peer_identity(void)
{
    mesh_tls_ctx_t *sc = server_ctx(MESH_TLS_CLIENT_AUTH_OPTIONAL, "h2");
    const char *certs[] = {"node.pem", "client.pem", NULL};
    for (int i = 0; i < 3; i++) {
        mesh_tls_ctx_t *cc = client_ctx("ca.pem", certs[i], "h2");
        mesh_tls_t s, c;
        CHECK_EQ(mesh_tls_init(&s, sc, NULL), 0);
        CHECK_EQ(mesh_tls_init(&c, cc, "127.0.0.1"), 0);
        char why[256] = "x";
        CHECK(mesh_tls_peer_id(&s, why, sizeof(why)) == NULL); /* not before the handshake */
        int rc, rs;
        handshake(&c, &s, &rc, &rs);
        CHECK_EQ(rs, MESH_TLS_DONE);
        mesh_peer_id_t *id = mesh_tls_peer_id(&s, why, sizeof(why));
        if (i == 0) {
            CHECK(id != NULL);
            CHECK_STR(id->node_uri.p, "spiffe://mesh.test/node/n1");
            CHECK_STR(id->node, "n1");
            CHECK_EQ(id->n_svc, 1);
            CHECK_STR(id->svc[0].p, "spiffe://mesh.test/svc/pkg.Orders");
        } else {
            CHECK(id == NULL);
            if (i == 1)
                CHECK(strstr(why, "no meshd identity") != NULL);
            else
                CHECK_STR(why, ""); /* no certificate: nothing to say */
        }
        mesh_peer_id_free(id);
        mesh_tls_destroy(&c);
        mesh_tls_destroy(&s);
        mesh_tls_ctx_unref(cc);
    }
    mesh_tls_ctx_unref(sc);
}

/* A context from these files must fail with every one of the want strings in the error. */
static void bad_files(const char *cert, const char *key, const char *ca, const char *want1,
                      const char *want2)
{
    char err[512] = "";
    mesh_tls_conf_t c = {.cert_file = cert, .key_file = key, .ca_file = ca, .alpn = "h2"};
    mesh_tls_ctx_t *ctx = mesh_tls_ctx_new(&c, 1, err, sizeof(err));
    if (ctx || !strstr(err, want1) || !strstr(err, want2)) {
        fprintf(stderr, "error \"%s\" should have \"%s\" and \"%s\"\n", err, want1, want2);
        CHECK(0);
    }
}

static void test_start_errors(void)
{
    bad_files(F("expired.pem"), F("expired.key"), NULL, "expired.pem has expired",
              "2020-01-02 00:00:00 UTC");
    bad_files(F("future.pem"), F("future.key"), NULL, "future.pem is not valid yet", "2099-01-01");
    bad_files(F("server.pem"), F("client.key"), NULL, "client.key does not match certificate",
              "server.pem");
    bad_files(F("wrongca.pem"), F("wrongca.key"), F("ca.pem"), "ca.pem does not verify",
              "unable to get local issuer certificate");
    bad_files(F("garbage.pem"), F("server.key"), NULL, "garbage.pem: no PEM certificate", "");
    bad_files(F("server.pem"), F("garbage.pem"), NULL, "garbage.pem: no PEM private key", "");
    bad_files(F("server.pem"), F("server.key"), F("garbage.pem"), "garbage.pem: no PEM", "");
    bad_files(F("missing.pem"), F("server.key"), NULL, "missing.pem: cannot read", "No such file");
}

static void test_holder_reload(void)
{
    char err[512];
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cp %s/server.pem %s/live.pem && cp %s/server.key %s/live.key", dir,
             dir, dir, dir);
    CHECK_EQ(system(cmd), 0);
    mesh_tls_conf_t c = {.cert_file = F("live.pem"), .key_file = F("live.key"), .alpn = "h2"};
    mesh_tls_holder_t *h = mesh_tls_holder_new(&c, 1, err, sizeof(err));
    CHECK(h);
    mesh_tls_ctx_t *first = mesh_tls_holder_get(h);
    CHECK_EQ(mesh_tls_holder_reload(h, 0, err, sizeof(err)), 0); /* unchanged */
    /* Only the certificate replaced (the key is still the old one): refused, old one kept. */
    snprintf(cmd, sizeof(cmd), "cp %s/client.pem %s/live.tmp && mv %s/live.tmp %s/live.pem", dir,
             dir, dir, dir);
    CHECK_EQ(system(cmd), 0);
    CHECK_EQ(mesh_tls_holder_reload(h, 0, err, sizeof(err)), -1);
    CHECK(strstr(err, "does not match"));
    mesh_tls_ctx_t *cur = mesh_tls_holder_get(h);
    CHECK(cur == first);
    mesh_tls_ctx_unref(cur);
    CHECK_EQ(mesh_tls_holder_reload(h, 0, err, sizeof(err)), 0); /* not retried until changed */
    /* Then the key: the pair is good, a new context is in place; the old one lives on. */
    snprintf(cmd, sizeof(cmd), "cp %s/client.key %s/live.tmp && mv %s/live.tmp %s/live.key", dir,
             dir, dir, dir);
    CHECK_EQ(system(cmd), 0);
    CHECK_EQ(mesh_tls_holder_reload(h, 0, err, sizeof(err)), 1);
    cur = mesh_tls_holder_get(h);
    CHECK(cur != first);
    CHECK_EQ(mesh_tls_holder_reload(h, 1, err, sizeof(err)), 1); /* forced (SIGHUP) */
    /* A ticket from the context before the reloads resumes on the one after them. */
    {
        const mesh_ssl_t *S = mesh_ssl(NULL, 0);
        mesh_tls_ctx_t *cc = client_ctx("ca.pem", NULL, "h2");
        mesh_tls_ctx_t *now = mesh_tls_holder_get(h);
        SSL_SESSION *sess = NULL;
        mesh_tls_ctx_t *servers[2] = {first, now};
        for (int i = 0; i < 2; i++) {
            mesh_tls_t s, c;
            CHECK_EQ(mesh_tls_init(&s, servers[i], NULL), 0);
            CHECK_EQ(mesh_tls_init(&c, cc, NULL), 0);
            S->ssl_set_verify(c.ssl, SSL_VERIFY_NONE, NULL); /* (live.pem is client.pem) */
            if (sess)
                CHECK_EQ(S->ssl_set_session(c.ssl, sess), 1);
            int rc, rs;
            handshake(&c, &s, &rc, &rs);
            CHECK_EQ(rc, MESH_TLS_DONE);
            CHECK_EQ(rs, MESH_TLS_DONE);
            uint8_t buf[16];
            CHECK_EQ(mesh_tls_read(&c, buf, sizeof(buf)), MESH_TLS_WANT);
            CHECK_EQ(mesh_tls_resumed(&s), i == 1);
            if (!sess)
                sess = S->ssl_get1_session(c.ssl);
            mesh_tls_close(&c);
            mesh_tls_destroy(&c);
            mesh_tls_destroy(&s);
        }
        S->session_free(sess);
        mesh_tls_ctx_unref(now);
        mesh_tls_ctx_unref(cc);
    }
    CHECK_EQ(mesh_tls_holder_reloads(h), 2);
    mesh_tls_ctx_unref(cur);
    mesh_tls_ctx_unref(first);
    mesh_tls_holder_free(h);
}

static void cleanup(void)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
    CHECK(argc == 2); /* tests/tls/mkcerts.sh */
    snprintf(dir, sizeof(dir), "/tmp/meshd-tls-XXXXXX");
    CHECK(mkdtemp(dir));
    atexit(cleanup);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "sh %s %s", argv[1], dir);
    CHECK_EQ(system(cmd), 0);
    CHECK(!mesh_ssl_loaded()); /* nothing loads libssl before a context is made */
    test_handshake_alpn_data();
    CHECK(mesh_ssl_loaded());
    test_resumption();
    test_upstream_session_slot();
    test_failures();
    test_mtls_ok();
    test_peer_identity();
    test_start_errors();
    test_holder_reload();
    printf("ok\n");
    return 0;
}
