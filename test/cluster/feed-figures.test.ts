/**
 * The change feed's figures as an instance writes them with its heartbeat and as the cluster view
 * reads them back (src/cluster/feed-figures.ts): the counts as they were, the last notice's age
 * plus the heartbeat's own age, and nothing made up from a row an older version wrote.
 */
import { describe, expect, it } from 'vitest';
import type { FeedFigures } from '../../src/cluster/feed-figures.js';
import { feedFigures, readFeedFigures } from '../../src/cluster/feed-figures.js';

const written: FeedFigures = {
  noticesSent: 7,
  idsSent: 13,
  sendFailures: 1,
  noticesHeard: 9,
  idsHeard: 15,
  rereads: 2,
  lastNoticeAgoMs: 800,
  listening: true,
};

describe('feed figures', () => {
  it("are an instance's change-feed counts under the view's names", () => {
    expect(
      feedFigures(
        { notices: 7, ids: 13, sendFailures: 1, heard: 9, idsHeard: 15, reconnects: 2, lastHeardAgoMs: 800 },
        true,
      ),
    ).toEqual(written);
  });

  it('read back through JSON, the last notice is older by the age of the heartbeat that wrote it', () => {
    const stored: unknown = JSON.parse(JSON.stringify(written));
    expect(readFeedFigures(stored, 1_500)).toEqual({ ...written, lastNoticeAgoMs: 2_300 });
    expect(readFeedFigures({ ...written, lastNoticeAgoMs: null }, 1_500)?.lastNoticeAgoMs).toBeNull();
    // A heartbeat the database dates a little ahead (rounding): never younger than written.
    expect(readFeedFigures(stored, -3)?.lastNoticeAgoMs).toBe(800);
  });

  it.each([
    ['nothing written (an older version, or no heartbeat with figures yet)', null],
    ['not an object', 'feed'],
    ['an array', [1, 2]],
  ])('are null for %s', (_what, value) => {
    expect(readFeedFigures(value, 0)).toBeNull();
  });

  it('count a missing or malformed figure as 0 and not listening', () => {
    expect(readFeedFigures({ noticesSent: -1, idsSent: 'x', listening: 'yes' }, 0)).toEqual({
      noticesSent: 0,
      idsSent: 0,
      sendFailures: 0,
      noticesHeard: 0,
      idsHeard: 0,
      rereads: 0,
      lastNoticeAgoMs: null,
      listening: false,
    });
  });
});
