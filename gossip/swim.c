/*
 * gossip/swim.c: SWIM membership with Lifeguard, sans-I/O (the API and the protocol summary are
 * in gossip/swim.h; docs/gossip.md tells the whole story).
 *
 * Reading order: members (a table by name plus an array), the update queue (piggybacking),
 * sending, the three update handlers (alive, suspect, dead: the heart of SWIM's state rules),
 * suspicion timers (Lifeguard), probes (direct, indirect, stream), relays (PING_REQ for
 * others), push-pull and fetches (streams), the clock (on_time, late timers), and the view.
 *
 * Updates are ordered per member by (incarnation, meta_version, state): a newer incarnation
 * wins; at the same incarnation suspect beats alive and dead beats suspect; a metadata change
 * at the same incarnation needs a higher meta_version. Only a member itself raises its
 * incarnation (to refute a suspicion or a death, or after a restart) and its meta_version.
 */
#include "gossip/swim.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/prng.h"
#include "gossip/intern.h"

#define MS 1000000ull
#define S  (1000 * MS)

#define RELAY_MAX        64  /* PING_REQs we are serving at once */
#define CONFIRM_MAX      8   /* independent suspicion confirmations remembered */
#define QLISTS           65  /* queue lists: one per transmit count (the limit is at most 64) */
#define MISFITS_MAX      16  /* updates tried in a row that did not fit: the datagram is full */
#define MOVED_MAX        256 /* updates one datagram can carry, at most */
#define STREAMS_MAX      64  /* stream exchanges in flight */
#define JOIN_BACKOFF0    (1 * S)
#define JOIN_BACKOFF_MAX (30 * S)
/* Members dead for less than RECONNECT_RECENT_NS are retried every RECONNECT_FAST_NS: a
 * partition that heals within minutes merges within seconds, not at the next 30 s reconnect. */
#define RECONNECT_RECENT_NS (120 * S)
#define RECONNECT_FAST_NS   (5 * S)
#define GC_INTERVAL         (60 * S)
#define LEAVE_FANOUT        5
#define PREFETCH_BATCH      16 /* messages decoded ahead of handling (prefetch_members) */
#define PP_SLOTS            64 /* digest push-pulls in flight, remembered by address */

/* Stream tags: the kind in the top byte, a value below. */
#define TAG_PROBE     1ull
#define TAG_PUSH_PULL 2ull
#define TAG_JOIN      3ull
#define TAG_WANT      4ull
#define TAG(kind, v)  ((kind) << 56 | ((uint64_t)(v)&0x00ffffffffffffffull))
#define TAG_KIND(t)   ((t) >> 56)
/* A push-pull's tag value: PP_FAST (a recently dead member retried), PP_DIGEST (the request
 * carried digests), and above them the PP_SLOTS slot of the address it went to. */
#define PP_FAST    1ull
#define PP_DIGEST  2ull
#define PP_SLOT(t) (((t)&0x00ffffffffffffffull) >> 2)

typedef struct member {
    uint64_t meta_version;
    uint8_t *meta; /* NULL while unknown (or none: meta_version 0); else in blk, after room */
    uint8_t *blk;  /* room bytes (its STATE's head, right-aligned), then the metadata: NULL
                      while neither is held (see state_enc) */
    uint64_t since;
    uint64_t name_hash;
    gsp_state_t state;
    uint32_t inc;
    uint32_t meta_len;
    uint32_t idx;               /* in s->ms */
    uint32_t qi;                /* its queued update's slot in s->q plus one (0: none queued) */
    uint32_t si;                /* while SUSPECT: its suspicion's place in s->suspects plus one */
    uint8_t self;               /* this member is us */
    uint8_t fetching;           /* a WANT for its metadata is in flight */
    uint8_t name_len, addr_len; /* strlen of name and addr (both fit: see the bounds) */
    uint8_t room;               /* blk's room for the head: GSP_STATE_HEAD_MAX of the lengths */
    uint8_t head_len;           /* the cached STATE head's length (0: stale, see slot_sync) */
    uint8_t full_pp;            /* it answered a digest push-pull as a node older than digests
                                   do: our push-pulls to it carry our whole state */
    uint32_t pp_mark;           /* answering a digest push-pull: the asker holds what we do */
    const char *name;           /* interned (gossip/intern.h): a member's name never changes */
    const char *addr;           /* interned */
} member_t;

/* A suspicion (Lifeguard): kept beside the suspects list, not in every member. */
typedef struct susp {
    member_t *m;
    uint64_t start, deadline, min, max;
    uint32_t k, n;
    uint64_t confirmers[CONFIRM_MAX];
} susp_t;

/* A slot of the member table: the member's hot record. Most updates that arrive are stale (each
 * reaches each node about retransmit_mult * log10(n) times); the slot holds what rejecting one
 * reads, so that costs one cache miss (the slot; the interned name and address it compares are
 * shared by every swim of the process) instead of two. A copy of the member's fields, kept in
 * step by slot_sync after every change; 32 bytes, two per cache line. */
typedef struct slot {
    const gsp_istr_t *name; /* NULL: empty */
    const gsp_istr_t *addr;
    uint64_t mv;   /* meta_version */
    uint32_t inc;  /* incarnation */
    uint32_t bits; /* idx << 4 | SLOT_SELF | SLOT_META | state */
} slot_t;

#define SLOT_STATE   3u
#define SLOT_META    4u /* the member's metadata is known */
#define SLOT_SELF    8u
#define SLOT_IDX(t)  ((t)->bits >> 4)
#define SLOT_ST(t)   ((gsp_state_t)((t)->bits & SLOT_STATE))
#define SLOT_LIVE(t) (SLOT_ST(t) == GSP_ST_ALIVE || SLOT_ST(t) == GSP_ST_SUSPECT)

/* A queued update about a member, in the level of its transmit count (see piggyback). Its
 * encoding is kept in the slot when it fits (a SUSPECT or DEAD, and an ALIVE without metadata,
 * with names and addresses of up to about 25 bytes each: the bulk of a partition's updates), so
 * sending it reads the slot alone and queueing allocates nothing; a larger ALIVE is allocated. 72
 * bytes: 192-byte slots were no faster and took 3 % more memory (docs/partitions.md, "Scale"). */
#define BCAST_INLINE 72 /* a slot takes 96 bytes */
typedef struct bcast {
    member_t *m;
    uint32_t len;
    uint32_t transmits;
    uint32_t pos;  /* its place in its level's array (qlevel_t) */
    uint32_t next; /* free list: slot + 1 (0: none) */
    union {
        uint8_t in[BCAST_INLINE]; /* len <= BCAST_INLINE */
        uint8_t *heap;            /* len > BCAST_INLINE: malloc'd */
    } msg;
} bcast_t;

/*
 * The queued updates of one transmit count, as an array of slot numbers (slot + 1; 0: a hole
 * left by an update that was replaced or dropped) whose top (the end) is the newest: the order
 * a linked list newest first would keep, but piggyback reads the slot numbers ahead of the slots
 * and loads the next few slots while it copies one (the slots are cold: a node's queue is read
 * every gossip interval, and a thousand nodes' queues do not fit in a cache). Holes are squeezed
 * out when they are the majority (qlevel_squeeze) or when piggyback has read past them.
 */
typedef struct qlevel {
    uint32_t *v;
    uint32_t n, cap, holes;
} qlevel_t;

static const uint8_t *bcast_bytes(const bcast_t *b)
{
    return b->len > BCAST_INLINE ? b->msg.heap : b->msg.in;
}

static void bcast_release(bcast_t *b)
{
    if (b->len > BCAST_INLINE)
        free(b->msg.heap);
    b->len = 0;
}

typedef struct relay {
    uint32_t seq, origin_seq;
    int want_nack;
    uint64_t deadline;
    char origin[GSP_ADDR_MAX + 1];
} relay_t;

typedef struct mset {
    uint64_t hash;    /* 0: empty slot */
    uint32_t pp_mark; /* answering a digest push-pull: the asker holds this set */
    size_t n;
    char **names; /* one allocation: pointers then the strings */
} mset_t;

struct gsp_swim {
    gsp_swim_cfg_t cfg;
    gsp_swim_ops_t ops;
    void *ud;
    mesh_prng_t rng;
    member_t *self;

    member_t **ms; /* every member, self included */
    size_t n, cap;
    slot_t *tab; /* open addressing by name hash */
    size_t tab_cap;
    size_t live; /* alive or suspect, self included */

    member_t **order; /* probe order (shuffled round robin) */
    size_t order_n, order_cap, order_pos;
    member_t **scratch; /* for random picks */
    size_t scratch_cap;

    bcast_t *q;     /* slots; the queue is one level per transmit count, newest on top */
    size_t qn;      /* queued updates */
    size_t qcap;    /* slots */
    uint32_t qfree; /* free slots, linked through next (slot + 1; 0: none) */
    qlevel_t ql[QLISTS];

    susp_t *suspects;
    size_t n_susp, susp_cap;

    struct {
        int active, acked, indirect;
        uint32_t seq, nacks_expected, nacks;
        uint64_t t_start, t_indirect, t_end;
        char target[GSP_NAME_MAX + 1];
    } probe;
    relay_t relays[RELAY_MAX];
    size_t n_relays;
    uint32_t seq;
    uint32_t awareness;

    uint64_t next_probe, next_gossip, next_push_pull, next_reconnect, next_gc, next_join;
    int fast_reconnect; /* a member died since the last reconnect that got an answer */
    uint64_t join_backoff;
    char **seeds;
    size_t n_seeds;
    int joined;
    size_t streams; /* exchanges in flight */

    int leaving;
    int declaring; /* our own suspicion timeout is declaring a member dead (gsp_member_t) */
    uint32_t leave_transmits;

    mset_t *sets;
    size_t sets_cap, sets_n;

    uint32_t pp_gen;                          /* digest push-pulls answered (pp_mark) */
    uint32_t pp_next;                         /* the next slot of pp_addr */
    char pp_addr[PP_SLOTS][GSP_ADDR_MAX + 1]; /* where our digest push-pulls went */

    uint64_t due; /* the next deadline, as last computed */
    gsp_swim_stats_t st;

    uint8_t dgram[GSP_UDP_MAX];
    uint8_t *fbuf; /* outgoing frames */
    size_t fcap;
    uint8_t *rbuf; /* replies to stream requests */
    size_t rcap;
    gsp_decoder_t dec;
};

/* ---- small helpers ----------------------------------------------------------------------- */

static gsp_str_t str_of(const char *c)
{
    return (gsp_str_t){c, (uint32_t)strlen(c)};
}

/* A member's name and address without a strlen (they are read for every message). */
#define M_NAME(m) ((gsp_str_t){(m)->name, (m)->name_len})
#define M_ADDR(m) ((gsp_str_t){(m)->addr, (m)->addr_len})

static int str_is(gsp_str_t a, gsp_str_t b)
{
    return a.n == b.n && (!a.n || !memcmp(a.p, b.p, a.n));
}

/* Copies a borrowed string into a fixed buffer of cap bytes; -1 if it does not fit. */
static int str_copy(char *dst, size_t cap, gsp_str_t s)
{
    if (s.n >= cap || (s.n && memchr(s.p, 0, s.n)))
        return -1;
    memcpy(dst, s.p, s.n);
    dst[s.n] = 0;
    return 0;
}

/* FNV-1a, then a finalizer (MurmurHash3's fmix64) so that names differing in their last
 * characters ("node-17", "node-18") spread over the table's low bits: the interned strings'
 * hash, so a member's name hash is its interned name's. */
static uint64_t hash_bytes(const void *p, size_t n)
{
    return gsp_intern_hash(p, n);
}

static void logf_(gsp_swim_t *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(gsp_swim_t *s, int level, const char *fmt, ...)
{
    if (!s->ops.log)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->ops.log(s->ud, level, line);
}

/* A duration stretched by the local health score (Lifeguard). */
static uint64_t scaled(const gsp_swim_t *s, uint64_t d)
{
    return d * (s->awareness + 1);
}

static void awareness_add(gsp_swim_t *s, int delta)
{
    int64_t a = (int64_t)s->awareness + delta;
    if (a < 0)
        a = 0;
    if (a > (int64_t)s->cfg.awareness_max - 1)
        a = s->cfg.awareness_max ? s->cfg.awareness_max - 1 : 0;
    s->awareness = (uint32_t)a;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *n = realloc(*p, c * elem);
    if (!n)
        return -1;
    *p = n;
    *cap = c;
    return 0;
}

/* ---- profiles ---------------------------------------------------------------------------- */

int gsp_swim_profile(const char *name, gsp_swim_cfg_t *c)
{
    memset(c, 0, sizeof *c);
    c->indirect_checks = 3;
    c->retransmit_mult = 4;
    c->awareness_max = 8;
    c->tombstone_ns = 24ull * 3600 * S;
    c->reconnect_interval_ns = 30 * S;
    c->reconnect_timeout_ns = 24ull * 3600 * S;
    c->udp_max = GSP_UDP_MAX - 64; /* room for the sealing header, nonce and tag */
    if (!name || !strcmp(name, "lan")) {
        c->probe_interval_ns = 400 * MS;
        c->probe_timeout_ns = 200 * MS;
        c->suspicion_mult = 3;
        c->suspicion_max_mult = 4;
        c->gossip_interval_ns = 200 * MS;
        c->gossip_nodes = 3;
        c->push_pull_interval_ns = 30 * S;
        c->stream_timeout_ns = 2 * S;
        c->late_timer_ns = 250 * MS;
    } else if (!strcmp(name, "wan")) {
        c->probe_interval_ns = 5 * S;
        c->probe_timeout_ns = 3 * S;
        c->suspicion_mult = 6;
        c->suspicion_max_mult = 4;
        c->gossip_interval_ns = 500 * MS;
        c->gossip_nodes = 4;
        c->push_pull_interval_ns = 60 * S;
        c->stream_timeout_ns = 10 * S;
        c->late_timer_ns = 2 * S;
    } else if (!strcmp(name, "local")) {
        c->probe_interval_ns = 200 * MS;
        c->probe_timeout_ns = 100 * MS;
        c->suspicion_mult = 3;
        c->suspicion_max_mult = 4;
        c->gossip_interval_ns = 100 * MS;
        c->gossip_nodes = 3;
        c->push_pull_interval_ns = 15 * S;
        c->stream_timeout_ns = 1 * S;
        c->late_timer_ns = 150 * MS;
    } else {
        return -1;
    }
    return 0;
}

/* ---- members ----------------------------------------------------------------------------- */

static const slot_t *find_slot(const gsp_swim_t *s, const char *name, size_t len)
{
    if (!s->tab_cap)
        return NULL;
    uint64_t h = hash_bytes(name, len);
    for (size_t i = h & (s->tab_cap - 1);; i = (i + 1) & (s->tab_cap - 1)) {
        const slot_t *t = &s->tab[i];
        if (!t->name)
            return NULL;
        if (t->name->hash == h && t->name->len == len && !memcmp(t->name->s, name, len))
            return t;
    }
}

static const slot_t *find_slot_str(const gsp_swim_t *s, gsp_str_t n)
{
    return find_slot(s, n.p ? n.p : "", n.n);
}

static member_t *find(const gsp_swim_t *s, const char *name, size_t len)
{
    const slot_t *t = find_slot(s, name, len);
    return t ? s->ms[SLOT_IDX(t)] : NULL;
}

static member_t *find_str(const gsp_swim_t *s, gsp_str_t n)
{
    return find(s, n.p ? n.p : "", n.n);
}

/* Starts loading the table slots that the lookups of these names will read (a hint: nothing is
 * read that the lookup would not read, nothing changes). A datagram or a push-pull carries
 * updates about many members, and each lookup of a large table misses the cache: issued
 * together, the misses overlap instead of queueing. */
static void prefetch_members(const gsp_swim_t *s, const gsp_str_t *names, size_t n)
{
    if (!s->tab_cap || n < 2)
        return;
    size_t mask = s->tab_cap - 1;
    for (size_t i = 0; i < n; i++)
        __builtin_prefetch(&s->tab[hash_bytes(names[i].p, names[i].n) & mask]);
}

static void slot_fill(slot_t *t, const member_t *m)
{
    t->name = gsp_istr_of(m->name);
    t->addr = gsp_istr_of(m->addr);
    t->mv = m->meta_version;
    t->inc = m->inc;
    t->bits = m->idx << 4 | (m->self ? SLOT_SELF : 0) | (m->meta ? SLOT_META : 0) |
              ((uint32_t)m->state & SLOT_STATE);
}

/* Copies m's fields into its slot (after every change of its state, incarnation, metadata,
 * address or place in s->ms), and marks its cached STATE encoding stale. */
static void slot_sync(gsp_swim_t *s, member_t *m)
{
    m->head_len = 0; /* its STATE encoding may have changed */
    size_t mask = s->tab_cap - 1, i = m->name_hash & mask;
    const gsp_istr_t *name = gsp_istr_of(m->name);
    while (s->tab[i].name != name)
        i = (i + 1) & mask;
    slot_fill(&s->tab[i], m);
}

static void tab_put(slot_t *tab, size_t cap, const member_t *m)
{
    size_t i = m->name_hash & (cap - 1);
    while (tab[i].name)
        i = (i + 1) & (cap - 1);
    slot_fill(&tab[i], m);
}

static int tab_grow(gsp_swim_t *s)
{
    if ((s->n + 1) * 2 <= s->tab_cap)
        return 0;
    size_t cap = s->tab_cap ? s->tab_cap * 2 : 64;
    slot_t *t = calloc(cap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < s->n; i++)
        tab_put(t, cap, s->ms[i]);
    free(s->tab);
    s->tab = t;
    s->tab_cap = cap;
    return 0;
}

/* Removes m from the table (backward-shift deletion keeps probe chains whole). */
static void tab_del(gsp_swim_t *s, member_t *m)
{
    size_t mask = s->tab_cap - 1, i = m->name_hash & mask;
    const gsp_istr_t *name = gsp_istr_of(m->name);
    while (s->tab[i].name != name)
        i = (i + 1) & mask;
    for (size_t j = (i + 1) & mask; s->tab[j].name; j = (j + 1) & mask) {
        size_t home = s->tab[j].name->hash & mask;
        /* move j into the hole at i when its home is not in (i, j] */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            s->tab[i] = s->tab[j];
            i = j;
        }
    }
    s->tab[i] = (slot_t){0};
}

static int is_live(const member_t *m)
{
    return m->state == GSP_ST_ALIVE || m->state == GSP_ST_SUSPECT;
}

static void fill_member(const member_t *m, gsp_member_t *out)
{
    out->name = m->name;
    out->addr = m->addr;
    out->state = m->state;
    out->incarnation = m->inc;
    out->meta_version = m->meta_version;
    out->meta = m->meta;
    out->meta_len = m->meta_len;
    out->since_ns = m->since;
    out->self = m->self;
    out->declared = 0;
}

static void notify(gsp_swim_t *s, const member_t *m, gsp_state_t prev, int joined)
{
    if (!s->ops.member)
        return;
    gsp_member_t v;
    fill_member(m, &v);
    v.declared = s->declaring;
    s->ops.member(s->ud, &v, prev, joined);
}

static void susp_remove(gsp_swim_t *s, member_t *m)
{
    if (!m->si)
        return;
    size_t i = m->si - 1;
    m->si = 0;
    s->suspects[i] = s->suspects[--s->n_susp];
    if (i < s->n_susp)
        s->suspects[i].m->si = (uint32_t)i + 1;
}

/* Moves m to state st (keeping the live count and the suspect list right). */
static void set_state(gsp_swim_t *s, member_t *m, gsp_state_t st, uint64_t now)
{
    if (m->state != st) {
        if (m->state == GSP_ST_SUSPECT)
            susp_remove(s, m);
        int was = is_live(m);
        m->state = st;
        m->since = now;
        if (was && !is_live(m))
            s->live--;
        else if (!was && is_live(m))
            s->live++;
    }
    slot_sync(s, m);
}

/* Inserts m at a random place among the members not yet probed this round. */
static void order_insert(gsp_swim_t *s, member_t *m)
{
    if (grow((void **)&s->order, &s->order_cap, s->order_n + 1, sizeof *s->order))
        return;
    size_t lo = s->order_pos, span = s->order_n - lo + 1;
    size_t at = lo + (size_t)mesh_prng_below(&s->rng, span);
    s->order[s->order_n++] = s->order[at];
    s->order[at] = m;
}

static void order_remove(gsp_swim_t *s, member_t *m)
{
    for (size_t i = 0; i < s->order_n; i++)
        if (s->order[i] == m) {
            memmove(&s->order[i], &s->order[i + 1], (s->order_n - i - 1) * sizeof *s->order);
            s->order_n--;
            if (i < s->order_pos)
                s->order_pos--;
            i--;
        }
}

static member_t *member_add(gsp_swim_t *s, gsp_str_t name, gsp_str_t addr, uint64_t now)
{
    if (name.n == 0 || tab_grow(s) || grow((void **)&s->ms, &s->cap, s->n + 1, sizeof *s->ms))
        return NULL;
    if (name.n > GSP_NAME_MAX)
        return NULL;
    if (addr.n > GSP_ADDR_MAX || memchr(name.p, 0, name.n) || (addr.n && memchr(addr.p, 0, addr.n)))
        return NULL;
    member_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    const gsp_istr_t *in = gsp_intern(name.p, name.n);
    const gsp_istr_t *ia = gsp_intern(addr.n ? addr.p : "", addr.n);
    if (!in || !ia) {
        gsp_intern_release(in);
        gsp_intern_release(ia);
        free(m);
        return NULL;
    }
    m->name = in->s;
    m->addr = ia->s;
    m->name_len = (uint8_t)name.n;
    m->addr_len = (uint8_t)addr.n;
    m->name_hash = in->hash;
    m->state = GSP_ST_DEAD; /* set_state below counts it */
    m->since = now;
    m->idx = s->n;
    s->ms[s->n++] = m;
    tab_put(s->tab, s->tab_cap, m);
    return m;
}

static void queue_drop(gsp_swim_t *s, uint32_t slot);

static void member_free(gsp_swim_t *s, member_t *m)
{
    if (m->qi)
        queue_drop(s, m->qi);
    if (m->state == GSP_ST_SUSPECT)
        susp_remove(s, m);
    if (is_live(m))
        s->live--;
    order_remove(s, m);
    tab_del(s, m);
    s->ms[m->idx] = s->ms[--s->n];
    s->ms[m->idx]->idx = m->idx;
    if (m->idx < s->n)
        slot_sync(s, s->ms[m->idx]);
    gsp_intern_release(gsp_istr_of(m->name));
    gsp_intern_release(gsp_istr_of(m->addr));
    free(m->blk);
    free(m);
}

/* Gives m a new block holding the n bytes of metadata at p (which may lie in the old block)
 * after room for its STATE head; the cached head is stale. 0, or -1 out of memory (m unchanged). */
static int blk_set(member_t *m, const uint8_t *p, size_t n)
{
    size_t room = GSP_STATE_HEAD_MAX(m->name_len, m->addr_len);
    uint8_t *b = malloc(room + n);
    if (!b)
        return -1;
    if (n)
        memcpy(b + room, p, n);
    free(m->blk);
    m->blk = b;
    m->room = (uint8_t)room;
    m->meta = n ? b + room : NULL;
    m->meta_len = n;
    m->head_len = 0;
    return 0;
}

/* m's metadata is no longer known. */
static void meta_forget(member_t *m)
{
    free(m->blk);
    m->blk = m->meta = NULL;
    m->meta_len = 0;
    m->head_len = 0;
}

static int set_meta_bytes(gsp_swim_t *s, member_t *m, const uint8_t *p, size_t n)
{
    if (n ? blk_set(m, p, n) : (meta_forget(m), 0))
        return -1;
    slot_sync(s, m);
    return 0;
}

/*
 * m's STATE message, encoded: its head (cached, re-encoded after a change: slot_sync marks it
 * stale) and its metadata, contiguous in m's block, so a push-pull frame copies each member's
 * state in one piece instead of encoding it field by field. NULL (out of memory, a field the
 * encoder refuses) means: encode it with gsp_enc_state, which decides as before.
 */
static const uint8_t *state_enc(member_t *m, size_t *len)
{
    if (!m->head_len) {
        if ((!m->blk || m->room != GSP_STATE_HEAD_MAX(m->name_len, m->addr_len)) &&
            blk_set(m, m->meta, m->meta_len))
            return NULL; /* the address changed since the block was made, or there was none */
        uint8_t head[GSP_STATE_HEAD_MAX(GSP_NAME_MAX, GSP_ADDR_MAX)];
        gsp_member_state_t st = {.node = M_NAME(m),
                                 .addr = M_ADDR(m),
                                 .incarnation = m->inc,
                                 .state = (uint8_t)m->state,
                                 .meta_version = m->meta_version,
                                 .meta = {(const char *)m->meta, (uint32_t)m->meta_len}};
        size_t h = gsp_enc_state_head(head, m->room, &st);
        if (!h)
            return NULL;
        memcpy(m->blk + m->room - h, head, h);
        m->head_len = (uint8_t)h;
    }
    *len = m->head_len + (size_t)m->meta_len;
    return m->blk + m->room - m->head_len;
}

/*
 * Passes over every member (push-pull frames, digests): each member is a separate allocation, and
 * at a thousand nodes a node's members are cold when its push-pull comes, so a pass that reads
 * them one after the other waits for each in turn. These load the member MEMBERS_AHEAD places on,
 * and the bytes its encoding copies (name, block) of the one half as far on (whose member is then
 * loaded): hints, nothing changes.
 */
#define MEMBERS_AHEAD 8

static void member_ahead(const gsp_swim_t *s, size_t i)
{
    if (i + MEMBERS_AHEAD < s->n) {
        const char *p = (const char *)s->ms[i + MEMBERS_AHEAD];
        __builtin_prefetch(p);
        __builtin_prefetch(p + sizeof(member_t) - 1);
    }
}

static void encoding_ahead(const gsp_swim_t *s, size_t i)
{
    member_ahead(s, i);
    if (i + MEMBERS_AHEAD / 2 < s->n) {
        const member_t *m = s->ms[i + MEMBERS_AHEAD / 2];
        __builtin_prefetch(m->name);
        if (m->blk && m->head_len)
            __builtin_prefetch(m->blk + m->room - m->head_len);
    }
}

/* ---- method sets ------------------------------------------------------------------------- */

static mset_t *set_find(const gsp_swim_t *s, uint64_t h)
{
    if (!s->sets_cap || !h)
        return NULL;
    for (size_t i = h & (s->sets_cap - 1);; i = (i + 1) & (s->sets_cap - 1)) {
        if (!s->sets[i].hash)
            return NULL;
        if (s->sets[i].hash == h)
            return &s->sets[i];
    }
}

/* Stores a set (names as borrowed strings or C strings); 0, or -1 (bound, memory). */
static int set_store(gsp_swim_t *s, uint64_t h, const gsp_str_t *bs, const char *const *cs,
                     size_t n)
{
    if (!h || n > GSP_SET_MAX || set_find(s, h))
        return set_find(s, h) ? 0 : -1;
    if ((s->sets_n + 1) * 2 > s->sets_cap) {
        size_t cap = s->sets_cap ? s->sets_cap * 2 : 32;
        mset_t *t = calloc(cap, sizeof *t);
        if (!t)
            return -1;
        for (size_t i = 0; i < s->sets_cap; i++)
            if (s->sets[i].hash) {
                size_t j = s->sets[i].hash & (cap - 1);
                while (t[j].hash)
                    j = (j + 1) & (cap - 1);
                t[j] = s->sets[i];
            }
        free(s->sets);
        s->sets = t;
        s->sets_cap = cap;
    }
    size_t bytes = n * sizeof(char *);
    for (size_t i = 0; i < n; i++) {
        size_t l = bs ? bs[i].n : strlen(cs[i]);
        if (l > GSP_FIELD_MAX || (bs && bs[i].n && memchr(bs[i].p, 0, bs[i].n)))
            return -1;
        bytes += l + 1;
    }
    char **names = malloc(bytes ? bytes : 1);
    if (!names)
        return -1;
    char *w = (char *)(names + n);
    for (size_t i = 0; i < n; i++) {
        size_t l = bs ? bs[i].n : strlen(cs[i]);
        memcpy(w, bs ? bs[i].p : cs[i], l);
        w[l] = 0;
        names[i] = w;
        w += l + 1;
    }
    size_t j = h & (s->sets_cap - 1);
    while (s->sets[j].hash)
        j = (j + 1) & (s->sets_cap - 1);
    s->sets[j] = (mset_t){.hash = h, .n = n, .names = names};
    s->sets_n++;
    return 0;
}

/* ---- the update queue -------------------------------------------------------------------- */

/* How many times an update is sent: retransmit_mult x ceil(log10(live + 1)), as memberlist,
 * but with the log factor at least 2. Below 10 members memberlist's factor is 1: each member
 * sends an update only retransmit_mult (4) times to random members, and a member is missed by
 * all of them with a few per cent chance (gossip_sim's leave found it: 4 seeds of 100 at 10
 * members, the leave reaching one member only through push-pull, seconds later). Twice that
 * costs a few datagrams in small groups and nothing from 10 members up. */
static uint32_t retransmit_limit(const gsp_swim_t *s)
{
    double l = ceil(log10((double)s->live + 1.0));
    uint32_t lim = s->cfg.retransmit_mult * (uint32_t)(l < 2 ? 2 : l);
    return lim ? lim : 1;
}

static uint32_t qlevel_of(const bcast_t *b)
{
    return b->transmits < QLISTS ? b->transmits : QLISTS - 1;
}

/* Squeezes the holes out of l's entries from lo up, keeping their order (and the slots' pos). */
/* An emptied level gives back a large array: a wave of updates passes through the levels one
 * after the other, and arrays kept at their largest held 5 % more memory per simulated node. */
#define QLEVEL_KEEP 64
static void qlevel_trim(qlevel_t *l)
{
    if (!l->n && l->cap > QLEVEL_KEEP) {
        free(l->v);
        l->v = NULL;
        l->cap = 0;
    }
}

static void qlevel_squeeze(gsp_swim_t *s, qlevel_t *l, uint32_t lo)
{
    uint32_t w = lo;
    for (uint32_t i = lo; i < l->n; i++) {
        uint32_t slot = l->v[i];
        if (!slot)
            continue;
        s->q[slot - 1].pos = w;
        l->v[w++] = slot;
    }
    l->holes -= l->n - w;
    l->n = w;
    qlevel_trim(l);
}

/* Takes slot out of its level: the top is popped (with the holes under it), else it leaves a
 * hole; a level of mostly holes is squeezed (each squeeze at least halves it: O(1) amortized). */
static void qlist_unlink(gsp_swim_t *s, uint32_t slot)
{
    bcast_t *b = &s->q[slot - 1];
    qlevel_t *l = &s->ql[qlevel_of(b)];
    if (b->pos + 1 == l->n) {
        l->n--;
        while (l->n && !l->v[l->n - 1]) {
            l->n--;
            l->holes--;
        }
        qlevel_trim(l);
        return;
    }
    l->v[b->pos] = 0;
    if (++l->holes > 32 && l->holes * 2 > l->n)
        qlevel_squeeze(s, l, 0);
}

/* Puts slot on top of its level; -1 out of memory (the slot is then in no level). */
static int qlist_push_head(gsp_swim_t *s, uint32_t slot)
{
    bcast_t *b = &s->q[slot - 1];
    qlevel_t *l = &s->ql[qlevel_of(b)];
    if (l->n == l->cap) {
        size_t cap = l->cap;
        if (grow((void **)&l->v, &cap, (size_t)l->n + 1, sizeof *l->v))
            return -1;
        l->cap = (uint32_t)cap;
    }
    b->pos = l->n;
    l->v[l->n++] = slot;
    return 0;
}

/* Frees a slot that is in no level (slot + 1 numbering). */
static void queue_release(gsp_swim_t *s, uint32_t slot)
{
    bcast_t *b = &s->q[slot - 1];
    if (b->m && b->m->qi == slot)
        b->m->qi = 0;
    bcast_release(b);
    b->m = NULL;
    b->transmits = 0;
    b->next = s->qfree;
    s->qfree = slot;
    s->qn--;
}

/* Drops the update in slot (slot + 1 numbering, as m->qi). */
static void queue_drop(gsp_swim_t *s, uint32_t slot)
{
    qlist_unlink(s, slot);
    queue_release(s, slot);
}

/* Queues an encoded message about m, replacing an older one about it (found through m->qi:
 * O(1)). The update goes to the head of the never-sent list. */
static void queue_put(gsp_swim_t *s, member_t *m, const uint8_t *msg, size_t len)
{
    uint8_t *c = NULL;
    if (len > BCAST_INLINE && !(c = malloc(len))) {
        s->st.dropped_updates++;
        return;
    }
    uint32_t slot = m->qi;
    if (slot) {
        qlist_unlink(s, slot);
        bcast_release(&s->q[slot - 1]);
    } else {
        if (!s->qfree) {
            size_t cap = s->qcap ? s->qcap * 2 : 16;
            bcast_t *q = cap < UINT32_MAX ? realloc(s->q, cap * sizeof *q) : NULL;
            if (!q) {
                free(c);
                s->st.dropped_updates++;
                return;
            }
            for (size_t i = cap; i-- > s->qcap;) {
                q[i] = (bcast_t){.next = s->qfree};
                s->qfree = (uint32_t)i + 1;
            }
            s->q = q;
            s->qcap = cap;
        }
        slot = s->qfree;
        s->qfree = s->q[slot - 1].next;
        s->qn++;
        m->qi = slot;
    }
    bcast_t *b = &s->q[slot - 1];
    b->m = m;
    b->len = (uint32_t)len;
    b->transmits = 0;
    b->next = 0;
    if (c)
        b->msg.heap = c;
    memcpy(c ? c : b->msg.in, msg, len);
    if (qlist_push_head(s, slot)) {
        queue_release(s, slot);
        s->st.dropped_updates++;
    }
}

/* Slots loaded ahead of the one piggyback copies (the next ones in its level's order). */
#define QPREFETCH 8

static void slot_prefetch(const gsp_swim_t *s, uint32_t slot)
{
    if (slot) {
        const char *p = (const char *)&s->q[slot - 1];
        __builtin_prefetch(p);
        __builtin_prefetch(p + sizeof(bcast_t) - 1);
    }
}

/* A slot loaded by slot_prefetch a few steps ago: its message's bytes when they are elsewhere. */
static void heap_prefetch(const gsp_swim_t *s, uint32_t slot)
{
    if (slot) {
        const bcast_t *b = &s->q[slot - 1];
        if (b->len > BCAST_INLINE) {
            __builtin_prefetch(b->msg.heap);
            __builtin_prefetch(b->msg.heap + b->len - 1);
        }
    }
}

/* Adds queued updates to e while they fit: fewest sent first, newest first among equals (the
 * levels keep that order), so a datagram costs what it carries, not the queue's length. An
 * update sent `limit` times leaves the queue. */
static void piggyback(gsp_swim_t *s, gsp_enc_t *e)
{
    if (!s->qn)
        return;
    uint32_t limit = retransmit_limit(s);
    if (limit > QLISTS - 1)
        limit = QLISTS - 1;
    for (uint32_t t = limit; t < QLISTS; t++) /* the limit shrank as members left */
        while (s->ql[t].n) {
            uint32_t top = s->ql[t].v[s->ql[t].n - 1];
            if (top) {
                queue_drop(s, top);
            } else {
                s->ql[t].n--;
                s->ql[t].holes--;
            }
        }
    uint32_t moved[MOVED_MAX];
    size_t n_moved = 0, misfits = 0;
    for (uint32_t t = 0; t < limit && n_moved < MOVED_MAX && misfits < MISFITS_MAX; t++) {
        qlevel_t *l = &s->ql[t];
        uint32_t i = l->n;
        for (uint32_t k = 1; k <= QPREFETCH && k <= i; k++)
            slot_prefetch(s, l->v[i - k]);
        while (i > 0 && n_moved < MOVED_MAX) {
            i--;
            if (i >= QPREFETCH)
                slot_prefetch(s, l->v[i - QPREFETCH]);
            if (i >= QPREFETCH / 2)
                heap_prefetch(s, l->v[i - QPREFETCH / 2]);
            uint32_t slot = l->v[i];
            if (!slot)
                continue;
            bcast_t *b = &s->q[slot - 1];
            if (gsp_enc_raw(e, bcast_bytes(b), b->len)) {
                if (++misfits >= MISFITS_MAX)
                    break; /* a smaller one might still fit, but not worth the search */
                continue;
            }
            l->v[i] = 0; /* taken: squeezed out below */
            l->holes++;
            moved[n_moved++] = slot;
            if (s->leaving && b->m == s->self)
                s->leave_transmits++;
            if (e->cap - e->len < 16) {
                misfits = MISFITS_MAX; /* full */
                break;
            }
        }
        qlevel_squeeze(s, l, i); /* what was read: the taken updates and the holes among them */
    }
    /* into the next level, on top in the order sent (pushed last to first) */
    for (size_t i = n_moved; i-- > 0;) {
        bcast_t *b = &s->q[moved[i] - 1];
        if (++b->transmits >= limit || qlist_push_head(s, moved[i]))
            queue_release(s, moved[i]);
    }
}

/* Encodes one message with fn into a scratch compound and queues its bytes about node. */
static void queue_alive(gsp_swim_t *s, member_t *m)
{
    uint8_t buf[GSP_UDP_MAX];
    gsp_enc_t e;
    gsp_enc_init(&e, buf, sizeof buf);
    size_t hdr = gsp_enc_len(&e);
    gsp_alive_t a = {.node = M_NAME(m),
                     .addr = M_ADDR(m),
                     .incarnation = m->inc,
                     .meta_version = m->meta_version,
                     .meta = {(const char *)m->meta, (uint32_t)m->meta_len}};
    /* metadata rides along when the update leaves room for others; else receivers fetch it */
    if (m->meta_len > s->cfg.udp_max / 2 || gsp_enc_alive(&e, &a)) {
        gsp_enc_init(&e, buf, sizeof buf);
        a.meta = (gsp_str_t){NULL, 0};
        if (gsp_enc_alive(&e, &a))
            return;
    }
    queue_put(s, m, buf + hdr, gsp_enc_len(&e) - hdr);
}

static void queue_suspect(gsp_swim_t *s, gsp_type_t type, member_t *node, uint32_t inc,
                          const char *from)
{
    uint8_t buf[GSP_MSG_OVERHEAD + 2 * (GSP_NAME_MAX + 5) + 16];
    gsp_enc_t e;
    gsp_enc_init(&e, buf, sizeof buf);
    size_t hdr = gsp_enc_len(&e);
    gsp_suspect_t m = {.node = M_NAME(node), .incarnation = inc, .from = str_of(from)};
    if (gsp_enc_suspect(&e, type, &m))
        return;
    queue_put(s, node, buf + hdr, gsp_enc_len(&e) - hdr);
}

/* ---- sending ----------------------------------------------------------------------------- */

static void send_dgram(gsp_swim_t *s, const char *addr, gsp_enc_t *e)
{
    size_t len = gsp_enc_finish(e);
    s->st.sent_datagrams++;
    s->st.sent_bytes += len;
    s->ops.send(s->ud, addr, e->buf, len);
}

/* A compound in s->dgram. */
static void dgram_init(gsp_swim_t *s, gsp_enc_t *e)
{
    gsp_enc_init(e, s->dgram, s->cfg.udp_max < sizeof s->dgram ? s->cfg.udp_max : sizeof s->dgram);
}

static void send_ping(gsp_swim_t *s, const char *addr, const char *target, uint32_t seq,
                      int with_updates, const member_t *suspect_first)
{
    gsp_enc_t e;
    dgram_init(s, &e);
    gsp_ping_t p = {.seq = seq,
                    .target = str_of(target),
                    .from = M_NAME(s->self),
                    .from_addr = M_ADDR(s->self)};
    if (gsp_enc_ping(&e, &p))
        return;
    if (suspect_first) { /* buddy system: a suspect hears of its suspicion first */
        gsp_suspect_t m = {.node = M_NAME(suspect_first),
                           .incarnation = suspect_first->inc,
                           .from = M_NAME(s->self)};
        (void)gsp_enc_suspect(&e, GSP_SUSPECT, &m);
    }
    if (with_updates)
        piggyback(s, &e);
    send_dgram(s, addr, &e);
}

static void send_ack(gsp_swim_t *s, const char *addr, gsp_type_t type, uint32_t seq)
{
    gsp_enc_t e;
    dgram_init(s, &e);
    if (gsp_enc_ack(&e, type, seq))
        return;
    piggyback(s, &e);
    send_dgram(s, addr, &e);
}

/* Picks up to k random members matching want (excluding self and skip) into s->scratch. */
/*
 * Picks up to k distinct random members matching want (excluding self and skip) into
 * s->scratch. Draws random members first (O(k) when most members match, as in a healthy group),
 * and falls back to a scan of all members when draws keep missing.
 */
static size_t pick_random(gsp_swim_t *s, size_t k, const member_t *skip,
                          int (*want)(const gsp_swim_t *, const member_t *, uint64_t), uint64_t now)
{
    if (grow((void **)&s->scratch, &s->scratch_cap, s->n + 1, sizeof *s->scratch))
        return 0;
    size_t c = 0;
    if (s->n > 4 * k + 8) {
        for (size_t tries = 0; c < k && tries < 4 * k + 8; tries++) {
            member_t *m = s->ms[mesh_prng_below(&s->rng, s->n)];
            if (m->self || m == skip || !want(s, m, now))
                continue;
            int dup = 0;
            for (size_t j = 0; j < c && !dup; j++)
                dup = s->scratch[j] == m;
            if (!dup)
                s->scratch[c++] = m;
        }
        if (c == k)
            return k;
        c = 0; /* few members match: count them all */
    }
    for (size_t i = 0; i < s->n; i++) {
        member_t *m = s->ms[i];
        if (!m->self && m != skip && want(s, m, now))
            s->scratch[c++] = m;
    }
    if (k > c)
        k = c;
    for (size_t i = 0; i < k; i++) {
        size_t j = i + (size_t)mesh_prng_below(&s->rng, c - i);
        member_t *t = s->scratch[i];
        s->scratch[i] = s->scratch[j];
        s->scratch[j] = t;
    }
    return k;
}

static int want_live(const gsp_swim_t *s, const member_t *m, uint64_t now)
{
    (void)s, (void)now;
    return is_live(m);
}

/* Gossip goes to live members and to those dead for less than a reconnect interval (so a
 * member declared dead while alive hears of it and refutes). */
static int want_gossip(const gsp_swim_t *s, const member_t *m, uint64_t now)
{
    return is_live(m) || (m->state == GSP_ST_DEAD && now - m->since < s->cfg.reconnect_interval_ns);
}

static int want_recently_dead(const gsp_swim_t *s, const member_t *m, uint64_t now)
{
    return m->state == GSP_ST_DEAD && now - m->since < s->cfg.reconnect_timeout_ns;
}

/* ---- the update rules -------------------------------------------------------------------- */

static void refute(gsp_swim_t *s, uint64_t now, uint32_t inc)
{
    (void)now;
    member_t *me = s->self;
    me->inc = (inc > me->inc ? inc : me->inc) + 1;
    slot_sync(s, me);
    s->st.refutations++;
    awareness_add(s, 1);
    queue_alive(s, me);
    logf_(s, 1, "refuting a suspicion or death of ourselves: incarnation now %u", me->inc);
}

static void fetch_meta(gsp_swim_t *s, member_t *m);

/* An ALIVE (or an alive STATE): meta.p NULL with meta.n 0 means "not included". */
/*
 * Someone holds stale news: an update about a member that left (an ALIVE, SUSPECT or DEAD at or
 * below the incarnation it left at), or an accusation (SUSPECT, DEAD) of a member we hold alive
 * at a newer incarnation. Gossip reaches every member only with high probability: a member
 * that joined while a leave went round, or one that every retransmission of a refutation
 * happened to skip, keeps the old state, and its probes or its suspicion timer would then
 * declare a death. What we hold is queued again (its transmit count starts over), so the next
 * datagrams we send, often the ack to the one that told us, carry it. Bounded: it circulates
 * only while the stale news does.
 */
static void reassert(gsp_swim_t *s, const slot_t *t)
{
    member_t *m = s->ms[SLOT_IDX(t)];
    s->st.reasserted++;
    if (m->state == GSP_ST_LEFT)
        queue_suspect(s, GSP_DEAD, m, m->inc, m->name);
    else if (m->state == GSP_ST_ALIVE)
        queue_alive(s, m);
}

static void on_alive(gsp_swim_t *s, uint64_t now, gsp_str_t node, gsp_str_t addr, uint32_t inc,
                     uint64_t mv, gsp_str_t meta)
{
    if (node.n == 0 || node.n > GSP_NAME_MAX || addr.n == 0 || addr.n > GSP_ADDR_MAX ||
        meta.n > GSP_META_MAX) {
        s->st.bad_messages++;
        return;
    }
    const slot_t *t = find_slot_str(s, node);
    if (t && !(t->bits & SLOT_SELF)) {
        /* a stale update (most are): rejected from the slot, without reading the member */
        int live = SLOT_LIVE(t);
        if (live ? t->addr->len == addr.n && !memcmp(t->addr->s, addr.p, addr.n) : 1) {
            int newer = inc > t->inc || (inc == t->inc && t->mv < mv && live);
            int fills = inc == t->inc && mv == t->mv && mv && !(t->bits & SLOT_META) && meta.n;
            if (!newer && !fills) {
                if (SLOT_ST(t) == GSP_ST_LEFT)
                    reassert(s, t);
                return;
            }
        }
    }
    member_t *m = t ? s->ms[SLOT_IDX(t)] : NULL;
    if (m && m->self) {
        if (!str_is(addr, M_ADDR(m))) {
            char theirs[GSP_ADDR_MAX + 1];
            if (str_copy(theirs, sizeof theirs, addr))
                return;
            s->st.conflicts++;
            if (s->ops.conflict)
                s->ops.conflict(s->ud, m->name, m->addr, theirs);
            return;
        }
        /* our own update echoed back, or one from a previous life: outdo the latter */
        if (!s->leaving && (inc > m->inc || (inc == m->inc && mv > m->meta_version))) {
            int bumped = mv > m->meta_version;
            if (bumped)
                m->meta_version = mv + 1;
            refute(s, now, inc);
            if (bumped) /* a host that signs its record signs it again at the new version */
                notify(s, m, m->state, 0);
        }
        return;
    }
    int has_meta = meta.n > 0 || mv == 0;
    if (!m) {
        m = member_add(s, node, addr, now);
        if (!m) {
            s->st.dropped_updates++;
            return;
        }
        m->inc = inc;
        m->meta_version = mv;
        if (has_meta && meta.n)
            set_meta_bytes(s, m, (const uint8_t *)meta.p, meta.n);
        set_state(s, m, GSP_ST_ALIVE, now);
        order_insert(s, m);
        s->st.joins++;
        queue_alive(s, m);
        notify(s, m, GSP_ST_DEAD, 1);
        if (!has_meta)
            fetch_meta(s, m);
        return;
    }
    int addr_changed = !str_is(addr, M_ADDR(m));
    if (addr_changed && is_live(m)) {
        char theirs[GSP_ADDR_MAX + 1];
        if (str_copy(theirs, sizeof theirs, addr))
            return;
        s->st.conflicts++;
        if (s->ops.conflict)
            s->ops.conflict(s->ud, m->name, m->addr, theirs);
        return;
    }
    int newer_inc = inc > m->inc;
    int newer_meta = inc == m->inc && mv > m->meta_version && is_live(m);
    if (!newer_inc && !newer_meta) {
        /* the metadata we were missing (a fetch's answer, a push-pull) */
        if (inc == m->inc && mv == m->meta_version && mv && !m->meta && meta.n) {
            set_meta_bytes(s, m, (const uint8_t *)meta.p, meta.n);
            m->fetching = 0;
            notify(s, m, m->state, 0);
        }
        return;
    }
    gsp_state_t prev = m->state;
    if (addr_changed) {
        if (memchr(addr.p, 0, addr.n))
            return;
        const gsp_istr_t *a = gsp_intern(addr.p, addr.n);
        if (!a)
            return;
        gsp_intern_release(gsp_istr_of(m->addr));
        m->addr = a->s;
    }
    m->addr_len = (uint8_t)addr.n;
    m->inc = inc;
    if (mv != m->meta_version || meta.n) {
        if (has_meta) {
            if (mv != m->meta_version || meta.n != m->meta_len ||
                (meta.n && memcmp(meta.p, m->meta, meta.n)))
                set_meta_bytes(s, m, (const uint8_t *)meta.p, meta.n);
        } else {
            meta_forget(m);
        }
        m->meta_version = mv;
    }
    if (newer_inc) {
        set_state(s, m, GSP_ST_ALIVE, now);
        if (prev != GSP_ST_ALIVE && prev != GSP_ST_SUSPECT)
            order_insert(s, m);
    }
    slot_sync(s, m);
    queue_alive(s, m);
    notify(s, m, prev, 0);
    if (!has_meta)
        fetch_meta(s, m);
}

static void suspicion_start(gsp_swim_t *s, member_t *m, uint64_t now, const char *from);
static int suspicion_confirm(gsp_swim_t *s, member_t *m, uint64_t now, const char *from);

static void on_suspect(gsp_swim_t *s, uint64_t now, gsp_str_t node, uint32_t inc, gsp_str_t from)
{
    const slot_t *t = find_slot_str(s, node);
    if (t && ((SLOT_ST(t) == GSP_ST_LEFT && inc <= t->inc) ||
              (SLOT_ST(t) == GSP_ST_ALIVE && inc < t->inc))) {
        reassert(s, t); /* it left, or refuted this already: tell the suspecter */
        return;
    }
    if (!t || inc < t->inc || (!(t->bits & SLOT_SELF) && !SLOT_LIVE(t)))
        return; /* stale, or about a member we hold dead: nothing to do */
    member_t *m = s->ms[SLOT_IDX(t)];
    char f[GSP_NAME_MAX + 1];
    if (str_copy(f, sizeof f, from))
        f[0] = 0;
    if (m->self) {
        if (!s->leaving)
            refute(s, now, inc);
        return;
    }
    if (m->state == GSP_ST_SUSPECT) {
        if (suspicion_confirm(s, m, now, f))
            queue_suspect(s, GSP_SUSPECT, m, m->inc, f);
        return;
    }
    if (m->state != GSP_ST_ALIVE)
        return;
    gsp_state_t prev = m->state;
    m->inc = inc;
    set_state(s, m, GSP_ST_SUSPECT, now);
    suspicion_start(s, m, now, f);
    s->st.suspicions++;
    queue_suspect(s, GSP_SUSPECT, m, inc, f);
    notify(s, m, prev, 0);
}

static void accused(gsp_swim_t *s, const char *name, uint32_t inc, gsp_str_t from)
{
    char f[GSP_NAME_MAX + 1];
    if (!str_copy(f, sizeof f, from))
        s->ops.accused(s->ud, name, inc, f);
}

static void on_dead(gsp_swim_t *s, uint64_t now, gsp_str_t node, uint32_t inc, gsp_str_t from)
{
    const slot_t *t = find_slot_str(s, node);
    if (t && SLOT_ST(t) == GSP_ST_DEAD && inc == t->inc && s->ops.accused &&
        !gsp_str_eq(from, t->name->s))
        accused(s, t->name->s, inc, from);
    if (t && ((SLOT_ST(t) == GSP_ST_LEFT && inc <= t->inc && !gsp_str_eq(from, t->name->s)) ||
              (SLOT_ST(t) == GSP_ST_ALIVE && inc < t->inc))) {
        reassert(s, t); /* declared dead by one who missed the leave or the refutation */
        return;
    }
    if (!t || inc < t->inc || SLOT_ST(t) == GSP_ST_DEAD || SLOT_ST(t) == GSP_ST_LEFT)
        return;
    member_t *m = s->ms[SLOT_IDX(t)];
    if (m->self) {
        if (!s->leaving)
            refute(s, now, inc);
        return;
    }
    int left = str_is(from, M_NAME(m));
    char f[GSP_NAME_MAX + 1];
    if (str_copy(f, sizeof f, from))
        f[0] = 0;
    gsp_state_t prev = m->state;
    m->inc = inc;
    set_state(s, m, left ? GSP_ST_LEFT : GSP_ST_DEAD, now);
    if (!left) {
        s->fast_reconnect = 1;
        if (s->next_reconnect > now + RECONNECT_FAST_NS)
            s->next_reconnect = now + RECONNECT_FAST_NS; /* try it soon (a short partition) */
    }
    if (!left)
        s->st.deaths++;
    queue_suspect(s, GSP_DEAD, m, inc, f); /* the accuser travels with it */

    notify(s, m, prev, 0);
}

/* ---- suspicion (Lifeguard) --------------------------------------------------------------- */

static void suspicion_start(gsp_swim_t *s, member_t *m, uint64_t now, const char *from)
{
    double n = (double)s->live;
    double scale = log10(n > 1 ? n : 1);
    if (scale < 1)
        scale = 1;
    uint64_t min = (uint64_t)(s->cfg.suspicion_mult * scale * (double)s->cfg.probe_interval_ns);
    uint64_t max = min * (s->cfg.suspicion_max_mult ? s->cfg.suspicion_max_mult : 1);
    uint32_t k = s->cfg.suspicion_mult > 2 ? s->cfg.suspicion_mult - 2 : 0;
    if (s->live < k + 2)
        k = 0;
    if (k > CONFIRM_MAX - 1)
        k = CONFIRM_MAX - 1;
    if (m->si || grow((void **)&s->suspects, &s->susp_cap, s->n_susp + 1, sizeof *s->suspects))
        return;
    susp_t *u = &s->suspects[s->n_susp++];
    *u = (susp_t){.m = m, .start = now, .min = min, .max = max, .k = k};
    u->confirmers[0] = hash_bytes(from, strlen(from));
    u->deadline = now + (k ? max : min);
    m->si = (uint32_t)s->n_susp;
}

/* An independent confirmation shortens the timeout: max - (max-min) * log(c+1)/log(k+1). */
static int suspicion_confirm(gsp_swim_t *s, member_t *m, uint64_t now, const char *from)
{
    (void)now;
    if (!m->si)
        return 0;
    susp_t *u = &s->suspects[m->si - 1];
    if (u->n >= u->k || !from[0])
        return 0;
    uint64_t h = hash_bytes(from, strlen(from));
    for (uint32_t i = 0; i <= u->n; i++)
        if (u->confirmers[i] == h)
            return 0;
    u->confirmers[++u->n] = h;
    double frac = log((double)u->n + 1) / log((double)u->k + 1);
    uint64_t t = u->max - (uint64_t)((double)(u->max - u->min) * frac);
    if (t < u->min)
        t = u->min;
    u->deadline = u->start + t;
    return 1;
}

/* ---- probes ------------------------------------------------------------------------------ */

static member_t *next_target(gsp_swim_t *s)
{
    for (int round = 0; round < 2; round++) {
        while (s->order_pos < s->order_n) {
            member_t *m = s->order[s->order_pos++];
            if (!m->self && is_live(m))
                return m;
        }
        /* a new round: every live member, shuffled */
        s->order_n = s->order_pos = 0;
        if (grow((void **)&s->order, &s->order_cap, s->n, sizeof *s->order))
            return NULL;
        for (size_t i = 0; i < s->n; i++)
            if (!s->ms[i]->self && is_live(s->ms[i]))
                s->order[s->order_n++] = s->ms[i];
        for (size_t i = s->order_n; i > 1; i--) {
            size_t j = (size_t)mesh_prng_below(&s->rng, i);
            member_t *t = s->order[i - 1];
            s->order[i - 1] = s->order[j];
            s->order[j] = t;
        }
    }
    return NULL;
}

static void probe_failed(gsp_swim_t *s, uint64_t now)
{
    int delta = 0;
    if (s->probe.nacks_expected > 0) {
        if (s->probe.nacks < s->probe.nacks_expected)
            delta = (int)(s->probe.nacks_expected - s->probe.nacks);
    } else {
        delta = 1;
    }
    awareness_add(s, delta);
    member_t *m = find(s, s->probe.target, strlen(s->probe.target));
    if (!m || !is_live(m))
        return; /* a suspect one: our own failure is an independent confirmation */
    logf_(s, 1, "no answer from %s (%s) to a direct, indirect or stream probe: suspecting it",
          m->name, m->addr);
    on_suspect(s, now, M_NAME(m), m->inc, M_NAME(s->self));
}

static void probe_start(gsp_swim_t *s, uint64_t now)
{
    if (s->probe.active && !s->probe.acked)
        probe_failed(s, now);
    s->probe.active = 0;
    uint64_t interval = scaled(s, s->cfg.probe_interval_ns);
    s->next_probe = now + interval;
    if (s->leaving)
        return;
    member_t *t = next_target(s);
    if (!t)
        return;
    s->probe.active = 1;
    s->probe.acked = 0;
    s->probe.indirect = 0;
    s->probe.nacks = s->probe.nacks_expected = 0;
    s->probe.seq = ++s->seq;
    s->probe.t_start = now;
    s->probe.t_indirect = now + scaled(s, s->cfg.probe_timeout_ns);
    s->probe.t_end = now + interval;
    snprintf(s->probe.target, sizeof s->probe.target, "%s", t->name);
    s->st.probes++;
    send_ping(s, t->addr, t->name, s->probe.seq, 1, t->state == GSP_ST_SUSPECT ? t : NULL);
}

static void stream_send(gsp_swim_t *s, const char *addr, const uint8_t *data, size_t len,
                        uint64_t tag)
{
    if (!s->ops.stream || s->streams >= STREAMS_MAX)
        return;
    s->streams++;
    s->st.stream_request_bytes += len;
    s->ops.stream(s->ud, addr, data, len, tag);
}

static void probe_indirect(gsp_swim_t *s, uint64_t now)
{
    (void)now;
    s->probe.indirect = 1;
    member_t *t = find(s, s->probe.target, strlen(s->probe.target));
    if (!t || !is_live(t))
        return;
    size_t k = pick_random(s, s->cfg.indirect_checks, t, want_live, now);
    for (size_t i = 0; i < k; i++) {
        gsp_enc_t e;
        dgram_init(s, &e);
        gsp_ping_req_t r = {.seq = s->probe.seq,
                            .target = M_NAME(t),
                            .target_addr = M_ADDR(t),
                            .want_nack = 1,
                            .from = M_NAME(s->self),
                            .from_addr = M_ADDR(s->self)};
        if (gsp_enc_ping_req(&e, &r))
            continue;
        piggyback(s, &e);
        send_dgram(s, s->scratch[i]->addr, &e);
        s->probe.nacks_expected++;
    }
    s->st.indirect_probes++;
    /* and over a stream: a network that drops datagrams must not make everyone dead */
    uint8_t buf[GSP_MSG_OVERHEAD + 4 * (GSP_NAME_MAX + 5)];
    gsp_enc_t e;
    gsp_enc_init(&e, buf, sizeof buf);
    gsp_ping_t p = {.seq = s->probe.seq,
                    .target = M_NAME(t),
                    .from = M_NAME(s->self),
                    .from_addr = M_ADDR(s->self)};
    if (!gsp_enc_ping(&e, &p)) {
        size_t len = gsp_enc_finish(&e);
        s->st.stream_probes++;
        stream_send(s, t->addr, buf, len, TAG(TAG_PROBE, s->probe.seq));
    }
}

const uint64_t gsp_rtt_bounds_us[GSP_RTT_BOUNDS] = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000};

static void probe_acked(gsp_swim_t *s, uint64_t now, uint32_t seq)
{
    if (!s->probe.active || s->probe.acked || seq != s->probe.seq)
        return;
    s->probe.acked = 1;
    s->st.probe_acks++;
    uint64_t us = now > s->probe.t_start ? (now - s->probe.t_start) / 1000 : 0;
    size_t b = 0;
    while (b < GSP_RTT_BOUNDS && us > gsp_rtt_bounds_us[b])
        b++;
    s->st.probe_rtt_buckets[b]++;
    s->st.probe_rtt_sum_us += us;
    awareness_add(s, -1);
}

/* ---- relays (PING_REQ for others) -------------------------------------------------------- */

static void on_ping_req(gsp_swim_t *s, uint64_t now, const char *from, const gsp_ping_req_t *r)
{
    char target_addr[GSP_ADDR_MAX + 1], target[GSP_NAME_MAX + 1];
    if (str_copy(target_addr, sizeof target_addr, r->target_addr) ||
        str_copy(target, sizeof target, r->target) || !target_addr[0])
        return;
    const slot_t *t = find_slot_str(s, r->target);
    if (t && SLOT_ST(t) == GSP_ST_LEFT) {
        /* the asker missed the leave: tell it (a datagram with the leave, nothing relayed) */
        member_t *m = s->ms[SLOT_IDX(t)];
        gsp_enc_t e;
        dgram_init(s, &e);
        gsp_suspect_t d = {.node = M_NAME(m), .incarnation = m->inc, .from = M_NAME(m)};
        s->st.reasserted++;
        if (!gsp_enc_suspect(&e, GSP_DEAD, &d))
            send_dgram(s, from, &e);
        return;
    }
    if (s->n_relays == RELAY_MAX)
        return; /* busy: the asker counts a missing nack against itself, not the target */
    relay_t *rl = &s->relays[s->n_relays++];
    rl->seq = ++s->seq;
    rl->origin_seq = r->seq;
    rl->want_nack = r->want_nack;
    rl->deadline = now + scaled(s, s->cfg.probe_timeout_ns);
    snprintf(rl->origin, sizeof rl->origin, "%s", from);
    send_ping(s, target_addr, target, rl->seq, 0, NULL);
}

static void relay_acked(gsp_swim_t *s, uint32_t seq)
{
    for (size_t i = 0; i < s->n_relays; i++)
        if (s->relays[i].seq == seq) {
            send_ack(s, s->relays[i].origin, GSP_ACK, s->relays[i].origin_seq);
            s->relays[i] = s->relays[--s->n_relays];
            return;
        }
}

/* ---- datagrams --------------------------------------------------------------------------- */

static int handle_update(gsp_swim_t *s, uint64_t now, const gsp_msg_t *m)
{
    switch (m->type) {
    case GSP_ALIVE:
        on_alive(s, now, m->u.alive.node, m->u.alive.addr, m->u.alive.incarnation,
                 m->u.alive.meta_version, m->u.alive.meta);
        return 1;
    case GSP_SUSPECT:
        on_suspect(s, now, m->u.suspect.node, m->u.suspect.incarnation, m->u.suspect.from);
        return 1;
    case GSP_DEAD:
        on_dead(s, now, m->u.suspect.node, m->u.suspect.incarnation, m->u.suspect.from);
        return 1;
    default:
        return 0;
    }
}

static void settle(gsp_swim_t *s);

void gsp_swim_on_datagram(gsp_swim_t *s, uint64_t now, const char *from, const uint8_t *data,
                          size_t len)
{
    s->st.recv_datagrams++;
    s->st.recv_bytes += len;
    gsp_decoder_t *d = &s->dec;
    if (gsp_dec_init(d, data, len) != GSP_WIRE_OK) {
        s->st.bad_messages++;
        settle(s);
        return;
    }
    /* Messages are decoded a batch ahead of handling them, so that the table lookups of a
     * batch's updates overlap (prefetch_members); they are handled in order, as they came. */
    gsp_msg_t batch[PREFETCH_BATCH];
    int rc = GSP_WIRE_OK;
    while (rc != GSP_WIRE_END && rc != GSP_WIRE_EBAD) {
        size_t n = 0, skipped = 0;
        gsp_str_t names[PREFETCH_BATCH];
        size_t n_names = 0;
        while (n < PREFETCH_BATCH) {
            rc = gsp_dec_next(d, &batch[n], NULL, NULL);
            if (rc == GSP_WIRE_END || rc == GSP_WIRE_EBAD)
                break;
            if (rc == GSP_WIRE_SKIP) {
                skipped++;
                continue;
            }
            if (batch[n].type == GSP_ALIVE)
                names[n_names++] = batch[n].u.alive.node;
            else if (batch[n].type == GSP_SUSPECT || batch[n].type == GSP_DEAD)
                names[n_names++] = batch[n].u.suspect.node;
            n++;
        }
        s->st.unknown_messages += skipped;
        prefetch_members(s, names, n_names);
        for (size_t i = 0; i < n; i++) {
            const gsp_msg_t *m = &batch[i];
            switch (m->type) {
            case GSP_PING:
                if (s->leaving ||
                    (m->u.ping.target.n && !str_is(m->u.ping.target, M_NAME(s->self))))
                    break; /* not us (a node restarted under another name at that address) */
                send_ack(s, from, GSP_ACK, m->u.ping.seq);
                break;
            case GSP_PING_REQ:
                if (!s->leaving)
                    on_ping_req(s, now, from, &m->u.ping_req);
                break;
            case GSP_ACK:
                probe_acked(s, now, m->u.ack.seq);
                relay_acked(s, m->u.ack.seq);
                break;
            case GSP_NACK:
                if (s->probe.active && m->u.ack.seq == s->probe.seq)
                    s->probe.nacks++;
                break;
            default:
                if (!handle_update(s, now, m))
                    s->st.unknown_messages++; /* stream-only messages in a datagram */
                break;
            }
        }
    }
    if (rc == GSP_WIRE_EBAD)
        s->st.bad_messages++;
    settle(s);
}

/* ---- streams: push-pull, fetches, stream pings ------------------------------------------- */

static int frame_room(gsp_swim_t *s, size_t need)
{
    return grow((void **)&s->fbuf, &s->fcap, need, 1);
}

/* Builds a push-pull frame with our whole state (and every method set we know) into buf. */
static size_t build_push_pull(gsp_swim_t *s, uint8_t **bufp, size_t *capp, int join, int reply)
{
    size_t need = 64;
    for (size_t i = 0; i < s->n; i++) {
        member_ahead(s, i);
        need +=
            GSP_MSG_OVERHEAD + s->ms[i]->name_len + s->ms[i]->addr_len + s->ms[i]->meta_len + 24;
    }
    for (size_t i = 0; i < s->sets_cap; i++)
        if (s->sets[i].hash) {
            need += GSP_MSG_OVERHEAD + 16;
            for (size_t j = 0; j < s->sets[i].n; j++)
                need += strlen(s->sets[i].names[j]) + 5;
        }
    if (need > GSP_FRAME_MAX)
        need = GSP_FRAME_MAX;
    if (grow((void **)bufp, capp, need, 1))
        return 0;
    gsp_enc_t e;
    gsp_enc_init(&e, *bufp, need);
    /* an answer says that we read digests (an older node skips the field) */
    gsp_push_pull_t h = {.join = (uint8_t)join,
                         .reply = (uint8_t)reply,
                         .n_states = (uint32_t)s->n,
                         .digest = (uint8_t)(reply && !s->cfg.legacy_push_pull),
                         .from_addr = M_ADDR(s->self)};
    if (gsp_enc_push_pull(&e, &h))
        return 0;
    size_t left_out = 0;
    for (size_t i = 0; i < s->n; i++) {
        encoding_ahead(s, i);
        member_t *m = s->ms[i];
        size_t len;
        const uint8_t *enc = state_enc(m, &len);
        if (enc) {
            if (gsp_enc_raw(&e, enc, len))
                left_out++;
            continue;
        }
        gsp_member_state_t st = {.node = M_NAME(m),
                                 .addr = M_ADDR(m),
                                 .incarnation = m->inc,
                                 .state = (uint8_t)m->state,
                                 .meta_version = m->meta_version,
                                 .meta = {(const char *)m->meta, (uint32_t)m->meta_len}};
        if (gsp_enc_state(&e, &st))
            left_out++;
    }
    for (size_t i = 0; i < s->sets_cap; i++)
        if (s->sets[i].hash &&
            gsp_enc_set(&e, s->sets[i].hash, (const char *const *)s->sets[i].names, s->sets[i].n))
            left_out++;
    if (left_out)
        logf_(s, 2, "push-pull frame over %u bytes: %zu members or method sets left out",
              (unsigned)GSP_FRAME_MAX, left_out);
    return gsp_enc_finish(&e);
}

static int meta_known(const member_t *m)
{
    return m->meta != NULL || m->meta_version == 0;
}

/* Our digest push-pull request: a DIGEST of every member we hold and the hashes of our method
 * sets (HAVE), instead of our whole state (see answer_digest). */
static size_t build_digest(gsp_swim_t *s)
{
    size_t need = 64 + GSP_ADDR_MAX + (s->sets_n / 256 + 1) * 16 + s->sets_n * 9;
    for (size_t i = 0; i < s->n; i++) {
        member_ahead(s, i);
        need += GSP_MSG_OVERHEAD + s->ms[i]->name_len;
    }
    if (need > GSP_FRAME_MAX)
        need = GSP_FRAME_MAX;
    if (frame_room(s, need))
        return 0;
    gsp_enc_t e;
    gsp_enc_init(&e, s->fbuf, need);
    gsp_push_pull_t h = {.digest = 1, .from_addr = M_ADDR(s->self)};
    if (gsp_enc_push_pull(&e, &h))
        return 0;
    size_t left_out = 0;
    for (size_t i = 0; i < s->n; i++) {
        encoding_ahead(s, i);
        const member_t *m = s->ms[i];
        gsp_digest_t g = {.node = M_NAME(m),
                          .incarnation = m->inc,
                          .state = (uint8_t)m->state,
                          .meta_version = m->meta_version,
                          .meta_known = (uint8_t)meta_known(m)};
        if (gsp_enc_digest(&e, &g))
            left_out++;
    }
    uint64_t hashes[256];
    size_t k = 0;
    for (size_t i = 0; i < s->sets_cap; i++) {
        if (!s->sets[i].hash)
            continue;
        hashes[k++] = s->sets[i].hash;
        if (k == 256) {
            left_out += gsp_enc_have(&e, hashes, k) ? k : 0;
            k = 0;
        }
    }
    if (k && gsp_enc_have(&e, hashes, k))
        left_out += k;
    if (left_out)
        logf_(s, 2, "digest push-pull frame over %u bytes: %zu members or sets left out",
              (unsigned)GSP_FRAME_MAX, left_out);
    return gsp_enc_finish(&e);
}

/* Whether a member at addr answered a digest push-pull as an older node (see full_pp). */
static int peer_wants_full(const gsp_swim_t *s, const char *addr)
{
    for (size_t i = 0; i < s->n; i++) {
        member_ahead(s, i);
        if (s->ms[i]->full_pp && !strcmp(s->ms[i]->addr, addr))
            return 1;
    }
    return 0;
}

static void mark_full_pp(gsp_swim_t *s, const char *addr, size_t addr_len, int full)
{
    for (size_t i = 0; i < s->n; i++) {
        member_ahead(s, i);
        if (s->ms[i]->addr_len == addr_len && !memcmp(s->ms[i]->addr, addr, addr_len))
            s->ms[i]->full_pp = (uint8_t)full;
    }
}

/* A push-pull: a join carries our whole state (the seed answers with its own), as does one to
 * a node older than digests; any other carries digests, and its answer what we lack. */
static void push_pull_tag(gsp_swim_t *s, const char *addr, uint64_t tag)
{
    size_t len;
    if (TAG_KIND(tag) == TAG_PUSH_PULL && !s->cfg.legacy_push_pull && !peer_wants_full(s, addr)) {
        uint32_t slot = s->pp_next++ % PP_SLOTS;
        snprintf(s->pp_addr[slot], sizeof s->pp_addr[slot], "%s", addr);
        tag |= PP_DIGEST | (uint64_t)slot << 2;
        len = build_digest(s);
        s->st.digest_push_pulls++;
    } else {
        len = build_push_pull(s, &s->fbuf, &s->fcap, TAG_KIND(tag) == TAG_JOIN, 0);
    }
    if (!len)
        return;
    s->st.push_pulls++;
    stream_send(s, addr, s->fbuf, len, tag);
}

static void push_pull(gsp_swim_t *s, const char *addr, int join)
{
    push_pull_tag(s, addr, TAG(join ? TAG_JOIN : TAG_PUSH_PULL, 0));
}

/* A WANT (member names, set hashes) to addr, in frames of at most GSP_SET_MAX of each. */
static void want_from(gsp_swim_t *s, const char *addr, uint64_t tag, const gsp_str_t *nodes,
                      size_t n_nodes, const uint64_t *sets, size_t n_sets)
{
    while (n_nodes || n_sets) {
        size_t kn = n_nodes < GSP_SET_MAX ? n_nodes : GSP_SET_MAX;
        size_t ks = n_sets < GSP_SET_MAX ? n_sets : GSP_SET_MAX;
        char *names[GSP_SET_MAX];
        char *blk = malloc(kn * (GSP_NAME_MAX + 1) + 1);
        if (!blk)
            return;
        for (size_t i = 0; i < kn; i++) {
            names[i] = blk + i * (GSP_NAME_MAX + 1);
            if (str_copy(names[i], GSP_NAME_MAX + 1, nodes[i]))
                names[i][0] = 0;
        }
        size_t need = 64 + kn * (GSP_NAME_MAX + 5) + ks * 9;
        gsp_enc_t e;
        if (!frame_room(s, need)) {
            gsp_enc_init(&e, s->fbuf, need);
            if (!gsp_enc_want(&e, (const char *const *)names, kn, sets, ks))
                stream_send(s, addr, s->fbuf, gsp_enc_finish(&e), tag);
        }
        free(blk);
        if (kn)
            nodes += kn, n_nodes -= kn;
        if (ks)
            sets += ks, n_sets -= ks;
    }
}

static void merge_state(gsp_swim_t *s, uint64_t now, const gsp_member_state_t *st);
static int reply_room(gsp_swim_t *s, size_t need);

/* A list of borrowed names, grown as needed. */
typedef struct strs {
    gsp_str_t *v;
    size_t n, cap;
} strs_t;

/*
 * A DIGEST of the asker's, against what we hold of that member: the same record is marked (it
 * stays out of our answer); a different one puts ours in the answer (unmarked), and theirs is
 * taken as its STATE would be: a suspect, dead or left record of a member we know needs
 * neither address nor metadata and is merged at once; a newer alive one, the metadata we lack,
 * or a member we do not know is fetched whole (WANT, into want).
 */
static void digest_merge(gsp_swim_t *s, uint64_t now, const gsp_digest_t *g, uint32_t gen,
                         strs_t *want)
{
    const slot_t *t = find_slot_str(s, g->node);
    member_t *x = t ? s->ms[SLOT_IDX(t)] : NULL;
    int fetch = !x;
    if (x) {
        int mk = meta_known(x);
        if (g->incarnation == x->inc && g->state == (uint8_t)x->state &&
            g->meta_version == x->meta_version && g->meta_known == mk) {
            x->pp_mark = gen;
            return;
        }
        if (g->state != GSP_ST_ALIVE) { /* merge_state reads neither address nor metadata */
            gsp_member_state_t st = {.node = g->node,
                                     .addr = M_ADDR(x),
                                     .incarnation = g->incarnation,
                                     .state = g->state,
                                     .meta_version = g->meta_version};
            merge_state(s, now, &st);
            return;
        }
        fetch = g->incarnation > x->inc ||
                (g->incarnation == x->inc &&
                 (g->meta_version > x->meta_version ||
                  (g->meta_version == x->meta_version && g->meta_known && !mk)));
        if (!fetch && x->state == GSP_ST_LEFT && g->incarnation <= x->inc)
            reassert(s, t); /* it holds a member alive that left: as its STATE would */
    }
    if (fetch && !grow((void **)&want->v, &want->cap, want->n + 1, sizeof *want->v))
        want->v[want->n++] = g->node;
}

/* Merges n digests in order, their lookups overlapping (prefetch_members); returns 0. */
static size_t digests_merge(gsp_swim_t *s, uint64_t now, const gsp_digest_t *dg,
                            const gsp_str_t *names, size_t n, uint32_t gen, strs_t *want)
{
    prefetch_members(s, names, n);
    for (size_t i = 0; i < n; i++)
        digest_merge(s, now, &dg[i], gen, want);
    return 0;
}

/*
 * Answers a digest push-pull (data: its frame): merges what the asker holds that we lack or
 * hold older, as far as the digests tell (digest_merge), and answers with the STATE of every
 * member whose record the asker lacks or holds differently, and the method sets it lacks. What
 * the asker holds newer and needs its address or metadata is fetched from it (WANT to its
 * from_addr, answered like any fetch). Returns the answer's length (in s->rbuf), or 0.
 */
static size_t answer_digest(gsp_swim_t *s, uint64_t now, const uint8_t *data, size_t len)
{
    gsp_decoder_t *d = &s->dec;
    if (gsp_dec_init(d, data, len) != GSP_WIRE_OK)
        return 0;
    if (++s->pp_gen == 0)
        s->pp_gen = 1;
    uint32_t gen = s->pp_gen;
    strs_t want = {0};
    uint64_t *want_sets = NULL;
    size_t n_want_sets = 0, cap_want_sets = 0;
    char from[GSP_ADDR_MAX + 1] = "";
    gsp_msg_t m;
    int rc;
    /* digests are merged a batch at a time, their lookups overlapping (prefetch_members) */
    gsp_digest_t dg[PREFETCH_BATCH];
    gsp_str_t names[PREFETCH_BATCH];
    size_t n_dg = 0;
    while ((rc = gsp_dec_next(d, &m, NULL, NULL)) != GSP_WIRE_END) {
        if (rc == GSP_WIRE_SKIP)
            continue;
        if (rc != GSP_WIRE_EBAD && m.type == GSP_DIGEST) {
            names[n_dg] = m.u.digest.node;
            dg[n_dg++] = m.u.digest;
            if (n_dg == PREFETCH_BATCH)
                n_dg = digests_merge(s, now, dg, names, n_dg, gen, &want);
            continue;
        }
        n_dg = digests_merge(s, now, dg, names, n_dg, gen, &want); /* before what follows */
        if (rc == GSP_WIRE_EBAD) {
            s->st.bad_messages++;
            free(want.v);
            free(want_sets);
            return 0;
        }
        if (m.type == GSP_PUSH_PULL) {
            if (str_copy(from, sizeof from, m.u.push_pull.from_addr))
                from[0] = 0;
        } else if (m.type == GSP_HAVE) {
            for (uint32_t i = 0; i < m.u.have.n_sets; i++) {
                mset_t *x = set_find(s, m.u.have.sets[i]);
                if (x)
                    x->pp_mark = gen;
                else if (m.u.have.sets[i] && !grow((void **)&want_sets, &cap_want_sets,
                                                   n_want_sets + 1, sizeof *want_sets))
                    want_sets[n_want_sets++] = m.u.have.sets[i];
            }
        } else if (m.type == GSP_STATE) {
            merge_state(s, now, &m.u.state);
        }
    }
    digests_merge(s, now, dg, names, n_dg, gen, &want);
    /* the answer: what the asker lacks or holds differently */
    size_t need = 64 + GSP_ADDR_MAX, k = 0;
    for (size_t i = 0; i < s->n; i++) {
        member_ahead(s, i);
        if (s->ms[i]->pp_mark != gen) {
            need += GSP_MSG_OVERHEAD + s->ms[i]->name_len + s->ms[i]->addr_len +
                    s->ms[i]->meta_len + 24;
            k++;
        }
    }
    for (size_t i = 0; i < s->sets_cap; i++)
        if (s->sets[i].hash && s->sets[i].pp_mark != gen) {
            need += GSP_MSG_OVERHEAD + 16;
            for (size_t j = 0; j < s->sets[i].n; j++)
                need += strlen(s->sets[i].names[j]) + 5;
        }
    size_t out = 0;
    if (need > GSP_FRAME_MAX)
        need = GSP_FRAME_MAX;
    if (!reply_room(s, need)) {
        gsp_enc_t e;
        gsp_enc_init(&e, s->rbuf, need);
        gsp_push_pull_t h = {
            .reply = 1, .n_states = (uint32_t)k, .digest = 1, .from_addr = M_ADDR(s->self)};
        if (!gsp_enc_push_pull(&e, &h)) {
            for (size_t i = 0; i < s->n; i++) {
                encoding_ahead(s, i);
                member_t *x = s->ms[i];
                size_t l;
                const uint8_t *enc;
                if (x->pp_mark == gen)
                    continue;
                if ((enc = state_enc(x, &l))) {
                    (void)gsp_enc_raw(&e, enc, l);
                    continue;
                }
                gsp_member_state_t st = {.node = M_NAME(x),
                                         .addr = M_ADDR(x),
                                         .incarnation = x->inc,
                                         .state = (uint8_t)x->state,
                                         .meta_version = x->meta_version,
                                         .meta = {(const char *)x->meta, (uint32_t)x->meta_len}};
                (void)gsp_enc_state(&e, &st);
            }
            for (size_t i = 0; i < s->sets_cap; i++)
                if (s->sets[i].hash && s->sets[i].pp_mark != gen)
                    (void)gsp_enc_set(&e, s->sets[i].hash, (const char *const *)s->sets[i].names,
                                      s->sets[i].n);
            out = gsp_enc_finish(&e);
        }
    }
    s->st.digest_states_sent += k;
    if (from[0] && (want.n || n_want_sets)) {
        s->st.digest_wants += want.n;
        want_from(s, from, TAG(TAG_WANT, 0), want.v, want.n, want_sets, n_want_sets);
    }
    free(want.v);
    free(want_sets);
    return out;
}

/* A STATE merged as memberlist does: a remote dead or suspect is only a suspicion here (we
 * cannot tell), a remote left is final; unknown dead or left members become tombstones (so
 * late gossip cannot resurrect them). */
static void merge_state(gsp_swim_t *s, uint64_t now, const gsp_member_state_t *st)
{
    gsp_str_t self = M_NAME(s->self);
    switch (st->state) {
    case GSP_ST_ALIVE:
        on_alive(s, now, st->node, st->addr, st->incarnation, st->meta_version, st->meta);
        break;
    case GSP_ST_SUSPECT:
        if (!find_slot_str(s, st->node))
            on_alive(s, now, st->node, st->addr, st->incarnation, st->meta_version, st->meta);
        else
            on_suspect(s, now, st->node, st->incarnation, self);
        break;
    case GSP_ST_DEAD:
    case GSP_ST_LEFT: {
        if (!find_slot_str(s, st->node)) {
            if (st->node.n > GSP_NAME_MAX || st->addr.n > GSP_ADDR_MAX)
                return;
            member_t *m = member_add(s, st->node, st->addr, now);
            if (!m)
                return;
            m->inc = st->incarnation;
            m->state = (gsp_state_t)st->state;
            m->meta_version = st->meta_version;
            if (st->meta.n)
                set_meta_bytes(s, m, (const uint8_t *)st->meta.p, st->meta.n);
            /* subscribers learn of it too (with the services its metadata lists): a proxy that
             * restarted from its snapshot may route to this member's instances, and only a dead
             * owner takes them out */
            slot_sync(s, m);
            notify(s, m, m->state, 0);
            return;
        }
        if (st->state == GSP_ST_LEFT)
            on_dead(s, now, st->node, st->incarnation, st->node);
        else
            on_suspect(s, now, st->node, st->incarnation, self);
        break;
    }
    default:
        s->st.bad_messages++;
    }
}

/* Reads a frame's compound twice: method sets first (states may refer to them), then the
 * rest. Answers WANT into *reply when asked. Returns the first message's type, or -1. */
static int read_frame(gsp_swim_t *s, uint64_t now, const uint8_t *data, size_t len,
                      gsp_msg_t *first)
{
    gsp_decoder_t *d = &s->dec;
    if (gsp_dec_init(d, data, len) != GSP_WIRE_OK) {
        s->st.bad_messages++;
        return -1;
    }
    for (int i = 0;; i++) {
        gsp_msg_t m;
        int rc = gsp_dec_next(d, &m, NULL, NULL);
        if (rc == GSP_WIRE_END)
            break;
        if (rc == GSP_WIRE_EBAD) {
            s->st.bad_messages++;
            return -1;
        }
        if (rc == GSP_WIRE_SKIP)
            continue;
        if (i == 0)
            *first = m;
        if (m.type == GSP_SET && !set_find(s, m.u.set.hash) && s->ops.method_set &&
            s->ops.method_set(s->ud, m.u.set.hash, m.u.set.names, m.u.set.n) == 0)
            set_store(s, m.u.set.hash, m.u.set.names, NULL, m.u.set.n);
    }
    /* the second pass decodes a batch ahead of merging, so the lookups overlap (see
     * prefetch_members); the compound decoded whole once, so no error can come now */
    if (gsp_dec_init(d, data, len) != GSP_WIRE_OK)
        return -1;
    int rc = GSP_WIRE_OK;
    while (rc != GSP_WIRE_END) {
        gsp_msg_t batch[PREFETCH_BATCH];
        gsp_str_t names[PREFETCH_BATCH];
        size_t n = 0, n_names = 0;
        while (n < PREFETCH_BATCH) {
            rc = gsp_dec_next(d, &batch[n], NULL, NULL);
            if (rc == GSP_WIRE_END || rc == GSP_WIRE_EBAD) {
                rc = GSP_WIRE_END;
                break;
            }
            if (rc == GSP_WIRE_SKIP)
                continue;
            if (batch[n].type == GSP_STATE) {
                names[n_names++] = batch[n].u.state.node;
                n++;
            } else if (batch[n].type == GSP_ACK) {
                n++;
            }
        }
        prefetch_members(s, names, n_names);
        for (size_t i = 0; i < n; i++) {
            if (batch[i].type == GSP_STATE)
                merge_state(s, now, &batch[i].u.state);
            else
                probe_acked(s, now, batch[i].u.ack.seq);
        }
    }
    return (int)first->type;
}

static int reply_room(gsp_swim_t *s, size_t need)
{
    return grow((void **)&s->rbuf, &s->rcap, need, 1);
}

static size_t answer_want(gsp_swim_t *s, const uint8_t *data, size_t len)
{
    gsp_decoder_t *d = &s->dec;
    if (gsp_dec_init(d, data, len) != GSP_WIRE_OK)
        return 0;
    gsp_msg_t m;
    if (gsp_dec_next(d, &m, NULL, NULL) != GSP_WIRE_OK || m.type != GSP_WANT)
        return 0;
    size_t need = 64;
    for (uint32_t i = 0; i < m.u.want.n_nodes; i++) {
        member_t *x = find_str(s, m.u.want.nodes[i]);
        if (x)
            need += GSP_MSG_OVERHEAD + strlen(x->name) + strlen(x->addr) + x->meta_len + 24;
    }
    for (uint32_t i = 0; i < m.u.want.n_sets; i++) {
        mset_t *x = set_find(s, m.u.want.sets[i]);
        if (x) {
            need += GSP_MSG_OVERHEAD + 16;
            for (size_t j = 0; j < x->n; j++)
                need += strlen(x->names[j]) + 5;
        }
    }
    if (need > GSP_FRAME_MAX || reply_room(s, need))
        return 0;
    gsp_enc_t e;
    gsp_enc_init(&e, s->rbuf, need);
    for (uint32_t i = 0; i < m.u.want.n_nodes; i++) {
        member_t *x = find_str(s, m.u.want.nodes[i]);
        if (!x)
            continue;
        gsp_member_state_t st = {.node = M_NAME(x),
                                 .addr = M_ADDR(x),
                                 .incarnation = x->inc,
                                 .state = (uint8_t)x->state,
                                 .meta_version = x->meta_version,
                                 .meta = {(const char *)x->meta, (uint32_t)x->meta_len}};
        (void)gsp_enc_state(&e, &st);
    }
    for (uint32_t i = 0; i < m.u.want.n_sets; i++) {
        mset_t *x = set_find(s, m.u.want.sets[i]);
        if (x)
            (void)gsp_enc_set(&e, x->hash, (const char *const *)x->names, x->n);
    }
    return gsp_enc_finish(&e);
}

const uint8_t *gsp_swim_on_stream_request(gsp_swim_t *s, uint64_t now, const uint8_t *data,
                                          size_t len, size_t *reply_len)
{
    *reply_len = 0;
    s->st.recv_bytes += len;
    gsp_msg_t first;
    memset(&first, 0, sizeof first);
    gsp_decoder_t *d = &s->dec;
    if (gsp_dec_init(d, data, len) != GSP_WIRE_OK ||
        gsp_dec_next(d, &first, NULL, NULL) != GSP_WIRE_OK) {
        s->st.bad_messages++;
        settle(s);
        return NULL;
    }
    const uint8_t *out = NULL;
    switch (first.type) {
    case GSP_PING:
        if (!s->leaving &&
            (!first.u.ping.target.n || str_is(first.u.ping.target, M_NAME(s->self))) &&
            !reply_room(s, 32)) {
            gsp_enc_t e;
            gsp_enc_init(&e, s->rbuf, 32);
            if (!gsp_enc_ack(&e, GSP_ACK, first.u.ping.seq)) {
                *reply_len = gsp_enc_finish(&e);
                out = s->rbuf;
            }
        }
        break;
    case GSP_PUSH_PULL:
        if (first.u.push_pull.digest && !first.u.push_pull.reply && !s->cfg.legacy_push_pull) {
            *reply_len = answer_digest(s, now, data, len);
            out = *reply_len ? s->rbuf : NULL;
        } else if (read_frame(s, now, data, len, &first) == GSP_PUSH_PULL) {
            *reply_len = build_push_pull(s, &s->rbuf, &s->rcap, 0, 1);
            out = *reply_len ? s->rbuf : NULL;
        }
        break;
    case GSP_WANT:
        *reply_len = answer_want(s, data, len);
        out = *reply_len ? s->rbuf : NULL;
        break;
    default:
        s->st.unknown_messages++;
        break;
    }
    if (out)
        s->st.sent_bytes += *reply_len;
    settle(s);
    return out;
}

void gsp_swim_on_stream_reply(gsp_swim_t *s, uint64_t now, uint64_t tag, const uint8_t *data,
                              size_t len)
{
    if (s->streams)
        s->streams--;
    uint64_t kind = TAG_KIND(tag);
    if (data) {
        s->st.recv_bytes += len;
        gsp_msg_t first;
        memset(&first, 0, sizeof first);
        int t = read_frame(s, now, data, len, &first);
        if (kind == TAG_PUSH_PULL && (tag & PP_FAST) && t == GSP_PUSH_PULL)
            s->fast_reconnect = 0; /* a dead member answered: back to the usual pace */
        if (t == GSP_PUSH_PULL && first.u.push_pull.digest) /* it reads digests (again) */
            mark_full_pp(s, first.u.push_pull.from_addr.p, first.u.push_pull.from_addr.n, 0);
        if (kind == TAG_PUSH_PULL && (tag & PP_DIGEST) && t == GSP_PUSH_PULL &&
            !first.u.push_pull.digest) {
            /* an older node: it answered with its whole state and never read our digests, so
             * it gets our whole state now, and from now on */
            const char *addr = s->pp_addr[PP_SLOT(tag) % PP_SLOTS];
            mark_full_pp(s, addr, strlen(addr), 1);
            logf_(s, 0, "%s does not read digest push-pulls (an older node): whole states", addr);
            push_pull_tag(s, addr, TAG(TAG_PUSH_PULL, tag & PP_FAST));
        }
        if (kind == TAG_JOIN && t == GSP_PUSH_PULL && !s->joined) {
            s->joined = 1;
            s->next_join = UINT64_MAX;
            /* nodes joining together learn of each other by gossip, which may miss one: an
             * early push-pull with a random member closes the gap (anti-entropy, sooner) */
            uint64_t early = now + 5 * s->cfg.probe_interval_ns;
            if (early < s->next_push_pull)
                s->next_push_pull = early;
            logf_(s, 1, "joined: %zu members known, %zu alive", s->n, s->live);
        }
    }
    if (kind == TAG_WANT) /* the value is the low bits of the owner's name hash */
        for (size_t i = 0; i < s->n; i++)
            if (s->ms[i]->fetching && TAG(TAG_WANT, s->ms[i]->name_hash) == tag)
                s->ms[i]->fetching = 0;
    settle(s);
}

static void send_want(gsp_swim_t *s, member_t *m, const char *const *nodes, size_t n_nodes,
                      const uint64_t *sets, size_t n_sets)
{
    size_t need = 64 + n_nodes * (GSP_NAME_MAX + 5) + n_sets * 9;
    if (frame_room(s, need))
        return;
    gsp_enc_t e;
    gsp_enc_init(&e, s->fbuf, need);
    if (gsp_enc_want(&e, nodes, n_nodes, sets, n_sets))
        return;
    size_t len = gsp_enc_finish(&e);
    stream_send(s, m->addr, s->fbuf, len, TAG(TAG_WANT, m->name_hash));
}

static void fetch_meta(gsp_swim_t *s, member_t *m)
{
    if (m->fetching || !is_live(m))
        return;
    m->fetching = 1;
    const char *nodes[1] = {m->name};
    send_want(s, m, nodes, 1, NULL, 0);
}

void gsp_swim_want_sets(gsp_swim_t *s, uint64_t now, const char *node, const uint64_t *hashes,
                        size_t n)
{
    (void)now;
    member_t *m = find(s, node, strlen(node));
    if (!m || m->self || !is_live(m) || !n)
        return;
    uint64_t want[64];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 64; i++)
        if (hashes[i] && !set_find(s, hashes[i]))
            want[k++] = hashes[i];
    if (k)
        send_want(s, m, NULL, 0, want, k);
    settle(s);
}

/* ---- the clock --------------------------------------------------------------------------- */

/* The push-pull interval grows with the group beyond 32 members (as memberlist's
 * pushPullScale): a full-state exchange costs O(n), so its rate per member falls as log2(n). */
static uint64_t push_pull_interval(const gsp_swim_t *s)
{
    uint64_t mult = 1;
    for (size_t n = s->live; n > 32; n /= 2)
        mult++;
    return s->cfg.push_pull_interval_ns * mult;
}

static void gossip_tick(gsp_swim_t *s, uint64_t now)
{
    s->next_gossip = now + s->cfg.gossip_interval_ns;
    if (!s->qn)
        return;
    size_t k = pick_random(s, s->cfg.gossip_nodes, NULL, want_gossip, now);
    for (size_t i = 0; i < k && s->qn; i++) {
        gsp_enc_t e;
        dgram_init(s, &e);
        piggyback(s, &e);
        if (e.n)
            send_dgram(s, s->scratch[i]->addr, &e);
    }
}

static int addr_is_live(const gsp_swim_t *s, const char *addr)
{
    for (size_t i = 0; i < s->n; i++)
        if (is_live(s->ms[i]) && !strcmp(s->ms[i]->addr, addr))
            return 1;
    return 0;
}

static int want_just_dead(const gsp_swim_t *s, const member_t *m, uint64_t now)
{
    (void)s;
    return m->state == GSP_ST_DEAD && now - m->since < RECONNECT_RECENT_NS;
}

static void reconnect_tick(gsp_swim_t *s, uint64_t now)
{
    s->next_reconnect = now + s->cfg.reconnect_interval_ns;
    if (s->leaving)
        return;
    /* fast (every 5 s) only until one reconnect gets an answer: the partition healed for us,
     * and gossip carries the rest (at large n a full state every 5 s would cost O(n) each) */
    if (s->fast_reconnect && pick_random(s, 1, NULL, want_just_dead, now)) {
        push_pull_tag(s, s->scratch[0]->addr, TAG(TAG_PUSH_PULL, 1));
        if (now + RECONNECT_FAST_NS < s->next_reconnect)
            s->next_reconnect = now + RECONNECT_FAST_NS;
        return;
    }
    if (pick_random(s, 1, NULL, want_recently_dead, now))
        push_pull(s, s->scratch[0]->addr, 0);
    /* seeds that are not live members: a healed partition, a restarted seed */
    for (size_t i = 0; i < s->n_seeds; i++)
        if (strcmp(s->seeds[i], s->self->addr) && !addr_is_live(s, s->seeds[i]))
            push_pull(s, s->seeds[i], 1);
}

static void gc_tick(gsp_swim_t *s, uint64_t now)
{
    s->next_gc = now + GC_INTERVAL;
    for (size_t i = 0; i < s->n;) {
        member_t *m = s->ms[i];
        if (!m->self && !is_live(m) && now - m->since >= s->cfg.tombstone_ns)
            member_free(s, m);
        else
            i++;
    }
}

static void join_tick(gsp_swim_t *s, uint64_t now)
{
    size_t tried = 0;
    for (size_t i = 0; i < s->n_seeds; i++)
        if (strcmp(s->seeds[i], s->self->addr)) {
            push_pull(s, s->seeds[i], 1);
            tried++;
        }
    if (!tried) {
        s->joined = 1;
        s->next_join = UINT64_MAX;
        return;
    }
    s->next_join = now + s->join_backoff;
    s->join_backoff =
        s->join_backoff * 2 > JOIN_BACKOFF_MAX ? JOIN_BACKOFF_MAX : s->join_backoff * 2;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t compute_due(const gsp_swim_t *s)
{
    uint64_t d = min64(s->next_probe, s->next_gossip);
    d = min64(d, s->next_push_pull);
    d = min64(d, s->next_reconnect);
    d = min64(d, s->next_gc);
    d = min64(d, s->next_join);
    if (s->probe.active && !s->probe.acked && !s->probe.indirect)
        d = min64(d, s->probe.t_indirect);
    for (size_t i = 0; i < s->n_relays; i++)
        d = min64(d, s->relays[i].deadline);
    for (size_t i = 0; i < s->n_susp; i++)
        d = min64(d, s->suspects[i].deadline);
    return d;
}

static void settle(gsp_swim_t *s)
{
    s->due = compute_due(s);
}

/* After a stall, verdicts wait until the input that queued meanwhile has been read: the
 * caller's loop reads its sockets before it runs the timer again. */
static void postpone_verdicts(gsp_swim_t *s, uint64_t now)
{
    uint64_t grace = now + scaled(s, s->cfg.probe_timeout_ns);
    if (s->next_probe <= now && s->probe.active && !s->probe.acked)
        s->next_probe = grace;
    if (s->probe.active && !s->probe.indirect && s->probe.t_indirect <= now)
        s->probe.t_indirect = grace;
    for (size_t i = 0; i < s->n_relays; i++)
        if (s->relays[i].deadline <= now)
            s->relays[i].deadline = grace;
    for (size_t i = 0; i < s->n_susp; i++)
        if (s->suspects[i].deadline <= now)
            s->suspects[i].deadline = grace;
}

void gsp_swim_on_time(gsp_swim_t *s, uint64_t now)
{
    if (s->due != UINT64_MAX && now > s->due + s->cfg.late_timer_ns) {
        s->st.late_timers++;
        awareness_add(s, 1);
        logf_(s, 2, "timer ran %llu ms late (the loop stalled): reading input before verdicts",
              (unsigned long long)((now - s->due) / MS));
        postpone_verdicts(s, now);
    }
    if (now >= s->next_join)
        join_tick(s, now);
    if (now >= s->next_gossip)
        gossip_tick(s, now);
    if (s->probe.active && !s->probe.acked && !s->probe.indirect && now >= s->probe.t_indirect)
        probe_indirect(s, now);
    if (now >= s->next_probe)
        probe_start(s, now);
    for (size_t i = 0; i < s->n_relays;) {
        relay_t *r = &s->relays[i];
        if (now >= r->deadline) {
            if (r->want_nack)
                send_ack(s, r->origin, GSP_NACK, r->origin_seq);
            s->relays[i] = s->relays[--s->n_relays];
        } else {
            i++;
        }
    }
    for (size_t i = 0; i < s->n_susp;) {
        const susp_t *u = &s->suspects[i];
        member_t *m = u->m;
        if (now >= u->deadline) {
            logf_(s, 2, "suspicion of %s (%s) timed out after %llu ms with %u confirmations",
                  m->name, m->addr, (unsigned long long)((now - u->start) / MS), u->n);
            s->declaring = 1;
            on_dead(s, now, M_NAME(m), m->inc, M_NAME(s->self)); /* removes it */
            s->declaring = 0;
        } else {
            i++;
        }
    }
    if (now >= s->next_push_pull) {
        s->next_push_pull = now + push_pull_interval(s);
        if (!s->leaving && pick_random(s, 1, NULL, want_live, now))
            push_pull(s, s->scratch[0]->addr, 0);
    }
    if (now >= s->next_reconnect)
        reconnect_tick(s, now);
    if (now >= s->next_gc)
        gc_tick(s, now);
    settle(s);
}

uint64_t gsp_swim_next_deadline(const gsp_swim_t *s)
{
    return s->due;
}

/* ---- life cycle -------------------------------------------------------------------------- */

gsp_swim_t *gsp_swim_new(const char *name, const char *addr, const gsp_swim_cfg_t *cfg,
                         const gsp_swim_ops_t *ops, void *ud, uint64_t seed, uint64_t now)
{
    if (!name || !addr || !cfg || !ops || !ops->send || !name[0] || strlen(name) > GSP_NAME_MAX ||
        !addr[0] || strlen(addr) > GSP_ADDR_MAX || !cfg->probe_interval_ns ||
        !cfg->gossip_interval_ns || cfg->udp_max < 256)
        return NULL;
    gsp_swim_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    if (s->cfg.udp_max > GSP_UDP_MAX)
        s->cfg.udp_max = GSP_UDP_MAX;
    s->ops = *ops;
    s->ud = ud;
    mesh_prng_seed(&s->rng, seed);
    s->self = member_add(s, str_of(name), str_of(addr), now);
    if (!s->self) {
        gsp_swim_free(s);
        return NULL;
    }
    s->self->self = 1;
    s->self->inc = 1;
    set_state(s, s->self, GSP_ST_ALIVE, now);
    s->joined = 1;
    s->next_join = UINT64_MAX;
    /* spread the first probe over an interval so nodes started together do not beat in step */
    s->next_probe = now + mesh_prng_below(&s->rng, s->cfg.probe_interval_ns);
    s->next_gossip = now + s->cfg.gossip_interval_ns;
    s->next_push_pull = s->cfg.push_pull_interval_ns
                            ? now + s->cfg.push_pull_interval_ns / 2 +
                                  mesh_prng_below(&s->rng, s->cfg.push_pull_interval_ns)
                            : UINT64_MAX;
    s->next_reconnect =
        s->cfg.reconnect_interval_ns ? now + s->cfg.reconnect_interval_ns : UINT64_MAX;
    s->next_gc = now + GC_INTERVAL;
    settle(s);
    return s;
}

void gsp_swim_free(gsp_swim_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        gsp_intern_release(gsp_istr_of(s->ms[i]->name));
        gsp_intern_release(gsp_istr_of(s->ms[i]->addr));
        free(s->ms[i]->blk);
        free(s->ms[i]);
    }
    for (size_t i = 0; i < s->qcap; i++)
        bcast_release(&s->q[i]);
    for (size_t t = 0; t < QLISTS; t++)
        free(s->ql[t].v);
    for (size_t i = 0; i < s->sets_cap; i++)
        free(s->sets[i].names);
    for (size_t i = 0; i < s->n_seeds; i++)
        free(s->seeds[i]);
    free(s->seeds);
    free(s->sets);
    free(s->ms);
    free(s->tab);
    free(s->order);
    free(s->scratch);
    free(s->q);
    free(s->suspects);
    free(s->fbuf);
    free(s->rbuf);
    free(s);
}

void gsp_swim_set_incarnation(gsp_swim_t *s, uint32_t inc)
{
    if (inc >= s->self->inc)
        s->self->inc = inc + 1;
    slot_sync(s, s->self);
}

void gsp_swim_join(gsp_swim_t *s, uint64_t now, const char *const *seeds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!seeds[i] || !seeds[i][0] || strlen(seeds[i]) > GSP_ADDR_MAX)
            continue;
        char **g = realloc(s->seeds, (s->n_seeds + 1) * sizeof *g);
        if (!g)
            break;
        s->seeds = g;
        if ((s->seeds[s->n_seeds] = strdup(seeds[i])))
            s->n_seeds++;
    }
    s->joined = 0;
    s->join_backoff = JOIN_BACKOFF0;
    s->next_join = now;
    queue_alive(s, s->self);
    settle(s);
}

int gsp_swim_set_meta(gsp_swim_t *s, uint64_t now, const uint8_t *meta, size_t len)
{
    return gsp_swim_set_meta_version(s, now, meta, len, 0);
}

int gsp_swim_set_meta_version(gsp_swim_t *s, uint64_t now, const uint8_t *meta, size_t len,
                              uint64_t version)
{
    (void)now;
    if (len > GSP_META_MAX) {
        logf_(s, 3, "our metadata is %zu bytes, over the %u-byte bound: not announced", len,
              (unsigned)GSP_META_MAX);
        return -1;
    }
    if (version && version <= s->self->meta_version) {
        logf_(s, 3, "our metadata at version %llu, not above the current %llu: not announced",
              (unsigned long long)version, (unsigned long long)s->self->meta_version);
        return -1;
    }
    if (set_meta_bytes(s, s->self, meta, len))
        return -1;
    s->self->meta_version = version ? version : s->self->meta_version + 1;
    slot_sync(s, s->self);
    queue_alive(s, s->self);
    notify(s, s->self, GSP_ST_ALIVE, 0);
    settle(s);
    return 0;
}

int gsp_swim_add_method_set(gsp_swim_t *s, uint64_t hash, const char *const *names, size_t n)
{
    return set_store(s, hash, NULL, names, n);
}

void gsp_swim_leave(gsp_swim_t *s, uint64_t now)
{
    if (s->leaving)
        return;
    s->leaving = 1;
    s->probe.active = 0;
    member_t *me = s->self;
    queue_suspect(s, GSP_DEAD, me, me->inc, me->name);
    size_t k = pick_random(s, LEAVE_FANOUT, NULL, want_live, now);
    for (size_t i = 0; i < k; i++) {
        gsp_enc_t e;
        dgram_init(s, &e);
        piggyback(s, &e);
        send_dgram(s, s->scratch[i]->addr, &e);
    }
    set_state(s, me, GSP_ST_LEFT, now);
    logf_(s, 1, "leaving: told %zu members", k);
    settle(s);
}

int gsp_swim_leave_sent(const gsp_swim_t *s)
{
    if (!s->leaving)
        return 0;
    size_t others = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!s->ms[i]->self && is_live(s->ms[i]))
            others++;
    uint32_t want = retransmit_limit(s);
    if (others < want)
        want = (uint32_t)others;
    return s->leave_transmits >= want;
}

/* ---- the view ---------------------------------------------------------------------------- */

size_t gsp_swim_count(const gsp_swim_t *s)
{
    return s->n;
}

int gsp_swim_member(const gsp_swim_t *s, size_t i, gsp_member_t *out)
{
    if (i >= s->n)
        return -1;
    fill_member(s->ms[i], out);
    return 0;
}

int gsp_swim_find(const gsp_swim_t *s, const char *name, gsp_member_t *out)
{
    member_t *m = find(s, name, strlen(name));
    if (!m)
        return -1;
    fill_member(m, out);
    return 0;
}

size_t gsp_swim_live(const gsp_swim_t *s)
{
    return s->live;
}

const char *const *gsp_swim_method_set(const gsp_swim_t *s, uint64_t hash, size_t *n)
{
    mset_t *m = set_find(s, hash);
    if (!m)
        return NULL;
    *n = m->n;
    return (const char *const *)m->names;
}

uint32_t gsp_swim_awareness(const gsp_swim_t *s)
{
    return s->awareness;
}

int gsp_swim_joined(const gsp_swim_t *s)
{
    return s->joined;
}

uint32_t gsp_swim_incarnation(const gsp_swim_t *s)
{
    return s->self->inc;
}

void gsp_swim_stats(const gsp_swim_t *s, gsp_swim_stats_t *out)
{
    *out = s->st;
}
