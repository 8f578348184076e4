/*
 * common/file_read.h: reading a whole file into memory: configuration, rules, keys,
 * certificates, descriptor sets. The one place that opens, sizes, reads and grows, with
 * one set of errors that name the file.
 */
#ifndef MESH_FILE_READ_H
#define MESH_FILE_READ_H

#include <stddef.h>

/** Secret content (keys, shared secrets): every buffer the reader lets go of is wiped first.
 *  The caller wipes the one it returns. */
#define MESH_FILE_SECRET 1

/**
 * Reads the whole of path into a new buffer of *len bytes followed by a NUL, so a text file
 * reads as a string (free() it). max: the most bytes accepted. flags: 0 or MESH_FILE_SECRET.
 *
 * Returns the buffer, or NULL with errno set: the open's or the read's (ENOENT, EACCES,
 * EISDIR for a directory ...), EFBIG when the file holds more than max bytes, ENOMEM. When
 * err is not NULL it then holds "path: reason", the reason being strerror's text, "larger
 * than N bytes" (or "N KiB", "N MiB") or "out of memory".
 */
char *mesh_file_read(const char *path, size_t max, int flags, size_t *len, char *err,
                     size_t errlen);

#endif
