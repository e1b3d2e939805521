/** A fleet-table row for the renderer's unit tests: a connected generic device, with what a test changes. */
import type { DeviceRow } from '../../src/host/contract.js';

export function row(id: string, patch: Partial<DeviceRow> = {}): DeviceRow {
  return {
    id,
    name: id,
    kind: 'fleetvisor.generic',
    tags: [],
    health: 'running',
    state: 'connected',
    stateEnteredAt: 0,
    link: { up: true, via: 'mqtt', since: 0, reason: null },
    firmware: '1.0.0',
    lastSeen: 0,
    restarts: 0,
    drift: 0,
    failure: null,
    timers: [],
    ...patch,
  };
}
