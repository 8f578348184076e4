/*
 * tests/unit/common/test_crc32c.c: CRC-32C against the standard check value and a bitwise
 * reference, in hardware and in software, at every alignment, whole and in pieces.
 */
#include <stdint.h>
#include <string.h>

#include "common/crc32c.h"
#include "tests/check.h"

/* One bit at a time, straight from the definition. */
static uint32_t reference(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

static void t_check_value(void)
{
    CHECK_EQ(mesh_crc32c("123456789", 9), 0xE3069283u);
    CHECK_EQ(mesh_crc32c_extend_sw(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ(mesh_crc32c("", 0), 0);
    /* 32 zero bytes: the iSCSI test vector (RFC 3720 B.4). */
    uint8_t z[32] = {0};
    CHECK_EQ(mesh_crc32c(z, sizeof(z)), 0x8A9136AAu);
}

static void t_against_reference(void)
{
    uint8_t buf[1100];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n + off <= sizeof(buf); n += n < 40 ? 1 : 97) {
            uint32_t want = reference(buf + off, n);
            CHECK_EQ(mesh_crc32c(buf + off, n), want);
            CHECK_EQ(mesh_crc32c_extend_sw(0, buf + off, n), want);
            size_t cut = n / 3;
            CHECK_EQ(mesh_crc32c_extend(mesh_crc32c(buf + off, cut), buf + off + cut, n - cut),
                     want);
            CHECK_EQ(mesh_crc32c_extend_sw(mesh_crc32c_extend_sw(0, buf + off, cut),
                                           buf + off + cut, n - cut),
                     want);
        }
}

int main(void)
{
    RUN(t_check_value);
    RUN(t_against_reference);
    return 0;
}
