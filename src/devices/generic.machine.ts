/**
 * The life cycle of a device that speaks Fleetvisor's protocol:
 * disconnected → connecting → connected ⇄ updating.
 *
 * Timeouts: `connecting` gives up after `connectTimeoutMs`; each update step (transfer, verify,
 * apply, confirm) has its own deadline of `updateStepTimeoutMs`. Liveness is not an `after`:
 * the fleet keeps a named timeout (`liveness`) that every heartbeat or telemetry pushes back,
 * so data never goes through the machine; when it fires, LIVENESS_TIMEOUT arrives.
 */
import { assign, setup } from 'xstate';

export interface GenericInput {
  readonly connectTimeoutMs: number;
  readonly updateStepTimeoutMs: number;
}

export interface GenericContext {
  readonly connectTimeoutMs: number;
  readonly updateStepTimeoutMs: number;
  readonly attempts: number;
  readonly firmware: string | null;
  readonly target: string | null;
  readonly lastError: string | null;
}

export type GenericEvent =
  | { type: 'CONNECT' }
  | { type: 'DISCONNECT' }
  | { type: 'HELLO'; firmware: string }
  | { type: 'LINK_DOWN'; reason: string }
  | { type: 'LIVENESS_TIMEOUT' }
  | { type: 'UPDATE'; version: string }
  | { type: 'UPDATE_STEP_DONE' }
  | { type: 'UPDATE_FAILED'; reason: string }
  | { type: 'UPDATE_CANCEL' };

export const genericMachine = setup({
  types: {} as { context: GenericContext; events: GenericEvent; input: GenericInput },
  actions: {
    failStep: assign((_, params: { step: string }) => ({
      lastError: `update step '${params.step}' timed out`,
      target: null,
    })),
  },
  delays: {
    connectTimeout: ({ context }) => context.connectTimeoutMs,
    updateStepTimeout: ({ context }) => context.updateStepTimeoutMs,
  },
}).createMachine({
  id: 'device',
  initial: 'disconnected',
  context: ({ input }) => ({
    connectTimeoutMs: input.connectTimeoutMs,
    updateStepTimeoutMs: input.updateStepTimeoutMs,
    attempts: 0,
    firmware: null,
    target: null,
    lastError: null,
  }),
  states: {
    disconnected: {
      on: { CONNECT: 'connecting' },
    },
    connecting: {
      entry: assign({ attempts: ({ context }) => context.attempts + 1 }),
      after: {
        connectTimeout: { target: 'disconnected', actions: assign({ lastError: 'connect timed out' }) },
      },
      on: {
        HELLO: {
          target: 'connected',
          actions: assign({ firmware: ({ event }) => event.firmware, lastError: null, attempts: 0 }),
        },
        LINK_DOWN: { target: 'disconnected', actions: assign({ lastError: ({ event }) => event.reason }) },
        DISCONNECT: 'disconnected',
      },
    },
    connected: {
      on: {
        HELLO: { actions: assign({ firmware: ({ event }) => event.firmware }) },
        LIVENESS_TIMEOUT: { target: 'disconnected', actions: assign({ lastError: 'no heartbeat' }) },
        LINK_DOWN: { target: 'disconnected', actions: assign({ lastError: ({ event }) => event.reason }) },
        DISCONNECT: 'disconnected',
        UPDATE: { target: 'updating', actions: assign({ target: ({ event }) => event.version }) },
      },
    },
    updating: {
      initial: 'transfer',
      on: {
        UPDATE_FAILED: {
          target: 'connected',
          actions: assign({ lastError: ({ event }) => event.reason, target: null }),
        },
        UPDATE_CANCEL: { target: 'connected', actions: assign({ target: null }) },
      },
      states: {
        transfer: {
          after: {
            updateStepTimeout: {
              target: '#device.connected',
              actions: { type: 'failStep', params: { step: 'transfer' } },
            },
          },
          on: { UPDATE_STEP_DONE: 'verify' },
        },
        verify: {
          after: {
            updateStepTimeout: {
              target: '#device.connected',
              actions: { type: 'failStep', params: { step: 'verify' } },
            },
          },
          on: { UPDATE_STEP_DONE: 'apply' },
        },
        apply: {
          after: {
            updateStepTimeout: {
              target: '#device.connected',
              actions: { type: 'failStep', params: { step: 'apply' } },
            },
          },
          on: { UPDATE_STEP_DONE: 'confirm' },
        },
        confirm: {
          after: {
            updateStepTimeout: {
              target: '#device.connected',
              actions: { type: 'failStep', params: { step: 'confirm' } },
            },
          },
          on: {
            UPDATE_STEP_DONE: {
              target: '#device.connected',
              actions: assign({ firmware: ({ context }) => context.target, target: null, lastError: null }),
            },
          },
        },
      },
    },
  },
});
