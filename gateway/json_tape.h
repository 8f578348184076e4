/*
 * gateway/json_tape.h: a small strict JSON (RFC 8259) tokenizer that turns a text into a flat
 * "tape" of tokens, for the JSON -> protobuf encoder (json_pb.c). No tree, no hashing, no
 * allocation per value: one token array and one string area, both reusable across calls.
 *
 * Containers record where they end, so a reader skips a whole value in one step. Strings are
 * unescaped into the string area and NUL-terminated (a string may also hold NUL bytes: its
 * length is in n). Integers that do not fit int64 become JT_STRING tokens of their digits, so
 * the integer converters take them as numeric strings (a uint64 above 2^63-1 written as a
 * number is valid proto3 JSON). Duplicate keys in one object, invalid UTF-8, lone surrogates,
 * control characters in strings and reals that overflow a double are syntax errors, as with
 * jansson's JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL.
 */
#ifndef GW_JSON_TAPE_H
#define GW_JSON_TAPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    JT_NULL,
    JT_TRUE,
    JT_FALSE,
    JT_INT,
    JT_REAL,
    JT_STRING,
    JT_OBJECT,
    JT_ARRAY,
} jt_kind_t;

/** One token. An object is followed by its key (JT_STRING) and value tokens in turn, an array
 * by its elements; next is the index just past the token and everything inside it. */
typedef struct {
    uint8_t kind;
    /** Bytes of a string (NUL excluded); members of an object; elements of an array. */
    uint32_t n;
    uint32_t next;
    union {
        int64_t i;
        double d;
        const char *s;
    } v;
} jt_tok_t;

/** Tape and string area; zero-initialise, reuse across calls, jt_free at the end. */
typedef struct {
    jt_tok_t *tok;
    size_t n_tok, cap_tok;
    char *str;
    size_t cap_str;
} jt_tape_t;

/** Nesting deeper than this is a syntax error (jansson's limit). */
#define JT_MAX_DEPTH 2048

/**
 * Tokenizes json[0..len) into t (tokens from index 0; token 0 is the root value). Returns 0,
 * or -1 with "line L column C: what" in err (-2 when out of memory).
 */
int jt_parse(jt_tape_t *t, const char *json, size_t len, char *err, size_t errlen);

void jt_free(jt_tape_t *t);

#endif
