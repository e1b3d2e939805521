/**
 * The fleet: every device as a persisted, supervised resource.
 *
 * Tree: one dynamic supervisor (`devices`) holds a small supervisor per device, which holds the
 * device's link (when the links layer gives one) and its state machine, with `restForOne`: the
 * machine depends on the link — a new link means the machine must meet the device again — while
 * a machine crash must not drop a healthy link. A device that crashes more often than its
 * intensity allows makes its own supervisor give up (exit `shutdown`); device supervisors are
 * `transient` under the fleet, so that is not restarted: the device is shown failed with its
 * last crash as the reason, every other device runs on, and {@link Fleet.restartDevice} brings
 * it back from its last good state.
 *
 * Persistence: every snapshot change marks the device dirty; a writer saves the latest
 * persisted state of each dirty device (latest wins, one row per device, statelyai/xstate#5077)
 * with the absolute deadline of every running timeout. A restarted machine resumes its last good
 * state with the time that remained; after an app restart every device comes back in its stored
 * state, and a deadline that passed meanwhile fires at once. Bad data (an unparsable snapshot,
 * an unknown kind, invalid attributes) marks that one device failed with the reason.
 *
 * Telemetry is data, not a machine event: it goes to the store and pushes the liveness deadline
 * back directly. A liveness timeout also shows the link down (`silent: …`), so a device is never
 * `disconnected` with its link up; its next message (telemetry, heartbeat, a reply: `touch`)
 * brings link and machine back, and its commands go out again.
 *
 * Links: the links layer tells the fleet when a device's link comes up ({@link Fleet.linkUp},
 * after its `hello`) and goes down ({@link Fleet.linkDown}); the fleet keeps that presence and
 * makes the machine agree with it — `CONNECT` + `HELLO` when the link is up and the machine is
 * disconnected, `LINK_DOWN` when it goes away — also after a machine restart, so a restored
 * machine never shows `connected` for a device that left meanwhile. Actions declared with
 * `command` go to the device through the command tracker ({@link Fleet.commands}: audit, dispatch
 * by the carrier of the device's kind, confirm, timeout, expiry, cancel); its presence is this
 * one: `linkUp` / `linkDown` tell it when a device can be reached, whatever the convention.
 *
 * @example
 * const fleet = createFleet({ runtime, store, kinds: [genericDevice] });
 * await fleet.start();
 * await fleet.addDevice({ id: 'sensor-1', kind: 'fleetvisor.generic', name: 'Boiler room' });
 * await fleet.act('sensor-1', 'connect', {});
 */

import { randomUUID } from 'node:crypto';
import type { EventObject } from 'xstate';
import type { Failure, Result } from '../lib/result.js';
import type { ChildSpec } from '../runtime/child-spec.js';
import type { DynamicChildSpec, DynamicSupervisor } from '../runtime/dynamic-supervisor.js';
import { startDynamicSupervisor } from '../runtime/dynamic-supervisor.js';
import type { ExitReason } from '../runtime/exit-reason.js';
import { formatExitReason, isGaveUp } from '../runtime/exit-reason.js';
import type { MachineConfig, MachineTimer, PersistedMachineState } from '../runtime/machine-process.js';
import { MachineProcess } from '../runtime/machine-process.js';
import type { Pid, Process } from '../runtime/process.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Supervisor } from '../runtime/supervisor.js';
import { startSupervisor } from '../runtime/supervisor.js';
import type { TimerRef } from '../runtime/timers.js';
import type {
  DeviceRecord,
  EventInput,
  JsonObject,
  JsonValue,
  Store,
  TelemetryPoint,
} from '../store/store.js';
import type { CommandCarrier, CommandErrorCode, CommandTracker } from './command-tracker.js';
import { createCommandTracker } from './create-command-tracker.js';
import type { BuiltAction, DeviceKind, Drift } from './define-device.js';
import { formatIssues } from './define-device.js';
import { parseDeviceId } from './device-id.js';
import { planReconcile, sameDrift } from './reconciler.js';

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
  | 'stopped';

export type FleetResult<T> = Result<T, Failure<FleetErrorCode>>;

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

export interface FleetOptions {
  readonly runtime: Runtime;
  readonly store: Store;
  readonly kinds: readonly DeviceKind[];
  /** Per-device supervisor intensity: default 3 restarts within 5000 ms. */
  readonly deviceMaxRestarts?: number;
  readonly devicePeriodMs?: number;
  /** How often spec is compared with status; default 10 000 ms; 0 turns it off. */
  readonly reconcileIntervalMs?: number;
  /** The device's link process, started before its machine (the links layer provides it). */
  readonly startLink?: (device: DeviceView) => Process | null | Promise<Process | null>;
  /**
   * What carries the `command` actions of kinds without their own carrier ({@link Fleet.setCarrier}),
   * e.g. the protocol carrier of the links; without any, such actions fail with `noLink`.
   */
  readonly carrier?: CommandCarrier;
  /** The command tracker's bounds: default TTL (1 h), open commands per device (100). */
  readonly commands?: { readonly defaultTtlMs?: number | null; readonly maxOpenPerDevice?: number };
}

interface Entry {
  record: DeviceRecord;
  kind: DeviceKind;
  config: MachineConfig | undefined;
  machine: MachineProcess | undefined;
  supervisor: Supervisor | undefined;
  /** What the next machine resumes from (the store's row at app start). */
  restore: PersistedMachineState | undefined;
  stateLabel: string;
  stateEnteredAt: number;
  restarts: number;
  lastExit: ExitReason | undefined;
  failure: DeviceFailure | undefined;
  drift: readonly Drift[];
  stuck: DeviceView['stuck'];
  removed: boolean;
  link: LinkPresence;
  /** Firmware from the last hello, for the HELLO event. */
  linkFirmware: string | null;
  /** The link is shown down because the device fell silent (its liveness timeout), not by its link. */
  silent: boolean;
}

/** What the store keeps per device, inside its snapshot row. */
interface StoredState {
  readonly machine: JsonValue;
  readonly timers: readonly MachineTimer[];
  readonly stateEnteredAt: number;
}

export interface Fleet {
  /** The `devices` dynamic supervisor (the tree's device branch). */
  readonly supervisor: DynamicSupervisor;
  readonly kinds: ReadonlyMap<string, DeviceKind>;
  /** Every command to a device: its one lifecycle, whatever carries it. */
  readonly commands: CommandTracker;
  /**
   * Loads every device from the store and starts it (bad rows become failed devices), then the
   * open commands of the command log.
   */
  start(): Promise<{ started: number; failed: { id: string; code: string; message: string }[] }>;
  addDevice(input: AddDeviceInput): Promise<FleetResult<DeviceView>>;
  removeDevice(id: string): Promise<FleetResult<undefined>>;
  device(id: string): DeviceView | undefined;
  /** Whether the fleet has this device; cheap (no view is built), for per-message checks. */
  has(id: string): boolean;
  list(): DeviceView[];
  /** The machine process of a running device (for the tree and for tests). */
  machineOf(id: string): MachineProcess | undefined;
  /** Validates the action's arguments, audits it, and sends its event to the machine. */
  act(id: string, action: string, args: unknown, actor?: string): Promise<FleetResult<ActionReply>>;
  /** Brings a failed device back (from its last good state; from scratch if its snapshot was bad). */
  restartDevice(id: string): Promise<FleetResult<DeviceView>>;
  /** Telemetry: stored, and the liveness deadline pushed back; never a machine event. */
  ingestTelemetry(
    id: string,
    values: Readonly<Record<string, number>>,
    deviceTs?: number | null,
  ): Promise<FleetResult<number>>;
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

/** A liveness deadline is pushed back only once it is this much (or a tenth of it) stale. */
const LIVENESS_SLACK_MS = 1000;

const fail = (code: FleetErrorCode, message: string) => ({ ok: false as const, error: { code, message } });

export function createFleet(options: FleetOptions): Fleet {
  const { runtime, store } = options;
  const kinds = new Map(options.kinds.map((k) => [k.kind, k]));
  const entries = new Map<string, Entry>();
  const carriers = new Map<string, CommandCarrier>();
  const carrierOf = (deviceId: string): CommandCarrier | undefined => {
    const e = entries.get(deviceId);
    if (!e) return undefined;
    return carriers.get(e.kind.kind) ?? options.carrier;
  };
  const commands = createCommandTracker({
    runtime,
    store,
    carrierOf,
    ...(options.commands?.defaultTtlMs !== undefined ? { defaultTtlMs: options.commands.defaultTtlMs } : {}),
    ...(options.commands?.maxOpenPerDevice !== undefined
      ? { maxOpenPerDevice: options.commands.maxOpenPerDevice }
      : {}),
  });
  const maxRestarts = options.deviceMaxRestarts ?? 3;
  const periodMs = options.devicePeriodMs ?? 5000;
  const reconcileIntervalMs = options.reconcileIntervalMs ?? 10_000;
  const log = runtime.logger;
  let stopping = false;
  const observers = new Set<(activity: FleetActivity) => void>();
  const emit = (activity: FleetActivity) => {
    for (const o of observers) {
      try {
        o(activity);
      } catch (error) {
        runtime.report('fleet: an activity observer threw', error);
      }
    }
  };

  const fleetSup = startDynamicSupervisor(runtime, { name: 'devices', maxRestarts: 10, periodMs: 10_000 });
  if (!fleetSup.ok) throw new Error(fleetSup.error.message);
  const devices = fleetSup.value;

  // ---- the event log and the snapshot writer (both coalesce into few store calls) ----

  let pendingEvents: EventInput[] = [];
  let eventsFlush: Promise<void> | undefined;
  const logEvent = (kind: string, deviceId: string | undefined, data: JsonValue) => {
    const at = runtime.clock.wallNow();
    pendingEvents.push(deviceId === undefined ? { at, kind, data } : { at, kind, deviceId, data });
    eventsFlush ??= writeEvents();
  };
  async function writeEvents(): Promise<void> {
    await Promise.resolve(); // gather the events of this turn into one write
    try {
      while (pendingEvents.length > 0) {
        const batch = pendingEvents;
        pendingEvents = [];
        await store
          .appendEvents(batch)
          .catch((error: unknown) => runtime.report('writing device events failed', error));
      }
    } finally {
      eventsFlush = undefined;
    }
  }

  const dirty = new Set<Entry>();
  let writing: Promise<void> | undefined;
  const markDirty = (e: Entry) => {
    dirty.add(e);
    writing ??= writeSnapshots();
  };
  async function writeSnapshots(): Promise<void> {
    // Yield first: the caller assigns this promise to `writing`, which `finally` must clear after.
    await Promise.resolve();
    try {
      while (dirty.size > 0) {
        const batch = [...dirty];
        dirty.clear();
        await Promise.all(
          batch.map((e) => {
            const state = e.machine?.persistedState();
            if (!state || e.removed) return undefined;
            const stored: StoredState = {
              machine: state.snapshot as JsonValue,
              timers: state.timers,
              stateEnteredAt: e.stateEnteredAt,
            };
            return store
              .saveSnapshot({
                deviceId: e.record.id,
                kind: e.kind.kind,
                snapshot: stored as unknown as JsonValue,
                deadlines: state.timers.map((t) => ({
                  label: `${t.kind}:${t.id}`,
                  wallDeadlineMs: t.wallDeadlineMs,
                  delayMs: t.delayMs,
                })),
                version: e.kind.snapshotVersion,
              })
              .catch((error: unknown) =>
                runtime.report(`saving the snapshot of ${e.record.id} failed`, error),
              );
          }),
        );
      }
    } finally {
      writing = undefined;
    }
  }

  // ---- views ----

  const view = (e: Entry): DeviceView => ({
    id: e.record.id,
    kind: e.record.kind,
    name: e.record.name,
    tags: e.record.tags,
    attributes: e.record.attributes,
    spec: e.record.spec,
    status: e.record.status,
    health: e.failure ? 'failed' : e.supervisor ? 'running' : 'stopped',
    state: e.machine?.state ?? e.stateLabel,
    stateEnteredAt: e.stateEnteredAt,
    timers: e.machine?.alive ? e.machine.timers() : [],
    restarts: e.restarts,
    failure: e.failure,
    drift: e.drift,
    stuck: e.stuck,
    pid: e.supervisor?.pid,
    link: e.link,
  });

  // ---- machines ----

  const onTransition = (p: MachineProcess) => {
    const e = entries.get(p.name);
    if (!e || e.machine !== p) return;
    const state = p.state;
    const liveness = e.kind.liveness;
    const wasLive = liveness?.states.includes(e.stateLabel) ?? false;
    if (state !== e.stateLabel) {
      const from = e.stateLabel;
      e.stateLabel = state;
      e.stateEnteredAt = runtime.clock.wallNow();
      e.stuck = undefined;
      logEvent('device.state', e.record.id, { from, to: state });
    }
    if (liveness) {
      const running = p.hasTimer('named', 'liveness');
      // Left the live states with the liveness timer gone: it fired. The link is shown down too,
      // so the API never shows a silent device `disconnected` with its link up.
      if (wasLive && !liveness.states.includes(state) && !running && e.link.up) fallSilent(e);
      if (liveness.states.includes(state)) {
        if (!running)
          p.startTimer('named', 'liveness', liveness.timeoutMs(e.record.attributes), liveness.event);
      } else if (running) p.cancelTimer('named', 'liveness');
    }
    markDirty(e);
  };

  const machineSpec = (e: Entry): ChildSpec => ({
    id: 'machine',
    shutdown: 1000,
    start: () => {
      const previous = e.machine;
      const restore = previous ? (previous.persistedState() ?? e.restore) : e.restore;
      if (previous) e.restarts++;
      e.restore = undefined;
      const p = new MachineProcess(runtime, e.record.id, e.config!, { restore, childId: 'machine' });
      p.onExit((reason) => {
        e.lastExit = reason;
        if (reason.type === 'error') {
          log.warn(`device ${e.record.id} crashed: ${reason.error.message}`);
          logEvent('device.crashed', e.record.id, { reason: formatExitReason(reason) });
        }
      });
      e.machine = p;
      if (p.alive) {
        if (p.state !== e.stateLabel) {
          e.stateLabel = p.state;
          e.stateEnteredAt = runtime.clock.wallNow();
        }
        onTransition(p);
        // A restored machine meets the link as it is now, not as it was when the state was saved.
        if (e.link.since !== null) syncLink(e, e.link.up);
      }
      return p;
    },
  });

  const deviceSpec: DynamicChildSpec<Entry> = {
    restart: 'transient',
    type: 'supervisor',
    shutdown: 'infinity',
    idOf: (e) => e.record.id,
    start: async (e) => {
      const children: ChildSpec[] = [];
      if (options.startLink) {
        const startLink = options.startLink;
        children.push({ id: 'link', start: () => startLink(view(e)) });
      }
      children.push(machineSpec(e));
      const res = await startSupervisor(runtime, {
        name: `device:${e.record.id}`,
        strategy: 'restForOne',
        maxRestarts,
        periodMs,
        children,
      });
      if (!res.ok) throw new Error(res.error.message);
      const sup = res.value;
      e.supervisor = sup;
      sup.onExit((reason) => onDeviceExit(e, sup, reason));
      return sup;
    },
  };

  function onDeviceExit(e: Entry, sup: Supervisor, reason: ExitReason): void {
    if (e.supervisor !== sup) return;
    e.supervisor = undefined;
    if (stopping || e.removed) return;
    if (isGaveUp(reason)) {
      const last = e.lastExit ? formatExitReason(e.lastExit) : 'unknown';
      e.failure = {
        code: 'crashLoop',
        message: `crashed more than ${maxRestarts} times within ${periodMs} ms; last: ${last}`,
        at: runtime.clock.wallNow(),
      };
      log.error(`device ${e.record.id} failed: ${e.failure.message}`);
      logEvent('device.failed', e.record.id, { code: e.failure.code, message: e.failure.message });
    }
  }

  const machineConfig = (kind: DeviceKind, attributes: unknown): MachineConfig => ({
    machine: kind.machine,
    input: kind.input ? kind.input(attributes as never) : undefined,
    onTransition,
    hibernateAfterMs: kind.hibernateAfterMs,
  });

  const newEntry = (record: DeviceRecord, kind: DeviceKind): Entry => ({
    record,
    kind,
    config: undefined,
    machine: undefined,
    supervisor: undefined,
    restore: undefined,
    stateLabel: '',
    stateEnteredAt: runtime.clock.wallNow(),
    restarts: 0,
    lastExit: undefined,
    failure: undefined,
    drift: [],
    stuck: undefined,
    removed: false,
    link: { up: false, via: null, since: null, reason: null },
    linkFirmware: null,
    silent: false,
  });

  async function launch(e: Entry): Promise<FleetResult<DeviceView>> {
    const res = await devices.startChild(deviceSpec, e);
    if (!res.ok) {
      e.failure = { code: 'startFailed', message: res.error.message, at: runtime.clock.wallNow() };
      return fail('deviceFailed', res.error.message);
    }
    return { ok: true, value: view(e) };
  }

  const markFailed = (e: Entry, code: string, message: string) => {
    e.failure = { code, message, at: runtime.clock.wallNow() };
    log.error(`device ${e.record.id} failed: ${message}`);
    logEvent('device.failed', e.record.id, { code, message });
  };

  // ---- reconciler ----

  async function reconcileOne(e: Entry): Promise<void> {
    if (!e.supervisor || !e.machine?.alive) return;
    const plan = planReconcile(
      e.kind,
      {
        spec: e.record.spec,
        status: e.record.status,
        state: e.machine.state,
        stateEnteredAt: e.stateEnteredAt,
      },
      runtime.clock.wallNow(),
    );
    if (plan.error) runtime.report(`reconcile of ${e.record.id} threw`, plan.error);
    if (!sameDrift(plan.drift, e.drift) && plan.drift.length > 0)
      logEvent(
        'device.drift',
        e.record.id,
        plan.drift.map((d) => ({
          field: d.field,
          desired: d.desired as JsonValue,
          reported: d.reported as JsonValue,
        })),
      );
    e.drift = plan.drift;
    if (plan.stuck && !e.stuck) {
      log.warn(
        `device ${e.record.id} stuck in ${plan.stuck.state} for ${Math.round(plan.stuck.forMs)} ms (limit ${plan.stuck.limitMs} ms)`,
      );
      logEvent('device.stuck', e.record.id, plan.stuck);
    }
    e.stuck = plan.stuck;
    for (const d of plan.drift) {
      if (!d.action) continue;
      const built = e.kind.buildAction(d.action.name, d.action.args);
      if (!built.ok) continue;
      if (built.value.type === 'event' && !canHandle(e, built.value.event)) continue;
      // One corrective command at a time: not another while the last one waits.
      const open = commands.open(e.record.id);
      if (
        built.value.type === 'command' &&
        open.some((c) => c.action === (built.value as { command: string }).command)
      )
        continue;
      await act(e.record.id, d.action.name, d.action.args, 'system:reconciler');
    }
  }

  let reconcileTimer: TimerRef | undefined;
  const scheduleReconcile = () => {
    if (reconcileIntervalMs <= 0 || stopping) return;
    reconcileTimer = runtime.timers.schedule(
      reconcileIntervalMs,
      () => {
        reconcileTimer = undefined;
        void reconcileNow().finally(scheduleReconcile);
      },
      { label: 'reconcile' },
    );
  };

  async function reconcileNow(): Promise<void> {
    for (const e of entries.values()) await reconcileOne(e);
  }

  const canHandle = (e: Entry, event: EventObject): boolean => {
    const snap = e.machine?.getSnapshot() as { can?: (ev: EventObject) => boolean } | undefined;
    return !!snap?.can?.(event);
  };

  /** Sends the machine what it can take to agree with the link (`hello`: a fresh hello arrived). */
  function syncLink(e: Entry, hello: boolean): void {
    const p = e.machine;
    if (!p?.alive) return;
    const send = (event: EventObject) => {
      if (!canHandle(e, event)) return false;
      p.send(event as never);
      return p.alive;
    };
    if (e.link.up) {
      const connected = send({ type: 'CONNECT' });
      if ((hello || connected) && e.linkFirmware !== null)
        send({ type: 'HELLO', firmware: e.linkFirmware } as EventObject);
    } else send({ type: 'LINK_DOWN', reason: e.link.reason ?? 'link down' } as EventObject);
  }

  function fallSilent(e: Entry): void {
    const timeoutMs = e.kind.liveness?.timeoutMs(e.record.attributes);
    const reason = `silent: no message within ${timeoutMs} ms (liveness)`;
    e.silent = true;
    e.link = { up: false, via: e.link.via, since: runtime.clock.wallNow(), reason };
    logEvent('device.offline', e.record.id, { via: e.link.via, reason });
    commands.deviceOffline(e.record.id);
  }

  function pushLiveness(e: Entry): void {
    if (e.silent) {
      // A sign of life after the silence: its link was up all along.
      e.silent = false;
      e.link = { up: true, via: e.link.via, since: runtime.clock.wallNow(), reason: null };
      logEvent('device.online', e.record.id, { via: e.link.via, after: 'silence' });
      commands.deviceOnline(e.record.id);
    }
    const p = e.machine;
    const liveness = e.kind.liveness;
    if (p?.alive && liveness?.states.includes(p.state)) {
      // Re-arming on every message costs a cancel and a schedule each; a deadline that is still
      // within LIVENESS_SLACK of a fresh one is left alone (at most that much earlier: documented).
      const timeoutMs = liveness.timeoutMs(e.record.attributes);
      const left = p.timerRemainingMs('named', 'liveness');
      if (left === undefined || left < timeoutMs - Math.min(LIVENESS_SLACK_MS, timeoutMs / 10))
        p.startTimer('named', 'liveness', timeoutMs, liveness.event);
    }
    // Data again from a device its machine gave up on as silent: it is back.
    else if (p?.alive && e.link.up) syncLink(e, false);
  }

  // ---- the API ----

  async function act(
    id: string,
    action: string,
    args: unknown,
    actor = 'operator',
  ): Promise<FleetResult<ActionReply>> {
    if (stopping) return fail('stopped', 'the fleet is stopping');
    const e = entries.get(id);
    if (!e) return fail('notFound', `no device '${String(id).slice(0, 80)}'`);
    if (e.failure)
      return fail('deviceFailed', `device ${id} has failed (${e.failure.message}); restart it first`);
    const built = e.kind.buildAction(action, args);
    if (!built.ok) return fail(built.code, built.message);
    if (built.value.type === 'command') return command(e, action, built.value, actor);
    const event = built.value.event;
    if (!e.machine?.alive) return fail('deviceFailed', `device ${id} is restarting`);
    const before = e.machine.state;
    if (!canHandle(e, event))
      return fail('notAllowedInState', `action '${action}' is not possible while ${id} is ${before}`);
    const commandId = randomUUID();
    const requestedAt = runtime.clock.wallNow();
    await store.recordCommand({
      commandId,
      deviceId: id,
      action,
      args: (args ?? {}) as JsonValue,
      actor,
      requestedAt,
    });
    e.machine.send(event as never);
    const after = e.machine?.alive ? e.machine.state : before;
    const crashed = !e.machine?.alive;
    await store.updateCommand(commandId, {
      status: crashed ? 'failed' : 'succeeded',
      ...(crashed
        ? {
            error: {
              code: 'crashed',
              message: e.lastExit ? formatExitReason(e.lastExit) : 'the device crashed',
            },
          }
        : { result: { state: after } }),
      completedAt: runtime.clock.wallNow(),
    });
    logEvent('device.action', id, { action, actor, commandId, from: before, to: after });
    return { ok: true, value: { commandId, state: after } };
  }

  async function command(
    e: Entry,
    action: string,
    built: Extract<BuiltAction, { type: 'command' }>,
    actor: string,
  ): Promise<FleetResult<ActionReply>> {
    const id = e.record.id;
    if (!carrierOf(id))
      return fail('noLink', `action '${action}' is sent to the device, and this fleet has no links`);
    const r = await commands.submit({ deviceId: id, action: built.command, args: built.args, actor });
    if (!r.ok) return fail(r.error.code, r.error.message); // the tracker's code, unchanged
    const state = e.machine?.alive ? e.machine.state : e.stateLabel;
    logEvent('device.command', id, { action, actor, commandId: r.value.commandId, status: r.value.status });
    return { ok: true, value: { commandId: r.value.commandId, state, commandStatus: r.value.status } };
  }

  return {
    supervisor: devices,
    kinds,
    commands,

    async start() {
      const failed: { id: string; code: string; message: string }[] = [];
      const rows = await store.listDevices();
      const snaps = new Map<string, Awaited<ReturnType<Store['loadSnapshots']>>[number]>();
      for (const s of await store.loadSnapshots({
        knownKinds: kinds.keys(),
        validate: (r) => {
          const v = kinds.get(r.kind)?.snapshotVersion;
          if (v !== undefined && r.version !== v)
            return `snapshot version ${r.version}, the app reads version ${v}`;
          const s = r.snapshot as unknown as StoredState | null;
          if (!s || typeof s !== 'object' || !Array.isArray(s.timers) || typeof s.machine !== 'object')
            return 'not a device snapshot (machine, timers)';
          return undefined;
        },
      }))
        snaps.set(s.deviceId, s);
      let started = 0;
      for (const row of rows) {
        if (!row.ok) {
          failed.push({ id: row.id, code: 'badRecord', message: row.error.message });
          log.error(`device row ${row.id} cannot be read: ${row.error.message}`);
          continue;
        }
        const record = row.value;
        const kind = kinds.get(record.kind);
        if (!kind) {
          const placeholder = newEntry(record, { kind: record.kind } as DeviceKind);
          entries.set(record.id, placeholder);
          const message = `unknown kind '${record.kind}' (known: ${[...kinds.keys()].join(', ')})`;
          markFailed(placeholder, 'unknownKind', message);
          failed.push({ id: record.id, code: 'unknownKind', message });
          continue;
        }
        const e = newEntry(record, kind);
        entries.set(record.id, e);
        const attrs = kind.parseAttributes(record.attributes);
        if (!attrs.ok) {
          markFailed(e, 'badAttributes', attrs.message);
          failed.push({ id: record.id, code: 'badAttributes', message: attrs.message });
          continue;
        }
        e.config = machineConfig(kind, attrs.value);
        const snap = snaps.get(record.id);
        if (snap && !snap.ok) {
          markFailed(e, snap.error.code, snap.error.message);
          failed.push({ id: record.id, code: snap.error.code, message: snap.error.message });
          continue;
        }
        if (snap?.ok) {
          const s = snap.value.snapshot as unknown as StoredState;
          e.restore = { snapshot: s.machine, timers: s.timers };
          e.stateEnteredAt = s.stateEnteredAt ?? e.stateEnteredAt;
        }
        const res = await launch(e);
        if (res.ok && e.machine?.alive) started++;
        else {
          const message = e.lastExit
            ? formatExitReason(e.lastExit)
            : res.ok
              ? 'did not start'
              : res.error.message;
          if (!e.failure) markFailed(e, 'badSnapshot', `stored state does not restore: ${message}`);
          failed.push({ id: record.id, code: e.failure?.code ?? 'badSnapshot', message });
        }
      }
      scheduleReconcile();
      await commands.load();
      return { started, failed };
    },

    async addDevice(input) {
      if (stopping) return fail('stopped', 'the fleet is stopping');
      const id = parseDeviceId(input.id);
      if (!id.ok) return fail('badDeviceId', id.error.message);
      if (entries.has(id.value)) return fail('alreadyExists', `device '${id.value}' already exists`);
      const kind = kinds.get(input.kind);
      if (!kind)
        return fail(
          'unknownKind',
          `unknown kind '${String(input.kind).slice(0, 80)}' (known: ${[...kinds.keys()].join(', ')})`,
        );
      const attrs = kind.parseAttributes(input.attributes ?? {});
      if (!attrs.ok) return fail('badAttributes', attrs.message);
      let spec: JsonObject = {};
      if (input.spec !== undefined) {
        const s = kind.spec ? kind.spec.safeParse(input.spec) : { success: true as const, data: input.spec };
        if (!s.success) return fail('badSpec', formatIssues(s.error));
        spec = s.data as JsonObject;
      }
      const saved = await store.upsertDevice({
        id: id.value,
        kind: kind.kind,
        name: input.name ?? id.value,
        tags: input.tags ?? [],
        attributes: attrs.value as JsonObject,
        spec,
      });
      if (!saved.ok) return fail('badAttributes', saved.error.message);
      const e = newEntry(saved.value, kind);
      e.config = machineConfig(kind, attrs.value);
      entries.set(id.value, e);
      logEvent('device.added', id.value, { kind: kind.kind });
      return launch(e);
    },

    async removeDevice(id) {
      const e = entries.get(id);
      if (!e) return fail('notFound', `no device '${String(id).slice(0, 80)}'`);
      e.removed = true;
      commands.cancelDevice(id, `device ${id} was removed from the fleet`);
      if (e.supervisor) await devices.terminateChild(e.supervisor.pid);
      entries.delete(id);
      await store.deleteDevice(id);
      logEvent('device.removed', id, null);
      return { ok: true, value: undefined };
    },

    has: (id) => entries.has(id),

    observe(listener) {
      observers.add(listener);
      return () => observers.delete(listener);
    },

    device: (id) => {
      const e = entries.get(id);
      return e ? view(e) : undefined;
    },
    list: () => [...entries.values()].map(view),
    machineOf: (id) => entries.get(id)?.machine,
    act,

    async restartDevice(id) {
      const e = entries.get(id);
      if (!e) return fail('notFound', `no device '${String(id).slice(0, 80)}'`);
      if (!e.failure)
        return fail('notFailed', `device ${id} is ${e.supervisor ? 'running' : 'stopped'}, not failed`);
      if (!kinds.has(e.record.kind)) return fail('unknownKind', e.failure.message);
      if (!e.config) {
        const attrs = e.kind.parseAttributes(e.record.attributes);
        if (!attrs.ok) return fail('badAttributes', attrs.message);
        e.config = machineConfig(e.kind, attrs.value);
      }
      if (e.failure.code === 'badSnapshot') {
        log.warn(`device ${id}: its stored state could not be restored and is discarded; starting fresh`);
        e.restore = undefined;
        e.machine = undefined;
      }
      e.failure = undefined;
      logEvent('device.restarted', id, { by: 'operator' });
      return launch(e);
    },

    async ingestTelemetry(id, values, deviceTs = null) {
      const e = entries.get(id);
      if (!e) return fail('notFound', `telemetry for unknown device '${String(id).slice(0, 80)}'`);
      const receivedAt = runtime.clock.wallNow();
      const points: TelemetryPoint[] = [];
      for (const metric in values)
        if (Object.hasOwn(values, metric))
          points.push({ deviceId: id, metric, deviceTs, receivedAt, value: values[metric]! });
      pushLiveness(e);
      if (observers.size > 0) emit({ type: 'telemetry', deviceId: id, at: receivedAt, values, deviceTs });
      const r = await store.appendTelemetry(points);
      if (!r.ok) return fail('stopped', r.error.message);
      return { ok: true, value: r.value.written };
    },

    setCarrier(kind, carrier) {
      carriers.set(kind, carrier);
      // Commands loaded before it registered may wait for devices already up.
      for (const e of entries.values())
        if (e.kind.kind === kind && e.link.up) commands.deviceOnline(e.record.id);
      return () => {
        if (carriers.get(kind) === carrier) carriers.delete(kind);
      };
    },

    linkUp(id, info) {
      const e = entries.get(id);
      if (!e) return fail('notFound', `link up for unknown device '${String(id).slice(0, 80)}'`);
      const changed = !e.link.up || e.link.via !== info.via;
      e.silent = false;
      e.linkFirmware = info.firmware;
      if (changed) {
        e.link = { up: true, via: info.via, since: runtime.clock.wallNow(), reason: null };
        logEvent('device.online', id, { via: info.via });
      }
      syncLink(e, true);
      commands.deviceOnline(id);
      return { ok: true, value: undefined };
    },

    linkDown(id, reason, linkOptions) {
      const e = entries.get(id);
      if (!e) return fail('notFound', `link down for unknown device '${String(id).slice(0, 80)}'`);
      if (!e.link.up && e.link.since !== null) {
        if ((linkOptions?.restate || e.silent) && e.link.reason !== reason) {
          e.silent = false;
          e.link = { ...e.link, reason };
          logEvent('device.offline', id, { via: e.link.via, reason, restated: true });
        }
        return { ok: true, value: undefined };
      }
      e.link = { up: false, via: e.link.via, since: runtime.clock.wallNow(), reason };
      logEvent('device.offline', id, { via: e.link.via, reason });
      syncLink(e, false);
      commands.deviceOffline(id);
      return { ok: true, value: undefined };
    },

    touch(id) {
      const e = entries.get(id);
      if (!e) return fail('notFound', `sign of life from unknown device '${String(id).slice(0, 80)}'`);
      pushLiveness(e);
      if (observers.size > 0) emit({ type: 'seen', deviceId: id, at: runtime.clock.wallNow() });
      return { ok: true, value: undefined };
    },

    async reportStatus(id, status) {
      const e = entries.get(id);
      if (!e) return fail('notFound', `status for unknown device '${String(id).slice(0, 80)}'`);
      const merged = { ...e.record.status, ...status };
      e.record = { ...e.record, status: merged };
      await store.setDeviceStatus(id, merged);
      await reconcileOne(e);
      return { ok: true, value: undefined };
    },

    async setSpec(id, spec) {
      const e = entries.get(id);
      if (!e) return fail('notFound', `no device '${String(id).slice(0, 80)}'`);
      const s = e.kind.spec ? e.kind.spec.safeParse(spec) : { success: true as const, data: spec };
      if (!s.success) return fail('badSpec', formatIssues(s.error));
      const saved = await store.upsertDevice({ ...e.record, spec: s.data as JsonObject });
      if (saved.ok) e.record = saved.value;
      logEvent('device.spec', id, s.data as JsonValue);
      await reconcileOne(e);
      return { ok: true, value: undefined };
    },

    reconcileNow,

    async flush() {
      while (writing || eventsFlush) await Promise.all([writing, eventsFlush]);
    },

    async stop() {
      stopping = true;
      await commands.stop();
      if (reconcileTimer) runtime.timers.cancel(reconcileTimer);
      // Save every device's latest state before its machine goes away.
      for (const e of entries.values()) if (e.machine?.alive) dirty.add(e);
      writing ??= writeSnapshots();
      await writing;
      await devices.stop();
      while (writing || eventsFlush) await Promise.all([writing, eventsFlush]);
    },
  };
}
