/*
 * Spend per shopping session, in C: purchases (key = customer, value =
 * {"amount": 12.5, "at": "..."}) in, one summary per session out:
 * {"purchases": n, "total": x, "largest": y}. The pipeline's session
 * window decides which purchases form a session and merges two sessions
 * when a late purchase bridges them; this aggregator says how a purchase
 * changes a summary and how two summaries combine. A purchase without a
 * numeric amount is rejected (`bad-amount`).
 */
#include "sluice.h"

typedef struct summary {
    int64_t purchases;
    double total;
    double largest;
} summary;

static summary read_summary(sluice_bytes json) {
    summary s = {0, 0, 0};
    sluice_json_int(json, "purchases", &s.purchases);
    sluice_json_number(json, "total", &s.total);
    sluice_json_number(json, "largest", &s.largest);
    return s;
}

static sluice_status write_summary(sluice_emitter *out, summary s) {
    return sluice_aggregatef(out, "{\"purchases\":%lld,\"total\":%g,\"largest\":%g}",
                             (long long)s.purchases, s.total, s.largest);
}

static sluice_status initial(sluice_bytes customer, sluice_emitter *out) {
    (void)customer;
    return write_summary(out, (summary){0, 0, 0});
}

static sluice_status add(sluice_bytes agg, const sluice_record *purchase, sluice_emitter *out) {
    double amount;
    if (!sluice_json_number(purchase->value, "amount", &amount))
        return sluice_reject(out, "bad-amount", "a purchase has a numeric `amount`");
    summary s = read_summary(agg);
    s.purchases += 1;
    s.total += amount;
    if (s.purchases == 1 || amount > s.largest) s.largest = amount;
    return write_summary(out, s);
}

static sluice_status merge(sluice_bytes customer, sluice_bytes a, sluice_bytes b,
                           sluice_emitter *out) {
    (void)customer;
    summary x = read_summary(a), y = read_summary(b);
    summary m = {x.purchases + y.purchases, x.total + y.total,
                 y.purchases && (!x.purchases || y.largest > x.largest) ? y.largest : x.largest};
    return write_summary(out, m);
}

SLUICE_AGGREGATOR(NULL, initial, add, merge)
