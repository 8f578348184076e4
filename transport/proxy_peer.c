/*
 * transport/proxy_peer.c: who the client of a call is, as its TLS certificate proved
 * (mesh_proxy_call_client_identity, transport/proxy.h), whatever front end took the call.
 *
 * The engine's HTTP/2 listener reads the identity once per connection (proxy_worker.c); a front
 * end that starts calls through the upstream-call API (the gateway's HTTP/1.1 and HTTP/2
 * listener, transport/h1_server.c) reads its own the same way and reports it through its
 * downstream interface (mesh_proxy_downstream_t.peer_identity). The filters see one accessor
 * for both, so an identity rule means the same on every listener. Nothing is copied per call.
 */
#include "transport/proxy_call.h"
#include "transport/proxy_internal.h"

const struct mesh_peer_id *mesh_proxy_call_client_identity(const mesh_proxy_call_t *ps)
{
    if (ps->ds)
        return mesh_proxy_call_peer_identity(ps);
    const mesh_proxy_downstream_t *ops = ps->api.ops;
    if (ops && ops->peer_identity && !ps->api.cancelled)
        return ops->peer_identity(ps->api.ud, ps);
    return NULL;
}
