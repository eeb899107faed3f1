/*
 * The aggregator runtime: `add` threads each key's aggregate through the
 * records of a call batch, `merge` combines two aggregates, with the same
 * rules as the Rust SDK (guest-sdk/rust/src/aggregate.rs): a rejection
 * leaves the key's aggregate as it was, a stored aggregate that is not JSON
 * rejects the record with `bad-aggregate`, a malformed frame fails the
 * call with `bad-frame`, and without a merge function merging is refused
 * with `merge-unsupported`.
 */
#include <stdlib.h>
#include <string.h>

#include "sluice_internal.h"

/* ------------------------------------------------------------ setting the aggregate */

sluice_status sluice_aggregate_bytes(sluice_emitter *out, sluice_bytes json) {
    if (!out || out->rejected) return SLUICE_OK;
    if (!out->aggregator) {
        return sluice_reject(out, "not-an-aggregator",
                             "sluice_aggregate() is for aggregators; a processor emits records "
                             "with sluice_emit()");
    }
    if (sluice_bytes_is_null(json)) json = sluice_bytes_of("null", 4);
    out->aggregate = sluice_bytes_of(sluice_bytes_cstr(json), json.len);
    out->has_aggregate = true;
    return SLUICE_OK;
}

sluice_status sluice_aggregate(sluice_emitter *out, const char *json) {
    return sluice_aggregate_bytes(out, sluice_bytes_str(json));
}

sluice_status sluice_aggregatef(sluice_emitter *out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t n;
    char *s = sluice_vafmt(&n, fmt, ap);
    va_end(ap);
    if (!out || out->rejected || !out->aggregator) return sluice_aggregate_bytes(out, SLUICE_NULL);
    /* Already in the arena and NUL-terminated: no copy. */
    out->aggregate = sluice_bytes_of(s, n);
    out->has_aggregate = true;
    return SLUICE_OK;
}

/* ------------------------------------------------------------ keys */

/* A key's last accepted aggregate in this call. */
typedef struct slot {
    bool used;
    sluice_bytes key;       /* null for the null key */
    sluice_bytes aggregate; /* null: none yet */
    bool checked;           /* known to be JSON, and NUL-terminated in the arena */
} slot;

typedef struct table {
    slot *slots;
    size_t mask;
} table;

static uint64_t hash_key(sluice_bytes key) {
    if (!key.data) return 0x9E3779B97F4A7C15ull;
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < key.len; i++) {
        h ^= key.data[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void table_init(table *t, size_t keys) {
    size_t cap = 16;
    while (cap < keys * 2) cap *= 2;
    t->slots = sluice_alloc(cap * sizeof(slot));
    memset(t->slots, 0, cap * sizeof(slot));
    t->mask = cap - 1;
}

static slot *table_get(table *t, sluice_bytes key) {
    for (size_t i = hash_key(key) & t->mask;; i = (i + 1) & t->mask) {
        slot *s = &t->slots[i];
        if (!s->used) {
            s->used = true;
            s->key = key;
            s->aggregate = SLUICE_NULL;
            s->checked = false;
            return s;
        }
        if (sluice_bytes_eq(s->key, key)) return s;
    }
}

/* ------------------------------------------------------------ add */

/* Reads a whole input frame, so that a malformed one fails the call before
 * the plugin sees any record. */
static bool check_frame(const uint8_t *buf, size_t len, uint32_t *count, sluice_error *err) {
    sluice_frame_reader r;
    sluice_frame_error fe;
    sluice_frame_record fr;
    if (!sluice_frame_open(&r, buf, len, count, &fe)) return sluice_bad_frame(&fe, err);
    for (uint32_t i = 0; i < *count; i++)
        if (!sluice_frame_read_record(&r, &fr, &fe)) return sluice_bad_frame(&fe, err);
    if (!sluice_frame_at_end(&r, &fe)) return sluice_bad_frame(&fe, err);
    return true;
}

static void begin(sluice_emitter *em) {
    memset(em, 0, sizeof *em);
    em->aggregator = true;
}

/* After one of the plugin's functions: the result's checks. `what` names
 * the function in messages. */
static void finish(sluice_emitter *em, sluice_status st, const char *what) {
    if (st != SLUICE_OK && !em->rejected) sluice_reject(em, "rejected", "rejected by the plugin");
    if (em->rejected) return;
    if (!em->has_aggregate) {
        sluice_rejectf(em, "no-aggregate",
                       "%s() returned SLUICE_OK without setting the aggregate: call "
                       "sluice_aggregate() or sluice_aggregatef()",
                       what);
        return;
    }
    const char *why;
    if (!sluice_json_check(em->aggregate, &why))
        sluice_rejectf(em, "bad-aggregate", "the aggregate %s() set is not JSON: %s", what, why);
}

bool sluice_aggregator_add(const sluice_aggregator_def *def, const uint8_t *aggregates,
                           size_t aggregates_len, const uint8_t *batch, size_t batch_len,
                           uint8_t **out, size_t *out_len, sluice_error *err) {
    *out = NULL;
    *out_len = 0;
    if (!def->add) {
        err->code = "no-add";
        err->message = "SLUICE_AGGREGATOR was given no add function";
        return false;
    }
    if (!sluice_runtime_ensure_init(def->init, err)) return false;
    uint32_t groups, count;
    if (!check_frame(aggregates, aggregates_len, &groups, err)) return false;
    if (!check_frame(batch, batch_len, &count, err)) return false;

    table keys;
    table_init(&keys, (size_t)groups + count);
    sluice_frame_reader r;
    sluice_frame_error fe;
    sluice_frame_record fr;
    sluice_frame_open(&r, aggregates, aggregates_len, &groups, &fe);
    for (uint32_t i = 0; i < groups; i++) {
        sluice_frame_read_record(&r, &fr, &fe);
        slot *s = table_get(&keys, fr.key);
        s->aggregate = fr.value;
        s->checked = false;
    }

    sluice_frame_writer w;
    sluice_frame_writer_init(&w, count, batch_len + (size_t)count * 16 + 16);
    sluice_frame_open(&r, batch, batch_len, &count, &fe);
    sluice_header *headers = NULL;
    size_t headers_cap = 0;
    for (uint32_t i = 0; i < count; i++) {
        sluice_frame_read_record(&r, &fr, &fe);
        slot *s = table_get(&keys, fr.key);
        sluice_emitter em;
        begin(&em);
        /* The aggregate this record adds to. */
        sluice_bytes current;
        if (sluice_bytes_is_null(s->aggregate)) {
            if (def->initial) {
                sluice_status st = def->initial(fr.key, &em);
                finish(&em, st, "initial");
                current = em.aggregate;
            } else {
                current = sluice_bytes_of("null", 4);
            }
        } else {
            if (!s->checked) {
                const char *why;
                if (!sluice_json_check(s->aggregate, &why)) {
                    sluice_rejectf(&em, "bad-aggregate", "the stored aggregate is not JSON: %s", why);
                } else {
                    s->aggregate = sluice_bytes_of(sluice_bytes_cstr(s->aggregate), s->aggregate.len);
                    s->checked = true;
                }
            }
            current = s->aggregate;
        }
        if (!em.rejected) {
            sluice_record rec;
            rec.key = fr.key;
            rec.value = fr.value;
            rec.timestamp = fr.timestamp;
            rec.has_timestamp = fr.has_timestamp;
            rec.header_count = fr.header_count;
            rec.headers = NULL;
            if (fr.header_count) {
                if (fr.header_count > headers_cap) {
                    headers_cap = fr.header_count;
                    headers = sluice_alloc(headers_cap * sizeof *headers);
                }
                const uint8_t *p = fr.header_bytes;
                for (uint32_t h = 0; h < fr.header_count; h++) sluice_frame_next_header(&p, &headers[h]);
                rec.headers = headers;
            }
            begin(&em);
            sluice_status st = def->add(current, &rec, &em);
            finish(&em, st, "add");
        }
        if (em.rejected) {
            sluice_frame_rejected(&w, em.code, em.code_len, em.message, em.message_len);
            continue;
        }
        sluice_frame_begin_ok(&w);
        sluice_record agg = sluice_record_new(fr.key, em.aggregate);
        sluice_frame_write_record(&w, &agg);
        s->aggregate = em.aggregate;
        s->checked = true;
    }
    *out = sluice_frame_finish(&w, out_len);
    return true;
}

/* ------------------------------------------------------------ merge */

bool sluice_aggregator_merge(const sluice_aggregator_def *def, sluice_bytes key,
                             sluice_bytes a, sluice_bytes b, uint8_t **out, size_t *out_len,
                             sluice_error *err) {
    *out = NULL;
    *out_len = 0;
    if (!sluice_runtime_ensure_init(def->init, err)) return false;
    const char *why;
    if (!sluice_json_check(a, &why)) {
        err->code = "bad-aggregate";
        err->message = sluice_afmt("the first aggregate is not JSON: %s", why);
        return false;
    }
    if (!sluice_json_check(b, &why)) {
        err->code = "bad-aggregate";
        err->message = sluice_afmt("the second aggregate is not JSON: %s", why);
        return false;
    }
    if (!def->merge) {
        err->code = "merge-unsupported";
        err->message = "this aggregator does not implement `merge`";
        return false;
    }
    sluice_bytes ca = sluice_bytes_of(sluice_bytes_cstr(a), a.len);
    sluice_bytes cb = sluice_bytes_of(sluice_bytes_cstr(b), b.len);
    sluice_emitter em;
    begin(&em);
    sluice_status st = def->merge(key, ca, cb, &em);
    finish(&em, st, "merge");
    if (em.rejected) {
        err->code = em.code;
        err->message = em.message;
        return false;
    }
    uint8_t *copy = malloc(em.aggregate.len ? em.aggregate.len : 1);
    if (!copy) __builtin_trap();
    memcpy(copy, em.aggregate.data, em.aggregate.len);
    *out = copy;
    *out_len = em.aggregate.len;
    return true;
}

/* ------------------------------------------------------------ init */

bool sluice_aggregator_init(const sluice_aggregator_def *def, const sluice_kv_in *config,
                            size_t n, sluice_error *err) {
    return sluice_runtime_init_with(config, n, def->init, err);
}
