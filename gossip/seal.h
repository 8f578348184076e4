/*
 * gossip/seal.h: the packets that carry gossip compounds (gossip/wire.h): the version, the
 * cluster label and optional AES-256-GCM encryption with a keyring; and the length-prefixed
 * frames of streams.
 *
 * A packet (a datagram, or the body of a stream frame):
 *
 *   [version u8 = GSP_WIRE_VERSION][flags u8][label_len u8][label: label_len bytes]
 *   flags bit 0 clear: [compound]
 *   flags bit 0 set:   [nonce: 12 bytes][ciphertext of the compound][tag: 16 bytes]
 *
 * The header (version, flags and label) is the additional authenticated data of AES-GCM, so
 * neither the version nor the label can be changed in transit. A node accepts only packets
 * of its own version, with exactly its own cluster label (`--gossip-label`, empty by default),
 * encrypted when it has a keyring and plain when it has none: two meshes on one network never
 * merge, and an unkeyed packet never writes routes into a keyed mesh. Other flag bits are
 * reserved (a packet with one set is garbled).
 *
 * Keyring: `--gossip-key FILE` holds one base64 32-byte key a line (blank lines and `#`
 * comments allowed). The first key encrypts; every key is tried to decrypt, so keys rotate
 * without downtime: add the new key second everywhere, then move it first everywhere, then drop
 * the old one.
 *
 * Nonces: 8 random bytes (RAND_bytes, drawn when the sealer is created and again every 2^32
 * packets) followed by a 4-byte big-endian packet counter. Within one sealer nonces never
 * repeat; across sealers sharing a key a repeat needs two equal random prefixes, about
 * p^2 / 2^65 for p prefixes ever drawn, far below the 2^-32 that NIST SP 800-38D allows and
 * cheaper than 12 random bytes per packet.
 *
 * A gsp_sealer_t holds the keys' OpenSSL contexts (key schedules set up once): sealing and
 * opening allocate nothing. It is not thread-safe: one per thread that sends or receives.
 */
#ifndef GSP_SEAL_H
#define GSP_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "gossip/wire.h"

#define GSP_KEY_LEN             32  /* AES-256 */
#define GSP_KEYRING_MAX         16  /* keys in a keyring */
#define GSP_LABEL_LEN_MAX       255 /* cluster label bytes */
#define GSP_NONCE_LEN           12
#define GSP_TAG_LEN             16
#define GSP_SEAL_FLAG_ENCRYPTED 0x01

/** Why a packet was refused (or sealing failed): indexes for per-cause counters. */
typedef enum gsp_seal_err {
    GSP_SEAL_OK = 0,
    GSP_SEAL_ESHORT,   /* too short, or a garbled header */
    GSP_SEAL_EVERSION, /* another wire version */
    GSP_SEAL_ELABEL,   /* another cluster label */
    GSP_SEAL_ENOKEY,   /* encrypted, but this node has no keyring */
    GSP_SEAL_EPLAIN,   /* plain, but this node has a keyring */
    GSP_SEAL_EAUTH,    /* no key authenticates it (wrong key, or tampered with) */
    GSP_SEAL_ESPACE,   /* the output buffer is too small, or the input over GSP_FRAME_MAX */
    GSP_SEAL_ECRYPTO,  /* OpenSSL failed */
    GSP_SEAL_EFRAME,   /* a stream frame's length is 0 or over the bound */
    GSP_SEAL_ENOMEM,   /* out of memory (stream frame buffer) */
    GSP_SEAL_NERR
} gsp_seal_err_t;

/** A sentence for err (a gsp_seal_err_t). */
const char *gsp_seal_strerror(int err);
/** A short name for err, fit for a metric label ("auth", "label"...). */
const char *gsp_seal_errname(int err);

/* ---- keyring ----------------------------------------------------------------------------- */

typedef struct gsp_keyring {
    uint32_t n; /* keys; the first encrypts */
    uint8_t keys[GSP_KEYRING_MAX][GSP_KEY_LEN];
} gsp_keyring_t;

/**
 * Reads a key file into ring. Returns 0, or -1 with a message in err ("FILE:LINE: what", or
 * "FILE: what" when no line is to blame): unreadable, a line that is not base64, a key that is
 * not 32 bytes, more than GSP_KEYRING_MAX keys, no key at all.
 */
int gsp_keyring_load(const char *path, gsp_keyring_t *ring, char *err, size_t errlen);

/** Parses a key file's text (len bytes); name is the file name used in messages. */
int gsp_keyring_parse(const char *text, size_t len, const char *name, gsp_keyring_t *ring,
                      char *err, size_t errlen);

/** Wipes the keys. */
void gsp_keyring_clear(gsp_keyring_t *ring);

/* ---- packets ----------------------------------------------------------------------------- */

typedef struct gsp_sealer gsp_sealer_t;

/**
 * A sealer for cluster label (a C string, "" for none, at most GSP_LABEL_LEN_MAX bytes) with the
 * keys of ring (copied; NULL or an empty ring: plain packets). NULL when the label is too long,
 * or on out of memory or an OpenSSL failure.
 */
gsp_sealer_t *gsp_sealer_new(const gsp_keyring_t *ring, const char *label);
void gsp_sealer_delete(gsp_sealer_t *s);

/** Whether s encrypts (has a keyring). */
int gsp_sealer_encrypted(const gsp_sealer_t *s);

/** Bytes before the compound in a sealed packet: encode a compound at out + this offset and
 *  seal it in place. */
size_t gsp_seal_prefix(const gsp_sealer_t *s);

/** Bytes a sealed packet takes beyond its compound (the largest compound that fits a datagram
 *  is GSP_UDP_MAX - gsp_seal_overhead()). */
size_t gsp_seal_overhead(const gsp_sealer_t *s);

/**
 * Seals a compound (len bytes at body) into out (cap bytes); *out_len is the packet's length.
 * body may be out + gsp_seal_prefix(s) (sealing in place) or not overlap out at all. Returns
 * GSP_SEAL_OK, GSP_SEAL_ESPACE or GSP_SEAL_ECRYPTO.
 */
gsp_seal_err_t gsp_seal(gsp_sealer_t *s, const void *body, size_t len, uint8_t *out, size_t cap,
                        size_t *out_len);

/**
 * Opens a packet (len bytes): checks version, label and mode, and decrypts when encrypted into
 * scratch (cap bytes, at least len; must not overlap pkt). On GSP_SEAL_OK *body points at the
 * compound (into pkt when plain, into scratch when encrypted) and *body_len is its length.
 * Otherwise the error says why the packet is dropped.
 */
gsp_seal_err_t gsp_open(gsp_sealer_t *s, const uint8_t *pkt, size_t len, uint8_t *scratch,
                        size_t cap, const uint8_t **body, size_t *body_len);

/* ---- stream frames ----------------------------------------------------------------------- */

/** Bytes of a frame's length prefix (big endian): a frame is the prefix and a sealed packet. */
#define GSP_FRAME_HDR 4

/**
 * Writes a frame: the length prefix and the sealed compound (as gsp_seal; body may be
 * out + GSP_FRAME_HDR + gsp_seal_prefix(s)). GSP_SEAL_ESPACE when the packet would exceed
 * GSP_FRAME_MAX or cap.
 */
gsp_seal_err_t gsp_frame_seal(gsp_sealer_t *s, const void *body, size_t len, uint8_t *out,
                              size_t cap, size_t *out_len);

/**
 * Reassembles frames from a stream read in chunks of any size. A frame that arrives whole in
 * one chunk is handed out in place; others are gathered in a buffer grown as their bytes come
 * (a peer cannot make it allocate more than it has sent, nor over the bound).
 */
typedef struct gsp_frame_reader {
    uint32_t max;  /* largest packet accepted */
    uint32_t need; /* the length of the frame being gathered */
    uint8_t hdr[GSP_FRAME_HDR];
    uint8_t hdr_have;   /* prefix bytes gathered */
    uint8_t in_body;    /* the prefix is complete */
    uint8_t delivered;  /* the buffer holds a frame handed out by the last call */
    gsp_seal_err_t err; /* sticky: GSP_SEAL_EFRAME or GSP_SEAL_ENOMEM */
    uint8_t *buf;
    size_t cap, have;
} gsp_frame_reader_t;

/** Initializes r for packets of at most max bytes (0: GSP_FRAME_MAX). */
void gsp_frame_reader_init(gsp_frame_reader_t *r, uint32_t max);
void gsp_frame_reader_destroy(gsp_frame_reader_t *r);

/**
 * Consumes bytes from *data / *len (advancing them) until a frame is complete. Returns 1 with
 * the packet in *frame / *frame_len (valid until the next call with r, and while the chunk
 * lives), 0 when the input is used up without completing a frame, or -1 on an error (r->err;
 * the stream must be closed). Call again with what is left of the chunk until it returns 0.
 */
int gsp_frame_read(gsp_frame_reader_t *r, const uint8_t **data, size_t *len, const uint8_t **frame,
                   size_t *frame_len);

#endif
