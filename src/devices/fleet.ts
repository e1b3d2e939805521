/**
 * The fleet: every device as a persisted, supervised resource.
 *
 * Tree: one dynamic supervisor (`devices`) holds a small supervisor per device, which holds the
 * device's state machine. A device that crashes more often than its intensity allows makes its
 * own supervisor give up (exit `shutdown`); device supervisors are `transient` under the fleet,
 * so that is not restarted: the device is shown failed with its last crash as the reason, every
 * other device runs on, and {@link Fleet.restartDevice} brings it back from its last good state.
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
 * The parts live in `fleet/`, one concern each: `persistence` (event log, snapshots),
 * `event-feed` (each event to the summary, the log and the watchers), `commands` (tracker,
 * guards, carriers), `child-specs` and `crash-loop` (the tree), `link-sync` (presence, liveness),
 * `activity` (telemetry, signs of life), `actions`, `reconcile`, `membership` (add, remove,
 * restart), `restore` (app start), `start-stop` (start, stop, cluster take-over and hand-over)
 * and `send-event` (the inspector's view and hand-sent events); this file assembles them.
 *
 * @example
 * const fleet = createFleet({ runtime, store, kinds: [genericDevice] });
 * await fleet.start();
 * await fleet.addDevice({ id: 'sensor-1', kind: 'fleetvisor.generic', name: 'Boiler room' });
 * await fleet.act('sensor-1', 'connect', {});
 */

import { startDynamicSupervisor } from '../runtime/dynamic-supervisor.js';
import { createAct } from './fleet/actions.js';
import { createActivity } from './fleet/activity.js';
import { createChildSpecs } from './fleet/child-specs.js';
import { createFleetCommands } from './fleet/commands.js';
import type { Entry, FleetContext } from './fleet/context.js';
import { view } from './fleet/context.js';
import { createEventFeed } from './fleet/event-feed.js';
import { canHandle, linkDown, linkUp } from './fleet/link-sync.js';
import { createMembership } from './fleet/membership.js';
import { createSnapshotWriter } from './fleet/persistence.js';
import { createReconcileLoop } from './fleet/reconcile.js';
import { inspectMachine, sendEvent } from './fleet/send-event.js';
import { createStartStop } from './fleet/start-stop.js';
import type { Fleet, FleetOptions } from './fleet/types.js';

export type { MachineInspection, SendEventErrorCode, SentEvent } from './fleet/send-event.js';
export type {
  ActionReply,
  AddDeviceInput,
  DeviceFailure,
  DevicePatch,
  DeviceUpdate,
  DeviceView,
  Fleet,
  FleetActivity,
  FleetErrorCode,
  FleetEvent,
  FleetOptions,
  FleetResult,
  LinkPresence,
} from './fleet/types.js';

export function createFleet(options: FleetOptions): Fleet {
  const { runtime, store } = options;
  const kinds = new Map(options.kinds.map((k) => [k.kind, k]));
  const entries = new Map<string, Entry>();
  const { commands, guards, carrierOf, setCarrier } = createFleetCommands(options, entries);
  const feed = createEventFeed(runtime, store, entries);
  const snapshots = createSnapshotWriter(runtime, store);
  const ctx: FleetContext = {
    runtime,
    store,
    kinds,
    entries,
    commands,
    carrierOf,
    maxRestarts: options.deviceMaxRestarts ?? 3,
    periodMs: options.devicePeriodMs ?? 5000,
    logEvent: feed.logEvent,
    markDirty: snapshots.markDirty,
    owns: options.owns,
    stopping: false,
  };

  const fleetSup = startDynamicSupervisor(runtime, { name: 'devices', maxRestarts: 10, periodMs: 10_000 });
  if (!fleetSup.ok) throw new Error(fleetSup.error.message);
  const devices = fleetSup.value;

  const specs = createChildSpecs(ctx);
  const act = createAct(ctx);
  const reconcile = createReconcileLoop(ctx, act, options.reconcileIntervalMs ?? 10_000);
  const membership = createMembership(ctx, devices, specs);
  const activity = createActivity(ctx);
  const run = createStartStop({ ctx, devices, specs, membership, reconcile, snapshots, feed, guards });

  return {
    supervisor: devices,
    kinds,
    commands,
    guards,

    start: run.start,
    takeOver: run.takeOver,
    handOver: run.handOver,

    addDevice: membership.addDevice,
    updateDevice: membership.updateDevice,
    async removeDevice(id) {
      const r = await membership.removeDevice(id);
      if (r.ok) guards.forget(id);
      return r;
    },
    restartDevice: membership.restartDevice,
    has: (id) => entries.has(id),
    device: (id) => {
      const e = entries.get(id);
      return e ? view(e) : undefined;
    },
    list: () => [...entries.values()].map(view),
    machineOf: (id) => entries.get(id)?.machine,
    deliver(id, event) {
      const e = entries.get(id);
      const p = e?.machine;
      if (!e || !p?.alive || !canHandle(e, event)) return false;
      p.send(event as never);
      return p.alive;
    },
    inspect: (id) => inspectMachine(ctx, id),
    sendEvent: (id, event, payload, actor) => sendEvent(ctx, id, event, payload, actor),
    act,
    observe: activity.observe,
    watchEvents: feed.watchEvents,
    ingestTelemetry: activity.ingestTelemetry,
    queueTelemetry: activity.queueTelemetry,
    touch: activity.touch,

    setCarrier,
    linkUp: (id, info) => linkUp(ctx, id, info),
    linkDown: (id, reason, linkOptions) => linkDown(ctx, id, reason, linkOptions),
    reportStatus: reconcile.reportStatus,
    setSpec: reconcile.setSpec,
    reconcileNow: reconcile.reconcileNow,
    flush: run.flush,
    stop: run.stop,
  };
}
