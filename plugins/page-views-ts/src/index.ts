// Page views per window, in TypeScript: views (key = page, value =
// `{"user": "u-17", ...}`) in, `{views, visitors, seen}` per page and
// window out. Sluice assigns each view to its windows (the pipeline's
// `window` table) and keeps one aggregate per page and window; this plugin
// only counts. plugins/page-views is the same in Rust, with the same output.
import { defineAggregator, Reject } from '@sluice/sdk';

/** One page's views in one window. */
export interface PageViews {
  views: number;
  /** Distinct visitors. */
  visitors: number;
  /** The visitors seen, sorted (a window holds few). */
  seen: string[];
}

/** Where `user` is in the sorted `seen`, or would go. */
function place(seen: string[], user: string): number {
  let lo = 0;
  let hi = seen.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (seen[mid] < user) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export const aggregator = defineAggregator({
  initial: (): PageViews => ({ views: 0, visitors: 0, seen: [] }),

  add(agg, view) {
    const { user } = view.valueJson<{ user?: unknown }>(); // Reject('bad-json') if not JSON
    if (typeof user !== 'string') {
      throw new Reject('bad-json', 'the view has no `user` string');
    }
    agg.views += 1;
    const at = place(agg.seen, user);
    if (agg.seen[at] !== user) {
      agg.seen.splice(at, 0, user);
      agg.visitors += 1;
    }
    return agg;
  },
});
