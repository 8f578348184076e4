/*
 * common/curl_uv.c: libcurl's multi socket API on a libuv loop (see common/curl_uv.h).
 */
#include "common/curl_uv.h"

#include <stdlib.h>

#include "common/curl_lib.h"

/* Loaded by the owner before its multi handle exists (common/curl_lib.c). */
#define cu (mesh_curl(NULL, 0))

typedef struct mesh_curl_uv_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    mesh_curl_uv_t *g;
    struct mesh_curl_uv_sock *next, *prev;
} sock_t;

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_t *s = h->data;
    int flags = status < 0 ? CURL_CSELECT_ERR : 0;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    s->g->action(s->g->owner, s->fd, flags);
}

static void on_timer(uv_timer_t *t)
{
    mesh_curl_uv_t *g = t->data;
    g->action(g->owner, CURL_SOCKET_TIMEOUT, 0);
}

static void sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static void sock_release(mesh_curl_uv_t *g, sock_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        g->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)e;
    mesh_curl_uv_t *g = userp;
    sock_t *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            cu->multi_assign(g->multi, fd, NULL);
            sock_release(g, s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        if (uv_poll_init_socket(g->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->fd = fd;
        s->g = g;
        s->poll.data = s;
        s->next = g->socks;
        if (g->socks)
            g->socks->prev = s;
        g->socks = s;
        cu->multi_assign(g->multi, fd, s);
    }
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    mesh_curl_uv_t *g = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&g->timer);
    else
        uv_timer_start(&g->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

void mesh_curl_uv_init(mesh_curl_uv_t *g, uv_loop_t *loop, CURLM *multi,
                       mesh_curl_uv_action_cb action, void *owner)
{
    g->loop = loop;
    g->multi = multi;
    g->socks = NULL;
    g->action = action;
    g->owner = owner;
    uv_timer_init(loop, &g->timer);
    g->timer.data = g;
    cu->multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    cu->multi_setopt(multi, CURLMOPT_SOCKETDATA, g);
    cu->multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    cu->multi_setopt(multi, CURLMOPT_TIMERDATA, g);
}

void mesh_curl_uv_close(mesh_curl_uv_t *g, uv_close_cb closed)
{
    while (g->socks)
        sock_release(g, g->socks);
    g->timer.data = g->owner;
    uv_close((uv_handle_t *)&g->timer, closed);
}
