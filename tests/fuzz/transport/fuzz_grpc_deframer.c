/*
 * tests/fuzz/transport/fuzz_grpc_deframer.c: libFuzzer harness for the gRPC message
 * deframer. The first byte picks the split size, so messages cross chunk boundaries in every
 * way; the deframer must never read out of bounds and must agree with a one-shot feed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "transport/grpc_frame.h"

static int on_msg(void *arg, int compressed, const uint8_t *msg, size_t len)
{
    size_t *count = arg;
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < len; i++)
        sink ^= msg[i];
    (void)sink;
    (*count)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] + 1;
    data++;
    size--;
    size_t whole = 0, split = 0;
    mesh_grpc_deframer_t a, b;
    mesh_grpc_deframer_init(&a, 1 << 16, on_msg, &whole);
    mesh_grpc_deframer_init(&b, 1 << 16, on_msg, &split);
    int ra = mesh_grpc_deframer_feed(&a, data, size);
    int rb = 0;
    for (size_t o = 0; o < size && rb == 0; o += step)
        rb = mesh_grpc_deframer_feed(&b, data + o, size - o < step ? size - o : step);
    if (ra != rb || (ra == 0 && whole != split))
        abort();
    mesh_grpc_deframer_destroy(&a);
    mesh_grpc_deframer_destroy(&b);
    return 0;
}
