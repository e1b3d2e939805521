/**
 * The generic kind for devices that speak Fleetvisor's protocol (docs/protocol.md): attributes
 * with its timeouts, operator actions, and a reconciler that turns firmware drift into an update.
 */
import { z } from 'zod';
import type { Drift } from './define-device.js';
import { defineDevice } from './define-device.js';
import { genericMachine } from './generic.machine.js';

const version = z.string().regex(/^[0-9A-Za-z.+-]{1,32}$/, 'a version like 1.4.2');

export const genericAttributes = z.object({
  connectTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  livenessTimeoutMs: z.number().int().min(100).max(3_600_000).default(30_000),
  updateStepTimeoutMs: z.number().int().min(100).max(3_600_000).default(120_000),
});
export type GenericAttributes = z.infer<typeof genericAttributes>;

export const genericDevice = defineDevice({
  kind: 'fleetvisor.generic',
  title: 'Fleetvisor protocol device',
  attributes: genericAttributes,
  machine: genericMachine,
  input: (a: GenericAttributes) => ({
    connectTimeoutMs: a.connectTimeoutMs,
    updateStepTimeoutMs: a.updateStepTimeoutMs,
  }),
  actions: {
    connect: {
      args: z.object({}),
      toEvent: () => ({ type: 'CONNECT' }),
      description: 'Connect to the device',
    },
    disconnect: {
      args: z.object({}),
      toEvent: () => ({ type: 'DISCONNECT' }),
      description: 'Drop the connection',
      destructive: true,
    },
    update: {
      args: z.object({ version }),
      toEvent: (a: { version: string }) => ({ type: 'UPDATE', version: a.version }),
      description: 'Update the firmware to a version',
      destructive: true,
    },
    cancelUpdate: {
      args: z.object({}),
      toEvent: () => ({ type: 'UPDATE_CANCEL' }),
      description: 'Cancel a running update',
    },
  },
  spec: z.object({ firmware: version.optional() }).loose(),
  reconcile: ({ spec, status, state }) => {
    const drift: Drift[] = [];
    const desired = spec.firmware;
    const reported = status.firmware;
    if (typeof desired === 'string' && desired !== reported) {
      drift.push({
        field: 'firmware',
        desired,
        reported: reported ?? null,
        action: state === 'connected' ? { name: 'update', args: { version: desired } } : undefined,
      });
    }
    return drift;
  },
  liveness: {
    states: ['connected', 'updating.transfer', 'updating.verify', 'updating.confirm'],
    timeoutMs: (a: GenericAttributes) => a.livenessTimeoutMs,
    event: { type: 'LIVENESS_TIMEOUT' },
  },
  stuckAfterMs: { connecting: 5 * 60_000 },
});
