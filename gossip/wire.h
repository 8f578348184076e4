/*
 * gossip/wire.h: the gossip wire format: the messages SWIM nodes exchange, their msgpack
 * encoding, and the packets and stream frames that carry them.
 *
 * A datagram is one packet: a compound of messages (the first is the protocol message, the
 * rest piggybacked updates), at most GSP_UDP_MAX bytes once sealed (gossip/seal.h). A stream
 * (TCP: push-pull, fetches, the ping fallback) carries frames: a 4-byte big-endian length and
 * a sealed body holding a compound of messages, at most GSP_FRAME_MAX bytes.
 *
 * Encoding: a compound is a msgpack array of messages; a message is a msgpack array whose
 * first element is its type (gsp_type_t) and the rest its fields in the order of the structs
 * below. Unknown trailing fields are ignored (a newer peer may add some); unknown message
 * types are skipped and counted. Every decoder is bounded: lengths, counts and nesting are
 * checked against the limits below before anything is used, and a message that breaks one is
 * refused whole (GSP_WIRE_EBAD), never truncated.
 *
 * Decoded messages borrow their strings and byte strings from the input buffer: they are
 * valid while it is. Strings are not NUL-terminated (gsp_str_t).
 *
 * The version: GSP_WIRE_VERSION is the first byte of every sealed packet (gossip/seal.h), in
 * the header that AES-GCM authenticates, and not part of the compound: a node refuses a packet
 * of another version before decoding anything (GSP_SEAL_EVERSION). Within a version, messages
 * may grow trailing fields and new types; a change that older nodes could misread bumps it.
 *
 * The fields of each message and the rules both the encoders and the decoders check are
 * listed at the top of gossip/wire.c.
 */
#ifndef GSP_WIRE_H
#define GSP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define GSP_WIRE_VERSION 1

#define GSP_UDP_MAX      1400        /* a sealed datagram, at most */
#define GSP_FRAME_MAX    (8u << 20)  /* a sealed stream frame, at most */
#define GSP_NAME_MAX     128         /* node names */
#define GSP_ADDR_MAX     64          /* "host:port" texts */
#define GSP_META_MAX     (64u << 10) /* one node's metadata (its instances), encoded */
#define GSP_INST_MAX     256         /* instances in one node's metadata */
#define GSP_FIELD_MAX    256         /* service, zone, version and other short texts */
#define GSP_SET_MAX      1024        /* method names in one method set */
#define GSP_COMPOUND_MAX 4096        /* messages in one packet or frame */

/** A borrowed string (not NUL-terminated). */
typedef struct gsp_str {
    const char *p;
    uint32_t n;
} gsp_str_t;

/** Member states, ordered: a state only moves up at the same incarnation. (GSP_ST_: the
 *  message types below own GSP_ALIVE, GSP_SUSPECT and GSP_DEAD.) */
typedef enum gsp_state {
    GSP_ST_ALIVE = 0,
    GSP_ST_SUSPECT = 1,
    GSP_ST_DEAD = 2,
    GSP_ST_LEFT = 3, /* left gracefully (a dead message sent by the node itself) */
} gsp_state_t;

/** Message types (the first element of each encoded message). */
typedef enum gsp_type {
    GSP_PING = 1,     /* probe: answer with ACK */
    GSP_PING_REQ = 2, /* indirect probe: ping target for me, relay its ACK (NACK if asked) */
    GSP_ACK = 3,
    GSP_NACK = 4,
    GSP_ALIVE = 5,      /* a member is alive at an incarnation (with its metadata version) */
    GSP_SUSPECT = 6,    /* a member is suspected at an incarnation */
    GSP_DEAD = 7,       /* a member is dead (from == node: it left) */
    GSP_STATE = 8,      /* a member's whole state (push-pull, fetch replies; streams only) */
    GSP_PUSH_PULL = 9,  /* header of a push-pull frame: the STATE and SET messages follow */
    GSP_SET = 10,       /* a method set: its hash and names */
    GSP_WANT = 11,      /* asks for metadata (by node) and method sets (by hash) */
    GSP_CHECK = 12,     /* indirect check: connect to an instance for me, answer CHECK_ACK */
    GSP_CHECK_ACK = 13, /* the answer to a CHECK: whether the instance accepted a connection */
    GSP_DIGEST = 14,    /* what the sender holds of a member, without address or metadata
                           (a digest push-pull; streams only) */
    GSP_HAVE = 15,      /* the method sets the sender holds, by hash (a digest push-pull) */
    GSP_TYPE_MAX = 15,
} gsp_type_t;

typedef struct gsp_ping {
    uint32_t seq;
    gsp_str_t target; /* the node the sender means to probe: a different node at that address
                         (it restarted under another name) does not answer */
    gsp_str_t from, from_addr;
} gsp_ping_t;

typedef struct gsp_ping_req {
    uint32_t seq;
    gsp_str_t target, target_addr;
    uint8_t want_nack; /* answer NACK if the target does not ACK in time (Lifeguard) */
    gsp_str_t from, from_addr;
} gsp_ping_req_t;

typedef struct gsp_ack {
    uint32_t seq;
} gsp_ack_t;

typedef struct gsp_alive {
    gsp_str_t node, addr;
    uint32_t incarnation;
    uint64_t meta_version; /* bumped by the owner on every change of its instances */
    gsp_str_t meta;        /* its encoded metadata (gsp_meta_*), empty when it did not fit: ask
                              for it with WANT */
} gsp_alive_t;

typedef struct gsp_suspect {
    gsp_str_t node;
    uint32_t incarnation;
    gsp_str_t from;
} gsp_suspect_t;

typedef gsp_suspect_t gsp_dead_t;

typedef struct gsp_member_state {
    gsp_str_t node, addr;
    uint32_t incarnation;
    uint8_t state; /* gsp_state_t */
    uint64_t meta_version;
    gsp_str_t meta;
} gsp_member_state_t;

typedef struct gsp_push_pull {
    uint8_t join;      /* the sender is joining (the receiver answers with its own state) */
    uint8_t reply;     /* this is the answer to a push-pull */
    uint32_t n_states; /* STATE messages that follow in the frame */
    /* Optional trailing fields (a node older than them sends and reads the three above): in a
     * request, DIGEST and HAVE messages follow instead of the sender's whole state, and the
     * receiver answers with what the sender lacks (fetching what it lacks itself from
     * from_addr with WANT); in an answer, the sender reads digests (an answer without it
     * comes from an older node, which must be sent a whole state). */
    uint8_t digest;
    gsp_str_t from_addr; /* the sender's gossip address (with digest) */
} gsp_push_pull_t;

/** A digest: what the sender holds of one member, enough to tell whether the receiver's
 *  record is the same, older or newer (the ordering of gossip/swim.c). */
typedef struct gsp_digest {
    gsp_str_t node;
    uint32_t incarnation;
    uint8_t state; /* gsp_state_t */
    uint64_t meta_version;
    uint8_t meta_known; /* the sender holds the metadata of that version */
} gsp_digest_t;

/** The method sets a sender holds (HAVE). */
typedef struct gsp_have {
    uint32_t n_sets;
    const uint64_t *sets; /* in the decoder's scratch */
} gsp_have_t;

typedef struct gsp_set {
    uint64_t hash;
    uint32_t n;
    const gsp_str_t *names; /* n names, in the decoder's scratch (see gsp_decoder_t) */
} gsp_set_t;

typedef struct gsp_want {
    uint32_t n_nodes, n_sets;
    const gsp_str_t *nodes; /* metadata of these nodes */
    const uint64_t *sets;   /* method sets with these hashes */
} gsp_want_t;

/** An indirect check (gossip/check.h): the monitor's node asks a member to open a TCP
 *  connection to an instance's address within timeout_ms and answer with CHECK_ACK. Nodes
 *  older than these types skip them (GSP_WIRE_SKIP) and never answer. */
typedef struct gsp_check {
    uint32_t seq;
    gsp_str_t addr; /* the instance: numeric "ip:port" */
    uint32_t timeout_ms;
    gsp_str_t from; /* the asking node's name */
} gsp_check_t;

typedef struct gsp_check_ack {
    uint32_t seq;
    uint8_t reached; /* the connection was accepted within the deadline */
    gsp_str_t from;  /* the answering member's name */
} gsp_check_ack_t;

/** One decoded message. */
typedef struct gsp_msg {
    gsp_type_t type;
    union {
        gsp_ping_t ping;
        gsp_ping_req_t ping_req;
        gsp_ack_t ack; /* ACK and NACK */
        gsp_alive_t alive;
        gsp_suspect_t suspect; /* SUSPECT and DEAD */
        gsp_member_state_t state;
        gsp_push_pull_t push_pull;
        gsp_set_t set;
        gsp_want_t want;
        gsp_check_t check;
        gsp_check_ack_t check_ack;
        gsp_digest_t digest;
        gsp_have_t have;
    } u;
} gsp_msg_t;

/* ---- encoding ---------------------------------------------------------------------------- */

/**
 * A compound under construction, written into a caller's buffer: gsp_enc_init, then one
 * gsp_enc_<type> per message (each returns 0, or -1 when the message does not fit in what is
 * left: the compound is unchanged and still valid), then gsp_enc_finish. The buffer holds
 * the msgpack array header with room for GSP_COMPOUND_MAX messages (3 bytes), fixed up by
 * finish.
 */
typedef struct gsp_enc {
    uint8_t *buf;
    size_t cap, len;
    uint32_t n; /* messages so far */
} gsp_enc_t;

void gsp_enc_init(gsp_enc_t *e, uint8_t *buf, size_t cap);
/** Bytes the compound takes when finished. */
static inline size_t gsp_enc_len(const gsp_enc_t *e)
{
    return e->len;
}
/** Finishes the compound; returns its length. */
size_t gsp_enc_finish(gsp_enc_t *e);

int gsp_enc_ping(gsp_enc_t *e, const gsp_ping_t *m);
int gsp_enc_ping_req(gsp_enc_t *e, const gsp_ping_req_t *m);
int gsp_enc_ack(gsp_enc_t *e, gsp_type_t type /* GSP_ACK or GSP_NACK */, uint32_t seq);
int gsp_enc_alive(gsp_enc_t *e, const gsp_alive_t *m);
int gsp_enc_suspect(gsp_enc_t *e, gsp_type_t type /* GSP_SUSPECT or GSP_DEAD */,
                    const gsp_suspect_t *m);
int gsp_enc_state(gsp_enc_t *e, const gsp_member_state_t *m);
/**
 * The head of a STATE message: its bytes up to the metadata's body, which follows it unchanged
 * (a STATE is head then meta bytes, so a member's encoding can be cached with its metadata
 * stored right after it). Written into out (cap bytes; GSP_STATE_HEAD_MAX(name, addr) always
 * suffice); returns the head's length, or 0 when the message breaks a rule (as gsp_enc_state
 * refuses it) or does not fit.
 */
size_t gsp_enc_state_head(uint8_t *out, size_t cap, const gsp_member_state_t *m);
/** Bytes a STATE head takes at most for a name and an address of these lengths. */
#define GSP_STATE_HEAD_MAX(name_len, addr_len) (27 + (size_t)(name_len) + (size_t)(addr_len))
int gsp_enc_push_pull(gsp_enc_t *e, const gsp_push_pull_t *m);
/* Each gsp_enc_* also refuses (-1, compound unchanged) a message that breaks the decoders'
 * rules (gossip/wire.c): an over-long name, a NUL byte in a string, an empty member name, a
 * state above GSP_ST_LEFT, a SET hash of 0, lists over GSP_SET_MAX... */

/** A method set: names need not be sorted (the hash is the caller's, see gsp_meta_set_hash). */
int gsp_enc_set(gsp_enc_t *e, uint64_t hash, const char *const *names, size_t n);
int gsp_enc_want(gsp_enc_t *e, const char *const *nodes, size_t n_nodes, const uint64_t *sets,
                 size_t n_sets);
int gsp_enc_check(gsp_enc_t *e, const gsp_check_t *m);
int gsp_enc_digest(gsp_enc_t *e, const gsp_digest_t *m);
/** At most GSP_SET_MAX hashes per message (send several for more). */
int gsp_enc_have(gsp_enc_t *e, const uint64_t *sets, size_t n);
int gsp_enc_check_ack(gsp_enc_t *e, const gsp_check_ack_t *m);
/** An already encoded message (as gsp_dec_next's raw output gives it), copied as is. */
int gsp_enc_raw(gsp_enc_t *e, const void *msg, size_t len);

/** Bytes an encoded message of each kind takes at most beyond its variable parts (for size
 *  planning: a message with strings s1..sk takes at most GSP_MSG_OVERHEAD + sum(len(si)+5)). */
#define GSP_MSG_OVERHEAD 48

/* ---- decoding ---------------------------------------------------------------------------- */

#define GSP_WIRE_OK   0
#define GSP_WIRE_END  1  /* no more messages */
#define GSP_WIRE_EBAD -1 /* malformed or over a limit: drop the rest of the packet */
#define GSP_WIRE_SKIP 2  /* a message of an unknown type (skipped; counted by the caller) */

/**
 * Reads the messages of one compound. Scratch arrays for SET names and WANT lists are the
 * decoder's own (reused by the next message: copy what must outlive it).
 */
typedef struct gsp_decoder {
    const uint8_t *p;
    size_t len, pos;
    uint32_t left; /* messages not read yet */
    int err;       /* a message was malformed: every later call returns GSP_WIRE_EBAD */
    gsp_str_t names[GSP_SET_MAX];
    uint64_t hashes[GSP_SET_MAX];
} gsp_decoder_t;

/** Starts reading a compound (the whole of buf: bytes after its last message make the end
 *  GSP_WIRE_EBAD); GSP_WIRE_OK or GSP_WIRE_EBAD. */
int gsp_dec_init(gsp_decoder_t *d, const void *buf, size_t len);

/**
 * The next message into *m; also its encoded bytes (raw/raw_len, for relaying as is) when raw
 * is not NULL. Returns GSP_WIRE_OK, GSP_WIRE_SKIP, GSP_WIRE_END or GSP_WIRE_EBAD.
 */
int gsp_dec_next(gsp_decoder_t *d, gsp_msg_t *m, const uint8_t **raw, size_t *raw_len);

/** Compares a borrowed string with a C string. */
int gsp_str_eq(gsp_str_t a, const char *b);

#endif
