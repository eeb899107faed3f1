/*
 * Test plugin: passes records on, except that a record whose value is
 * `REKEY` comes out with the key `other`. Under `key = "kept"` the host
 * must fail that record as a trap.
 */
#include <string.h>

#include "sluice.h"

static sluice_status rekey(const sluice_record *in, sluice_emitter *out) {
    sluice_record rec = *in;
    if (in->value.data && in->value.len == 5 && memcmp(in->value.data, "REKEY", 5) == 0)
        rec.key = sluice_bytes_of("other", 5);
    sluice_emit(out, &rec);
    return SLUICE_OK;
}

SLUICE_PROCESSOR(rekey)
