/* A test plugin for test/run_component.py and check-wasm: exercises the
 * log and state imports, rejection and traps through the component model.
 *   value "trap"   -> __builtin_trap()
 *   value "bad"    -> rejected `bad-value`
 *   value "nostore"-> a put to an undeclared store, rejected with the
 *                     host's error
 *   otherwise      -> the first record of each key passes (store `seen`),
 *                     with header `n` = how many keys were seen so far */
#include "sluice.h"

static sluice_status init(const sluice_config *config) {
    sluice_log(SLUICE_INFO, "probe: %zu config entries, greeting=%s", sluice_config_count(config),
               sluice_config_get_or(config, "greeting", "(none)"));
    return SLUICE_OK;
}

static sluice_status probe(const sluice_record *in, sluice_emitter *out) {
    if (sluice_bytes_eq_str(in->value, "trap")) __builtin_trap();
    if (sluice_bytes_eq_str(in->value, "bad")) return sluice_reject(out, "bad-value", "refused");
    if (sluice_bytes_eq_str(in->value, "nostore")) {
        if (sluice_state_put("other", in->key, in->value) < 0)
            return sluice_reject(out, sluice_last_error()->code, sluice_last_error()->message);
        return SLUICE_OK;
    }
    sluice_bytes seen;
    int found = sluice_state_get("seen", in->key, &seen);
    if (found < 0) return sluice_reject(out, sluice_last_error()->code, sluice_last_error()->message);
    if (found) {
        sluice_log(SLUICE_DEBUG, "probe: drop repeated key %.*s", (int)in->key.len,
                   (const char *)in->key.data);
        return SLUICE_OK;
    }
    if (sluice_state_put("seen", in->key, sluice_bytes_str("1")) < 0)
        return sluice_reject(out, sluice_last_error()->code, sluice_last_error()->message);
    const sluice_entry *all;
    long n = sluice_state_range("seen", SLUICE_NULL, SLUICE_NULL, 1000, &all);
    if (n < 0) return sluice_reject(out, sluice_last_error()->code, sluice_last_error()->message);
    sluice_record rec = *in;
    sluice_record_set_header(&rec, "n", sluice_bytes_str(sluice_afmt("%ld", n)));
    sluice_emit(out, &rec);
    return SLUICE_OK;
}

SLUICE_PROCESSOR_INIT(init)
SLUICE_PROCESSOR(probe)
