/**
 * What the push of other instances' devices sends (src/host/api/remote-push.ts), over reads that
 * answer rows set by the test (the reads of the database are tested with real instances in
 * test/cluster/remote-push.test.ts): a row is pushed when its content changed, never because it
 * was read again; `all` pushes what changed and the devices gone; this instance's own signals and
 * devices are left out; signals heard during a read are read together after it; a failing read is
 * reported once and everything read again later.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { FleetChange } from '../../../src/cluster/fleet-changes.js';
import type { RemoteReads } from '../../../src/host/api/remote-push.js';
import { REMOTE_RETRY_MS, startRemotePush } from '../../../src/host/api/remote-push.js';
import type { DeviceRow } from '../../../src/host/contract.js';
import { deviceRow } from '../helpers.js';

const remoteRow = (id: string, state: string, readAt = Date.now()): DeviceRow => ({
  ...deviceRow(id, state),
  remote: { owner: 'beta', readAt, savedAt: 1 },
});

/** The database as the test sets it, read as the fleet-wide reads would; each read counted. */
function fakeReads() {
  const db = new Map<string, DeviceRow>();
  const asked: (readonly string[] | 'all')[] = [];
  let fail = false;
  let gate: Promise<void> | undefined;
  const reads: RemoteReads = {
    async readDevices(ids) {
      asked.push([...ids]);
      await gate;
      if (fail) throw new Error('database gone');
      return ids.flatMap((id) =>
        db.has(id) ? [{ ...db.get(id)!, remote: { ...db.get(id)!.remote!, readAt: Date.now() } }] : [],
      );
    },
    async readAll() {
      asked.push('all');
      await gate;
      if (fail) throw new Error('database gone');
      return [...db.values()].map((r) => ({ ...r, remote: { ...r.remote!, readAt: Date.now() } }));
    },
  };
  return {
    db,
    asked,
    reads,
    failing: (on: boolean) => {
      fail = on;
    },
    hold: () => {
      let open = () => {};
      gate = new Promise((resolve) => {
        open = resolve;
      });
      return () => {
        gate = undefined;
        open();
      };
    },
  };
}

function rig(own: ReadonlySet<string> = new Set()) {
  const fake = fakeReads();
  const listeners = new Set<(c: FleetChange) => void>();
  const pushed: { rows: string[]; removed: string[] }[] = [];
  const reported: string[] = [];
  const start = () =>
    startRemotePush({
      changes: {
        subscribe: (l) => {
          listeners.add(l);
          return () => listeners.delete(l);
        },
      },
      reads: fake.reads,
      me: 'alpha',
      isOwn: (id) => own.has(id),
      push: (rows, removed) =>
        pushed.push({ rows: rows.map((r) => `${r.id}:${r.state}`), removed: [...removed] }),
      report: (what) => reported.push(what),
    });
  const signal = (c: FleetChange) => {
    for (const l of listeners) l(c);
  };
  return { ...fake, pushed, reported, start, signal };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

afterEach(() => {
  vi.useRealTimers();
});

describe('remote push', () => {
  it('pushes a signalled row that changed, not one read again unchanged, nor own ones', async () => {
    const r = rig(new Set(['mine']));
    r.db.set('a', remoteRow('a', 'connected'));
    r.db.set('b', remoteRow('b', 'connected'));
    r.db.set('mine', remoteRow('mine', 'connected'));
    const push = r.start();
    await push.ready;
    expect(r.asked).toEqual(['all']);
    r.signal({ kind: 'devices', from: 'beta', ids: ['a', 'b'] });
    await settle();
    expect(r.pushed).toEqual([]); // read again, unchanged (only readAt differs)
    r.db.set('a', remoteRow('a', 'disconnected'));
    r.signal({ kind: 'devices', from: 'beta', ids: ['a'] });
    await settle();
    expect(r.pushed).toEqual([{ rows: ['a:disconnected'], removed: [] }]);
    // Signals of alpha's own writes are not read at all; a device alpha runs is never pushed.
    r.db.set('mine', remoteRow('mine', 'disconnected'));
    r.signal({ kind: 'devices', from: 'alpha', ids: ['mine'] });
    r.signal({ kind: 'devices', from: 'beta', ids: ['mine'] });
    await settle();
    expect(r.pushed).toHaveLength(1);
    expect(r.asked).toEqual(['all', ['a', 'b'], ['a'], ['mine']]);
    push.stop();
  });

  it('all pushes what changed and the devices gone; a signalled id not found is pushed gone', async () => {
    const r = rig();
    for (const id of ['a', 'b', 'c']) r.db.set(id, remoteRow(id, 'connected'));
    const push = r.start();
    await push.ready;
    r.db.set('b', remoteRow('b', 'disconnected'));
    r.db.delete('c');
    r.db.set('d', remoteRow('d', 'connecting'));
    r.signal({ kind: 'all', from: null, why: 'reconnected' });
    await settle();
    expect(r.pushed).toEqual([{ rows: ['b:disconnected', 'd:connecting'], removed: ['c'] }]);
    r.db.delete('a');
    r.signal({ kind: 'devices', from: 'beta', ids: ['a', 'never-known'] });
    await settle();
    expect(r.pushed[1]).toEqual({ rows: [], removed: ['a'] });
    push.stop();
  });

  it('reads the signals heard during a read together, after it', async () => {
    const r = rig();
    const push = r.start();
    await push.ready;
    const release = r.hold();
    r.signal({ kind: 'devices', from: 'beta', ids: ['a'] });
    await settle();
    for (const id of ['b', 'c', 'b']) {
      r.db.set(id, remoteRow(id, 'connected'));
      r.signal({ kind: 'devices', from: 'gamma', ids: [id] });
    }
    release();
    await settle();
    expect(r.asked).toEqual(['all', ['a'], ['b', 'c']]);
    expect(r.pushed).toEqual([{ rows: ['b:connected', 'c:connected'], removed: [] }]);
    push.stop();
  });

  it('reports a failing read once, and reads everything again later', async () => {
    vi.useFakeTimers();
    const r = rig();
    r.db.set('a', remoteRow('a', 'connected'));
    const push = r.start();
    await push.ready;
    r.failing(true);
    r.signal({ kind: 'devices', from: 'beta', ids: ['a'] });
    await vi.advanceTimersByTimeAsync(0);
    r.signal({ kind: 'devices', from: 'beta', ids: ['a'] }); // waits for the retry
    await vi.advanceTimersByTimeAsync(REMOTE_RETRY_MS);
    expect(r.reported).toHaveLength(1);
    expect(r.asked).toEqual(['all', ['a'], 'all']);
    r.failing(false);
    r.db.set('a', remoteRow('a', 'disconnected'));
    await vi.advanceTimersByTimeAsync(REMOTE_RETRY_MS);
    expect(r.asked).toEqual(['all', ['a'], 'all', 'all']);
    expect(r.pushed).toEqual([{ rows: ['a:disconnected'], removed: [] }]);
    expect(r.reported).toHaveLength(1);
    expect(push.stats()).toMatchObject({ failures: 2, rows: 1 });
    push.stop();
  });
});
