/*
 * gossip/intern.h: interned strings shared by every swim of a process (member names and gossip
 * addresses).
 *
 * A member's name and address are stored once per process, refcounted, instead of once per
 * member table: a real node has one swim, so this costs nothing there; the simulator runs a
 * thousand swims in one process, which then share one copy of each of the thousand names and
 * addresses instead of a million (a third of the memory per member pair, and the bytes a
 * lookup compares stay in cache). Interned strings are immutable; gsp_intern and
 * gsp_intern_release are thread-safe (a mutex: they run when a member joins, changes address
 * or is forgotten, never per message).
 */
#ifndef GSP_INTERN_H
#define GSP_INTERN_H

#include <stddef.h>
#include <stdint.h>

typedef struct gsp_istr {
    uint64_t hash; /* gsp_intern_hash of the bytes */
    uint32_t refs;
    uint32_t len;
    char s[]; /* len bytes and a NUL */
} gsp_istr_t;

/** The hash interned strings are filed under (FNV-1a and MurmurHash3's fmix64; never 0). */
uint64_t gsp_intern_hash(const void *p, size_t n);

/** The interned copy of the n bytes at p (one more reference), or NULL when out of memory.
 *  The bytes must not contain a NUL. */
const gsp_istr_t *gsp_intern(const char *p, size_t n);

/** Drops a reference taken by gsp_intern (NULL: nothing). */
void gsp_intern_release(const gsp_istr_t *s);

/** The interned string whose text is s (s->s of a gsp_istr_t). */
static inline const gsp_istr_t *gsp_istr_of(const char *s)
{
    return (const gsp_istr_t *)(const void *)(s - offsetof(gsp_istr_t, s));
}

/** Distinct strings interned now (tests and the simulator's memory report). */
size_t gsp_intern_count(void);

#endif
