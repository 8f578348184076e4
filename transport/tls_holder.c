/*
 * transport/tls_holder.c: a listener's current TLS context and its reload (see
 * transport/tls_holder.h).
 */
#include "transport/tls_holder.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { F_CERT, F_KEY, F_CA, F_N };

typedef struct file_sig {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int missing;
} file_sig_t;

struct mesh_tls_holder {
    pthread_mutex_t lock;
    mesh_tls_ctx_t *cur;
    int server;
    char *files[F_N];
    char *alpn;
    int client_auth;
    file_sig_t seen[F_N]; /* as of the last attempt, good or bad */
    _Atomic uint64_t reloads;
};

static void sig_of(const char *path, file_sig_t *s)
{
    memset(s, 0, sizeof(*s));
    struct stat st;
    if (!path || stat(path, &st) != 0) {
        s->missing = 1;
        return;
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->size = st.st_size;
    s->mtime = st.st_mtim;
}

static int sig_eq(const file_sig_t *a, const file_sig_t *b)
{
    return a->missing == b->missing && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static mesh_tls_ctx_t *make(mesh_tls_holder_t *h, char *err, size_t errlen)
{
    mesh_tls_conf_t conf = {.cert_file = h->files[F_CERT],
                            .key_file = h->files[F_KEY],
                            .ca_file = h->files[F_CA],
                            .client_auth = h->client_auth,
                            .alpn = h->alpn};
    for (int i = 0; i < F_N; i++)
        sig_of(h->files[i], &h->seen[i]);
    return mesh_tls_ctx_new(&conf, h->server, err, errlen);
}

static mesh_tls_holder_t *holder_new(const mesh_tls_conf_t *conf, int server, int waiting,
                                     char *err, size_t errlen)
{
    mesh_tls_holder_t *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&h->lock, NULL);
    h->server = server;
    h->client_auth = conf->client_auth;
    h->files[F_CERT] = dup_or_null(conf->cert_file);
    h->files[F_KEY] = dup_or_null(conf->key_file);
    h->files[F_CA] = dup_or_null(conf->ca_file);
    h->alpn = dup_or_null(conf->alpn);
    h->cur = make(h, err, errlen);
    if (!h->cur && !waiting) {
        mesh_tls_holder_free(h);
        return NULL;
    }
    return h;
}

mesh_tls_holder_t *mesh_tls_holder_new(const mesh_tls_conf_t *conf, int server, char *err,
                                       size_t errlen)
{
    return holder_new(conf, server, 0, err, errlen);
}

mesh_tls_holder_t *mesh_tls_holder_new_waiting(const mesh_tls_conf_t *conf, int server, char *err,
                                               size_t errlen)
{
    return holder_new(conf, server, 1, err, errlen);
}

void mesh_tls_holder_free(mesh_tls_holder_t *h)
{
    if (!h)
        return;
    mesh_tls_ctx_unref(h->cur);
    for (int i = 0; i < F_N; i++)
        free(h->files[i]);
    free(h->alpn);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

mesh_tls_ctx_t *mesh_tls_holder_get(mesh_tls_holder_t *h)
{
    pthread_mutex_lock(&h->lock);
    mesh_tls_ctx_t *c = h->cur;
    if (c)
        mesh_tls_ctx_ref(c);
    pthread_mutex_unlock(&h->lock);
    return c;
}

int mesh_tls_holder_reload(mesh_tls_holder_t *h, int force, char *err, size_t errlen)
{
    if (!force) {
        int changed = 0;
        for (int i = 0; i < F_N && !changed; i++) {
            if (!h->files[i])
                continue;
            file_sig_t now;
            sig_of(h->files[i], &now);
            changed = !sig_eq(&now, &h->seen[i]);
        }
        if (!changed)
            return 0;
    }
    mesh_tls_ctx_t *next = make(h, err, errlen);
    if (!next)
        return -1;
    pthread_mutex_lock(&h->lock);
    mesh_tls_ctx_share_tickets(h->cur, next); /* clients' tickets keep resuming */
    mesh_tls_ctx_t *old = h->cur;
    h->cur = next;
    pthread_mutex_unlock(&h->lock);
    mesh_tls_ctx_unref(old); /* freed once its last connection ends */
    atomic_fetch_add(&h->reloads, 1);
    return 1;
}

uint64_t mesh_tls_holder_reloads(const mesh_tls_holder_t *h)
{
    return atomic_load(&((mesh_tls_holder_t *)h)->reloads);
}

const char *mesh_tls_holder_desc(const mesh_tls_holder_t *h)
{
    return h->files[F_CERT] ? h->files[F_CERT] : h->files[F_CA] ? h->files[F_CA] : "";
}
