/* Passes every record on unchanged: the boundary benchmark's C plugin. */
#include "sluice.h"

static sluice_status identity(const sluice_record *in, sluice_emitter *out) {
    sluice_emit(out, in);
    return SLUICE_OK;
}

SLUICE_PROCESSOR(identity)
