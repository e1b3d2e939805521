/**
 * The fleet's side of the command lifecycle: the command tracker, the guards it consults
 * (command-guards.ts: why they are not processes), and which carrier takes a device's commands
 * (its kind's, registered with {@link Fleet.setCarrier}, else {@link FleetOptions.carrier}).
 */

import type { CommandGuards } from '../command-guards.js';
import { createCommandGuards } from '../command-guards.js';
import type { CommandCarrier, CommandTracker } from '../command-tracker.js';
import { createCommandTracker } from '../create-command-tracker.js';
import type { Entry } from './context.js';
import type { Fleet, FleetOptions } from './types.js';

export interface FleetCommands {
  readonly commands: CommandTracker;
  readonly guards: CommandGuards;
  /** The carrier of the device's kind, else the fleet's default; undefined for an unknown device. */
  readonly carrierOf: (deviceId: string) => CommandCarrier | undefined;
  readonly setCarrier: Fleet['setCarrier'];
}

export function createFleetCommands(
  options: FleetOptions,
  entries: ReadonlyMap<string, Entry>,
): FleetCommands {
  const { runtime, store } = options;
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
  // Part of the command lifecycle: see command-guards.ts for why they are not processes.
  const guards = createCommandGuards({
    clock: runtime.clock,
    settingsOf: (deviceId) => entries.get(deviceId)?.kind.guards,
    ...(options.fleetRate ? { fleetRate: options.fleetRate } : {}),
  });
  commands.addGuard(guards);

  return {
    commands,
    guards,
    carrierOf,
    setCarrier(kind, carrier) {
      carriers.set(kind, carrier);
      // Commands loaded before it registered may wait for devices already up.
      for (const e of entries.values())
        if (e.kind.kind === kind && e.link.up) commands.deviceOnline(e.record.id);
      return () => {
        if (carriers.get(kind) === carrier) carriers.delete(kind);
      };
    },
  };
}
