/**
 * The cluster bench's push figures (issue 17 §4, docs/scale-out.md "One fleet in every UI"): how
 * long a change of a device on its owner takes to reach another instance's push stream, as the
 * UI receives it. Both are real `fleetvisor serve` processes on one PostgreSQL database; the
 * watcher's stream is read over its WebSocket with its own token, like the UI.
 *
 * - One at a time: an event sent to a provisioned (disconnected) device's machine on its owner
 *   (`sendEvent` CONNECT / DISCONNECT through the owner's API) makes one transition; the time is
 *   from the transition (the row's `stateEnteredAt`, the owner's clock: same machine) to the
 *   arrival of the diff carrying the row in that state on the watcher's stream. A pause between
 *   transitions, so each is one signal.
 * - A storm: many devices changed at once (their events sent together); the worst time from a
 *   device's transition to its row on the stream, and how many diffs carried them.
 *
 * @example
 * const r = await measureRemotePush(owner.dataDir, watcher.dataDir, ids, 60);
 * // { latencies: [ms, …], storm: { devices, spreadMs, worstMs, lastMs, diffs } }
 */
import WebSocket from 'ws';
import type { AppClient } from '../../src/host/app-client.js';
import { connectToRunningApp } from '../../src/host/app-client.js';
import type { DeviceRow, PushMessage } from '../../src/host/contract.js';
import { loadUiSession } from '../../src/host/ui-session.js';

interface Waiter {
  readonly id: string;
  readonly state: string;
  resolve(arrival: { readonly row: DeviceRow; readonly at: number; readonly diff: number }): void;
}

/** The watcher's push stream, as the UI opens it; resolves rows as they arrive in a state. */
async function openStream(dataDir: string) {
  const app = clientOf(dataDir);
  const session = loadUiSession(dataDir);
  if (!session) throw new Error(`no ui-session.json in ${dataDir}`);
  const url = `${app.origin.replace(/^http/, 'ws')}/api/stream`;
  const ws = new WebSocket(url, ['fleetvisor', `fleetvisor.token.${session.token}`], { origin: app.origin });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const waiters = new Set<Waiter>();
  let diffs = 0;
  ws.on('message', (data) => {
    const at = Date.now();
    const m = JSON.parse(String(data)) as PushMessage;
    if (m.type !== 'diff' || !m.remote) return;
    diffs++;
    for (const row of m.remote)
      for (const w of waiters)
        if (w.id === row.id && w.state === row.state) {
          waiters.delete(w);
          w.resolve({ row, at, diff: diffs });
        }
  });
  return {
    /** The first arrival of `id` in `state` from now on. */
    arrival(id: string, state: string, timeoutMs = 10_000) {
      return new Promise<{ row: DeviceRow; at: number; diff: number }>((resolve, reject) => {
        const w: Waiter = {
          id,
          state,
          resolve: (a) => {
            clearTimeout(timer);
            resolve(a);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`${id} did not reach the stream as ${state} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(w);
      });
    },
    close: () => ws.close(),
  };
}

function clientOf(dataDir: string): AppClient {
  const c = connectToRunningApp(dataDir);
  if (!c.ok) throw new Error(c.error.message);
  return c.value;
}

/** The state an event sent by {@link toggle} leads to. */
const nextState = (state: string) => (state === 'disconnected' ? 'connecting' : 'disconnected');

/** Sends the event that moves a disconnected device to connecting, or a connecting one back. */
async function toggle(owner: AppClient, id: string, state: string): Promise<void> {
  const event = state === 'disconnected' ? 'CONNECT' : 'DISCONNECT';
  const r = await owner.call('sendEvent', { id, event });
  if (!r.ok) throw new Error(`sendEvent ${event} to ${id}: ${r.error.message}`);
  if (r.value.to !== nextState(state))
    throw new Error(`${id} went to ${r.value.to}, not ${nextState(state)}`);
}

export interface PushFigures {
  /** ms from each transition on the owner to its row on the watcher's stream. */
  readonly latencies: number[];
  readonly storm: {
    readonly devices: number;
    /** From the first transition to the last (the owner's API takes the events one by one). */
    readonly spreadMs: number;
    /** The worst device: from its transition to its row on the stream. */
    readonly worstMs: number;
    /** From the first transition to the last row on the stream. */
    readonly lastMs: number;
    /** Diffs that carried them. */
    readonly diffs: number;
  };
}

/**
 * `transitions` single transitions over the owner's devices `ids` (disconnected to start with),
 * then all of `ids` changed at once.
 */
export async function measureRemotePush(
  ownerDir: string,
  watcherDir: string,
  ids: readonly string[],
  transitions: number,
): Promise<PushFigures> {
  const owner = clientOf(ownerDir);
  const stream = await openStream(watcherDir);
  const states = new Map(ids.map((id) => [id, 'disconnected']));
  const latencies: number[] = [];
  try {
    for (let i = 0; i < transitions; i++) {
      const id = ids[i % ids.length]!;
      const to = nextState(states.get(id)!);
      // Waited for before the event is sent: the row may arrive before the owner's answer.
      const arrived = stream.arrival(id, to);
      arrived.catch(() => {}); // awaited below; a failed toggle throws first
      await toggle(owner, id, states.get(id)!);
      states.set(id, to);
      const { row, at } = await arrived;
      latencies.push(at - row.stateEnteredAt);
      await new Promise((r) => setTimeout(r, 300));
    }
    // The storm: every device at once.
    const arrivals = ids.map((id) => stream.arrival(id, nextState(states.get(id)!), 30_000));
    for (const a of arrivals) a.catch(() => {}); // awaited below
    await Promise.all(
      ids.map(async (id) => {
        await toggle(owner, id, states.get(id)!);
        states.set(id, nextState(states.get(id)!));
      }),
    );
    const all = await Promise.all(arrivals);
    const entered = all.map((a) => a.row.stateEnteredAt);
    const first = Math.min(...entered);
    const storm = {
      devices: ids.length,
      spreadMs: Math.max(...entered) - first,
      worstMs: Math.max(...all.map((a) => a.at - a.row.stateEnteredAt)),
      lastMs: Math.max(...all.map((a) => a.at)) - first,
      diffs: new Set(all.map((a) => a.diff)).size,
    };
    // Leave them disconnected, as provisioned.
    for (const id of ids)
      if (states.get(id) !== 'disconnected') await owner.call('sendEvent', { id, event: 'DISCONNECT' });
    return { latencies, storm };
  } finally {
    stream.close();
  }
}
