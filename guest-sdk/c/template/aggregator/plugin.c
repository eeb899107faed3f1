/*
 * {{name}}: a Sluice aggregator. Per key it keeps
 * {"count": <records>, "total": <sum of their `amount`>}. A record whose
 * value is not JSON with a numeric `amount` is rejected (the pipeline's
 * `rejected` policy applies) and leaves the key's aggregate as it was.
 * Build: `sluice plugin build .`   Test: `sluice plugin test .`
 */
#include "sluice.h"

/* Reads an aggregate: JSON text such as {"count":2,"total":19.75}. */
static void read_aggregate(sluice_bytes agg, int64_t *count, double *total) {
    *count = 0;
    *total = 0;
    sluice_json_int(agg, "count", count);
    sluice_json_number(agg, "total", total);
}

/* The aggregate of a key before its first record. */
static sluice_status initial(sluice_bytes key, sluice_emitter *out) {
    (void)key;
    return sluice_aggregate(out, "{\"count\":0,\"total\":0}");
}

/* The key's aggregate after one more record (%g writes a JSON number). */
static sluice_status add(sluice_bytes agg, const sluice_record *in, sluice_emitter *out) {
    double amount, total;
    int64_t count;
    if (!sluice_json_number(in->value, "amount", &amount))
        return sluice_reject(out, "bad-amount", "the value is not JSON with a numeric `amount`");
    read_aggregate(agg, &count, &total);
    return sluice_aggregatef(out, "{\"count\":%lld,\"total\":%g}", (long long)(count + 1),
                             total + amount);
}

/* Two aggregates of one key made one (session windows merge them). */
static sluice_status merge(sluice_bytes key, sluice_bytes a, sluice_bytes b, sluice_emitter *out) {
    int64_t ca, cb;
    double ta, tb;
    (void)key;
    read_aggregate(a, &ca, &ta);
    read_aggregate(b, &cb, &tb);
    return sluice_aggregatef(out, "{\"count\":%lld,\"total\":%g}", (long long)(ca + cb), ta + tb);
}

/* init (for the step's config), initial, add, merge. */
SLUICE_AGGREGATOR(NULL, initial, add, merge)
