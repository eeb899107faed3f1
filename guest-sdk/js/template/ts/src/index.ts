// {{name}}: a Sluice record processor. Upper-cases each record's value; a
// record without a value is rejected (the pipeline's `rejected` policy
// applies). Build: `sluice plugin build .`
import { defineProcessor, Reject, type Record } from '@sluice/sdk';

export const processor = defineProcessor((record: Record) => {
  const text = record.value === null ? '' : record.valueText();
  if (text === '') {
    throw new Reject('empty', 'the record has no value');
  }
  return record.withValue(text.toUpperCase());
});
