/*
 * common/curl_uv.h: libcurl's multi socket API driven by a libuv loop.
 *
 * curl says which sockets it wants watched and when its next timeout is (CURLMOPT_SOCKETFUNCTION,
 * CURLMOPT_TIMERFUNCTION); this keeps one uv_poll per socket and one uv_timer, and when either
 * fires hands the socket and its events to the owner (the etcd client, the HTTP fetcher), which
 * runs curl_multi_socket_action inside its own re-entrancy guard and reads what finished. The
 * owner embeds a mesh_curl_uv_t, calls mesh_curl_uv_init after curl_multi_init and, when it
 * closes, mesh_curl_uv_close after curl_multi_cleanup.
 */
#ifndef MESH_CURL_UV_H
#define MESH_CURL_UV_H

#include <curl/curl.h>
#include <uv.h>

/** Runs curl_multi_socket_action(multi, fd, flags) for the owner (fd CURL_SOCKET_TIMEOUT and
 *  flags 0 when curl's timer fired). */
typedef void (*mesh_curl_uv_action_cb)(void *owner, curl_socket_t fd, int flags);

typedef struct mesh_curl_uv {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;                /* curl's timeout */
    struct mesh_curl_uv_sock *socks; /* the sockets curl watches */
    mesh_curl_uv_action_cb action;
    void *owner;
} mesh_curl_uv_t;

/** Sets the multi handle's socket and timer callbacks to g and starts g's timer handle. */
void mesh_curl_uv_init(mesh_curl_uv_t *g, uv_loop_t *loop, CURLM *multi,
                       mesh_curl_uv_action_cb action, void *owner);

/**
 * After curl_multi_cleanup: stops and closes the sockets' polls still open, and closes the timer
 * handle; closed(h) then runs with h->data set to the owner (to count the owner's handles).
 */
void mesh_curl_uv_close(mesh_curl_uv_t *g, uv_close_cb closed);

#endif
