// Masks card numbers (13 to 19 digits, optionally grouped by single spaces
// or dashes) in record values, keeping the last four digits, and adds a
// `redacted` header with how many were masked. A record without a value
// (null or empty) is rejected with code `empty`, a value that is not UTF-8
// text with `bad-utf8`.
import { defineProcessor, Reject, type Record } from '@sluice/sdk';

/** A run of digits, each after at most one space or dash. */
const DIGIT_RUN = /\d(?:[ -]?\d)*/g;

/** `text` with card numbers masked, and how many there were. */
export function maskCards(text: string): [string, number] {
  let count = 0;
  const masked = text.replace(DIGIT_RUN, (run) => {
    const digits = run.replace(/\D/g, '').length;
    if (digits < 13 || digits > 19) return run;
    count++;
    let hide = digits - 4;
    return run.replace(/\d/g, (d) => (hide-- > 0 ? '*' : d));
  });
  return [masked, count];
}

export const processor = defineProcessor((record: Record) => {
  if (record.value === null || record.value.length === 0) {
    throw new Reject('empty', 'the payment has no value');
  }
  const [masked, count] = maskCards(record.valueText());
  return record.withValue(masked).withHeader('redacted', count);
});
