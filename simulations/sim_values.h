/*
 * simulations/sim_values.h: the registry records the simulated writers put into etcd: valid
 * naming-resolver instance records in their several shapes, malformed values, resolver Delete
 * records, and keys of the wrong shape.
 *
 * Each generator returns a tag for the simulated etcd (SIM_TAG_HIDDEN, SIM_TAG_MALFORMED, or 0
 * for an instance) so that the checkers know what the view must hold for the key without
 * parsing the value themselves.
 */
#ifndef SIM_VALUES_H
#define SIM_VALUES_H

#include <stddef.h>
#include <stdint.h>

/** Tag bit of a key the view keeps as an invalid (skipped) entry. */
#define SIM_TAG_MALFORMED 0x2u

/** Writes a valid instance record for addr (shape chosen by r) into buf; returns 0. */
uint32_t sim_value_instance(char *buf, size_t cap, const char *addr, const char *node, uint64_t r);

/** Writes a malformed value (SIM_TAG_MALFORMED) or a resolver Delete record (SIM_TAG_HIDDEN)
 *  for addr into buf, chosen by r; returns the tag. */
uint32_t sim_value_odd(char *buf, size_t cap, const char *addr, uint64_t r);

/** Writes a key under prefix (with its '/') that is not `<service>/<addr>` into buf. */
void sim_key_bad(char *buf, size_t cap, const char *prefix, uint64_t r);

#endif
