/**
 * The generic kind for devices that speak Fleetvisor's protocol (docs/protocol.md): attributes
 * with its timeouts, operator actions, and a reconciler that reports firmware drift.
 */
import { z } from 'zod';
import type { Drift } from './define-device.js';
import { defineDevice } from './define-device.js';
import { genericMachine } from './generic.machine.js';

const version = z.string().regex(/^[0-9A-Za-z.+-]{1,32}$/, 'a version like 1.4.2');

export const genericAttributes = z.object({
  connectTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  livenessTimeoutMs: z.number().int().min(100).max(3_600_000).default(30_000),
});
export type GenericAttributes = z.infer<typeof genericAttributes>;

export const genericDevice = defineDevice({
  kind: 'fleetvisor.generic',
  title: 'Fleetvisor protocol device',
  attributes: genericAttributes,
  machine: genericMachine,
  input: (a: GenericAttributes) => ({
    connectTimeoutMs: a.connectTimeoutMs,
  }),
  actions: {
    connect: {
      args: z.object({}),
      toEvent: () => ({ type: 'CONNECT' }),
      description: 'Connect to the device',
    },
    // No `disconnect`: with the link up, the device was connected again within a second, so the
    // action had no lasting effect (issue 13 §6). The machine still accepts DISCONNECT; no one offers it.
    // No `update`: it moved the machine through `updating` states without sending anything to the
    // device, and the command log said it succeeded (issue 14). Firmware updates are the firmware
    // workflow's (src/firmware, docs/firmware.md §7), not an action of this kind.
    // Commands: sent to the device over its link (docs/protocol.md §4); they wait while it is offline.
    ping: { args: z.object({}), command: 'ping', description: 'Ask the device to answer' },
    reboot: { args: z.object({}), command: 'reboot', description: 'Reboot the device', destructive: true },
    identify: {
      args: z.object({ seconds: z.number().int().min(1).max(300).default(5) }),
      command: 'identify',
      description: 'Blink the device’s light so someone on site can find it',
    },
    setInterval: {
      args: z.object({ ms: z.number().int().min(100).max(3_600_000) }),
      command: 'setInterval',
      description: 'Set how often the device reports telemetry',
    },
    setConfig: {
      args: z.record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a name'), z.json()),
      command: 'setConfig',
      description: 'Merge settings into the device’s configuration',
    },
  },
  spec: z.object({ firmware: version.optional() }).loose(),
  reconcile: ({ spec, status }) => {
    const drift: Drift[] = [];
    const desired = spec.firmware;
    const reported = status.firmware;
    if (typeof desired === 'string' && desired !== reported) {
      drift.push({
        field: 'firmware',
        desired,
        reported: reported ?? null,
        // No corrective action: the kind has none (a firmware update is the firmware workflow's).
      });
    }
    return drift;
  },
  liveness: {
    states: ['connected'],
    timeoutMs: (a: GenericAttributes) => a.livenessTimeoutMs,
    event: { type: 'LIVENESS_TIMEOUT' },
  },
  stuckAfterMs: { connecting: 5 * 60_000 },
  // The simulator's slot (src/sim/sim-device.ts maxImageBytes); a real device kind states its own.
  firmwareSlotBytes: 4 * 1024 * 1024,
});
