/**
 * Devices as the views show them: a fleet table row, a device's detail and its machine, the
 * inspector, and the records that `devicesExport` writes and `devicesImport` reads.
 */

import type { ActionView, CommandView, GuardsView } from './commands.js';
import type { ApiError, Json } from './envelope.js';
import type { TimerView } from './processes.js';

export interface LinkView {
  readonly up: boolean;
  readonly via: string | null;
  readonly since: number | null;
  readonly reason: string | null;
}

/** A row of the fleet table. */
export interface DeviceRow {
  readonly id: string;
  readonly name: string;
  readonly kind: string;
  readonly tags: readonly string[];
  readonly health: 'running' | 'failed' | 'stopped';
  readonly state: string;
  readonly stateEnteredAt: number;
  readonly link: LinkView;
  readonly firmware: string | null;
  /** Wall-clock ms of the last message from the device; null: never. */
  readonly lastSeen: number | null;
  readonly restarts: number;
  readonly drift: number;
  readonly failure: { readonly code: string; readonly message: string } | null;
  readonly timers: readonly TimerView[];
  /** The device's command circuit breaker when it is not closed (absent: closed). */
  readonly breaker?: 'open' | 'halfOpen';
  /** The convention it speaks: `homie`, `sparkplug`, `modbus`; absent: Fleetvisor's own protocol. */
  readonly convention?: string;
  /**
   * In a cluster, a device another instance supervises: the row is read from the shared database,
   * not live (docs/scale-out.md). Of such a row `lastSeen` is null, `restarts` and `drift` are 0,
   * `timers` is empty and `breaker` absent: what only its owner knows (its detail asks the owner).
   * Absent: this instance supervises the device, and pushes its row as it changes.
   */
  readonly remote?: RemoteRowInfo;
}

/** Where a remote row of the fleet table comes from and how old it is. */
export interface RemoteRowInfo {
  /** The instance that leases the device's shard; null: none now (a failover in progress). */
  readonly owner: string | null;
  /** When this instance read the row from the database (wall ms): the row says what was saved by then. */
  readonly readAt: number;
  /**
   * When the owner last saved the device's state (wall ms, the owner's clock; it saves at every
   * transition, as it happens); null: never saved.
   */
  readonly savedAt: number | null;
}

export interface MachineView {
  readonly id: string;
  /** State nodes, nested, with the events that leave each and where they go. */
  readonly states: readonly MachineStateView[];
}

export interface MachineStateView {
  readonly path: string;
  readonly initial: boolean;
  readonly transitions: readonly { readonly event: string; readonly target: string | null }[];
  readonly children: readonly MachineStateView[];
}

export interface DeviceDetail extends DeviceRow {
  readonly attributes: Json;
  readonly spec: Json;
  readonly status: Json;
  readonly driftItems: readonly { readonly field: string; readonly desired: Json; readonly reported: Json }[];
  readonly machine: MachineView | null;
  readonly transitions: readonly { readonly at: number; readonly from: string; readonly to: string }[];
  readonly metrics: readonly string[];
  readonly actions: readonly ActionView[];
  readonly openCommands: readonly CommandView[];
  /** The guards on its commands (docs/commands.md): circuit breaker and rate limit. */
  readonly guards?: GuardsView;
}

/** One event a device's machine processed, as the inspector lists it. */
export interface MachineEventView {
  /** Wall-clock ms. */
  readonly at: number;
  /** `HELLO`, `LINK_DOWN`, … ; xstate's own: `xstate.init` (started or restored), `xstate.after.…` (a delay). */
  readonly type: string;
  /** Its fields besides `type`; past 2,000 characters of JSON, a string cut there (`truncated`). */
  readonly payload: Json;
  readonly truncated?: boolean;
  /** The state before and after it (equal: it changed the context only, or nothing). */
  readonly from: string;
  readonly to: string;
}

/** A device's machine for the inspector (`deviceInspect`). */
export interface DeviceInspection {
  readonly id: string;
  readonly state: string;
  /** False when failed or restarting: nothing can be sent. */
  readonly running: boolean;
  /** The machine's context as persisted (JSON); null before it ever ran. */
  readonly context: Json;
  /** Every event type the machine has a transition on. */
  readonly events: readonly string[];
  /** Those its current state accepts: what `sendEvent` takes now. */
  readonly accepts: readonly string[];
  /** The last events it processed, newest first (at most 20). */
  readonly lastEvents: readonly MachineEventView[];
  /** Wall-clock ms since when this host kept the device's events (older ones are not known). */
  readonly recordedSince: number;
  /** The largest `sendEvent` payload, as JSON text. */
  readonly maxPayloadChars: number;
}

/** The largest text `devicesImport` takes. */
export const MAX_DEVICES_IMPORT_CHARS = 16 * 1024 * 1024;

/** One device as `devicesExport` writes it and `devicesImport` reads it. */
export interface DeviceRecordView {
  readonly id: string;
  readonly kind: string;
  readonly name: string;
  readonly tags: readonly string[];
  readonly attributes: Json;
}

/** One row of `devicesImport`: `added`, `updated`, `unchanged`, or `failed` with why (nothing done). */
export interface ImportRowResult {
  /** 1-based: the JSON array's index + 1, or the CSV line after the header. */
  readonly row: number;
  readonly id: string | null;
  readonly ok: boolean;
  readonly outcome: 'added' | 'updated' | 'unchanged' | 'failed';
  readonly error?: ApiError;
}
