import { findNearestBucket } from '@framepack/video-io';
import type { GoldenKind } from '../types.js';

/** Resolution buckets: every row's (h, w, resolution) must give exactly the reference bucket. */
export const kind: GoldenKind = {
  name: 'buckets',
  async run(c) {
    const rows = c.json.rows as { h: number; w: number; resolution: number; bucket: [number, number] }[];
    if (!Array.isArray(rows) || rows.length === 0) throw new Error('case.json has no rows');
    const wrong: string[] = [];
    for (const r of rows) {
      const [bh, bw] = findNearestBucket(r.h, r.w, r.resolution);
      if (bh !== r.bucket[0] || bw !== r.bucket[1]) wrong.push(`${r.h}x${r.w}@${r.resolution}: ours (${bh}, ${bw}) vs (${r.bucket[0]}, ${r.bucket[1]})`);
    }
    return { metric: 'max_abs', value: wrong.length, pass: wrong.length === 0, details: { mismatched_rows: wrong.length }, note: wrong.length ? wrong.slice(0, 3).join('; ') : `${rows.length} rows exact` };
  },
};
