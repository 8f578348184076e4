/*
 * transport/grpc_frame.h: gRPC length-prefixed message framing, sans I/O.
 *
 * A gRPC message on the wire is a 5-byte prefix (1 byte compressed flag, 4 bytes big-endian
 * length) followed by the message bytes; DATA frames may split a message anywhere. The
 * deframer is fed the DATA payloads in order and hands out whole messages, borrowing from the
 * input when a message lies entirely in one chunk and assembling it in its own buffer only
 * when it crosses chunks.
 */
#ifndef MESH_GRPC_FRAME_H
#define MESH_GRPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

/** Size of the gRPC message prefix. */
#define MESH_GRPC_PREFIX_LEN 5

/** Default largest message the deframer accepts (gRPC's default receive limit is 4 MiB). */
#define MESH_GRPC_DEFAULT_MAX_MESSAGE (4u * 1024 * 1024)

/**
 * Called once per complete message. msg is valid only during the call. Return 0 to go on,
 * nonzero to stop mesh_grpc_deframer_feed() (which then returns that value).
 */
typedef int (*mesh_grpc_on_message_cb)(void *arg, int compressed, const uint8_t *msg, size_t len);

/** The incremental deframer of one direction of one stream. */
typedef struct mesh_grpc_deframer {
    uint8_t prefix[MESH_GRPC_PREFIX_LEN];
    size_t prefix_have; /* bytes of the prefix seen so far */
    uint32_t msg_len;   /* length of the current message, once the prefix is whole */
    int compressed;
    uint8_t *buf; /* assembly buffer for messages that cross chunks */
    size_t buf_cap;
    size_t buf_have;
    size_t max_message;
    mesh_grpc_on_message_cb on_message;
    void *arg;
} mesh_grpc_deframer_t;

/** Starts a deframer; max_message 0 means MESH_GRPC_DEFAULT_MAX_MESSAGE. */
void mesh_grpc_deframer_init(mesh_grpc_deframer_t *d, size_t max_message,
                             mesh_grpc_on_message_cb on_message, void *arg);

/** Frees the assembly buffer. */
void mesh_grpc_deframer_destroy(mesh_grpc_deframer_t *d);

/**
 * Feeds len bytes. Returns 0, -1 when a message is larger than max_message or the compressed
 * flag is neither 0 nor 1 (the stream is then unusable), -2 on out of memory, or the nonzero
 * value a callback returned.
 */
int mesh_grpc_deframer_feed(mesh_grpc_deframer_t *d, const uint8_t *data, size_t len);

/** Nonzero when the deframer sits between messages (an end of stream here is clean). */
int mesh_grpc_deframer_idle(const mesh_grpc_deframer_t *d);

/** Writes the 5-byte prefix of a message of len bytes into out. */
void mesh_grpc_frame_prefix(uint8_t out[MESH_GRPC_PREFIX_LEN], int compressed, uint32_t len);

#endif
