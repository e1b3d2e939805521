/**
 * The life cycle of a device that speaks Fleetvisor's protocol:
 * disconnected → connecting → connected.
 *
 * Timeouts: `connecting` gives up after `connectTimeoutMs`. Liveness is not an `after`: the fleet
 * keeps a named timeout (`liveness`) that every heartbeat or telemetry pushes back, so data never
 * goes through the machine; when it fires, LIVENESS_TIMEOUT arrives.
 *
 * Firmware updates are not a state of this machine: the firmware workflow (src/firmware) drives
 * the device's fw.* transfer. The earlier `updating` states sent nothing to the device and only
 * timed out (issue 14), so they are gone.
 */
import { assign, setup } from 'xstate';

export interface GenericInput {
  readonly connectTimeoutMs: number;
}

export interface GenericContext {
  readonly connectTimeoutMs: number;
  readonly attempts: number;
  readonly firmware: string | null;
  readonly lastError: string | null;
}

export type GenericEvent =
  | { type: 'CONNECT' }
  | { type: 'DISCONNECT' }
  | { type: 'HELLO'; firmware: string }
  | { type: 'LINK_DOWN'; reason: string }
  | { type: 'LIVENESS_TIMEOUT' };

export const genericMachine = setup({
  types: {} as { context: GenericContext; events: GenericEvent; input: GenericInput },
  delays: {
    connectTimeout: ({ context }) => context.connectTimeoutMs,
  },
}).createMachine({
  id: 'device',
  initial: 'disconnected',
  context: ({ input }) => ({
    connectTimeoutMs: input.connectTimeoutMs,
    attempts: 0,
    firmware: null,
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
      },
    },
  },
});
