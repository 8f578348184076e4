/*
 * registry/etcd_auth_sm.h: the etcd client's authentication token, as a state machine without
 * I/O (registry/etcd_client.c carries out what it decides; tests/unit/registry drives it with
 * a fake clock).
 *
 * With a user configured, every request needs a token from /v3/auth/authenticate. One
 * authentication is in flight at a time; requests that need a token meanwhile wait for it.
 * etcd forgets a simple token after --auth-token-ttl without use, and all of them when it
 * restarts: a request rejected with "invalid auth token" (or "user name is empty", or "revision
 * of auth store is old") drops the token it used and is sent once more with a new one.
 * Refused credentials (a wrong password) are believed for a hold time: requests fail at once
 * meanwhile, so a wrong password costs etcd one authentication per hold, not one per request,
 * and the refusal is logged once per streak.
 *
 *   NO_TOKEN -request-> AUTHENTICATING -ok-> READY -rejected (its token)-> NO_TOKEN
 *   AUTHENTICATING -refused-> REFUSED -hold passed, request-> AUTHENTICATING
 *   AUTHENTICATING -unreached-> NO_TOKEN (the waiting requests fail as unreachable)
 */
#ifndef ETCD_AUTH_SM_H
#define ETCD_AUTH_SM_H

#include <stdint.h>

/** How long refused credentials are believed by default. */
#define ETCD_AUTH_REFUSED_HOLD_MS 5000

/** States. */
typedef enum {
    ETCD_AUTH_OFF = 0, /* no user: requests go without a token */
    ETCD_AUTH_NO_TOKEN = 1,
    ETCD_AUTH_AUTHENTICATING = 2,
    ETCD_AUTH_READY = 3,
    ETCD_AUTH_REFUSED = 4,
} etcd_auth_state_t;

/** What to do with a request about to be sent (etcd_auth_sm_before). */
typedef enum {
    ETCD_AUTH_SEND = 0,  /* send it now, with the current token if there is one */
    ETCD_AUTH_WAIT = 1,  /* hold it until the authentication in flight answers */
    ETCD_AUTH_START = 2, /* hold it and start an authentication */
    ETCD_AUTH_FAIL = 3,  /* fail it now: the credentials were refused a moment ago */
} etcd_auth_action_t;

/** How an authentication ended (etcd_auth_sm_answered). */
typedef enum {
    ETCD_AUTH_ANSWER_OK = 0,        /* a token */
    ETCD_AUTH_ANSWER_REFUSED = 1,   /* etcd refused the user or password */
    ETCD_AUTH_ANSWER_UNREACHED = 2, /* no endpoint answered */
} etcd_auth_answer_t;

/** Effects of an answer (bits). */
enum {
    ETCD_AUTH_FX_RELEASE = 1,     /* send the waiting requests (with the new token) */
    ETCD_AUTH_FX_FAIL = 2,        /* fail the waiting requests (refused or unreachable) */
    ETCD_AUTH_FX_LOG_REFUSED = 4, /* log the refusal: the first of a streak */
    ETCD_AUTH_FX_LOG_AGAIN = 8,   /* log that authentication works again after a refusal */
};

/** The machine. */
typedef struct etcd_auth_sm {
    etcd_auth_state_t state;
    uint32_t token_gen;       /* bumped with every new token (0: none yet) */
    uint64_t refused_until;   /* REFUSED: ms of the caller's clock */
    uint64_t hold_ms;         /* how long a refusal is believed */
    int refusal_said;         /* the current streak of refusals was logged */
    uint64_t authentications; /* authentications started */
    uint64_t refusals;        /* authentications refused */
    uint64_t renewals;        /* tokens dropped because etcd rejected them */
} etcd_auth_sm_t;

/** Initializes: with_user 0 means no authentication at all; hold_ms 0 means the default. */
void etcd_auth_sm_init(etcd_auth_sm_t *sm, int with_user, uint64_t hold_ms);

/** A request is about to be sent: what to do with it. START moves to AUTHENTICATING. */
etcd_auth_action_t etcd_auth_sm_before(etcd_auth_sm_t *sm, uint64_t now_ms);

/** The authentication in flight answered; returns ETCD_AUTH_FX_* bits. */
unsigned etcd_auth_sm_answered(etcd_auth_sm_t *sm, etcd_auth_answer_t a, uint64_t now_ms);

/**
 * etcd rejected a request's token (gen: the token_gen it was sent with). Drops the token when
 * it is still the current one (an older token's rejection says nothing about the new one).
 * The caller sends the request once more (etcd_auth_sm_before again) unless it already did.
 */
void etcd_auth_sm_rejected(etcd_auth_sm_t *sm, uint32_t gen);

/** Whether requests carry a token now (READY). */
static inline int etcd_auth_sm_has_token(const etcd_auth_sm_t *sm)
{
    return sm->state == ETCD_AUTH_READY;
}

/** Name of a state, for logs. */
const char *etcd_auth_state_name(etcd_auth_state_t s);

#endif
