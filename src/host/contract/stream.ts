/**
 * The push stream: a {@link Snapshot} first, then {@link Diff}s coalesced to at most
 * {@link MAX_PUSH_PER_SECOND} a second, or a {@link Resync}; and the two sides that use it, the
 * host ({@link HostApi}) and the renderer's typed client ({@link TypedClient}).
 */

import type { DeviceRow } from './devices.js';
import type { Envelope } from './envelope.js';
import type { ArgsOf, Method } from './methods.js';
import type { TreeNode } from './processes.js';
import type { Results } from './results.js';
import type { EventView, SystemStats } from './system.js';

export interface TelemetryPoint {
  readonly id: string;
  readonly metric: string;
  readonly at: number;
  readonly value: number;
}

export interface Snapshot {
  readonly type: 'snapshot';
  readonly seq: number;
  readonly at: number;
  readonly tree: TreeNode;
  readonly devices: readonly DeviceRow[];
  readonly stats: SystemStats;
}

export interface Diff {
  readonly type: 'diff';
  readonly seq: number;
  readonly at: number;
  /** Rows that changed (whole rows: no merge logic in the client). */
  readonly devices: readonly DeviceRow[];
  readonly removed: readonly string[];
  /** The whole tree, when its shape or a status changed. */
  readonly tree?: TreeNode;
  /** The latest value of each metric that changed, per device. */
  readonly telemetry: readonly TelemetryPoint[];
  readonly events: readonly EventView[];
  readonly stats?: SystemStats;
  /**
   * In a cluster: rows of other instances' devices that changed (each with `remote`), read from
   * the shared database once their owner signalled the change (docs/scale-out.md, "One fleet in
   * every UI"); absent: none. `devices` and `removed` are this instance's own devices only.
   */
  readonly remote?: readonly DeviceRow[];
  /** In a cluster: other instances' devices no longer in the fleet; absent: none. */
  readonly remoteRemoved?: readonly string[];
}

export interface Resync {
  readonly type: 'resync';
  readonly reason: string;
}

export type PushMessage = Snapshot | Diff | Resync;

/** What a transport gives the host for one connected client. */
export interface StreamSink {
  /** Delivers one message; the transport serialises it. */
  send(message: PushMessage): void;
  /** True while the client has not taken what was sent (WebSocket bufferedAmount over a bound). */
  congested(): boolean;
}

/** The host's side of the contract, as the transports use it. */
export interface HostApi {
  call(method: string, args: unknown, context?: { readonly actor?: string }): Promise<Envelope<unknown>>;
  /** Opens a push stream to one client; the returned function closes it. */
  openStream(sink: StreamSink): () => void;
}

/** Typed calls for the renderer: `client.call('device', { id })` → `Envelope<DeviceDetail>`. */
export interface TypedClient {
  call<M extends Method>(method: M, args: ArgsOf<M>): Promise<Envelope<Results[M]>>;
  subscribe(listener: (message: PushMessage) => void): () => void;
}

/** Most pushes per second to one client. */
export const MAX_PUSH_PER_SECOND = 20;
