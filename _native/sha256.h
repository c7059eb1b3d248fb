/* sha256.h -- SHA-256 (FIPS 180-4) with an exportable streaming state.
 *
 * Two compression back ends: Intel SHA extensions (SHA-NI), chosen once at
 * first use when CPUID reports SHA + SSSE3 + SSE4.1, and portable C.
 * mobstore_sha256_force_portable() pins the portable path (tests compare both).
 *
 * The state struct is plain data: copying it with memcpy/assignment forks the
 * hash.  No function here allocates; every buffer is caller-owned.
 */
#ifndef MOBSTORE_SHA256_H
#define MOBSTORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* BEGIN CDEF */

typedef struct mobstore_sha256 {
    uint32_t h[8];      /* chaining words H0..H7 */
    uint64_t total;     /* bytes absorbed so far */
    uint8_t buf[64];    /* not-yet-compressed tail: total % 64 bytes valid */
} mobstore_sha256;

/* Size of an exported midstate with a full-length tail is at most this. */
#define MOBSTORE_SHA256_EXPORT_MAX 107 /* 4 + 32 + 8 + 63 */

/* Initialise *s to the empty-message state.  Never fails. */
void mobstore_sha256_init(mobstore_sha256 *s);

/* Absorb len bytes at data (caller-owned, may be NULL when len == 0).
 * Never fails; total wraps only after 2^64 bytes (not a practical limit). */
void mobstore_sha256_update(mobstore_sha256 *s, const void *data, size_t len);

/* Write the 32-byte digest of everything absorbed into out (caller-owned,
 * 32 bytes).  Non-destructive: *s is left unchanged (works on a copy). */
void mobstore_sha256_final(const mobstore_sha256 *s, uint8_t out[32]);

/* Same as final, written as 64 lowercase hex chars plus NUL into out[65]. */
void mobstore_sha256_final_hex(const mobstore_sha256 *s, char out[65]);

/* Export: "MSS1" + H0..H7 big-endian (32) + total big-endian u64 (8) + tail
 * (total % 64 bytes).  out must hold MOBSTORE_SHA256_EXPORT_MAX bytes.
 * Returns the number of bytes written (44..107).  Never fails. */
size_t mobstore_sha256_export(const mobstore_sha256 *s, uint8_t *out);

/* Import the format above from data[0..len).  Returns 0 on success, -1 when
 * the magic is wrong or len != 44 + (total % 64); *s is untouched on error. */
int mobstore_sha256_import(mobstore_sha256 *s, const uint8_t *data, size_t len);

/* 1 when the SHA-NI back end is in use, 0 for portable C. */
int mobstore_sha256_accelerated(void);

/* force != 0: use portable C from now on; force == 0: back to auto-detect.
 * Not thread-safe against concurrent hashing (tests only). */
void mobstore_sha256_force_portable(int force);

/* END CDEF */

#endif
