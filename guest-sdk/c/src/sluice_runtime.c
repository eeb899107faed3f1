/*
 * The processor runtime: the per-call arena, records and headers, the
 * emitter, config, formatting, logging and state wrappers, and the loop
 * that runs a processor over a call batch.
 */
#include <stdlib.h>
#include <string.h>

#include "sluice_internal.h"

/* ------------------------------------------------------------ arena */

typedef struct chunk {
    struct chunk *next;
    size_t cap;
    size_t used;
    /* data follows, 16-byte aligned */
} chunk;

#define CHUNK_HEADER ((sizeof(chunk) + 15) & ~(size_t)15)
#define CHUNK_SIZE ((size_t)16 * 1024)

static chunk *arena_head; /* the chunk being filled; older ones follow */

void *sluice_alloc(size_t size) {
    size = (size + 15) & ~(size_t)15;
    if (size == 0) size = 16;
    chunk *c = arena_head;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > CHUNK_SIZE ? size : CHUNK_SIZE;
        if (cap + CHUNK_HEADER < cap) __builtin_trap();
        chunk *n = malloc(CHUNK_HEADER + cap);
        if (!n) __builtin_trap(); /* out of memory: a trap */
        n->cap = cap;
        n->used = 0;
        if (c && size > CHUNK_SIZE) {
            /* A big block: keep filling the current chunk afterwards. */
            n->next = c->next;
            c->next = n;
            n->used = size;
            return (uint8_t *)n + CHUNK_HEADER;
        }
        n->next = c;
        arena_head = c = n;
    }
    void *p = (uint8_t *)c + CHUNK_HEADER + c->used;
    c->used += size;
    return p;
}

void sluice_arena_reset(void) {
    /* Keep one standard chunk for the next call; free the rest. */
    chunk *keep = NULL;
    chunk *c = arena_head;
    while (c) {
        chunk *next = c->next;
        if (!keep && c->cap == CHUNK_SIZE) {
            keep = c;
        } else {
            free(c);
        }
        c = next;
    }
    if (keep) {
        keep->next = NULL;
        keep->used = 0;
    }
    arena_head = keep;
}

/* ------------------------------------------------------------ bytes */

sluice_bytes sluice_bytes_str(const char *s) {
    return s ? sluice_bytes_of(s, strlen(s)) : SLUICE_NULL;
}

bool sluice_bytes_eq(sluice_bytes a, sluice_bytes b) {
    if (!a.data || !b.data) return !a.data && !b.data;
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

bool sluice_bytes_eq_str(sluice_bytes b, const char *s) {
    return b.data && s && sluice_bytes_eq(b, sluice_bytes_str(s));
}

sluice_bytes sluice_bytes_copy(sluice_bytes b) {
    if (!b.data) return b;
    uint8_t *p = sluice_alloc(b.len);
    if (b.len) memcpy(p, b.data, b.len);
    return sluice_bytes_of(p, b.len);
}

char *sluice_bytes_cstr(sluice_bytes b) {
    if (!b.data) return NULL;
    char *p = sluice_alloc(b.len + 1);
    if (b.len) memcpy(p, b.data, b.len);
    p[b.len] = 0;
    return p;
}

/* ------------------------------------------------------------ records */

sluice_record sluice_record_new(sluice_bytes key, sluice_bytes value) {
    sluice_record r;
    memset(&r, 0, sizeof r);
    r.key = key;
    r.value = value;
    return r;
}

static bool name_is(const char *name, size_t name_len, const char *s, size_t s_len) {
    return name_len == s_len && (s_len == 0 || memcmp(name, s, s_len) == 0);
}

bool sluice_header_is(const sluice_header *h, const char *name) {
    return h && name && name_is(h->name, h->name_len, name, strlen(name));
}

const sluice_header *sluice_record_header(const sluice_record *r, const char *name) {
    if (!r || !name) return NULL;
    size_t n = strlen(name);
    for (size_t i = r->header_count; i-- > 0;)
        if (name_is(r->headers[i].name, r->headers[i].name_len, name, n)) return &r->headers[i];
    return NULL;
}

sluice_bytes sluice_record_header_value(const sluice_record *r, const char *name) {
    const sluice_header *h = sluice_record_header(r, name);
    return h ? h->value : SLUICE_NULL;
}

/* A copy of the record's headers in the arena, with room for `extra` more. */
static sluice_header *own_headers(sluice_record *r, size_t extra) {
    sluice_header *hs = sluice_alloc((r->header_count + extra) * sizeof(sluice_header));
    if (r->header_count) memcpy(hs, r->headers, r->header_count * sizeof(sluice_header));
    r->headers = hs;
    return hs;
}

static const char *arena_name(const char *name, size_t *len) {
    *len = strlen(name);
    char *copy = sluice_alloc(*len + 1);
    memcpy(copy, name, *len + 1);
    return copy;
}

void sluice_record_add_header(sluice_record *r, const char *name, sluice_bytes value) {
    if (!r || !name) return;
    sluice_header *hs = own_headers(r, 1);
    sluice_header *h = &hs[r->header_count++];
    h->name = arena_name(name, &h->name_len);
    h->value = value;
}

void sluice_record_set_header(sluice_record *r, const char *name, sluice_bytes value) {
    if (!r || !name) return;
    size_t n = strlen(name);
    bool found = false;
    for (size_t i = 0; i < r->header_count && !found; i++)
        found = name_is(r->headers[i].name, r->headers[i].name_len, name, n);
    if (!found) {
        sluice_record_add_header(r, name, value);
        return;
    }
    sluice_header *hs = own_headers(r, 0);
    for (size_t i = 0; i < r->header_count; i++)
        if (name_is(hs[i].name, hs[i].name_len, name, n)) hs[i].value = value;
}

size_t sluice_record_remove_header(sluice_record *r, const char *name) {
    if (!r || !name) return 0;
    size_t n = strlen(name), removed = 0;
    for (size_t i = 0; i < r->header_count; i++)
        removed += name_is(r->headers[i].name, r->headers[i].name_len, name, n);
    if (!removed) return 0;
    sluice_header *hs = sluice_alloc((r->header_count - removed + 1) * sizeof(sluice_header));
    size_t k = 0;
    for (size_t i = 0; i < r->header_count; i++)
        if (!name_is(r->headers[i].name, r->headers[i].name_len, name, n)) hs[k++] = r->headers[i];
    r->headers = hs;
    r->header_count = k;
    return removed;
}

/* ------------------------------------------------------------ emitter */

void sluice_emit(sluice_emitter *out, const sluice_record *record) {
    if (!out || !record || out->rejected) return;
    if (out->aggregator) {
        sluice_reject(out, "not-a-processor",
                      "sluice_emit() is for processors; an aggregator sets its aggregate with "
                      "sluice_aggregate()");
        return;
    }
    for (size_t i = 0; i < record->header_count; i++) {
        const sluice_header *h = &record->headers[i];
        if (!sluice_utf8_valid((const uint8_t *)h->name, h->name ? h->name_len : 0)) {
            sluice_rejectf(out, "bad-header-name", "output header %zu: the name is not valid UTF-8",
                           i);
            return;
        }
    }
    sluice_frame_write_record(out->writer, record);
}

sluice_status sluice_reject(sluice_emitter *out, const char *code, const char *message) {
    if (!out) return SLUICE_REJECTED;
    if (out->rejected) return SLUICE_REJECTED; /* the first reason wins */
    if (!code || !*code) code = "rejected";
    if (!message) message = "";
    out->rejected = true;
    out->code = sluice_utf8_sanitize(code, strlen(code), &out->code_len);
    out->message = sluice_utf8_sanitize(message, strlen(message), &out->message_len);
    return SLUICE_REJECTED;
}

char *sluice_vafmt(size_t *len, const char *fmt, va_list ap) {
    /* Formatted once into a stack buffer; a second time only when the text
     * is longer (%g is not free). */
    char small[256];
    va_list ap2;
    va_copy(ap2, ap);
    size_t n = sluice_vfmt(small, sizeof small, fmt, ap);
    char *s = sluice_alloc(n + 1);
    if (n < sizeof small) {
        memcpy(s, small, n + 1);
    } else {
        sluice_vfmt(s, n + 1, fmt, ap2);
    }
    va_end(ap2);
    if (len) *len = n;
    return s;
}

sluice_status sluice_rejectf(sluice_emitter *out, const char *code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *msg = sluice_vafmt(NULL, fmt, ap);
    va_end(ap);
    return sluice_reject(out, code, msg);
}

/* ------------------------------------------------------------ config */

typedef struct config_entry {
    char *key;
    char *value;
} config_entry;

struct sluice_config {
    config_entry *entries;
    size_t count;
    struct sluice_config *retired; /* earlier tables, kept (see init) */
};

static sluice_config current_config;
static bool initialized;
/* Set by sluice_init_error during init. */
static sluice_error init_error;
static bool init_error_set;

const char *sluice_config_get(const sluice_config *c, const char *key) {
    if (!c || !key) return NULL;
    for (size_t i = c->count; i-- > 0;)
        if (strcmp(c->entries[i].key, key) == 0) return c->entries[i].value;
    return NULL;
}

const char *sluice_config_get_or(const sluice_config *c, const char *key, const char *dflt) {
    const char *v = sluice_config_get(c, key);
    return v ? v : dflt;
}

bool sluice_config_int(const sluice_config *c, const char *key, int64_t dflt, int64_t *out) {
    const char *v = sluice_config_get(c, key);
    *out = dflt;
    if (!v) return true;
    const char *p = v;
    bool neg = false;
    if (*p == '-' || *p == '+') neg = *p++ == '-';
    if (!*p) return false;
    uint64_t acc = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        unsigned d = (unsigned)(*p - '0');
        if (acc > (limit - d) / 10) return false;
        acc = acc * 10 + d;
    }
    *out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return true;
}

size_t sluice_config_count(const sluice_config *c) { return c ? c->count : 0; }

void sluice_config_entry(const sluice_config *c, size_t i, const char **key, const char **value) {
    if (!c || i >= c->count) {
        *key = *value = NULL;
        return;
    }
    *key = c->entries[i].key;
    *value = c->entries[i].value;
}

const sluice_config *sluice_config_current(void) { return &current_config; }

sluice_status sluice_init_error(const char *code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t n;
    char *msg = sluice_vafmt(&n, fmt, ap);
    va_end(ap);
    if (!code || !*code) code = "init-failed";
    init_error.code = sluice_utf8_sanitize(code, strlen(code), NULL);
    init_error.message = sluice_utf8_sanitize(msg, n, NULL);
    init_error_set = true;
    return SLUICE_REJECTED;
}

static char *heap_str(const char *s, size_t len) {
    char *p = malloc(len + 1);
    if (!p) __builtin_trap();
    if (len) memcpy(p, s, len);
    p[len] = 0;
    return p;
}

static void free_entries(config_entry *entries, size_t count) {
    for (size_t i = 0; i < count; i++) {
        free(entries[i].key);
        free(entries[i].value);
    }
    free(entries);
}

static void free_config(void) {
    free_entries(current_config.entries, current_config.count);
    while (current_config.retired) {
        sluice_config *old = current_config.retired;
        current_config.retired = old->retired;
        free_entries(old->entries, old->count);
        free(old);
    }
    current_config.entries = NULL;
    current_config.count = 0;
}

void sluice_runtime_reset(void) {
    free_config();
    initialized = false;
    init_error_set = false;
    sluice_arena_reset();
}

/* Runs `fn` (NULL: accept) with the current config. */
static bool run_init(sluice_init_fn fn, sluice_error *err) {
    init_error_set = false;
    sluice_status st = fn ? fn(&current_config) : SLUICE_OK;
    if (st == SLUICE_OK && !init_error_set) {
        initialized = true;
        return true;
    }
    if (init_error_set) {
        *err = init_error;
    } else {
        err->code = "init-failed";
        err->message = "the plugin's init function failed";
    }
    return false;
}

bool sluice_runtime_ensure_init(sluice_init_fn fn, sluice_error *err) {
    return initialized || run_init(fn, err);
}

bool sluice_runtime_init(const sluice_kv_in *config, size_t n, sluice_error *err) {
    return sluice_runtime_init_with(config, n, sluice_processor_init_entry, err);
}

bool sluice_runtime_init_with(const sluice_kv_in *config, size_t n, sluice_init_fn fn,
                              sluice_error *err) {
    /* The host calls init once per instance. Should it come again, the old
     * table stays allocated: the plugin may still hold its strings. */
    if (current_config.entries) {
        sluice_config *old = malloc(sizeof *old);
        if (!old) __builtin_trap();
        *old = current_config;
        current_config.retired = old;
    }
    current_config.entries = NULL;
    current_config.count = 0;
    initialized = false;
    if (n) {
        current_config.entries = malloc(n * sizeof(config_entry));
        if (!current_config.entries) __builtin_trap();
    }
    for (size_t i = 0; i < n; i++) {
        current_config.entries[i].key = heap_str(config[i].key, config[i].key_len);
        current_config.entries[i].value = heap_str(config[i].value, config[i].value_len);
    }
    current_config.count = n;
    return run_init(fn, err);
}

/* A plugin without SLUICE_PROCESSOR_INIT accepts any config. */
__attribute__((weak)) sluice_status sluice_processor_init_entry(const sluice_config *config) {
    (void)config;
    return SLUICE_OK;
}

/* ------------------------------------------------------------ process */

/* Headers of the record being processed, decoded into a reused array. */
static sluice_header *header_scratch;
static size_t header_scratch_cap;

static const sluice_header *decode_headers(const sluice_frame_record *fr) {
    if (fr->header_count == 0) return NULL;
    if (fr->header_count > header_scratch_cap) {
        size_t cap = header_scratch_cap ? header_scratch_cap : 8;
        while (cap < fr->header_count) cap *= 2;
        sluice_header *hs = realloc(header_scratch, cap * sizeof(sluice_header));
        if (!hs) __builtin_trap();
        header_scratch = hs;
        header_scratch_cap = cap;
    }
    const uint8_t *p = fr->header_bytes;
    for (uint32_t i = 0; i < fr->header_count; i++) sluice_frame_next_header(&p, &header_scratch[i]);
    return header_scratch;
}

bool sluice_runtime_process(sluice_process_fn fn, const uint8_t *batch, size_t len,
                            uint8_t **out, size_t *out_len, sluice_error *err) {
    *out = NULL;
    *out_len = 0;
    if (!sluice_runtime_ensure_init(sluice_processor_init_entry, err)) return false;

    /* Check the whole frame first, so that a malformed one fails the call
     * before the processor has seen (and acted on) any of its records. */
    sluice_frame_reader r;
    sluice_frame_error fe;
    sluice_frame_record fr;
    uint32_t count;
    if (!sluice_frame_open(&r, batch, len, &count, &fe)) return sluice_bad_frame(&fe, err);
    for (uint32_t i = 0; i < count; i++)
        if (!sluice_frame_read_record(&r, &fr, &fe)) return sluice_bad_frame(&fe, err);
    if (!sluice_frame_at_end(&r, &fe)) return sluice_bad_frame(&fe, err);

    /* Outputs are usually about as large as inputs. */
    sluice_frame_writer w;
    sluice_frame_writer_init(&w, count, len + (size_t)count * 8 + 16);
    sluice_frame_open(&r, batch, len, &count, &fe);
    for (uint32_t i = 0; i < count; i++) {
        sluice_frame_read_record(&r, &fr, &fe);
        sluice_record rec;
        rec.key = fr.key;
        rec.value = fr.value;
        rec.timestamp = fr.timestamp;
        rec.has_timestamp = fr.has_timestamp;
        rec.header_count = fr.header_count;
        rec.headers = decode_headers(&fr);
        sluice_emitter em;
        memset(&em, 0, sizeof em);
        em.writer = &w;
        sluice_frame_begin_ok(&w);
        sluice_status st = fn(&rec, &em);
        if (st != SLUICE_OK && !em.rejected) sluice_reject(&em, "rejected", "rejected by the plugin");
        if (em.rejected) {
            sluice_frame_abandon_ok(&w);
            sluice_frame_rejected(&w, em.code, em.code_len, em.message, em.message_len);
        }
    }
    *out = sluice_frame_finish(&w, out_len);
    return true;
}

/* ------------------------------------------------------------ formatting */

typedef struct fmt_out {
    char *buf;
    size_t cap;
    size_t len;
} fmt_out;

static void out_c(fmt_out *o, char c) {
    if (o->len + 1 < o->cap) o->buf[o->len] = c;
    o->len++;
}

static void out_pad(fmt_out *o, char c, int n) {
    while (n-- > 0) out_c(o, c);
}

static void out_s(fmt_out *o, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) out_c(o, s[i]);
}

size_t sluice_vfmt(char *buf, size_t cap, const char *fmt, va_list ap) {
    fmt_out o = {buf, buf ? cap : 0, 0};
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            out_c(&o, *p);
            continue;
        }
        p++;
        bool left = false, zero = false;
        for (;; p++) {
            if (*p == '-') left = true;
            else if (*p == '0') zero = true;
            else if (*p == '+' || *p == ' ' || *p == '#') continue;
            else break;
        }
        int width = 0, prec = -1;
        if (*p == '*') {
            width = va_arg(ap, int);
            if (width < 0) {
                left = true;
                width = -width;
            }
            p++;
        } else {
            while (*p >= '0' && *p <= '9') width = width * 10 + (*p++ - '0');
        }
        if (*p == '.') {
            p++;
            prec = 0;
            if (*p == '*') {
                prec = va_arg(ap, int);
                p++;
            } else {
                while (*p >= '0' && *p <= '9') prec = prec * 10 + (*p++ - '0');
            }
        }
        int size = 0; /* -2 hh, -1 h, 0 int, 1 long, 2 long long, 3 size_t, 4 intmax, 5 ptrdiff */
        if (*p == 'h') {
            size = -1;
            if (*++p == 'h') {
                size = -2;
                p++;
            }
        } else if (*p == 'l') {
            size = 1;
            if (*++p == 'l') {
                size = 2;
                p++;
            }
        } else if (*p == 'z') {
            size = 3;
            p++;
        } else if (*p == 'j') {
            size = 4;
            p++;
        } else if (*p == 't') {
            size = 5;
            p++;
        }
        char tmp[32];
        const char *s = tmp;
        size_t n = 0;
        bool neg = false, numeric = *p != 's' && *p != 'c';
        switch (*p) {
        case '%':
            out_c(&o, '%');
            continue;
        case 'c':
            tmp[0] = (char)va_arg(ap, int);
            n = 1;
            break;
        case 's':
            s = va_arg(ap, const char *);
            if (!s) s = "(null)";
            if (prec >= 0) {
                while (n < (size_t)prec && s[n]) n++;
            } else {
                n = strlen(s);
            }
            break;
        case 'd':
        case 'i':
        case 'u':
        case 'x':
        case 'X':
        case 'p': {
            uint64_t v;
            bool is_signed = *p == 'd' || *p == 'i';
            unsigned base = (*p == 'x' || *p == 'X' || *p == 'p') ? 16 : 10;
            const char *digits = *p == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
            if (*p == 'p') {
                v = (uint64_t)(uintptr_t)va_arg(ap, void *);
            } else if (is_signed) {
                int64_t sv;
                switch (size) {
                case 1: sv = va_arg(ap, long); break;
                case 2: sv = va_arg(ap, long long); break;
                case 3: sv = (int64_t)va_arg(ap, size_t); break;
                case 4: sv = va_arg(ap, intmax_t); break;
                case 5: sv = va_arg(ap, ptrdiff_t); break;
                case -1: sv = (short)va_arg(ap, int); break;
                case -2: sv = (signed char)va_arg(ap, int); break;
                default: sv = va_arg(ap, int); break;
                }
                neg = sv < 0;
                v = neg ? 0 - (uint64_t)sv : (uint64_t)sv;
            } else {
                switch (size) {
                case 1: v = va_arg(ap, unsigned long); break;
                case 2: v = va_arg(ap, unsigned long long); break;
                case 3: v = va_arg(ap, size_t); break;
                case 4: v = va_arg(ap, uintmax_t); break;
                case 5: v = (uint64_t)va_arg(ap, ptrdiff_t); break;
                case -1: v = (unsigned short)va_arg(ap, unsigned); break;
                case -2: v = (unsigned char)va_arg(ap, unsigned); break;
                default: v = va_arg(ap, unsigned); break;
                }
            }
            char *end = tmp + sizeof tmp, *q = end;
            do {
                *--q = digits[v % base];
                v /= base;
            } while (v);
            if (*p == 'p') {
                *--q = 'x';
                *--q = '0';
            }
            s = q;
            n = (size_t)(end - q);
            break;
        }
        case 'g':
        case 'G': {
            double d = va_arg(ap, double);
            n = sluice_format_double(d, prec, tmp);
            if (tmp[0] == '-') {
                neg = true;
                s = tmp + 1;
                n--;
            }
            numeric = d == d && d - d == 0; /* nan and inf pad with spaces */
            break;
        }
        default:
            /* Unknown conversion: write it as it stands. */
            out_c(&o, '%');
            if (!*p) goto done;
            out_c(&o, *p);
            continue;
        }
        int pad = width - (int)n - (neg ? 1 : 0);
        if (!left && !(zero && numeric)) out_pad(&o, ' ', pad);
        if (neg) out_c(&o, '-');
        if (!left && zero && numeric) out_pad(&o, '0', pad);
        out_s(&o, s, n);
        if (left) out_pad(&o, ' ', pad);
    }
done:
    if (o.cap) o.buf[o.len < o.cap ? o.len : o.cap - 1] = 0;
    return o.len;
}

size_t sluice_fmt(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t n = sluice_vfmt(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

char *sluice_afmt(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = sluice_vafmt(NULL, fmt, ap);
    va_end(ap);
    return s;
}

/* ------------------------------------------------------------ logging */

void sluice_log(sluice_level level, const char *fmt, ...) {
    char small[256];
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    size_t n = sluice_vfmt(small, sizeof small, fmt, ap);
    char *msg = small;
    if (n >= sizeof small) {
        msg = sluice_alloc(n + 1);
        sluice_vfmt(msg, n + 1, fmt, ap2);
    }
    va_end(ap2);
    va_end(ap);
    if (level > SLUICE_ERROR) level = SLUICE_ERROR;
    if (!sluice_utf8_valid((const uint8_t *)msg, n)) msg = sluice_utf8_sanitize(msg, n, NULL);
    sluice_host_log(level, msg, n);
}

/* ------------------------------------------------------------ state */

static sluice_error last_error = {"", ""};

const sluice_error *sluice_last_error(void) { return &last_error; }

static const char *store_name(const char *store, size_t *len) {
    if (!store) store = "";
    *len = strlen(store);
    if (sluice_utf8_valid((const uint8_t *)store, *len)) return store;
    return sluice_utf8_sanitize(store, *len, len);
}

static int failed(const sluice_error *e) {
    last_error.code = e->code ? e->code : "";
    last_error.message = e->message ? e->message : "";
    return -1;
}

int sluice_state_get(const char *store, sluice_bytes key, sluice_bytes *value) {
    size_t n;
    const char *s = store_name(store, &n);
    sluice_error e = {NULL, NULL};
    sluice_bytes v = SLUICE_NULL;
    int rc = sluice_host_state_get(s, n, sluice_bytes_is_null(key) ? sluice_bytes_of(NULL, 0) : key,
                                   &v, &e);
    if (rc < 0) return failed(&e);
    if (value) *value = rc ? v : SLUICE_NULL;
    return rc ? 1 : 0;
}

int sluice_state_put(const char *store, sluice_bytes key, sluice_bytes value) {
    size_t n;
    const char *s = store_name(store, &n);
    sluice_error e = {NULL, NULL};
    if (sluice_bytes_is_null(key)) key = sluice_bytes_of(NULL, 0);
    if (sluice_bytes_is_null(value)) value = sluice_bytes_of(NULL, 0);
    return sluice_host_state_put(s, n, key, value, &e) < 0 ? failed(&e) : 0;
}

int sluice_state_delete(const char *store, sluice_bytes key) {
    size_t n;
    const char *s = store_name(store, &n);
    sluice_error e = {NULL, NULL};
    if (sluice_bytes_is_null(key)) key = sluice_bytes_of(NULL, 0);
    return sluice_host_state_delete(s, n, key, &e) < 0 ? failed(&e) : 0;
}

long sluice_state_range(const char *store, sluice_bytes start, sluice_bytes end, uint32_t limit,
                        const sluice_entry **entries) {
    size_t n;
    const char *s = store_name(store, &n);
    sluice_error e = {NULL, NULL};
    const sluice_entry *got = NULL;
    long rc = sluice_host_state_range(s, n, start, end, limit, &got, &e);
    if (rc < 0) return failed(&e);
    if (entries) *entries = got;
    return rc;
}
