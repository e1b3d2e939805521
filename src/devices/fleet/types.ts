/** The fleet's public types: what the host, the links and the conventions see of it. */

import type { Failure, Result } from '../../lib/result.js';
import type { DynamicSupervisor } from '../../runtime/dynamic-supervisor.js';
import type { MachineProcess, MachineTimer } from '../../runtime/machine-process.js';
import type { Pid } from '../../runtime/process.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { JsonObject, JsonValue, Store } from '../../store/store.js';
import type { CommandGuards, RateSettings } from '../command-guards.js';
import type { CommandCarrier, CommandErrorCode, CommandTracker } from '../command-tracker.js';
import type { DeviceKind, Drift } from '../define-device.js';
import type { MachineInspection, SendEventErrorCode, SentEvent } from './send-event.js';

/** The fleet's own codes, and a command's refusals as the tracker gave them (unchanged). */
export type FleetErrorCode =
  | CommandErrorCode
  | 'unknownKind'
  | 'badAttributes'
  | 'badSpec'
  | 'alreadyExists'
  | 'notFound'
  | 'unknownAction'
  | 'badArgs'
  | 'notAllowedInState'
  | 'deviceFailed'
  | 'notFailed'
  | 'noLink'
  | 'outboxFull'
  | 'stopped'
  /** Telemetry not stored: the store's write buffer is full (`Store.appendTelemetry`); nothing of it was written. */
  | 'overloaded'
  /** A cluster instance asked to add a device of a shard another instance leases (docs/scale-out.md). */
  | 'notOwner';

/** `retryAt` (wall-clock ms) comes with a guard's refusal: `circuitOpen`, `rateLimited`. */
export type FleetResult<T> = Result<T, Failure<FleetErrorCode> & { readonly retryAt?: number }>;

export interface DeviceFailure {
  /** `crashLoop` (past its restart intensity), `badSnapshot`, `unknownKind`, `badAttributes`, `badRecord`. */
  readonly code: string;
  readonly message: string;
  readonly at: number;
}

/** A device as the host and the UI see it. */
export interface DeviceView {
  readonly id: string;
  readonly kind: string;
  readonly name: string;
  readonly tags: readonly string[];
  readonly attributes: JsonObject;
  readonly spec: JsonObject;
  readonly status: JsonObject;
  readonly health: 'running' | 'failed' | 'stopped';
  readonly state: string;
  readonly stateEnteredAt: number;
  readonly timers: readonly MachineTimer[];
  readonly restarts: number;
  readonly failure: DeviceFailure | undefined;
  readonly drift: readonly Drift[];
  readonly stuck: { readonly state: string; readonly forMs: number; readonly limitMs: number } | undefined;
  readonly pid: Pid | undefined;
  /** The device's link as the links layer last reported it. */
  readonly link: LinkPresence;
}

/** Whether a device's link is up, over what, and since when. */
export interface LinkPresence {
  readonly up: boolean;
  /** `mqtt`, `serial:/dev/ttyUSB0`, … ; null before the device was ever seen. */
  readonly via: string | null;
  /** Wall-clock ms of the last change; null before the device was ever seen. */
  readonly since: number | null;
  /** Why it went down (`offline (last will)`, `port vanished` …). */
  readonly reason: string | null;
}

export interface AddDeviceInput {
  readonly id: string;
  readonly kind: string;
  readonly name?: string;
  readonly tags?: readonly string[];
  readonly attributes?: unknown;
  readonly spec?: unknown;
}

/** What {@link Fleet.updateDevice} may change; omitted fields stay. */
export interface DevicePatch {
  readonly name?: string;
  readonly tags?: readonly string[];
  /** The whole attributes object, validated by the kind's schema. */
  readonly attributes?: unknown;
}

export interface DeviceUpdate {
  readonly device: DeviceView;
  /** The fields that differed: `name`, `tags`, `attributes`. */
  readonly changed: readonly string[];
  /** Its processes were started again (the attributes changed). */
  readonly restarted: boolean;
}

export interface ActionReply {
  readonly commandId: string;
  /** The device's state after the action's event was handled. */
  readonly state: string;
  /** Device commands only: `sent`, or `pending` while the device is offline. */
  readonly commandStatus?: string;
}

/**
 * What the fleet hears from its devices, whatever their convention: the one feed for the live
 * figures (last seen, telemetry pushed to the views, the ingest rate).
 */
export type FleetActivity =
  | {
      readonly type: 'telemetry';
      readonly deviceId: string;
      readonly at: number;
      readonly values: Readonly<Record<string, number>>;
      readonly deviceTs: number | null;
    }
  /** A sign of life without data (heartbeat, reply, event, status). */
  | { readonly type: 'seen'; readonly deviceId: string; readonly at: number };

/** One entry of the device event log, as {@link Fleet.watchEvents} hands it out. */
export interface FleetEvent {
  readonly kind: string;
  readonly deviceId: string | undefined;
  /** Wall-clock ms. */
  readonly at: number;
  readonly data: JsonValue;
}

export interface FleetOptions {
  readonly runtime: Runtime;
  readonly store: Store;
  readonly kinds: readonly DeviceKind[];
  /** Per-device supervisor intensity: default 3 restarts within 5000 ms. */
  readonly deviceMaxRestarts?: number;
  readonly devicePeriodMs?: number;
  /** How often spec is compared with status; default 10 000 ms; 0 turns it off. */
  readonly reconcileIntervalMs?: number;
  /**
   * What carries the `command` actions of kinds without their own carrier ({@link Fleet.setCarrier}),
   * e.g. the protocol carrier of the links; without any, such actions fail with `noLink`.
   */
  readonly carrier?: CommandCarrier;
  /** The command tracker's bounds: default TTL (1 h), open commands per device (100). */
  readonly commands?: { readonly defaultTtlMs?: number | null; readonly maxOpenPerDevice?: number };
  /**
   * The fleet-wide command rate limit (src/devices/command-guards.ts); default 200 a second, burst
   * 400. Each kind sets its devices' breaker and rate limit (`defineDevice({ guards })`).
   */
  readonly fleetRate?: Partial<RateSettings>;
  /**
   * A cluster instance's share (docs/scale-out.md): only these devices are restored at start, and
   * {@link Fleet.takeOver} / {@link Fleet.handOver} follow the shards as they move. Default: all.
   */
  readonly owns?: (deviceId: string) => boolean;
}

export interface Fleet {
  /** The `devices` dynamic supervisor (the tree's device branch). */
  readonly supervisor: DynamicSupervisor;
  readonly kinds: ReadonlyMap<string, DeviceKind>;
  /** Every command to a device: its one lifecycle, whatever carries it. */
  readonly commands: CommandTracker;
  /** The guards on every command: each device's circuit breaker, the rate limits. */
  readonly guards: CommandGuards;
  /**
   * Loads every device from the store and starts it (bad rows become failed devices), then the
   * open commands of the command log.
   */
  start(): Promise<{ started: number; failed: { id: string; code: string; message: string }[] }>;
  /**
   * A cluster instance took over these devices' shards: restores those not running here from the
   * store (state, remaining timeouts, open commands), as at an app start.
   */
  takeOver(
    which: (deviceId: string) => boolean,
  ): Promise<{ started: number; failed: { id: string; code: string; message: string }[] }>;
  /**
   * These devices go to another cluster instance: with `save`, their latest state and events are
   * written first (a hand-over); without, nothing is (the lease is lost, writes would be refused).
   * Their processes stop and the fleet forgets them; their open commands stay in the command log
   * for the new owner. Resolves with how many left.
   */
  handOver(which: (deviceId: string) => boolean, options: { readonly save: boolean }): Promise<number>;
  addDevice(input: AddDeviceInput): Promise<FleetResult<DeviceView>>;
  /**
   * Changes a device's name, tags or attributes (validated by its kind), saved and audited
   * (`device.updated`); new attributes start its processes again with them.
   */
  updateDevice(id: string, patch: DevicePatch): Promise<FleetResult<DeviceUpdate>>;
  removeDevice(id: string): Promise<FleetResult<undefined>>;
  device(id: string): DeviceView | undefined;
  /** Whether the fleet has this device; cheap (no view is built), for per-message checks. */
  has(id: string): boolean;
  list(): DeviceView[];
  /** The machine process of a running device (for the tree and for tests). */
  machineOf(id: string): MachineProcess | undefined;
  /**
   * A convention's event for a device's machine (a Homie `$state`, a Sparkplug birth or death):
   * sent when the machine runs and its current state takes it; false otherwise (nothing sent).
   * Not audited: it is what the device said, not an operator's act. Conventions reach machines
   * only through this, never through {@link Fleet.machineOf}.
   */
  deliver(id: string, event: { readonly type: string; readonly [field: string]: unknown }): boolean;
  /** Its machine for the inspector: state, context, the events it knows and those it accepts now. */
  inspect(id: string): MachineInspection | undefined;
  /**
   * Sends an event by hand (the inspector): validated against the machine and its current state,
   * then audited as `device.eventSent` with `actor`. Codes in src/devices/fleet/send-event.ts.
   */
  sendEvent(
    id: string,
    event: string,
    payload: unknown,
    actor: string,
  ): Result<SentEvent, Failure<SendEventErrorCode>>;
  /** Validates the action's arguments, audits it, and sends its event to the machine. */
  act(id: string, action: string, args: unknown, actor?: string): Promise<FleetResult<ActionReply>>;
  /** Brings a failed device back (from its last good state; from scratch if its snapshot was bad). */
  restartDevice(id: string): Promise<FleetResult<DeviceView>>;
  /**
   * Telemetry: stored, and the liveness deadline pushed back; never a machine event. With
   * `origin` (the message's boot and seq, our protocol), the store keeps each point at most once
   * per (device, metric, boot, seq), however late a duplicate arrives (docs/protocol.md).
   * Refused `notFound` (no such device) or `overloaded` (the store's buffer is full: pause and
   * retry after `store.drained()`, or count the points as lost).
   */
  ingestTelemetry(
    id: string,
    values: Readonly<Record<string, number>>,
    deviceTs?: number | null,
    origin?: { readonly boot: number; readonly seq: number },
  ): Promise<FleetResult<number>>;
  /**
   * {@link Fleet.ingestTelemetry} for a link's hot path (issue 16): the same checks, liveness and
   * store write, but the answer is the turn's (every message of one socket read goes to the store
   * as one append), one promise shared by every `queueTelemetry` of the turn, so nothing is made
   * per message but its points. It settles once the turn is committed: `{ ok: true }`, or the
   * refusal that applies to all of it (`overloaded`); rejects as the store did. `notFound` alone.
   *
   * @example
   * const write = fleet.queueTelemetry('pump-7', { temp: 21.5 }, ts, { boot, seq });
   * write === fleet.queueTelemetry('pump-8', { temp: 19 }, ts, { boot, seq }); // true, same turn
   */
  queueTelemetry(
    id: string,
    values: Readonly<Record<string, number>>,
    deviceTs?: number | null,
    origin?: { readonly boot: number; readonly seq: number },
  ): Promise<FleetResult<undefined>>;
  /** The device's link is up (after its hello): the machine is brought to connected. */
  linkUp(
    id: string,
    info: { readonly via: string; readonly firmware: string | null },
  ): FleetResult<undefined>;
  /**
   * The device's link went away: the machine gets LINK_DOWN. Already down, it changes nothing,
   * unless `restate`: then the reason is replaced (the host's own broker drop explains wills that
   * arrived just before it).
   */
  linkDown(id: string, reason: string, options?: { readonly restate?: boolean }): FleetResult<undefined>;
  /** A sign of life without data (a heartbeat): pushes the liveness deadline back. */
  touch(id: string): FleetResult<undefined>;
  /** Every telemetry batch and sign of life from any device; the returned function stops it. */
  observe(listener: (activity: FleetActivity) => void): () => void;
  /**
   * Every entry of the device event log as the fleet writes it (`device.offline`, `device.failed`,
   * `device.drift`, …); the returned function stops it. A listener that throws is reported.
   */
  watchEvents(listener: (event: FleetEvent) => void): () => void;
  /**
   * What carries the `command` actions of one kind (a convention: Homie, Sparkplug, Modbus);
   * kinds without one use {@link FleetOptions.carrier}. The returned function unregisters it.
   */
  setCarrier(kind: string, carrier: CommandCarrier): () => void;
  /** Reported state from the device (merged), then reconciled. */
  reportStatus(id: string, status: JsonObject): Promise<FleetResult<undefined>>;
  /** Desired state from the operator (validated), then reconciled. */
  setSpec(id: string, spec: JsonObject): Promise<FleetResult<undefined>>;
  /** One reconcile pass over every running device now. */
  reconcileNow(): Promise<void>;
  /** Resolves when every snapshot change so far is committed. */
  flush(): Promise<void>;
  /** Stops every device (concurrently), then flushes the store writes. */
  stop(): Promise<void>;
}
