/*
 * common/crc32c.h: CRC-32C (Castagnoli, the iSCSI/ext4/Kafka record polynomial 0x1EDC6F41,
 * reflected, initial value and final xor ~0).
 *
 * On x86-64 CPUs with SSE4.2 the crc32 instruction computes it (about 8 bytes per cycle per
 * instruction stream); elsewhere a slicing-by-8 table does. The choice is made once, on first
 * use. crc32c("123456789") == 0xE3069283.
 */
#ifndef MESH_CRC32C_H
#define MESH_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/** The CRC-32C of n bytes at p. */
uint32_t mesh_crc32c(const void *p, size_t n);

/** Continues a CRC-32C: crc is a value mesh_crc32c or this function returned (0 for none yet),
 *  so mesh_crc32c_extend(mesh_crc32c(a, na), b, nb) is the CRC of a followed by b. */
uint32_t mesh_crc32c_extend(uint32_t crc, const void *p, size_t n);

/** The portable table-driven implementation, whatever the CPU (tests compare both). */
uint32_t mesh_crc32c_extend_sw(uint32_t crc, const void *p, size_t n);

#endif
