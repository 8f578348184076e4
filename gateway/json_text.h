/*
 * gateway/json_text.h: the text forms of proto3 JSON that are not JSON syntax itself: base64,
 * shortest round-trip floats, RFC 3339 timestamps, durations and FieldMask path case.
 * Pure functions over caller buffers; nothing allocates.
 */
#ifndef GW_JSON_TEXT_H
#define GW_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Standard base64 with padding of n bytes into out (room for 4*((n+2)/3) bytes); returns the
 * length written. */
size_t gw_base64_encode(const uint8_t *in, size_t n, char *out);

/** Decodes standard or URL-safe base64, with or without padding, into out (room for 3*n/4+3
 * bytes). Returns the length, or -1 on a bad character or length. */
long gw_base64_decode(const char *in, size_t n, uint8_t *out);

/** Shortest decimal text that reads back as the same double (or as the same float when
 * as_float); NaN and infinities are not handled here. Returns the length (out >= 32 bytes). */
int gw_format_double(double v, bool as_float, char *out);

/** Formats a Timestamp as RFC 3339 UTC with 0, 3, 6 or 9 fraction digits ("...Z") into out
 * (>= 40 bytes). Returns the length, or -1 when out of range (0001-01-01 .. 9999-12-31, nanos
 * 0..999999999). */
int gw_format_timestamp(int64_t seconds, int32_t nanos, char *out);

/** Parses an RFC 3339 timestamp (a "Z" or a +hh:mm/-hh:mm offset, up to 9 fraction digits).
 * Returns 0, or -1. */
int gw_parse_timestamp(const char *s, size_t n, int64_t *seconds, int32_t *nanos);

/** Formats a Duration ("1.500s", "-0.000000001s") with 0, 3, 6 or 9 fraction digits. Returns
 * the length, or -1 when out of range (|seconds| <= 315576000000, nanos of the same sign). */
int gw_format_duration(int64_t seconds, int32_t nanos, char *out);

/** Parses a Duration ("1.5s", "-3s"). Returns 0, or -1. */
int gw_parse_duration(const char *s, size_t n, int64_t *seconds, int32_t *nanos);

/** snake_case -> lowerCamelCase of one FieldMask path (n bytes) into out (>= n+1 bytes).
 * Returns the length, or -1 when the path cannot round-trip (an upper-case letter, or "_"
 * not followed by a lower-case letter). */
long gw_path_to_camel(const char *in, size_t n, char *out);

/** lowerCamelCase -> snake_case of one FieldMask path into out (>= 2n+1 bytes). Returns the
 * length, or -1 when the path has an underscore. */
long gw_path_to_snake(const char *in, size_t n, char *out);

#endif
