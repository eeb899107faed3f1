/*
 * {{name}}: a Sluice record processor. Upper-cases each record's value; a
 * record without a value is rejected (the pipeline's `rejected` policy
 * applies). Build: `sluice plugin build .`   Test: `sluice plugin test .`
 */
#include <ctype.h>

#include "sluice.h"

static sluice_status process(const sluice_record *in, sluice_emitter *out) {
    if (sluice_bytes_is_null(in->value) || in->value.len == 0)
        return sluice_reject(out, "empty", "the record has no value");
    uint8_t *text = sluice_alloc(in->value.len); /* freed after the call */
    for (size_t i = 0; i < in->value.len; i++) text[i] = (uint8_t)toupper(in->value.data[i]);
    sluice_record rec = *in; /* key, timestamp and headers as they were */
    rec.value = sluice_bytes_of(text, in->value.len);
    sluice_emit(out, &rec);
    return SLUICE_OK;
}

SLUICE_PROCESSOR(process)
