/**
 * What the fleet's parts share: one entry per device, and the services every part uses (the
 * event log, the snapshot writer, the command tracker). Built once by `createFleet`.
 */

import type { ExitReason } from '../../runtime/exit-reason.js';
import type {
  MachineConfig,
  MachineProcess,
  MachineTimer,
  PersistedMachineState,
} from '../../runtime/machine-process.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { Supervisor } from '../../runtime/supervisor.js';
import type { DeviceRecord, JsonValue, Store } from '../../store/store.js';
import type { CommandCarrier, CommandTracker } from '../command-tracker.js';
import type { DeviceKind, Drift } from '../define-device.js';
import type { DeviceFailure, DeviceView, FleetErrorCode, LinkPresence } from './types.js';

export interface Entry {
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
export interface StoredState {
  readonly machine: JsonValue;
  readonly timers: readonly MachineTimer[];
  readonly stateEnteredAt: number;
}

export interface FleetContext {
  readonly runtime: Runtime;
  readonly store: Store;
  readonly kinds: ReadonlyMap<string, DeviceKind>;
  readonly entries: Map<string, Entry>;
  readonly commands: CommandTracker;
  readonly carrierOf: (deviceId: string) => CommandCarrier | undefined;
  /** Per-device supervisor intensity. */
  readonly maxRestarts: number;
  readonly periodMs: number;
  readonly logEvent: (kind: string, deviceId: string | undefined, data: JsonValue) => void;
  readonly markDirty: (e: Entry) => void;
  /** A cluster instance's share (FleetOptions.owns); undefined: every device. */
  readonly owns: ((deviceId: string) => boolean) | undefined;
  /** Set once by `stop`: no new work starts after it. */
  stopping: boolean;
}

export const fail = (code: FleetErrorCode, message: string) => ({
  ok: false as const,
  error: { code, message },
});

export const newEntry = (runtime: Runtime, record: DeviceRecord, kind: DeviceKind): Entry => ({
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

export const view = (e: Entry): DeviceView => ({
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

export const markFailed = (ctx: FleetContext, e: Entry, code: string, message: string): void => {
  e.failure = { code, message, at: ctx.runtime.clock.wallNow() };
  ctx.runtime.logger.error(`device ${e.record.id} failed: ${message}`);
  ctx.logEvent('device.failed', e.record.id, { code, message });
};
