/*
 * tests/unit/grpc/test_health_msg.c: grpc.health.v1 request encoding and response decoding,
 * checked against bytes laid out by hand from health.proto.
 */
#include "grpc/health_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/check.h"

int main(void)
{
    uint8_t buf[64];
    /* The whole server: the empty message. */
    CHECK(mesh_health_encode_request("", buf, sizeof(buf)) == 0);
    CHECK(mesh_health_encode_request(NULL, buf, sizeof(buf)) == 0);
    /* service = "a.B": field 1, wire type 2, length 3. */
    CHECK(mesh_health_encode_request("a.B", buf, sizeof(buf)) == 5);
    CHECK(memcmp(buf,
                 "\x0a\x03"
                 "a.B",
                 5) == 0);
    CHECK(mesh_health_encode_request("a.B", buf, 4) == -1);

    mesh_health_status_t st;
    const uint8_t serving[] = {0x08, 0x01};
    CHECK(mesh_health_decode_response(serving, sizeof(serving), &st) == 0);
    CHECK(st == MESH_HEALTH_SERVING);
    CHECK(st == MESH_HEALTH_SERVING);
    const uint8_t not_serving[] = {0x08, 0x02};
    CHECK(mesh_health_decode_response(not_serving, sizeof(not_serving), &st) == 0);
    CHECK(st == MESH_HEALTH_NOT_SERVING);
    CHECK(st != MESH_HEALTH_SERVING);
    CHECK(strcmp(mesh_health_status_name(st), "NOT_SERVING") == 0);
    /* The empty message is UNKNOWN (default value), which is not serving. */
    CHECK(mesh_health_decode_response(serving, 0, &st) == 0);
    CHECK(st == MESH_HEALTH_UNKNOWN);
    CHECK(st != MESH_HEALTH_SERVING);
    /* Unknown fields are skipped. */
    const uint8_t extra[] = {0x12, 0x02, 'h', 'i', 0x08, 0x03};
    CHECK(mesh_health_decode_response(extra, sizeof(extra), &st) == 0);
    CHECK(st == MESH_HEALTH_SERVICE_UNKNOWN);
    /* Garbage. */
    const uint8_t bad[] = {0x08};
    CHECK(mesh_health_decode_response(bad, sizeof(bad), &st) == -1);
    const uint8_t bad2[] = {0x0a, 0x7f, 0x00};
    CHECK(mesh_health_decode_response(bad2, sizeof(bad2), &st) == -1);
    printf("test_health_msg: ok\n");
    return 0;
}
