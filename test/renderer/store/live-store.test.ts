/**
 * The live store as a reducer over the push stream: a snapshot replaces, diffs patch, a resync
 * marks the connection, and however many pushes arrive between two frames, subscribers hear once.
 * Buffers stay bounded. Runs in Node with a hand-cranked frame.
 */
import { describe, expect, it } from 'vitest';
import { createLiveStore, EVENT_BUFFER, SERIES_POINTS } from '../../../renderer/src/store/live-store.js';
import type {
  DeviceRow,
  Diff,
  PushMessage,
  Snapshot,
  SystemStats,
  TreeNode,
  TypedClient,
} from '../../../src/host/contract.js';

const stats = (at: number): SystemStats => ({
  at,
  devices: { total: 2, online: 1, failed: 0 },
  processes: 5,
  ingestRate: 3,
  restarts: 0,
  commandLatencyMs: { p50: 1, p95: 2, p99: 3 },
  queues: {},
  broker: {
    url: 'mqtt://127.0.0.1:1883',
    connected: true,
    embedded: true,
    refused: { connect: 0, publish: 0, subscribe: 0 },
  },
  dataLoss: { total: 0, byCause: {} },
  duplicatesIgnored: 0,
  heapUsedBytes: 1,
});
const row = (id: string, state = 'connected'): DeviceRow => ({
  id,
  name: id,
  kind: 'k',
  tags: [],
  health: 'running',
  state,
  stateEnteredAt: 0,
  link: { up: true, via: 'mqtt', since: 0, reason: null },
  firmware: '1.0.0',
  lastSeen: 0,
  restarts: 0,
  drift: 0,
  failure: null,
  timers: [],
});
const tree: TreeNode = {
  key: 'app',
  pid: 1,
  name: 'app',
  childId: 'app',
  type: 'app',
  status: 'running',
  restarts: 0,
};
const snapshot = (seq: number, devices: DeviceRow[]): Snapshot => ({
  type: 'snapshot',
  seq,
  at: 0,
  tree,
  devices,
  stats: stats(0),
});
const diff = (seq: number, patch: Partial<Diff> = {}): Diff => ({
  type: 'diff',
  seq,
  at: seq,
  devices: [],
  removed: [],
  telemetry: [],
  events: [],
  ...patch,
});

function setup(
  call: TypedClient['call'] = async () => ({
    ok: false,
    error: { code: 'unavailable', message: 'test' },
  }),
) {
  const frames: (() => void)[] = [];
  let listener: ((m: PushMessage) => void) | null = null;
  const client: TypedClient = {
    call,
    subscribe: (l) => {
      listener = l;
      return () => {
        listener = null;
      };
    },
  };
  let clock = 1_000;
  const store = createLiveStore(client, { requestFrame: (cb) => frames.push(cb), now: () => clock });
  const frame = () => {
    for (const cb of frames.splice(0)) cb();
  };
  let renders = 0;
  store.subscribe(() => renders++);
  return {
    store,
    frame,
    renders: () => renders,
    push: (m: PushMessage) => listener?.(m),
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

describe('live store', () => {
  it('starts the live event log with the stored history, merged by seq with what was pushed', async () => {
    const history = [3, 2, 1].map((seq) => ({
      seq,
      at: seq,
      deviceId: 'a',
      kind: 'device.state',
      data: null,
    }));
    const asked: string[] = [];
    const { store, frame, push } = setup(async (method) => {
      asked.push(method);
      return method === 'events'
        ? ({ ok: true, value: { items: history, next: null } } as never)
        : { ok: false, error: { code: 'unavailable', message: 'test' } };
    });
    store.start();
    push(snapshot(1, [row('a')]));
    push(diff(2, { events: [{ seq: 4, at: 4, deviceId: 'a', kind: 'device.online', data: null }] }));
    await new Promise((r) => setTimeout(r, 0));
    frame();
    expect(asked).toContain('events');
    expect(store.getState().events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
  });

  it('applies a snapshot then diffs, and renders once per frame however many arrived', () => {
    const { store, frame, renders, push } = setup();
    const stop = store.start();
    expect(store.getState().ready).toBe(false);
    push(snapshot(1, [row('a'), row('b')]));
    for (let seq = 2; seq <= 101; seq++) push(diff(seq, { devices: [row('a', `s${seq}`)] }));
    push(diff(102, { removed: ['b'] }));
    expect(renders()).toBe(0);
    frame();
    expect(renders()).toBe(1);
    const state = store.getState();
    expect(state.ready).toBe(true);
    expect(state.connection.kind).toBe('live');
    expect(state.devices.get('a')?.state).toBe('s101');
    expect(state.devices.has('b')).toBe(false);
    expect(state.seq).toBe(102);
    frame();
    expect(renders()).toBe(1); // nothing new, no render
    stop();
  });

  it('ignores diffs the snapshot already holds, and a resync marks the connection until the next snapshot', () => {
    const { store, frame, push } = setup();
    store.start();
    push(snapshot(10, [row('a')]));
    push(diff(9, { devices: [row('a', 'stale')] }));
    frame();
    expect(store.getState().devices.get('a')?.state).toBe('connected');
    push({ type: 'resync', reason: 'client too slow' });
    frame();
    expect(store.getState().connection).toMatchObject({ kind: 'reconnecting', reason: 'client too slow' });
    push(snapshot(1, [row('a', 'fresh')])); // a new connection may start its numbering over
    frame();
    expect(store.getState().connection.kind).toBe('live');
    expect(store.getState().devices.get('a')?.state).toBe('fresh');
  });

  it('keeps the last events and live points of watched series only, bounded', () => {
    const { store, frame, push } = setup();
    store.start();
    push(snapshot(1, [row('a')]));
    let changes = 0;
    const watch = store.watchSeries('a', 'temp', () => changes++);
    let seq = 2;
    for (let i = 0; i < 1_000; i++)
      push(
        diff(seq++, {
          events: [{ seq: i, at: i, deviceId: 'a', kind: 'k', data: null }],
          telemetry: [
            { id: 'a', metric: 'temp', at: i, value: i },
            { id: 'a', metric: 'unwatched', at: i, value: i },
          ],
        }),
      );
    frame();
    const { events } = store.getState();
    expect(events).toHaveLength(EVENT_BUFFER);
    expect(events[0]!.seq).toBe(1_000 - EVENT_BUFFER);
    expect(events.at(-1)!.seq).toBe(999);
    expect(changes).toBe(1);
    const [times, values] = watch.series.columns();
    expect(times).toHaveLength(SERIES_POINTS);
    expect(values.at(-1)).toBe(999);
    watch.stop();
  });

  it('counts a reconnect from when the connection was lost, however many attempts fail', () => {
    const { store, frame, push, advance } = setup();
    store.start();
    push(snapshot(1, [row('a')]));
    advance(1_000);
    store.setTransport('closed');
    advance(3_000);
    store.setTransport('connecting');
    store.setTransport('closed');
    frame();
    expect(store.getState().connection).toMatchObject({ kind: 'reconnecting', since: 2_000 });
    push(snapshot(1, [row('a')]));
    frame();
    expect(store.getState().connection.kind).toBe('live');
  });

  it('a close that says why and when it retries keeps both, each refusal taking the new ones', () => {
    const { store, frame, advance } = setup();
    store.start();
    const reason = 'the host refused for now: too many connections (32 of 32 in use)';
    store.setTransport('closed', { reason, retryInMs: 800 });
    frame();
    expect(store.getState().connection).toEqual({
      kind: 'reconnecting',
      since: 1_000,
      reason,
      retryAt: 1_800,
    });
    advance(1_000);
    store.setTransport('connecting');
    store.setTransport('closed', { reason, retryInMs: 1_600 });
    frame();
    expect(store.getState().connection).toEqual({
      kind: 'reconnecting',
      since: 1_000,
      reason,
      retryAt: 3_600,
    });
  });

  it('a refused token makes the connection unauthorized', () => {
    const { store, frame } = setup();
    store.start();
    store.setTransport('unauthorized');
    frame();
    expect(store.getState().connection.kind).toBe('unauthorized');
  });
});
