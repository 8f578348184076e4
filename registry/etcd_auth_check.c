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

int etcd_auth_check(const etcd_client_cfg_t *cfg, char *err, size_t errlen)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        snprintf(err, errlen, "etcd: cannot check the credentials (no event loop)");
        return ETCD_AUTH_CHECK_UNREACHED;
    }
    /* The authentication itself, sent as an ordinary request by a client without a user: its
     * answer is etcd's, reason included. */
    etcd_client_cfg_t plain = *cfg;
    plain.username = plain.password = NULL;
    plain.request_timeout_ms = 3000;
    plain.connect_timeout_ms = 1000;
    etcd_client_t *c = etcd_client_new(&loop, &plain);
    json_t *j = json_pack("{s:s,s:s}", "name", cfg->username ? cfg->username : "", "password",
                          cfg->password ? cfg->password : "");
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    check_t k = {0};
    int rc = ETCD_AUTH_CHECK_UNREACHED;
    if (c && body && etcd_client_post(c, "/v3/auth/authenticate", body, on_done, &k)) {
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
        snprintf(err, errlen, "etcd: cannot check the credentials of user %s",
                 cfg->username ? cfg->username : "");
    } else if (k.err == ETCD_OK) {
        json_t *root = json_loadb(k.body ? k.body : "", k.len, 0, NULL);
        if (json_is_string(json_object_get(root, "token")))
            rc = ETCD_AUTH_CHECK_OK;
        else {
            snprintf(err, errlen, "etcd: authentication as user %s gave no token",
                     cfg->username ? cfg->username : "");
            rc = ETCD_AUTH_CHECK_REFUSED;
        }
        json_decref(root);
    } else if (k.err == ETCD_ERR_SERVER) {
        etcd_error_t e;
        etcd_decode_error(k.body ? k.body : "", k.len, &e);
        snprintf(err, errlen, "etcd: authentication as user %s refused: %s",
                 cfg->username ? cfg->username : "", e.message[0] ? e.message : "(no reason)");
        rc = ETCD_AUTH_CHECK_REFUSED;
    } else {
        snprintf(err, errlen, "etcd: cannot check the credentials of user %s: %s",
                 cfg->username ? cfg->username : "", etcd_strerror(k.err));
    }
    free(k.body);
    return rc;
}
