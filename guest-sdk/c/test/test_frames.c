/*
 * The golden frame vectors of wit/frames/ (see its README.md), read alike by
 * every SDK's tests. C reads each vector's line-based companion `<name>.txt`
 * instead of its JSON (the Python suite holds every .txt to its .json):
 *
 *   - a valid vector's bytes decode, through the reader, to exactly the lines
 *     of its .txt, with nothing left over;
 *   - the records and statuses of its .txt, written with the writer, give
 *     exactly its bytes;
 *   - a malformed vector (`error input|output`) is refused by the reader.
 *
 * The directory is found from this file's path (the tests run from
 * guest-sdk/c, where they are compiled); SLUICE_FRAMES_DIR overrides it.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sluice_internal.h"

/* ------------------------------------------------------------ text */

typedef struct text {
    char *s;
    size_t len, cap;
} text;

static void text_add(text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = realloc(t->s, t->cap);
        if (!t->s) abort();
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = 0;
}

static void text_str(text *t, const char *s) { text_add(t, s, strlen(s)); }

/* ` -` for null, ` x<hex>` otherwise. */
static void text_bytes(text *t, const uint8_t *data, size_t len, bool null) {
    if (null) {
        text_str(t, " -");
        return;
    }
    text_str(t, " x");
    for (size_t i = 0; i < len; i++) {
        char h[3];
        snprintf(h, sizeof h, "%02x", data[i]);
        text_add(t, h, 2);
    }
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    text t = {0};
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) text_add(&t, buf, n);
    fclose(f);
    if (!t.s) text_add(&t, "", 0);
    if (len) *len = t.len;
    return t.s;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Hex digits (whitespace between them ignored) into a malloc'd buffer;
 * false on anything else or an odd count. */
static bool unhex(const char *s, size_t n, uint8_t **out, size_t *out_len) {
    uint8_t *buf = malloc(n / 2 + 1);
    size_t len = 0;
    int hi = -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r') continue;
        int d = hex_digit(s[i]);
        if (d < 0) {
            free(buf);
            return false;
        }
        if (hi < 0) {
            hi = d;
        } else {
            buf[len++] = (uint8_t)(hi << 4 | d);
            hi = -1;
        }
    }
    if (hi >= 0) {
        free(buf);
        return false;
    }
    *out = buf;
    *out_len = len;
    return true;
}

/* ------------------------------------------------------------ decoding */

static bool render_record(sluice_frame_reader *r, text *t) {
    sluice_frame_record rec;
    sluice_frame_error e;
    if (!sluice_frame_read_record(r, &rec, &e)) return false;
    char line[64];
    if (rec.has_timestamp)
        snprintf(line, sizeof line, "record %lld", (long long)rec.timestamp);
    else
        snprintf(line, sizeof line, "record -");
    text_str(t, line);
    text_bytes(t, rec.key.data, rec.key.len, sluice_bytes_is_null(rec.key));
    text_bytes(t, rec.value.data, rec.value.len, sluice_bytes_is_null(rec.value));
    snprintf(line, sizeof line, " %u\n", (unsigned)rec.header_count);
    text_str(t, line);
    const uint8_t *p = rec.header_bytes;
    for (uint32_t i = 0; i < rec.header_count; i++) {
        sluice_header h;
        sluice_frame_next_header(&p, &h);
        text_str(t, "header");
        text_bytes(t, (const uint8_t *)h.name, h.name_len, false);
        text_bytes(t, h.value.data, h.value.len, sluice_bytes_is_null(h.value));
        text_str(t, "\n");
    }
    return true;
}

/* Decodes a whole frame into the .txt lines; false if the reader refuses it. */
static bool render(bool input, const uint8_t *buf, size_t len, text *t) {
    sluice_frame_reader r;
    sluice_frame_error e;
    uint32_t count;
    char line[64];
    if (!sluice_frame_open(&r, buf, len, &count, &e)) return false;
    snprintf(line, sizeof line, "%s %u\n", input ? "input" : "output", (unsigned)count);
    text_str(t, line);
    for (uint32_t i = 0; i < count; i++) {
        if (input) {
            if (!render_record(&r, t)) return false;
            continue;
        }
        sluice_frame_status st;
        if (!sluice_frame_read_status(&r, &st, &e)) return false;
        if (st.kind == SLUICE_STATUS_OK) {
            snprintf(line, sizeof line, "ok %u\n", (unsigned)st.count);
            text_str(t, line);
            for (uint32_t k = 0; k < st.count; k++)
                if (!render_record(&r, t)) return false;
        } else {
            text_str(t, "rejected");
            text_bytes(t, (const uint8_t *)st.code, st.code_len, false);
            text_bytes(t, (const uint8_t *)st.message, st.message_len, false);
            text_str(t, "\n");
        }
    }
    return sluice_frame_at_end(&r, &e);
}

/* ------------------------------------------------------------ encoding */

/* Every buffer a parse allocates, freed together. */
typedef struct pool {
    void *p[1024];
    size_t n;
} pool;

static void *pool_keep(pool *pl, void *p) {
    if (pl->n == sizeof pl->p / sizeof pl->p[0]) abort();
    pl->p[pl->n++] = p;
    return p;
}

static void pool_free(pool *pl) {
    while (pl->n) free(pl->p[--pl->n]);
}

/* One `-` or `x<hex>` token. */
static bool parse_bytes(const char *tok, pool *pl, sluice_bytes *out) {
    if (!tok) return false;
    if (strcmp(tok, "-") == 0) {
        *out = SLUICE_NULL;
        return true;
    }
    if (tok[0] != 'x') return false;
    uint8_t *data;
    size_t len;
    if (!unhex(tok + 1, strlen(tok + 1), &data, &len)) return false;
    *out = sluice_bytes_of(pool_keep(pl, data), len);
    return true;
}

/* The .txt lines (NUL-separated in place) and a cursor over them. */
typedef struct lines {
    char *next;
} lines;

static char *next_line(lines *ls) {
    if (!ls->next || !*ls->next) return NULL;
    char *line = ls->next;
    char *nl = strchr(line, '\n');
    if (nl) {
        *nl = 0;
        ls->next = nl + 1;
    } else {
        ls->next = NULL;
    }
    return line;
}

/* Reads a `record` line and its `header` lines; writes the record. */
static bool encode_record(lines *ls, pool *pl, sluice_frame_writer *w) {
    char *line = next_line(ls);
    if (!line || strncmp(line, "record ", 7) != 0) return false;
    sluice_record rec;
    char *save;
    char *ts = strtok_r(line + 7, " ", &save);
    if (!ts) return false;
    rec.has_timestamp = strcmp(ts, "-") != 0;
    rec.timestamp = rec.has_timestamp ? strtoll(ts, NULL, 10) : 0;
    if (!parse_bytes(strtok_r(NULL, " ", &save), pl, &rec.key)) return false;
    if (!parse_bytes(strtok_r(NULL, " ", &save), pl, &rec.value)) return false;
    char *hc = strtok_r(NULL, " ", &save);
    if (!hc) return false;
    size_t n = strtoul(hc, NULL, 10);
    sluice_header *hs = pool_keep(pl, calloc(n ? n : 1, sizeof *hs));
    for (size_t i = 0; i < n; i++) {
        char *h = next_line(ls);
        if (!h || strncmp(h, "header ", 7) != 0) return false;
        char *hsave;
        sluice_bytes name;
        if (!parse_bytes(strtok_r(h + 7, " ", &hsave), pl, &name)) return false;
        if (sluice_bytes_is_null(name)) return false;
        hs[i].name = (const char *)name.data;
        hs[i].name_len = name.len;
        if (!parse_bytes(strtok_r(NULL, " ", &hsave), pl, &hs[i].value)) return false;
    }
    rec.headers = hs;
    rec.header_count = n;
    sluice_frame_write_record(w, &rec);
    return true;
}

/* Writes the frame the .txt describes; false if the .txt does not parse. */
static bool encode(char *txt, uint8_t **out, size_t *out_len) {
    lines ls = {txt};
    pool pl = {0};
    bool ok = false;
    char *head = next_line(&ls);
    bool input = head && strncmp(head, "input ", 6) == 0;
    if (!head || (!input && strncmp(head, "output ", 7) != 0)) return false;
    uint32_t count = (uint32_t)strtoul(strchr(head, ' ') + 1, NULL, 10);
    sluice_frame_writer w;
    sluice_frame_writer_init(&w, count, 0);
    for (uint32_t i = 0; i < count; i++) {
        if (input) {
            if (!encode_record(&ls, &pl, &w)) goto done;
            continue;
        }
        char *line = next_line(&ls);
        if (!line) goto done;
        if (strncmp(line, "ok ", 3) == 0) {
            uint32_t n = (uint32_t)strtoul(line + 3, NULL, 10);
            sluice_frame_begin_ok(&w);
            for (uint32_t k = 0; k < n; k++)
                if (!encode_record(&ls, &pl, &w)) goto done;
        } else if (strncmp(line, "rejected ", 9) == 0) {
            char *save;
            sluice_bytes code, message;
            if (!parse_bytes(strtok_r(line + 9, " ", &save), &pl, &code)) goto done;
            if (!parse_bytes(strtok_r(NULL, " ", &save), &pl, &message)) goto done;
            sluice_frame_rejected(&w, (const char *)code.data, code.len,
                                  (const char *)message.data, message.len);
        } else {
            goto done;
        }
    }
    ok = next_line(&ls) == NULL;
done:
    *out = sluice_frame_finish(&w, out_len);
    pool_free(&pl);
    return ok;
}

/* ------------------------------------------------------------ the vectors */

static void frames_dir(char *out, size_t cap) {
    const char *env = getenv("SLUICE_FRAMES_DIR");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return;
    }
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    int dir_len = slash ? (int)(slash - file + 1) : 0;
    snprintf(out, cap, "%.*s../../../wit/frames", dir_len, file);
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void check_vector(const char *dir, const char *name) {
    char path[8192];
    int before = checks_failed;
    snprintf(path, sizeof path, "%s/%s.hex", dir, name);
    char *hex = read_file(path, NULL);
    snprintf(path, sizeof path, "%s/%s.txt", dir, name);
    size_t txt_len = 0;
    char *txt = read_file(path, &txt_len);
    uint8_t *frame = NULL;
    size_t frame_len = 0;
    CHECK(hex != NULL);
    CHECK(txt != NULL);
    if (!hex || !txt) goto done;
    CHECK(unhex(hex, strlen(hex), &frame, &frame_len));
    if (!frame) goto done;

    if (strncmp(txt, "error ", 6) == 0) {
        bool input = strncmp(txt + 6, "input", 5) == 0;
        text got = {0};
        bool accepted = render(input, frame, frame_len, &got);
        if (accepted) fprintf(stderr, "  %s: malformed, but decoded as:\n%s", name, got.s);
        CHECK(!accepted);
        free(got.s);
        goto done;
    }

    bool input = strncmp(txt, "input ", 6) == 0;
    text got = {0};
    bool decoded = render(input, frame, frame_len, &got);
    CHECK(decoded);
    if (decoded && (got.len != txt_len || memcmp(got.s, txt, txt_len) != 0)) {
        fprintf(stderr, "  %s: decoded as\n%s  want\n%s", name, got.s, txt);
        CHECK(!"decode matches the .txt");
    }
    free(got.s);

    uint8_t *enc = NULL;
    size_t enc_len = 0;
    CHECK(encode(txt, &enc, &enc_len));
    if (enc_len != frame_len || memcmp(enc, frame, frame_len) != 0) {
        text a = {0}, b = {0};
        text_bytes(&a, enc, enc_len, false);
        text_bytes(&b, frame, frame_len, false);
        fprintf(stderr, "  %s: encoded\n  %s\n  want\n  %s\n", name, a.s, b.s);
        CHECK(!"encode matches the .hex");
        free(a.s);
        free(b.s);
    }
    free(enc);
done:
    if (checks_failed != before) fprintf(stderr, "  (vector %s)\n", name);
    free(hex);
    free(txt);
    free(frame);
}

static void test_golden_frame_vectors(void) {
    char dir[4096];
    frames_dir(dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d) fprintf(stderr, "  cannot open %s\n", dir);
    CHECK(d != NULL);
    if (!d) return;
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0 && n < 256) {
            names[n] = malloc(len - 4);
            memcpy(names[n], e->d_name, len - 5);
            names[n][len - 5] = 0;
            n++;
        }
    }
    closedir(d);
    qsort(names, n, sizeof names[0], by_name);
    CHECK(n >= 8);
    for (size_t i = 0; i < n; i++) {
        check_vector(dir, names[i]);
        free(names[i]);
    }
}

const test frame_vector_tests[] = {
    T(test_golden_frame_vectors),
};
const size_t frame_vector_test_count = sizeof frame_vector_tests / sizeof frame_vector_tests[0];
