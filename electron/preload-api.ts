/**
 * What the preload exposes on `window.fleetvisor`, built from two injected IPC primitives so it
 * can be tested without Electron: exactly one function per contract method, each sending
 * `{ method, args }` on the one call channel, plus `subscribe` for the push stream. Nothing else:
 * no `ipcRenderer`, no generic `invoke(channel, …)` or `send`, no IPC event objects (their
 * `sender` is the `ipcRenderer` itself) — checklist item 20.
 *
 * The method names are listed here rather than read from `METHODS`, so the sandboxed preload
 * bundle carries no zod; the compiler refuses the list if it misses or adds a method, and a test
 * compares it with `Object.keys(METHODS)`.
 *
 * A call never rejects: a failed IPC round trip comes back as an `unavailable` envelope.
 *
 * @example
 * // electron/preload.ts
 * contextBridge.exposeInMainWorld('fleetvisor', buildBridge(invoke, on));
 * // renderer
 * const r = await window.fleetvisor.device({ id: 'pump-7' });
 * const off = window.fleetvisor.subscribe((m) => store.apply(m));
 */
import type { ArgsOf, Envelope, Method, PushMessage, Results } from '../src/host/contract.js';

/** The IPC channels between the preload and the main process: the only ones either side uses. */
export const PRELOAD_CHANNELS = Object.freeze({
  /** invoke `{ method, args }` → Envelope */
  call: 'fleetvisor:call',
  /** invoke: open (or reopen, with a fresh snapshot) this window's push stream */
  subscribe: 'fleetvisor:subscribe',
  /** invoke: close it */
  unsubscribe: 'fleetvisor:unsubscribe',
  /** main → renderer: one PushMessage */
  push: 'fleetvisor:push',
  /** invoke `{ kind, query }` → ExportFileResult: an export saved where the operator chooses */
  export: 'fleetvisor:export',
} as const);

export type PreloadChannel = (typeof PRELOAD_CHANNELS)[keyof typeof PRELOAD_CHANNELS];

/** Every contract method, once; the mapped type makes a missing or unknown name a compile error. */
const METHOD_SET: { readonly [M in Method]: true } = {
  tree: true,
  devices: true,
  device: true,
  deviceInspect: true,
  sendEvent: true,
  telemetry: true,
  events: true,
  commands: true,
  health: true,
  stats: true,
  kinds: true,
  discovered: true,
  act: true,
  restartDevice: true,
  killProcess: true,
  restartChild: true,
  terminateChild: true,
  processInfo: true,
  adopt: true,
  adoptBulk: true,
  adoptBulkStatus: true,
  adoptBulkCancel: true,
  cancelCommand: true,
  setDemo: true,
  firmwareList: true,
  firmwareImport: true,
  alarms: true,
  alarmAck: true,
  alarmShelve: true,
  alarmRules: true,
  alarmRuleSet: true,
  alarmRuleDelete: true,
  latestValues: true,
  firmwareUpdate: true,
  firmwareJobs: true,
  firmwareCancel: true,
  rolloutCreate: true,
  rollouts: true,
  rolloutPause: true,
  rolloutResume: true,
  rolloutCancel: true,
  rolloutDelete: true,
  cluster: true,
  settings: true,
  settingsSave: true,
  deviceAdd: true,
  deviceEdit: true,
  deviceRemove: true,
  modbusTestRead: true,
  devicesExport: true,
  devicesImport: true,
};

export const METHOD_NAMES: readonly Method[] = Object.freeze(Object.keys(METHOD_SET) as Method[]);

/** The object on `window.fleetvisor`. */
export type FleetvisorBridge = {
  readonly [M in Method]: (args: ArgsOf<M>) => Promise<Envelope<Results[M]>>;
} & {
  /** Listens to the push stream (a snapshot first, then diffs); returns the unsubscribe function. */
  readonly subscribe: (listener: (message: PushMessage) => void) => () => void;
  /**
   * Saves an export of events, commands or telemetry to a file the operator picks in a save
   * dialog; `query` is that of `GET /api/export/<kind>` (without `?`). Never rejects.
   */
  readonly exportToFile: (kind: string, query: string) => Promise<ExportToFileAnswer>;
};

/** What {@link FleetvisorBridge.exportToFile} answers (src/host/export-file.ts's result). */
export type ExportToFileAnswer =
  | { readonly ok: true; readonly path: string; readonly fileName: string; readonly bytes: number }
  | { readonly ok: false; readonly code: string; readonly message: string };

/** `ipcRenderer.invoke`, narrowed. */
export type Invoke = (channel: string, payload: unknown) => Promise<unknown>;
/** Listens on a channel, passing the payload only (never the IPC event); returns the remover. */
export type On = (channel: string, listener: (payload: unknown) => void) => () => void;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function buildBridge(invoke: Invoke, on: On): FleetvisorBridge {
  const bridge: Record<string, unknown> = {};
  for (const method of METHOD_NAMES) {
    bridge[method] = async (args: unknown): Promise<Envelope<unknown>> => {
      try {
        return (await invoke(PRELOAD_CHANNELS.call, { method, args })) as Envelope<unknown>;
      } catch (error) {
        return { ok: false, error: { code: 'unavailable', message: messageOf(error) } };
      }
    };
  }

  // One IPC listener for all of the page's subscribers; each new subscriber asks the host for a
  // fresh stream (so it starts from a snapshot), the last one to leave closes it.
  const listeners = new Set<(message: PushMessage) => void>();
  let stopListening: (() => void) | undefined;
  const dispatch = (payload: unknown) => {
    for (const listener of [...listeners]) {
      try {
        listener(payload as PushMessage);
      } catch (error) {
        console.error('fleetvisor: a push listener threw', error);
      }
    }
  };
  const signal = (channel: string) => {
    invoke(channel, null).catch((error: unknown) =>
      console.error(`fleetvisor: ${channel} failed`, messageOf(error)),
    );
  };

  bridge.subscribe = (listener: (message: PushMessage) => void): (() => void) => {
    if (typeof listener !== 'function') throw new TypeError('subscribe needs a listener function');
    const entry = (message: PushMessage) => listener(message);
    listeners.add(entry);
    stopListening ??= on(PRELOAD_CHANNELS.push, dispatch);
    signal(PRELOAD_CHANNELS.subscribe);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      listeners.delete(entry);
      if (listeners.size > 0) return;
      stopListening?.();
      stopListening = undefined;
      signal(PRELOAD_CHANNELS.unsubscribe);
    };
  };

  bridge.exportToFile = async (kind: string, query: string): Promise<ExportToFileAnswer> => {
    try {
      return (await invoke(PRELOAD_CHANNELS.export, { kind, query })) as ExportToFileAnswer;
    } catch (error) {
      return { ok: false, code: 'unavailable', message: messageOf(error) };
    }
  };

  return Object.freeze(bridge) as FleetvisorBridge;
}
