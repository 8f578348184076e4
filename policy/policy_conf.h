/*
 * policy/policy_conf.h: the policy chain's configuration, the `policy:` block of meshd's YAML
 * file, as plain values.
 *
 * The option loader (common/config.h) skips `policy:` (mesh_config_add_block); this loader
 * reads it from the same file with libyaml's document API, so every error names file:line.
 * The result is immutable once loaded: the chain (policy/chain.h) builds its run-time objects
 * (key sets, secrets, ACLs, rate limiters) from it, and a reload (SIGHUP) loads a new one
 * beside the old, which stays in force when the new one is refused.
 *
 *   policy:
 *     trace: {enabled: true, access-log: /var/log/meshd/access.jsonl, sample: 0.1,
 *             request-id: reuse}                 (or create)
 *     identity: {header: x-meshd-identity, claims: [email], mesh-secret-file: F, ttl: 30s,
 *                forwarders: ['spiffe://TD/node/proxy-*']}
 *     jwt: {jwks-file: F, jwks-url: U, refresh: 5m, issuers: [..], audiences: [..],
 *           algorithms: [RS256, ES256], clock-skew: 60s, header: authorization}
 *     ext-authz: {url: http://.., grpc: host:port, timeout: 200ms, fail-open: false,
 *                 forward: [cookie, authorization], identity-header: x-user-id, cache-ttl: 30s}
 *     signature: {secrets-file: F, window: 5m, max-body: 1MiB}
 *     trusted-proxies: [10.0.0.0/8]
 *     exempt: [grpc.health.v1.Health/\*, ...]   (default: health and reflection)
 *     rules:
 *       - match: pkg.Svc/\*                      (or a list; exact, pkg.Svc/\*, *)
 *         authn: jwt | ext-authz | none         (or a list: either may establish identity)
 *         optional: false                       (true: anonymous calls pass authn)
 *         signature: false
 *         allow: {peers: [..], identities: [..]}
 *         deny:  {peers: [..], identities: [..]}
 *         rate-limit: {key: peer | identity | method, rate: 100, burst: 20}
 *
 * For a call, the most specific rule applies, whole: an exact "pkg.Svc/Method" before
 * "pkg.Svc/\*" before "*"; a call no rule matches passes with trace only.
 */
#ifndef POL_POLICY_CONF_H
#define POL_POLICY_CONF_H

#include <stddef.h>
#include <stdint.h>

/** A list of strings (owned). */
typedef struct pol_strlist {
    char **v;
    size_t n;
} pol_strlist_t;

enum { POL_AUTHN_JWT = 1, POL_AUTHN_EXT_AUTHZ = 2 };
enum { POL_RL_NONE = 0, POL_RL_PEER, POL_RL_IDENTITY, POL_RL_METHOD };

/** One rule. */
typedef struct pol_rule {
    pol_strlist_t match; /* patterns: "pkg.Svc/Method", "pkg.Svc/\*", "*" */
    int line;            /* of the rule in the file */
    int authn;           /* POL_AUTHN_* bits; 0: no authentication */
    int optional;        /* anonymous calls pass authn (credentials given are still checked) */
    int signature;       /* a request signature is required */
    pol_strlist_t allow_peers, allow_identities, deny_peers, deny_identities;
    int rl_key; /* POL_RL_* */
    double rl_rate, rl_burst;
} pol_rule_t;

/** The whole block. Durations in milliseconds. */
typedef struct pol_conf {
    char *file;  /* where it was read from */
    int present; /* the file had a policy: block */
    /* trace */
    int trace;
    char *access_log; /* NULL: off; "-": stderr */
    double access_log_sample;
    char *request_id_mode; /* "reuse" (NULL: the default) or "create" */
    int request_id_create; /* an x-request-id is created for a call that came without one */
    /* identity */
    char *identity_header;
    pol_strlist_t identity_claims;
    char *mesh_secret_file;
    pol_strlist_t identity_forwarders; /* nodes whose tokens are believed over mTLS; empty: all */
    int64_t mesh_token_ttl_ms;
    /* jwt */
    char *jwks_file, *jwks_url;
    int64_t jwks_refresh_ms;
    pol_strlist_t issuers, audiences, algorithms;
    int64_t clock_skew_ms;
    char *jwt_header;
    /* ext-authz */
    char *authz_url, *authz_grpc;
    int64_t authz_timeout_ms;
    int authz_fail_open;
    pol_strlist_t authz_forward;
    char *authz_identity_header;
    int64_t authz_cache_ttl_ms;
    /* signature */
    char *sig_secrets_file;
    int64_t sig_window_ms;
    int64_t sig_max_body;
    /* peers */
    pol_strlist_t trusted_proxies;
    pol_strlist_t exempt;
    pol_rule_t *rules;
    size_t n_rules;
} pol_conf_t;

/**
 * Reads the `policy:` block of the YAML file at path into a new conf (a file without one
 * gives the defaults and present = 0). NULL on error with "file:line: policy.key: what" in
 * err.
 */
pol_conf_t *pol_conf_load(const char *path, char *err, size_t errlen);

/** Same from bytes in memory (name is used in messages). */
pol_conf_t *pol_conf_parse(const char *name, const char *yaml, size_t len, char *err,
                           size_t errlen);

/** A conf with the defaults and no rules. */
pol_conf_t *pol_conf_default(void);

void pol_conf_free(pol_conf_t *c);

/**
 * The rule for a call to service/method (not NUL-terminated), or NULL. Also says whether the
 * method is exempt (health, reflection by default) from authn, signature and rate limits
 * (always 0 when there are no rules: exemptions only lift rules).
 */
const pol_rule_t *pol_conf_match(const pol_conf_t *c, const char *service, size_t service_len,
                                 const char *method, size_t method_len, int *exempt);

#endif
