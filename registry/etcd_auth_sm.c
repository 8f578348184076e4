/*
 * registry/etcd_auth_sm.c: the authentication token's state machine (see etcd_auth_sm.h).
 */
#include "registry/etcd_auth_sm.h"

#include <string.h>

void etcd_auth_sm_init(etcd_auth_sm_t *sm, int with_user, uint64_t hold_ms)
{
    memset(sm, 0, sizeof(*sm));
    sm->state = with_user ? ETCD_AUTH_NO_TOKEN : ETCD_AUTH_OFF;
    sm->hold_ms = hold_ms ? hold_ms : ETCD_AUTH_REFUSED_HOLD_MS;
}

etcd_auth_action_t etcd_auth_sm_before(etcd_auth_sm_t *sm, uint64_t now_ms)
{
    switch (sm->state) {
    case ETCD_AUTH_OFF:
    case ETCD_AUTH_READY:
        return ETCD_AUTH_SEND;
    case ETCD_AUTH_AUTHENTICATING:
        return ETCD_AUTH_WAIT;
    case ETCD_AUTH_REFUSED:
        if (now_ms < sm->refused_until)
            return ETCD_AUTH_FAIL;
        break; /* the hold passed: ask etcd again */
    case ETCD_AUTH_NO_TOKEN:
        break;
    }
    sm->state = ETCD_AUTH_AUTHENTICATING;
    sm->authentications++;
    return ETCD_AUTH_START;
}

unsigned etcd_auth_sm_answered(etcd_auth_sm_t *sm, etcd_auth_answer_t a, uint64_t now_ms)
{
    if (sm->state != ETCD_AUTH_AUTHENTICATING)
        return 0;
    switch (a) {
    case ETCD_AUTH_ANSWER_OK: {
        unsigned fx = ETCD_AUTH_FX_RELEASE;
        if (sm->refusal_said)
            fx |= ETCD_AUTH_FX_LOG_AGAIN;
        sm->refusal_said = 0;
        sm->state = ETCD_AUTH_READY;
        sm->token_gen++;
        if (!sm->token_gen)
            sm->token_gen = 1;
        return fx;
    }
    case ETCD_AUTH_ANSWER_REFUSED: {
        unsigned fx = ETCD_AUTH_FX_FAIL;
        if (!sm->refusal_said)
            fx |= ETCD_AUTH_FX_LOG_REFUSED;
        sm->refusal_said = 1;
        sm->refusals++;
        sm->state = ETCD_AUTH_REFUSED;
        sm->refused_until = now_ms + sm->hold_ms;
        return fx;
    }
    case ETCD_AUTH_ANSWER_UNREACHED:
        sm->state = ETCD_AUTH_NO_TOKEN;
        return ETCD_AUTH_FX_FAIL;
    }
    return 0;
}

void etcd_auth_sm_rejected(etcd_auth_sm_t *sm, uint32_t gen)
{
    if (sm->state == ETCD_AUTH_READY && gen == sm->token_gen) {
        sm->state = ETCD_AUTH_NO_TOKEN;
        sm->renewals++;
    }
}

const char *etcd_auth_state_name(etcd_auth_state_t s)
{
    static const char *const names[] = {"off", "no-token", "authenticating", "ready", "refused"};
    return (unsigned)s < 5 ? names[s] : "?";
}
