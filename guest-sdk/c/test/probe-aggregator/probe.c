/* An aggregator for check-wasm (test/check_aggregator.py): the aggregate is
 * {"n": <sum of the values' `n`>, "keys": <records>}, through the
 * component model.
 *   value "trap"  -> __builtin_trap()
 *   value "state" -> a state call, which fails in this world (`no-state`)
 *   otherwise     -> n added, or rejected `bad-n` without a numeric `n`
 * init logs its config; merge adds, and refuses a merge without a key. */
#include "sluice.h"

static sluice_status init(const sluice_config *config) {
    sluice_log(SLUICE_INFO, "probe-aggregator: %zu config entries, greeting=%s",
               sluice_config_count(config), sluice_config_get_or(config, "greeting", "(none)"));
    return SLUICE_OK;
}

static sluice_status initial(sluice_bytes key, sluice_emitter *out) {
    if (sluice_bytes_eq_str(key, "refuse")) return sluice_reject(out, "no-start", "not this key");
    return sluice_aggregate(out, "{\"n\":0,\"count\":0}");
}

static sluice_status add(sluice_bytes agg, const sluice_record *in, sluice_emitter *out) {
    if (sluice_bytes_eq_str(in->value, "trap")) __builtin_trap();
    if (sluice_bytes_eq_str(in->value, "state")) {
        sluice_bytes v;
        if (sluice_state_get("any", in->key, &v) < 0)
            return sluice_reject(out, sluice_last_error()->code, sluice_last_error()->message);
        return sluice_aggregate_bytes(out, agg);
    }
    double n, sum = 0;
    int64_t count = 0;
    if (!sluice_json_number(in->value, "n", &n)) return sluice_rejectf(out, "bad-n", "no numeric `n`");
    sluice_json_number(agg, "n", &sum);
    sluice_json_int(agg, "count", &count);
    sluice_log(SLUICE_DEBUG, "probe-aggregator: %.*s += %g", (int)in->key.len,
               (const char *)in->key.data, n);
    return sluice_aggregatef(out, "{\"n\":%g,\"count\":%lld}", sum + n, (long long)count + 1);
}

static sluice_status merge(sluice_bytes key, sluice_bytes a, sluice_bytes b, sluice_emitter *out) {
    if (sluice_bytes_is_null(key)) return sluice_reject(out, "no-key", "merge without a key");
    double na = 0, nb = 0;
    int64_t ca = 0, cb = 0;
    sluice_json_number(a, "n", &na);
    sluice_json_number(b, "n", &nb);
    sluice_json_int(a, "count", &ca);
    sluice_json_int(b, "count", &cb);
    return sluice_aggregatef(out, "{\"n\":%g,\"count\":%lld,\"key\":%s}", na + nb,
                             (long long)(ca + cb), sluice_json_quote(sluice_bytes_cstr(key)));
}

SLUICE_AGGREGATOR(init, initial, add, merge)
