/*
 * tests/unit/registry/test_etcd_auth_sm.c: the etcd client's token machine under a fake clock:
 * one authentication for many waiting requests; a token etcd forgot (TTL, restart) is dropped
 * once and renewed; an older token's rejection leaves the new one alone; a wrong password is
 * logged once per streak and asked again only after the hold, requests failing at once
 * meanwhile; an unreachable etcd fails the waiting requests without a refusal.
 */
#include "registry/etcd_auth_sm.h"
#include "tests/check.h"

static void test_without_user(void)
{
    etcd_auth_sm_t sm;
    etcd_auth_sm_init(&sm, 0, 0);
    CHECK_EQ(etcd_auth_sm_before(&sm, 0), ETCD_AUTH_SEND);
    CHECK_EQ(sm.authentications, 0);
}

static void test_one_authentication_for_many(void)
{
    etcd_auth_sm_t sm;
    etcd_auth_sm_init(&sm, 1, 0);
    CHECK_EQ(etcd_auth_sm_before(&sm, 0), ETCD_AUTH_START);
    CHECK_EQ(etcd_auth_sm_before(&sm, 1), ETCD_AUTH_WAIT);
    CHECK_EQ(etcd_auth_sm_before(&sm, 2), ETCD_AUTH_WAIT);
    CHECK_EQ(sm.authentications, 1);
    unsigned fx = etcd_auth_sm_answered(&sm, ETCD_AUTH_ANSWER_OK, 3);
    CHECK_EQ(fx, ETCD_AUTH_FX_RELEASE);
    CHECK(etcd_auth_sm_has_token(&sm));
    CHECK_EQ(etcd_auth_sm_before(&sm, 4), ETCD_AUTH_SEND);
    /* a stray answer (none in flight) changes nothing */
    CHECK_EQ(etcd_auth_sm_answered(&sm, ETCD_AUTH_ANSWER_REFUSED, 5), 0);
    CHECK(etcd_auth_sm_has_token(&sm));
}

static void test_expired_token_renewed(void)
{
    etcd_auth_sm_t sm;
    etcd_auth_sm_init(&sm, 1, 0);
    etcd_auth_sm_before(&sm, 0);
    etcd_auth_sm_answered(&sm, ETCD_AUTH_ANSWER_OK, 0);
    uint32_t first = sm.token_gen;
    /* two requests sent with the first token; etcd forgot it (TTL or restart) */
    etcd_auth_sm_rejected(&sm, first);
    CHECK(!etcd_auth_sm_has_token(&sm));
    CHECK_EQ(sm.renewals, 1);
    CHECK_EQ(etcd_auth_sm_before(&sm, 10), ETCD_AUTH_START); /* the first retry renews */
    etcd_auth_sm_rejected(&sm, first); /* the second one's rejection arrives meanwhile */
    CHECK_EQ(etcd_auth_sm_before(&sm, 11), ETCD_AUTH_WAIT);
    CHECK_EQ(etcd_auth_sm_answered(&sm, ETCD_AUTH_ANSWER_OK, 12), ETCD_AUTH_FX_RELEASE);
    CHECK(sm.token_gen != first);
    /* a late rejection of the old token does not drop the new one */
    etcd_auth_sm_rejected(&sm, first);
    CHECK(etcd_auth_sm_has_token(&sm));
    CHECK_EQ(sm.renewals, 1);
    CHECK_EQ(sm.authentications, 2);
}

static void test_wrong_password(void)
{
    etcd_auth_sm_t sm;
    etcd_auth_sm_init(&sm, 1, 5000);
    CHECK_EQ(etcd_auth_sm_before(&sm, 1000), ETCD_AUTH_START);
    unsigned fx = etcd_auth_sm_answered(&sm, ETCD_AUTH_ANSWER_REFUSED, 1000);
    CHECK_EQ(fx, ETCD_AUTH_FX_FAIL | ETCD_AUTH_FX_LOG_REFUSED);
    /* within the hold: every request fails at once, etcd is not asked */
    for (uint64_t t = 1000; t < 6000; t += 100)
        CHECK_EQ(etcd_auth_sm_before(&sm, t), ETCD_AUTH_FAIL);
    CHECK_EQ(sm.authentications, 1);
    /* after it: asked again; a second refusal is not logged again */
    CHECK_EQ(etcd_auth_sm_before(&sm, 6000), ETCD_AUTH_START);
    CHECK_EQ(etcd_auth_sm_answered(&sm, ETCD_AUTH_ANSWER_REFUSED, 6000), ETCD_AUTH_FX_FAIL);
    CHECK_EQ(sm.refusals, 2);
    /* an hour of requests every 10 ms asks etcd once per hold */
    uint64_t t = 6000;
    for (; t < 6000 + 3600 * 1000; t += 10)
        if (etcd_auth_sm_before(&sm, t) == ETCD_AUTH_START)
            etcd_auth_sm_answered(&sm, ETCD_AUTH_ANSWER_REFUSED, t);
    CHECK(sm.authentications <= 2 + 3600 / 5 + 1);
    /* the operator fixed the password: one log line says it works again */
    while (etcd_auth_sm_before(&sm, t) != ETCD_AUTH_START)
        t += 100;
    CHECK_EQ(etcd_auth_sm_answered(&sm, ETCD_AUTH_ANSWER_OK, t),
             ETCD_AUTH_FX_RELEASE | ETCD_AUTH_FX_LOG_AGAIN);
    CHECK_EQ(etcd_auth_sm_before(&sm, t), ETCD_AUTH_SEND);
}

static void test_unreached(void)
{
    etcd_auth_sm_t sm;
    etcd_auth_sm_init(&sm, 1, 0);
    etcd_auth_sm_before(&sm, 0);
    CHECK_EQ(etcd_auth_sm_answered(&sm, ETCD_AUTH_ANSWER_UNREACHED, 0), ETCD_AUTH_FX_FAIL);
    CHECK_EQ(sm.refusals, 0);
    CHECK_EQ(etcd_auth_sm_before(&sm, 1), ETCD_AUTH_START); /* no hold: etcd was not asked */
}

int main(void)
{
    test_without_user();
    test_one_authentication_for_many();
    test_expired_token_renewed();
    test_wrong_password();
    test_unreached();
    CHECK_STR(etcd_auth_state_name(ETCD_AUTH_READY), "ready");
    return 0;
}
