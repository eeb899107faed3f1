// The JavaScript step of the polyglot pipeline: counts each account's
// transactions in the state store `accounts` (key: the account, value: the
// count as decimal text) and adds to each transaction `seq` (its 1-based
// number for the account) and `first` (seq == 1). A value that is not a
// JSON object is rejected with `bad-json`. The account is the value's
// `account` field, or else the record key (records are keyed by account).
import { defineProcessor, Reject, store } from '@sluice/sdk';

export const processor = defineProcessor((record) => {
  const txn = record.valueJson(); // Reject('bad-json') when it is not JSON
  if (txn === null || typeof txn !== 'object' || Array.isArray(txn)) {
    throw new Reject('bad-json', 'the value is not a JSON object');
  }
  const account = typeof txn.account === 'string' ? txn.account : record.key;
  if (account === null) throw new Reject('no-account', 'no `account` field and no key');
  const accounts = store('accounts');
  const seq = Number(accounts.getText(account) ?? '0') + 1;
  accounts.put(account, String(seq));
  return record.withValue({ ...txn, seq, first: seq === 1 });
});
