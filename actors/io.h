/*
 * actors/io.h: the I/O seam between protocol code and the world.
 *
 * A small table of callbacks (mesh_io_ops_t) gives a clock, datagrams and byte streams. The
 * real executor binds it to libuv on each loop (io_uv.c); the simulator binds it to a
 * simulated network (simnet.h) with latency, loss and partitions drawn from its seeded PRNG.
 * Protocol code (gossip, etcd watch logic) calls only these wrappers, so it runs unchanged on
 * both. Every callback runs on the loop thread that owns the io object.
 */
#ifndef MESH_IO_H
#define MESH_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/addr.h"

typedef struct mesh_io mesh_io_t;
typedef struct mesh_udp mesh_udp_t;
typedef struct mesh_stream mesh_stream_t;
typedef struct mesh_listener mesh_listener_t;

/** A datagram arrived (data is borrowed for the call). */
typedef void (*mesh_udp_recv_cb)(mesh_udp_t *sock, const mesh_addr_t *from, const void *data,
                                 size_t len, void *arg);
/** A connection was accepted on a listener; the stream is the callee's to close. */
typedef void (*mesh_accept_cb)(mesh_listener_t *l, mesh_stream_t *s, void *arg);
/** A connect finished: status 0 or a negative errno-style code; either way the stream stays
 *  the caller's to close. */
typedef void (*mesh_connect_cb)(mesh_stream_t *s, int status, void *arg);
/** Bytes arrived (borrowed); len < 0 is EOF (-1) or an error: the stream should be closed. */
typedef void (*mesh_read_cb)(mesh_stream_t *s, const void *data, ssize_t len, void *arg);

/** The seam: one table per backend. */
typedef struct mesh_io_ops {
    uint64_t (*now_ns)(mesh_io_t *io);
    int (*udp_bind)(mesh_io_t *io, const mesh_addr_t *addr, mesh_udp_recv_cb cb, void *arg,
                    mesh_udp_t **out);
    int (*udp_local_addr)(mesh_udp_t *s, mesh_addr_t *out);
    int (*udp_send)(mesh_udp_t *s, const mesh_addr_t *to, const void *data, size_t len);
    void (*udp_close)(mesh_udp_t *s);
    int (*listen)(mesh_io_t *io, const mesh_addr_t *addr, mesh_accept_cb cb, void *arg,
                  mesh_listener_t **out);
    int (*listener_addr)(mesh_listener_t *l, mesh_addr_t *out);
    void (*listener_close)(mesh_listener_t *l);
    int (*connect)(mesh_io_t *io, const mesh_addr_t *to, mesh_connect_cb cb, void *arg,
                   mesh_stream_t **out);
    int (*read_start)(mesh_stream_t *s, mesh_read_cb cb, void *arg);
    int (*write)(mesh_stream_t *s, const void *data, size_t len);
    void (*stream_close)(mesh_stream_t *s);
} mesh_io_ops_t;

/** An io object: backends embed this as their first member. */
struct mesh_io {
    const mesh_io_ops_t *ops;
};

/** Now in ns on this io's clock. */
static inline uint64_t mesh_io_now(mesh_io_t *io)
{
    return io->ops->now_ns(io);
}
/** Binds a datagram socket (port 0 picks one on the real network). */
static inline int mesh_udp_bind(mesh_io_t *io, const mesh_addr_t *a, mesh_udp_recv_cb cb, void *arg,
                                mesh_udp_t **out)
{
    return io->ops->udp_bind(io, a, cb, arg, out);
}
/** The address a datagram socket is bound to. */
static inline int mesh_udp_local_addr(mesh_io_t *io, mesh_udp_t *s, mesh_addr_t *out)
{
    return io->ops->udp_local_addr(s, out);
}
/** Sends one datagram (best effort: may be dropped, never blocks). */
static inline int mesh_udp_send(mesh_io_t *io, mesh_udp_t *s, const mesh_addr_t *to, const void *d,
                                size_t n)
{
    return io->ops->udp_send(s, to, d, n);
}
/** Closes a datagram socket; no callback runs after this. */
static inline void mesh_udp_close(mesh_io_t *io, mesh_udp_t *s)
{
    io->ops->udp_close(s);
}
/** Listens for streams. */
static inline int mesh_listen(mesh_io_t *io, const mesh_addr_t *a, mesh_accept_cb cb, void *arg,
                              mesh_listener_t **out)
{
    return io->ops->listen(io, a, cb, arg, out);
}
/** The address a listener is bound to. */
static inline int mesh_listener_addr(mesh_io_t *io, mesh_listener_t *l, mesh_addr_t *out)
{
    return io->ops->listener_addr(l, out);
}
/** Closes a listener. */
static inline void mesh_listener_close(mesh_io_t *io, mesh_listener_t *l)
{
    io->ops->listener_close(l);
}
/** Connects a stream; cb runs once with the result. */
static inline int mesh_connect(mesh_io_t *io, const mesh_addr_t *to, mesh_connect_cb cb, void *arg,
                               mesh_stream_t **out)
{
    return io->ops->connect(io, to, cb, arg, out);
}
/** Starts delivering bytes to cb. */
static inline int mesh_read_start(mesh_io_t *io, mesh_stream_t *s, mesh_read_cb cb, void *arg)
{
    return io->ops->read_start(s, cb, arg);
}
/** Writes bytes (copied; queued in order). */
static inline int mesh_write(mesh_io_t *io, mesh_stream_t *s, const void *d, size_t n)
{
    return io->ops->write(s, d, n);
}
/** Closes a stream; no callback runs after this. */
static inline void mesh_stream_close(mesh_io_t *io, mesh_stream_t *s)
{
    io->ops->stream_close(s);
}

#endif
