/*
 * gossip/gossip_options.h: the gossip layer's options (gossip.*), a config section of their own
 * (common/config.h), and turning them into a gossip actor's settings.
 *
 *   --gossip-bind HOST:PORT     UDP and TCP on one port; gossip is on when this is set
 *   --gossip-advertise H:P      what other nodes reach us at (default: the bind address)
 *   --gossip-join H:P[,H:P]     seeds (host names are resolved at start)
 *   --gossip-key FILE           keyring: one base64 32-byte key a line, the first encrypts
 *   --gossip-label TEXT         cluster label: packets of other labels are refused
 *   --gossip-profile lan|wan|local   timer profile (default lan)
 *   --gossip-insecure           allow plain gossip on a non-loopback address
 *   --gossip-verify             route only records signed by an allowed identity (ca/record_sig.h)
 *   --gossip-ca FILE            the CA records chain to (implies --gossip-verify)
 *   --gossip-rules FILE         who may register which service (ca/svc_rules.h)
 *   --gossip-probe-interval, --gossip-probe-timeout, --gossip-suspicion-mult,
 *   --gossip-interval, --gossip-push-pull-interval   override one timer of the profile
 *
 * Gossip on a non-loopback address without a key is refused unless --gossip-insecure is given:
 * anyone who can send a datagram could otherwise write routes.
 */
#ifndef GSP_GOSSIP_OPTIONS_H
#define GSP_GOSSIP_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "gossip/gossip_actor.h"

/** The values of the gossip.* options. */
typedef struct gsp_options {
    char *bind, *advertise, *key, *label, *profile;
    mesh_config_list_t join;
    int insecure;
    int verify;       /* gossip.verify, or gossip.ca given */
    char *ca, *rules; /* gossip.ca, gossip.rules */
    int64_t probe_interval_ms, probe_timeout_ms, gossip_interval_ms, push_pull_interval_ms;
    int64_t suspicion_mult;
} gsp_options_t;

/** The gossip.* section; register it once with mesh_config_add_section(). */
extern const mesh_config_section_t gsp_options_section;

static inline const gsp_options_t *gsp_options(const mesh_config_t *cfg)
{
    return mesh_config_section(cfg, &gsp_options_section);
}

/** With gossip on, a node name left at its default (the host name) becomes "HOST:PORT" with
 *  the gossip port, so two nodes on one host do not share a name. */
void gsp_options_default_name(mesh_config_t *cfg);

/** Whether gossip is configured (gossip.bind set). */
int gsp_options_enabled(const mesh_config_t *cfg);

/**
 * Fills a gossip actor's settings from cfg for node name `name`: resolves the bind, advertise and
 * seed addresses (host names allowed), loads the keyring, applies the profile and overrides.
 * Returns 0, or -1 with the reason in err ("gossip.key: FILE:LINE: ...").
 */
int gsp_options_actor_cfg(const mesh_config_t *cfg, const char *name, gsp_actor_cfg_t *out,
                          char *err, size_t errlen);

#endif
