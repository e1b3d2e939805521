/**
 * The Sparkplug B device kinds: `sparkplug.node` (an edge node) and `sparkplug.device` (a device
 * behind one), their lifecycle machine, and how Sparkplug names become fleet ids.
 *
 * Lifecycle (both kinds): `disconnected` → `connected` on a birth (the bridge calls
 * `fleet.linkUp`, which sends CONNECT, then HELLO with the firmware the birth names) →
 * `disconnected` on a death (LINK_DOWN). `stale`: the host asked for a rebirth (a seq gap, data
 * before a birth) or the node was reborn and this device's own DBIRTH has not come yet — the
 * values keep flowing, but the metric definitions are not trusted until the next birth (HELLO).
 * There is no heartbeat in Sparkplug: a node's liveness is its MQTT session, ended by its NDEATH.
 *
 * Fleet ids: `<group>-<node>` and `<group>-<node>-<device>`, each name with every character
 * outside `[A-Za-z0-9_-]` replaced by `_`; longer than 64 characters is refused, with the
 * reason. The original names are the device's attributes (`group`, `node`, `device`).
 *
 * Actions: `write { metric, value }` (an NCMD or DCMD; the bridge checks the value against the
 * metric's datatype from the birth) on both kinds, and `rebirth` on nodes.
 *
 * @example
 * sparkplugFleetId('Plant 1', 'Line4');           // { ok: true, value: 'Plant_1-Line4' }
 * sparkplugFleetId('Plant 1', 'Line4', 'Press2'); // { ok: true, value: 'Plant_1-Line4-Press2' }
 * await fleet.act('Plant_1-Line4-Press2', 'write', { metric: 'setpoint', value: 42 });
 * await fleet.act('Plant_1-Line4', 'rebirth', {});
 */
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { defineDevice } from '../../devices/define-device.js';

export const SPARKPLUG_NODE_KIND = 'sparkplug.node';
export const SPARKPLUG_DEVICE_KIND = 'sparkplug.device';

/** Longest fleet id (src/transports/protocol.ts: `[A-Za-z0-9_-]{1,64}`). */
const MAX_ID = 64;

/** A Sparkplug name made safe for a fleet id: every other character becomes `_`. */
export function safeIdPart(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/gu, '_');
}

/**
 * The fleet id of an edge node (no `device`) or of a device; refused, with the reason, when it
 * would be longer than 64 characters.
 *
 * @example
 * sparkplugFleetId('g', 'n'.repeat(70)); // { ok: false, error: "fleet id 'g-nnn…' would be 72 characters; the limit is 64 …" }
 */
export function sparkplugFleetId(
  group: string,
  node: string,
  device?: string,
): { ok: true; value: string } | { ok: false; error: string } {
  const id =
    device === undefined
      ? `${safeIdPart(group)}-${safeIdPart(node)}`
      : `${safeIdPart(group)}-${safeIdPart(node)}-${safeIdPart(device)}`;
  if (id.length > MAX_ID) {
    const what = device === undefined ? `edge node ${group}/${node}` : `device ${group}/${node}/${device}`;
    return {
      ok: false,
      error: `fleet id '${id.slice(0, 40)}…' of ${what.slice(0, 200)} would be ${id.length} characters; the limit is ${MAX_ID} (shorten the Sparkplug group, node or device name)`,
    };
  }
  return { ok: true, value: id };
}

// ---- the lifecycle ----

export interface SparkplugContext {
  /** From a birth metric naming a firmware or software version; null when none does. */
  readonly firmware: string | null;
  readonly lastError: string | null;
  /** Why the birth is not trusted any more (in `stale`). */
  readonly staleReason: string | null;
  readonly births: number;
}

export type SparkplugEvent =
  | { type: 'CONNECT' }
  | { type: 'HELLO'; firmware: string }
  | { type: 'LINK_DOWN'; reason: string }
  /** The birth is not trusted any more: a rebirth was asked for, or the node was reborn. */
  | { type: 'STALE'; reason: string };

/**
 * disconnected ⇄ connected ⇄ stale; a birth is CONNECT (+ HELLO), a death LINK_DOWN.
 *
 * @example
 * const actor = createActor(sparkplugMachine).start();
 * actor.send({ type: 'CONNECT' }); // connected
 * actor.send({ type: 'STALE', reason: 'seq gap' }); // stale
 * actor.send({ type: 'HELLO', firmware: '' }); // connected (a new birth)
 */
export const sparkplugMachine = setup({
  types: {} as { context: SparkplugContext; events: SparkplugEvent },
  actions: {
    /** A birth: the firmware it names (an empty one is none). */
    hello: assign({
      firmware: ({ event }) => (event.type === 'HELLO' && event.firmware !== '' ? event.firmware : null),
    }),
  },
}).createMachine({
  id: 'sparkplug',
  initial: 'disconnected',
  context: { firmware: null, lastError: null, staleReason: null, births: 0 },
  states: {
    disconnected: {
      on: {
        CONNECT: {
          target: 'connected',
          actions: assign({ births: ({ context }) => context.births + 1, lastError: null }),
        },
      },
    },
    connected: {
      entry: assign({ staleReason: null }),
      on: {
        HELLO: { actions: 'hello' },
        STALE: { target: 'stale', actions: assign({ staleReason: ({ event }) => event.reason }) },
        LINK_DOWN: { target: 'disconnected', actions: assign({ lastError: ({ event }) => event.reason }) },
      },
    },
    stale: {
      on: {
        HELLO: {
          target: 'connected',
          actions: ['hello', assign({ births: ({ context }) => context.births + 1 })],
        },
        STALE: { actions: assign({ staleReason: ({ event }) => event.reason }) },
        LINK_DOWN: {
          target: 'disconnected',
          actions: assign({ lastError: ({ event }) => event.reason, staleReason: null }),
        },
      },
    },
  },
});

// ---- the kinds ----

const name = z.string().min(1).max(256);

export const sparkplugNodeAttributes = z.object({
  /** The Sparkplug group id, as on the wire. */
  group: name,
  /** The edge node id, as on the wire. */
  node: name,
});
export type SparkplugNodeAttributes = z.infer<typeof sparkplugNodeAttributes>;

export const sparkplugDeviceAttributes = sparkplugNodeAttributes.extend({
  /** The device id, as on the wire. */
  device: name,
});
export type SparkplugDeviceAttributes = z.infer<typeof sparkplugDeviceAttributes>;

/** The arguments of `write`; the bridge checks the value against the metric's datatype. */
export const writeArgs = z.object({
  metric: z.string().min(1).max(512),
  value: z.union([z.number(), z.boolean(), z.string().max(65_536)]),
});
export type WriteArgs = z.infer<typeof writeArgs>;

const write = {
  args: writeArgs,
  command: 'write',
  description: 'Set a metric (a Sparkplug command); it succeeds when the device reports the new value back',
  destructive: true,
};

/** A birth not followed by its rebirth for this long is reported stuck. */
const STALE_STUCK_MS = 5 * 60_000;

export const sparkplugNodeKind = defineDevice({
  kind: SPARKPLUG_NODE_KIND,
  title: 'Sparkplug B edge node',
  convention: 'sparkplug',
  attributes: sparkplugNodeAttributes,
  machine: sparkplugMachine,
  actions: {
    write,
    rebirth: {
      args: z.object({}),
      command: 'rebirth',
      description: 'Ask the edge node to publish its births again (NCMD Node Control/Rebirth)',
    },
  },
  stuckAfterMs: { stale: STALE_STUCK_MS },
});

export const sparkplugDeviceKind = defineDevice({
  kind: SPARKPLUG_DEVICE_KIND,
  title: 'Sparkplug B device',
  convention: 'sparkplug',
  attributes: sparkplugDeviceAttributes,
  machine: sparkplugMachine,
  actions: { write },
  stuckAfterMs: { stale: STALE_STUCK_MS },
});
