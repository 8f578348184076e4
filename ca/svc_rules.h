/*
 * ca/svc_rules.h: the rule table of who may register which service (`--gossip-rules FILE`):
 * which workload identities may announce instances of a service in gossip, beside what their
 * certificates say (ca/record_sig.h).
 *
 * The file: one rule a line, `SERVICE-GLOB  IDENTITY-GLOB`, separated by blanks; `#` starts a
 * comment; blank lines are skipped. Globs are fnmatch(3) patterns ('*', '?', '[...]').
 * SERVICE-GLOB matches the full service name ("shop.Cart", "shop.*"); IDENTITY-GLOB matches
 * the node name ("cart-*") or, when it starts with "spiffe://", the node's full SPIFFE ID
 * ("spiffe://example.org/node/cart-*"). A line with fewer or more than two fields is an error
 * with FILE:LINE. Sans-I/O: svr_rules_parse takes the text; svr_rules_load reads a file first.
 */
#ifndef CA_SVC_RULES_H
#define CA_SVC_RULES_H

#include <stddef.h>

/** A parsed rule table (opaque). */
typedef struct svr_rules svr_rules_t;

/** Parses text[0..len) (name: the file name for errors). The table, or NULL with "FILE:LINE:
 *  reason" in err. An empty text gives an empty table (nothing allowed by rules). */
svr_rules_t *svr_rules_parse(const char *text, size_t len, const char *name, char *err,
                             size_t errlen);

/** Reads path and parses it; NULL with the reason (the file's or a line's) in err. */
svr_rules_t *svr_rules_load(const char *path, char *err, size_t errlen);

/** 1 when a rule lets the node (its name, and its SPIFFE ID, which may be NULL) register
 *  service; else 0. rules NULL allows nothing. */
int svr_rules_allow(const svr_rules_t *rules, const char *service, const char *node,
                    const char *spiffe_id);

/** The number of rules. */
size_t svr_rules_count(const svr_rules_t *rules);

/** Frees rules (NULL is fine). */
void svr_rules_free(svr_rules_t *rules);

#endif
