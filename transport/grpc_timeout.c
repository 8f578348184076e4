/*
 * transport/grpc_timeout.c: grpc-timeout parse and format.
 */
#include "transport/grpc_timeout.h"

#include <string.h>

#include "common/fmt_num.h"

static const struct {
    char unit;
    uint64_t ns;
} units[] = {
    {'n', 1ull},
    {'u', 1000ull},
    {'m', 1000000ull},
    {'S', 1000000000ull},
    {'M', 60ull * 1000000000ull},
    {'H', 3600ull * 1000000000ull},
};

#define N_UNITS   (sizeof(units) / sizeof(units[0]))
#define MAX_VALUE 99999999ull

int mesh_grpc_timeout_parse(const char *v, size_t len, uint64_t *out_ns)
{
    if (len < 2 || len > 9)
        return -1;
    uint64_t value = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        value = value * 10 + (uint64_t)(v[i] - '0');
    }
    for (size_t u = 0; u < N_UNITS; u++) {
        if (units[u].unit == v[len - 1]) {
            /* 99999999H does not fit in 64 bits of nanoseconds: saturate. */
            *out_ns = value > UINT64_MAX / units[u].ns ? UINT64_MAX : value * units[u].ns;
            return 0;
        }
    }
    return -1;
}

size_t mesh_grpc_timeout_format(uint64_t ns, char *out)
{
    for (size_t u = 0; u < N_UNITS; u++) {
        uint64_t value = ns / units[u].ns + (ns % units[u].ns != 0);
        if (value <= MAX_VALUE || u == N_UNITS - 1) {
            if (value > MAX_VALUE)
                value = MAX_VALUE;
            char digits[MESH_FMT_U64_MAX];
            size_t n = mesh_fmt_u64(digits, value); /* at most 8 digits */
            memcpy(out, digits, n);
            out[n] = units[u].unit;
            out[n + 1] = '\0';
            return n + 1;
        }
    }
    return 0;
}
