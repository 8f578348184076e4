/*
 * policy/fault.h: fault injection's decision for one call (sans-I/O): from a rule's `fault:`
 * settings (policy/route_conf.h), whether the call carries the trigger header, and two random
 * numbers, which fault (abort status, delay) the engine injects (transport/proxy.h,
 * mesh_proxy_call_inject_fault). The abort and the delay are drawn independently, as Envoy's
 * fault filter does; an aborted call is not delayed.
 */
#ifndef POL_FAULT_H
#define POL_FAULT_H

#include <stdint.h>

#include "policy/route_conf.h"

/** The faults for one call: *abort_status (0 none) and *delay_ms (0 none). */
void pol_fault_decide(const pol_fault_t *f, int header_present, uint64_t r_abort, uint64_t r_delay,
                      int *abort_status, uint64_t *delay_ms);

#endif
