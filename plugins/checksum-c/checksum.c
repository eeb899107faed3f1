/* Validates card numbers: the Luhn checksum of the number in the header
 * named by config `header` (default `card`). A valid record passes on with
 * that header masked to its last four digits; a record without the header
 * is rejected as `no-card`, a number that is not 12 to 19 digits or fails
 * the checksum as `bad-card`. */
#include "sluice.h"

static const char *header = "card";

static sluice_status init(const sluice_config *config) {
    header = sluice_config_get_or(config, "header", "card");
    return SLUICE_OK;
}

/* Every second digit from the right doubled (less 9 past 9); the sum ends in 0. */
static bool luhn_ok(sluice_bytes digits) {
    unsigned sum = 0;
    for (size_t i = 0; i < digits.len; i++) {
        unsigned d = digits.data[digits.len - 1 - i] - '0';
        if (i % 2 == 1 && (d *= 2) > 9) d -= 9;
        sum += d;
    }
    return sum % 10 == 0;
}

static sluice_status check_card(const sluice_record *in, sluice_emitter *out) {
    sluice_bytes card = sluice_record_header_value(in, header);
    if (sluice_bytes_is_null(card))
        return sluice_rejectf(out, "no-card", "the record has no `%s` header", header);
    for (size_t i = 0; i < card.len; i++)
        if (card.data[i] < '0' || card.data[i] > '9')
            return sluice_reject(out, "bad-card", "the card number is not all digits");
    if (card.len < 12 || card.len > 19)
        return sluice_rejectf(out, "bad-card", "%zu digits, not 12 to 19", card.len);
    if (!luhn_ok(card)) return sluice_reject(out, "bad-card", "the checksum fails");

    char *masked = sluice_alloc(card.len); /* freed after the call */
    for (size_t i = 0; i < card.len; i++) masked[i] = i + 4 < card.len ? '*' : card.data[i];
    sluice_record rec = *in;
    sluice_record_set_header(&rec, header, sluice_bytes_of(masked, card.len));
    sluice_emit(out, &rec);
    return SLUICE_OK;
}

SLUICE_PROCESSOR_INIT(init)
SLUICE_PROCESSOR(check_card)
