/*
 * policy/b64url.c: strict unpadded base64url decoding (see policy/b64url.h).
 */
#include "policy/b64url.h"

#include <stdint.h>

/* Value of each base64url character, 0xFF for anything else. */
static const uint8_t dec[256] = {
    ['A'] = 0,  ['B'] = 1,  ['C'] = 2,  ['D'] = 3,  ['E'] = 4,  ['F'] = 5,  ['G'] = 6,  ['H'] = 7,
    ['I'] = 8,  ['J'] = 9,  ['K'] = 10, ['L'] = 11, ['M'] = 12, ['N'] = 13, ['O'] = 14, ['P'] = 15,
    ['Q'] = 16, ['R'] = 17, ['S'] = 18, ['T'] = 19, ['U'] = 20, ['V'] = 21, ['W'] = 22, ['X'] = 23,
    ['Y'] = 24, ['Z'] = 25, ['a'] = 26, ['b'] = 27, ['c'] = 28, ['d'] = 29, ['e'] = 30, ['f'] = 31,
    ['g'] = 32, ['h'] = 33, ['i'] = 34, ['j'] = 35, ['k'] = 36, ['l'] = 37, ['m'] = 38, ['n'] = 39,
    ['o'] = 40, ['p'] = 41, ['q'] = 42, ['r'] = 43, ['s'] = 44, ['t'] = 45, ['u'] = 46, ['v'] = 47,
    ['w'] = 48, ['x'] = 49, ['y'] = 50, ['z'] = 51, ['0'] = 52, ['1'] = 53, ['2'] = 54, ['3'] = 55,
    ['4'] = 56, ['5'] = 57, ['6'] = 58, ['7'] = 59, ['8'] = 60, ['9'] = 61, ['-'] = 62, ['_'] = 63,
};

/* The table above leaves every other entry 0, which is also 'A': mark validity separately. */
static inline int valid(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

long pol_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    if (len % 4 == 1)
        return -1;
    size_t need = pol_b64url_decoded_len(len);
    if (need > cap)
        return -1;
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0, i = 0;
    for (; i + 4 <= len; i += 4) {
        if (!valid(s[i]) || !valid(s[i + 1]) || !valid(s[i + 2]) || !valid(s[i + 3]))
            return -1;
        uint32_t v = (uint32_t)dec[s[i]] << 18 | (uint32_t)dec[s[i + 1]] << 12 |
                     (uint32_t)dec[s[i + 2]] << 6 | dec[s[i + 3]];
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
    size_t rest = len - i;
    if (rest == 2) {
        if (!valid(s[i]) || !valid(s[i + 1]) || (dec[s[i + 1]] & 0x0F))
            return -1;
        out[o++] = (unsigned char)(dec[s[i]] << 2 | dec[s[i + 1]] >> 4);
    } else if (rest == 3) {
        if (!valid(s[i]) || !valid(s[i + 1]) || !valid(s[i + 2]) || (dec[s[i + 2]] & 0x03))
            return -1;
        uint32_t v = (uint32_t)dec[s[i]] << 12 | (uint32_t)dec[s[i + 1]] << 6 | dec[s[i + 2]];
        out[o++] = (unsigned char)(v >> 10);
        out[o++] = (unsigned char)(v >> 2);
    }
    return (long)o;
}
