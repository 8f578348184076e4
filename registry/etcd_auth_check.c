/*
 * registry/etcd_auth_check.c: the start-time check of etcd credentials (see
 * etcd_auth_check.h): the password file, and one authentication on a private libuv loop with
 * the production etcd client.
 */
#include "registry/etcd_auth_check.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/etcd_codec.h"

int etcd_password_read(const char *path, char **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "etcd-password-file: cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n <= 0) {
        free(line);
        snprintf(err, errlen, "etcd-password-file: %s: %s", path,
                 rerr ? strerror(rerr) : "empty (the password is its first line)");
        return -1;
    }
    *out = line;
    return 0;
}

typedef struct check {
    int done;
    int err;
    char *body;
    size_t len;
} check_t;

static void on_done(void *ud, int err, const char *body, size_t len)
{
    check_t *k = ud;
    k->done = 1;
    k->err = err;
    k->body = len ? strndup(body, len) : NULL;
    k->len = k->body ? len : 0;
}

/* etcd 3.4 with --client-cert-auth answers a plain-text 400 to any gateway request whose
 * client certificate has a common name (the gateway cannot pass the CN on, so it refuses to
 * let it be mistaken for the user). etcd gives no code for it: its text is all there is. */
static const char gateway_cn[] = "CommonName of client sending a request against gateway";

/* The reason of a refused answer: etcd's error message, or the start of a body that is not
 * etcd's JSON, with advice for the case above. */
static void reason(const char *body, size_t len, const char *who, char *err, size_t errlen)
{
    etcd_error_t e;
    if (etcd_decode_error(body, len, &e) == 1 && e.message[0]) {
        snprintf(err, errlen, "etcd: %s refused: %s", who, e.message);
    } else if (len && memmem(body, len, gateway_cn, sizeof(gateway_cn) - 1)) {
        snprintf(err, errlen,
                 "etcd: %s refused: etcd (--client-cert-auth) refuses client certificates with "
                 "a common name on its JSON gateway, which meshd uses: give meshd a client "
                 "certificate without a CN (its subject O=... only) and the identity with "
                 "--etcd-user/--etcd-password-file (docs/etcd-rbac.md)",
                 who);
    } else {
        int n = (int)(len > 160 ? 160 : len);
        while (n > 0 && (body[n - 1] == '\n' || body[n - 1] == '\r'))
            n--;
        snprintf(err, errlen, "etcd: %s refused: %.*s", who, n, n ? body : "(no reason)");
    }
}

int etcd_auth_check(const etcd_client_cfg_t *cfg, char *err, size_t errlen)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        snprintf(err, errlen, "etcd: cannot check the credentials (no event loop)");
        return ETCD_AUTH_CHECK_UNREACHED;
    }
    char who[512];
    if (cfg->username)
        snprintf(who, sizeof(who), "authentication as user %s", cfg->username);
    else
        snprintf(who, sizeof(who), "the client certificate %s",
                 cfg->cert_file ? cfg->cert_file : "(none)");
    /* With a user: the authentication itself, sent as an ordinary request by a client without
     * a user, so its answer is etcd's, reason included. With a certificate alone: one range,
     * whose answer (even "permission denied") shows that etcd took the certificate. */
    etcd_client_cfg_t plain = *cfg;
    plain.username = plain.password = NULL;
    plain.request_timeout_ms = 3000;
    plain.connect_timeout_ms = 1000;
    etcd_client_t *c = etcd_client_new(&loop, &plain);
    char *body = NULL;
    const char *path = "/v3/kv/range";
    if (cfg->username) {
        json_t *j = json_pack("{s:s,s:s}", "name", cfg->username, "password",
                              cfg->password ? cfg->password : "");
        body = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        path = "/v3/auth/authenticate";
    } else {
        body = strdup("{\"key\":\"bWVzaGQ=\"}"); /* "meshd" */
    }
    check_t k = {0};
    int rc = ETCD_AUTH_CHECK_UNREACHED;
    if (c && body && etcd_client_post(c, path, body, on_done, &k)) {
        while (!k.done && uv_run(&loop, UV_RUN_ONCE))
            ;
    }
    if (body) /* the password: do not leave it in freed memory */
        memset(body, 0, strlen(body));
    free(body);
    etcd_client_free(c);
    uv_run(&loop, UV_RUN_DEFAULT); /* the client's handles close */
    uv_loop_close(&loop);
    if (!k.done) {
        snprintf(err, errlen, "etcd: cannot check %s", who);
    } else if (k.err == ETCD_OK) {
        json_t *root = json_loadb(k.body ? k.body : "", k.len, 0, NULL);
        if (!cfg->username || json_is_string(json_object_get(root, "token"))) {
            rc = ETCD_AUTH_CHECK_OK;
        } else {
            snprintf(err, errlen, "etcd: %s gave no token", who);
            rc = ETCD_AUTH_CHECK_REFUSED;
        }
        json_decref(root);
    } else if (k.err == ETCD_ERR_SERVER) {
        etcd_error_t e;
        int json = etcd_decode_error(k.body ? k.body : "", k.len, &e) == 1;
        if (!cfg->username && json) {
            rc = ETCD_AUTH_CHECK_OK; /* etcd's own answer: the certificate got through */
        } else {
            reason(k.body ? k.body : "", k.len, who, err, errlen);
            rc = ETCD_AUTH_CHECK_REFUSED;
        }
    } else {
        snprintf(err, errlen, "etcd: cannot check %s: %s", who, etcd_strerror(k.err));
    }
    free(k.body);
    return rc;
}
