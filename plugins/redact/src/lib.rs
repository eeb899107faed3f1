//! Masks card numbers (13 to 19 digits, optionally grouped by spaces or
//! dashes) in record values, keeping the last four digits, and adds a
//! `redacted` header with how many were masked.
use sluice_sdk::{Emitter, Error, Record};

pub fn redact(record: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
    let (masked, count) = mask_cards(record.value.as_deref().unwrap_or_default());
    out.emit(
        record
            .with_value(masked)
            .with_header("redacted", count.to_string()),
    );
    Ok(())
}

/// Returns `text` with card numbers masked, and how many there were.
pub fn mask_cards(text: &[u8]) -> (Vec<u8>, usize) {
    let (mut out, mut count, mut i) = (text.to_vec(), 0, 0);
    while i < text.len() {
        let mut digits = Vec::new();
        let mut j = i;
        while j < text.len()
            && (text[j].is_ascii_digit()
                || (j > i
                    && matches!(text[j], b' ' | b'-')
                    && text.get(j + 1).is_some_and(u8::is_ascii_digit)))
        {
            if text[j].is_ascii_digit() {
                digits.push(j);
            }
            j += 1;
        }
        if (13..=19).contains(&digits.len()) {
            digits[..digits.len() - 4]
                .iter()
                .for_each(|&d| out[d] = b'*');
            count += 1;
        }
        i = j.max(i + 1);
    }
    (out, count)
}

sluice_sdk::export_processor!(redact);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_grouped_and_plain_card_numbers_but_not_short_numbers() {
        let (out, n) = mask_cards(
            b"card 4111 1111 1111 1111, alt 5500-0000-0000-0004, order 12345, 378282246310005",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "card **** **** **** 1111, alt ****-****-****-0004, order 12345, ***********0005"
        );
        assert_eq!(n, 3);
    }

    #[test]
    fn adds_the_header_and_keeps_key_and_timestamp() {
        let rec = Record::new(Some("k"), Some("pan=4111111111111111")).with_timestamp(9);
        let out = sluice_sdk::testing::run(redact, rec).unwrap();
        assert_eq!(out[0].value.as_deref(), Some(&b"pan=************1111"[..]));
        assert_eq!(out[0].header("redacted"), Some(&b"1"[..]));
        assert_eq!(
            (out[0].key.as_deref(), out[0].timestamp),
            (Some(&b"k"[..]), Some(9))
        );
    }
}
