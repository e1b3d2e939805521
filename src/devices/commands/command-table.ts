/**
 * The command tracker's table of open commands (src/devices/create-command-tracker.ts): each open
 * command's entry (its view, its one timer, who waits for its end), indexed by id and by device
 * in request order, the devices whose link is up, and the ids each device completed lately. No
 * clock, no store, no carrier: the tracker's other parts act on these entries.
 *
 * @example
 * const table = createCommandTable();
 * const e = table.add(view); // view.status 'pending'
 * table.ofDevice(view.deviceId); // [e]
 * table.close(e); // no longer open; a late confirmation of it is a duplicate
 * table.completedLately(view.deviceId, view.commandId); // true
 */
import type { TimerRef } from '../../runtime/timers.js';
import type { TrackedCommand } from '../command-tracker.js';

/** One open command. */
export interface CommandEntry {
  view: TrackedCommand;
  /** Its expiry while pending, its reply timeout while sent. */
  timer: TimerRef | undefined;
  waiters: ((v: TrackedCommand) => void)[];
}

/** Confirmations remembered per device after completion, to tell a duplicate from a stranger. */
const RECENT_PER_DEVICE = 64;

export interface CommandTable {
  get(commandId: string): CommandEntry | undefined;
  /** Every open command, in request order (of this run: loaded ones in load order). */
  all(): CommandEntry[];
  /** A device's open commands, oldest first; a copy, safe to finish while iterating. */
  ofDevice(deviceId: string): CommandEntry[];
  countOf(deviceId: string): number;
  add(view: TrackedCommand): CommandEntry;
  /** It has its final status: no longer open, remembered as completed. */
  close(e: CommandEntry): void;
  /** Forgets a device's open commands, unremembered, and its presence; what was open. */
  release(deviceId: string): CommandEntry[];
  /** Orders each device's commands by request time (pages of a reload come in any order). */
  sortOldestFirst(): void;
  /** Whether the device completed this command lately; without a device, whether any did. */
  completedLately(deviceId: string | undefined, commandId: string): boolean;
  isOnline(deviceId: string): boolean;
  setOnline(deviceId: string, up: boolean): void;
  onlineDevices(): Iterable<string>;
}

export function createCommandTable(): CommandTable {
  const open = new Map<string, CommandEntry>(); // commandId → entry, insertion = request order
  const byDevice = new Map<string, Set<CommandEntry>>();
  const recent = new Map<string, string[]>(); // deviceId → recently completed commandIds
  const online = new Set<string>();

  return {
    get: (commandId) => open.get(commandId),
    all: () => [...open.values()],
    ofDevice: (deviceId) => [...(byDevice.get(deviceId) ?? [])],
    countOf: (deviceId) => byDevice.get(deviceId)?.size ?? 0,

    add(view) {
      const e: CommandEntry = { view, timer: undefined, waiters: [] };
      open.set(view.commandId, e);
      let set = byDevice.get(view.deviceId);
      if (!set) {
        set = new Set();
        byDevice.set(view.deviceId, set);
      }
      set.add(e);
      return e;
    },

    close(e) {
      const { commandId, deviceId } = e.view;
      open.delete(commandId);
      byDevice.get(deviceId)?.delete(e);
      if (byDevice.get(deviceId)?.size === 0) byDevice.delete(deviceId);
      const list = recent.get(deviceId) ?? [];
      list.push(commandId);
      if (list.length > RECENT_PER_DEVICE) list.shift();
      recent.set(deviceId, list);
    },

    release(deviceId) {
      const set = byDevice.get(deviceId);
      if (!set) return [];
      const entries = [...set];
      for (const e of entries) open.delete(e.view.commandId);
      byDevice.delete(deviceId);
      online.delete(deviceId);
      return entries;
    },

    sortOldestFirst() {
      for (const set of byDevice.values()) {
        const sorted = [...set].sort((a, b) => a.view.requestedAt - b.view.requestedAt);
        set.clear();
        for (const e of sorted) set.add(e);
      }
    },

    completedLately(deviceId, commandId) {
      if (deviceId !== undefined) return recent.get(deviceId)?.includes(commandId) ?? false;
      for (const list of recent.values()) if (list.includes(commandId)) return true;
      return false;
    },

    isOnline: (deviceId) => online.has(deviceId),
    setOnline(deviceId, up) {
      if (up) online.add(deviceId);
      else online.delete(deviceId);
    },
    onlineDevices: () => online,
  };
}
