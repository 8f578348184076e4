/*
 * common/crc32c.c: CRC-32C, in hardware (SSE4.2 crc32) when the CPU has it, else slicing-by-8
 * (see crc32c.h).
 */
#include "common/crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY_REFLECTED 0x82F63B78u

/* ---- portable: slicing-by-8 ------------------------------------------------------------------ */

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY_REFLECTED : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF];
}

uint32_t mesh_crc32c_extend_sw(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&table_once, table_init);
    const uint8_t *b = p;
    uint32_t c = ~crc;
    while (n && ((uintptr_t)b & 7)) {
        c = (c >> 8) ^ table[0][(c ^ *b++) & 0xFF];
        n--;
    }
    while (n >= 8) {
        /* Little-endian load of eight bytes (memcpy: no alignment or aliasing assumptions). */
        uint32_t lo, hi;
        memcpy(&lo, b, 4);
        memcpy(&hi, b + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= c;
        c = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^
            table[4][lo >> 24] ^ table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^
            table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
        b += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ table[0][(c ^ *b++) & 0xFF];
    return ~c;
}

/* ---- x86-64: the SSE4.2 crc32 instruction ------------------------------------------------- */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t c = ~crc;
    while (n && ((uintptr_t)b & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
        n--;
    }
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, b, 8);
        c = __builtin_ia32_crc32di(c, v);
        b += 8;
        n -= 8;
    }
    while (n--)
        c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
    return ~(uint32_t)c;
}

static int have_hw(void)
{
    /* 0 unknown, 1 yes, 2 no; the answer never changes, so a racy first read is harmless
     * (both racers store the same value; relaxed atomics keep sanitizers quiet). */
    static int known;
    int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (!k) {
        __builtin_cpu_init();
        k = __builtin_cpu_supports("sse4.2") ? 1 : 2;
        __atomic_store_n(&known, k, __ATOMIC_RELAXED);
    }
    return k == 1;
}

uint32_t mesh_crc32c_extend(uint32_t crc, const void *p, size_t n)
{
    return have_hw() ? crc32c_hw(crc, p, n) : mesh_crc32c_extend_sw(crc, p, n);
}
#else
uint32_t mesh_crc32c_extend(uint32_t crc, const void *p, size_t n)
{
    return mesh_crc32c_extend_sw(crc, p, n);
}
#endif

uint32_t mesh_crc32c(const void *p, size_t n)
{
    return mesh_crc32c_extend(0, p, n);
}
