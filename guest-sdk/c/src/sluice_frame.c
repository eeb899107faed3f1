/*
 * The call-batch frame (wit/FRAME.md): records packed back to back, all
 * integers little-endian, `bytes` = u32 length + bytes, 0xFFFFFFFF = null.
 * Read in place; written into one growing buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "sluice_internal.h"

/* ------------------------------------------------------------ reading */

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static bool take(sluice_frame_reader *r, size_t n, const uint8_t **out, sluice_frame_error *err) {
    if (n > r->len - r->pos) {
        err->kind = SLUICE_FRAME_TRUNCATED;
        err->at = r->pos;
        err->value = 0;
        return false;
    }
    *out = r->buf + r->pos;
    r->pos += n;
    return true;
}

static bool read_u32(sluice_frame_reader *r, uint32_t *v, sluice_frame_error *err) {
    const uint8_t *p;
    if (!take(r, 4, &p, err)) return false;
    *v = get_u32(p);
    return true;
}

static bool read_bytes(sluice_frame_reader *r, sluice_bytes *b, sluice_frame_error *err) {
    uint32_t n;
    const uint8_t *p;
    if (!read_u32(r, &n, err)) return false;
    if (n == SLUICE_FRAME_NULL) {
        *b = SLUICE_NULL;
        return true;
    }
    if (!take(r, n, &p, err)) return false;
    *b = sluice_bytes_of(p, n);
    return true;
}

static bool read_string(sluice_frame_reader *r, sluice_bytes *s, sluice_frame_error *err) {
    size_t at = r->pos;
    if (!read_bytes(r, s, err)) return false;
    if (sluice_bytes_is_null(*s)) {
        /* A string is never null; the Rust reader takes it as empty. */
        *s = sluice_bytes_of(NULL, 0);
    }
    if (!sluice_utf8_valid(s->data, s->len)) {
        err->kind = SLUICE_FRAME_UTF8;
        err->at = at;
        err->value = 0;
        return false;
    }
    return true;
}

bool sluice_frame_open(sluice_frame_reader *r, const uint8_t *buf, size_t len, uint32_t *count,
                       sluice_frame_error *err) {
    const uint8_t *p;
    r->buf = buf;
    r->len = buf ? len : 0;
    r->pos = 0;
    if (!take(r, 1, &p, err)) return false;
    if (*p != SLUICE_FRAME_VERSION) {
        err->kind = SLUICE_FRAME_VERSION_ERR;
        err->at = 0;
        err->value = *p;
        return false;
    }
    return read_u32(r, count, err);
}

bool sluice_frame_read_record(sluice_frame_reader *r, sluice_frame_record *rec,
                              sluice_frame_error *err) {
    const uint8_t *p;
    if (!take(r, 9, &p, err)) return false;
    if (p[8] & ~SLUICE_FLAG_TIMESTAMP) {
        /* Reserved flag bits are a protocol error, as in the Rust reader. */
        err->kind = SLUICE_FRAME_FLAGS_ERR;
        err->at = r->pos - 1;
        err->value = p[8];
        return false;
    }
    rec->timestamp = (int64_t)get_u64(p);
    rec->has_timestamp = (p[8] & SLUICE_FLAG_TIMESTAMP) != 0;
    if (!rec->has_timestamp) rec->timestamp = 0;
    if (!read_bytes(r, &rec->key, err)) return false;
    if (!read_bytes(r, &rec->value, err)) return false;
    if (!read_u32(r, &rec->header_count, err)) return false;
    size_t start = r->pos;
    for (uint32_t i = 0; i < rec->header_count; i++) {
        sluice_bytes name, value;
        if (!read_string(r, &name, err)) return false;
        if (!read_bytes(r, &value, err)) return false;
    }
    rec->header_bytes = r->buf + start;
    rec->header_len = r->pos - start;
    return true;
}

void sluice_frame_next_header(const uint8_t **p, sluice_header *h) {
    const uint8_t *q = *p;
    uint32_t n = get_u32(q);
    q += 4;
    if (n == SLUICE_FRAME_NULL) n = 0;
    h->name = (const char *)q;
    h->name_len = n;
    q += n;
    n = get_u32(q);
    q += 4;
    if (n == SLUICE_FRAME_NULL) {
        h->value = SLUICE_NULL;
    } else {
        h->value = sluice_bytes_of(q, n);
        q += n;
    }
    *p = q;
}

bool sluice_frame_read_status(sluice_frame_reader *r, sluice_frame_status *st,
                              sluice_frame_error *err) {
    const uint8_t *p;
    size_t at = r->pos;
    if (!take(r, 1, &p, err)) return false;
    st->kind = *p;
    if (*p == SLUICE_STATUS_OK) return read_u32(r, &st->count, err);
    if (*p == SLUICE_STATUS_REJECTED) {
        sluice_bytes code, message;
        if (!read_string(r, &code, err) || !read_string(r, &message, err)) return false;
        st->count = 0;
        st->code = (const char *)code.data;
        st->code_len = code.len;
        st->message = (const char *)message.data;
        st->message_len = message.len;
        return true;
    }
    err->kind = SLUICE_FRAME_STATUS_ERR;
    err->at = at;
    err->value = *p;
    return false;
}

bool sluice_frame_at_end(const sluice_frame_reader *r, sluice_frame_error *err) {
    if (r->pos == r->len) return true;
    err->kind = SLUICE_FRAME_TRAILING;
    err->at = r->pos;
    err->value = r->len - r->pos;
    return false;
}

static char frame_error_text[128];

bool sluice_bad_frame(const sluice_frame_error *fe, sluice_error *err) {
    sluice_frame_error_message(fe, frame_error_text, sizeof frame_error_text);
    err->code = "bad-frame";
    err->message = frame_error_text;
    return false;
}

void sluice_frame_error_message(const sluice_frame_error *e, char *buf, size_t cap) {
    switch (e->kind) {
    case SLUICE_FRAME_TRUNCATED:
        sluice_fmt(buf, cap, "frame truncated at byte %zu", e->at);
        break;
    case SLUICE_FRAME_VERSION_ERR:
        sluice_fmt(buf, cap, "frame version %zu is not supported (expected %d)", e->value,
                   SLUICE_FRAME_VERSION);
        break;
    case SLUICE_FRAME_UTF8:
        sluice_fmt(buf, cap, "string at byte %zu is not valid UTF-8", e->at);
        break;
    case SLUICE_FRAME_STATUS_ERR:
        sluice_fmt(buf, cap, "unknown record status %zu", e->value);
        break;
    case SLUICE_FRAME_TRAILING:
        sluice_fmt(buf, cap, "%zu trailing bytes at byte %zu after the last record", e->value,
                   e->at);
        break;
    case SLUICE_FRAME_FLAGS_ERR:
        sluice_fmt(buf, cap,
                   "record flags 0x%02zx at byte %zu set reserved bits (only bit 0, the timestamp, "
                   "is defined)",
                   e->value, e->at);
        break;
    default:
        sluice_fmt(buf, cap, "malformed frame");
        break;
    }
}

/* ------------------------------------------------------------ writing */

static void reserve(sluice_frame_writer *w, size_t more) {
    if (more <= w->cap - w->len) return;
    size_t need = w->len + more;
    if (need < w->len) __builtin_trap(); /* overflow */
    size_t cap = w->cap ? w->cap : 64;
    while (cap < need) {
        size_t next = cap * 2;
        if (next < cap) {
            next = need;
        }
        cap = next;
    }
    uint8_t *buf = realloc(w->buf, cap);
    if (!buf) __builtin_trap(); /* out of memory: a trap, like a Rust guest's */
    w->buf = buf;
    w->cap = cap;
}

static void put_u8(sluice_frame_writer *w, uint8_t v) {
    reserve(w, 1);
    w->buf[w->len++] = v;
}

static void set_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_u32(sluice_frame_writer *w, uint32_t v) {
    reserve(w, 4);
    set_u32(w->buf + w->len, v);
    w->len += 4;
}

static void put_bytes(sluice_frame_writer *w, const void *data, size_t len) {
    if (!data) {
        put_u32(w, SLUICE_FRAME_NULL);
        return;
    }
    if (len >= SLUICE_FRAME_NULL) __builtin_trap(); /* no field is 4 GiB */
    reserve(w, 4 + len);
    set_u32(w->buf + w->len, (uint32_t)len);
    if (len) memcpy(w->buf + w->len + 4, data, len);
    w->len += 4 + len;
}

void sluice_frame_writer_init(sluice_frame_writer *w, uint32_t count, size_t capacity) {
    w->buf = NULL;
    w->len = 0;
    w->cap = 0;
    w->group_open = false;
    w->group_n = 0;
    w->group_at = 0;
    reserve(w, capacity < 5 ? 5 : capacity);
    put_u8(w, SLUICE_FRAME_VERSION);
    put_u32(w, count);
}

static void close_group(sluice_frame_writer *w) {
    if (w->group_open) {
        set_u32(w->buf + w->group_at, w->group_n);
        w->group_open = false;
    }
}

void sluice_frame_begin_ok(sluice_frame_writer *w) {
    close_group(w);
    put_u8(w, SLUICE_STATUS_OK);
    w->group_at = w->len;
    put_u32(w, 0);
    w->group_open = true;
    w->group_n = 0;
}

void sluice_frame_abandon_ok(sluice_frame_writer *w) {
    if (w->group_open) {
        w->len = w->group_at - 1;
        w->group_open = false;
    }
}

void sluice_frame_rejected(sluice_frame_writer *w, const char *code, size_t code_len,
                           const char *message, size_t message_len) {
    close_group(w);
    put_u8(w, SLUICE_STATUS_REJECTED);
    put_bytes(w, code ? code : "", code ? code_len : 0);
    put_bytes(w, message ? message : "", message ? message_len : 0);
}

void sluice_frame_write_record(sluice_frame_writer *w, const sluice_record *rec) {
    if (w->group_open) w->group_n++;
    reserve(w, 9);
    uint64_t ts = rec->has_timestamp ? (uint64_t)rec->timestamp : 0;
    set_u32(w->buf + w->len, (uint32_t)ts);
    set_u32(w->buf + w->len + 4, (uint32_t)(ts >> 32));
    w->buf[w->len + 8] = rec->has_timestamp ? SLUICE_FLAG_TIMESTAMP : 0;
    w->len += 9;
    put_bytes(w, rec->key.data, rec->key.len);
    put_bytes(w, rec->value.data, rec->value.len);
    if (rec->header_count >= SLUICE_FRAME_NULL) __builtin_trap();
    put_u32(w, (uint32_t)rec->header_count);
    for (size_t i = 0; i < rec->header_count; i++) {
        const sluice_header *h = &rec->headers[i];
        put_bytes(w, h->name ? h->name : "", h->name ? h->name_len : 0);
        put_bytes(w, h->value.data, h->value.len);
    }
}

uint8_t *sluice_frame_finish(sluice_frame_writer *w, size_t *len) {
    close_group(w);
    uint8_t *buf = w->buf;
    *len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return buf;
}

void sluice_frame_writer_free(sluice_frame_writer *w) {
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
    w->group_open = false;
}

/* ------------------------------------------------------------ UTF-8 */

/* Length of the valid UTF-8 sequence at s[0..len), or 0 when invalid (the
 * same rules as Rust's str::from_utf8: no overlongs, no surrogates, nothing
 * above U+10FFFF). */
static size_t utf8_seq(const uint8_t *s, size_t len) {
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (len < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

bool sluice_utf8_valid(const uint8_t *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_seq(s + i, len - i);
        if (!n) return false;
        i += n;
    }
    return true;
}

char *sluice_utf8_sanitize(const char *s, size_t len, size_t *out_len) {
    char *out = sluice_alloc(len + 1);
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq(u + i, len - i);
        if (!n) {
            out[i++] = '?';
            continue;
        }
        memcpy(out + i, s + i, n);
        i += n;
    }
    out[len] = 0;
    if (out_len) *out_len = len;
    return out;
}
