/*
 * simulations/sim_values.c: the records the simulated writers put (see sim_values.h).
 */
#include "simulations/sim_values.h"

#include <stdio.h>

#include "simulations/sim_etcd.h"

uint32_t sim_value_instance(char *buf, size_t cap, const char *addr, const char *node, uint64_t r)
{
    static const char *const methods[] = {"[\"Get\"]", "[\"Get\",\"Put\"]", "[]",
                                          "[\"SayHello\",\"SayBye\"]"};
    unsigned weight = (unsigned)(r >> 8) % 101;
    switch (r % 8) {
    case 0: /* the bare resolver record */
        snprintf(buf, cap, "{\"Op\":0,\"Addr\":\"%s\"}", addr);
        break;
    case 1: /* Op omitted, Metadata not an object: still an instance */
        snprintf(buf, cap, "{\"Addr\":\"%s\",\"Metadata\":\"opaque\"}", addr);
        break;
    case 2:
        snprintf(buf, cap, "{\"Op\":0,\"Addr\":\"%s\",\"Metadata\":null}", addr);
        break;
    default:
        snprintf(buf, cap,
                 "{\"Op\":0,\"Addr\":\"%s\",\"Metadata\":{\"node\":\"%s\",\"methods\":%s,"
                 "\"zone\":\"z%u\",\"weight\":%u,\"version\":\"1.%u\"}}",
                 addr, node, methods[(r >> 4) % 4], (unsigned)(r >> 16) % 3, weight,
                 (unsigned)(r >> 24) % 7);
        break;
    }
    return 0;
}

uint32_t sim_value_odd(char *buf, size_t cap, const char *addr, uint64_t r)
{
    switch (r % 8) {
    case 0:
        snprintf(buf, cap, "{\"Op\":1,\"Addr\":\"%s\"}", addr);
        return SIM_TAG_HIDDEN;
    case 1:
        snprintf(buf, cap, "not json at all");
        return SIM_TAG_MALFORMED;
    case 2:
        snprintf(buf, cap, "{\"Op\":0}");
        return SIM_TAG_MALFORMED;
    case 3:
        snprintf(buf, cap, "{\"Op\":0,\"Addr\":\"%s\",\"Metadata\":{\"weight\":-5}}", addr);
        return SIM_TAG_MALFORMED;
    case 4:
        snprintf(buf, cap, "[1,2,3]");
        return SIM_TAG_MALFORMED;
    case 5:
        snprintf(buf, cap, "{\"Op\":7,\"Addr\":\"%s\"}", addr);
        return SIM_TAG_MALFORMED;
    case 6:
        snprintf(buf, cap, "{\"Op\":0,\"Addr\":\"%s\",\"Metadata\":{\"methods\":\"Get\"}}", addr);
        return SIM_TAG_MALFORMED;
    default:
        snprintf(buf, cap, "%s", "");
        return SIM_TAG_MALFORMED;
    }
}

void sim_key_bad(char *buf, size_t cap, const char *prefix, uint64_t r)
{
    switch (r % 3) {
    case 0:
        snprintf(buf, cap, "%spkg.Lonely", prefix);
        break;
    case 1:
        snprintf(buf, cap, "%spkg Spaced/10.9.9.9:1", prefix);
        break;
    default:
        snprintf(buf, cap, "%spkg.Deep/10.9.9.9:1/extra", prefix);
        break;
    }
}
