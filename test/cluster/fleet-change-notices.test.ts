/**
 * The payloads of the fleet's change channel (src/cluster/fleet-change-notices.ts): every id
 * named once, each payload under PostgreSQL's limit, `all` past the per-flush bound, and what a
 * reader makes of payloads it does not know.
 */
import { describe, expect, it } from 'vitest';
import type { FleetChange } from '../../src/cluster/fleet-change-notices.js';
import {
  decodeNotice,
  encodeNotices,
  MAX_IDS_PER_FLUSH,
  MAX_NOTICE_BYTES,
} from '../../src/cluster/fleet-change-notices.js';

const idsOf = (notices: readonly string[]) =>
  notices.flatMap((n) => {
    const c = decodeNotice(n);
    return c?.kind === 'devices' ? c.ids : [];
  });

describe('fleet change notices', () => {
  it('names a few ids in one payload, read back as they were sent', () => {
    const notices = encodeNotices('beta', ['pump-1', 'pump "2"', 'Zähler-3']);
    expect(notices).toHaveLength(1);
    expect(decodeNotice(notices[0])).toEqual({
      kind: 'devices',
      from: 'beta',
      ids: ['pump-1', 'pump "2"', 'Zähler-3'],
    } satisfies FleetChange);
  });

  it('splits many ids into payloads under the limit, each id once, in order', () => {
    const ids = Array.from({ length: MAX_IDS_PER_FLUSH }, (_, i) => `device-with-a-long-name-${i}-ü`);
    const notices = encodeNotices('site-a-1', ids);
    expect(notices.length).toBeGreaterThan(1);
    for (const n of notices) expect(Buffer.byteLength(n)).toBeLessThanOrEqual(MAX_NOTICE_BYTES);
    expect(idsOf(notices)).toEqual(ids);
  });

  it('says all past the per-flush bound, or when asked', () => {
    const ids = Array.from({ length: MAX_IDS_PER_FLUSH + 1 }, (_, i) => `d${i}`);
    for (const notices of [encodeNotices('beta', ids), encodeNotices('beta', ['d1'], true)]) {
      expect(notices).toHaveLength(1);
      expect(decodeNotice(notices[0])).toEqual({ kind: 'all', from: 'beta', why: 'signalled' });
    }
  });

  it('ignores payloads it does not read', () => {
    for (const payload of [undefined, '', 'not json', '[]', '{"d":["x"]}', '{"o":"b"}', '{"o":"b","d":[]}'])
      expect(decodeNotice(payload)).toBeUndefined();
    expect(decodeNotice('{"o":"b","d":["x",3,null]}')).toEqual({ kind: 'devices', from: 'b', ids: ['x'] });
  });
});
