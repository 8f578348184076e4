/*
 * gateway/wkt_set.c: access to the embedded FileDescriptorSet of the well-known types
 * (generated at build time into gw_wkt_set.c by gateway/CMakeLists.txt).
 */
#include "gateway/schema.h"

extern const unsigned char gw_wkt_set_bytes[];
extern const size_t gw_wkt_set_bytes_len;

const uint8_t *gw_wkt_descriptor_set(size_t *len)
{
    *len = gw_wkt_set_bytes_len;
    return gw_wkt_set_bytes;
}
