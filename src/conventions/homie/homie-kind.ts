/**
 * The `homie.device` kind: a Homie device (v3.0.1 or v4) in the fleet. Its machine mirrors the
 * device's `$state`:
 *
 * | `$state`       | machine state  | link presence (fleet)                |
 * | -------------- | -------------- | ------------------------------------ |
 * | (never seen)   | `disconnected` | —                                    |
 * | `init`         | `connecting`   | up (no firmware yet: no HELLO)       |
 * | `ready`        | `connected`    | up (HELLO with `$fw/version` or '')  |
 * | `alert`        | `alert`        | up                                   |
 * | `sleeping`     | `sleeping`     | down, `sleeping`                     |
 * | `disconnected` | `disconnected` | down, `disconnected`                 |
 * | `lost`         | `lost`         | down, `lost (last will)`             |
 *
 * The bridge sends `HOMIE_STATE` with each `$state` (every state takes it), then tells the fleet
 * the link presence; the fleet's own CONNECT / HELLO / LINK_DOWN keep a restarted machine in
 * line with that presence (`sleeping` and `lost` ignore HELLO and LINK_DOWN, `alert` ignores
 * CONNECT and HELLO, so a restart never turns a sleeping device `connected`; CONNECT moves a
 * sleeping or lost device to `connecting`). The broker connection dropping is a LINK_DOWN (`broker
 * unreachable`) for every device that was up: it waits in `disconnected` until its retained
 * `$state` comes back.
 *
 * One action, `set` (a command to the device): `{ node, property, value }`. The shape is checked
 * here; the value is checked per device when it is submitted, against the property the device
 * announced (`$settable`, `$datatype`, `$format`). `status.properties` lists each property
 * (`node/prop` → name, datatype, format, unit, settable, retained) and {@link homieSetForms} makes
 * a form per settable property from it.
 *
 * @example
 * const fleet = createFleet({ runtime, store, kinds: [homieDevice] });
 * await fleet.addDevice({ id: 'boiler', kind: HOMIE_KIND, attributes: { baseTopic: 'homie' } });
 * await fleet.act('boiler', 'set', { node: 'heater', property: 'target', value: 21.5 });
 * homieSetForms(fleet.device('boiler')!.status); // [{ node: 'heater', property: 'target', argsSchema: … }]
 */
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { defineDevice } from '../../devices/define-device.js';
import type { JsonObject, JsonValue } from '../../store/store.js';
import type { HomieDatatype } from './homie-values.js';
import { BASE_TOPIC, HOMIE_ID, isHomieDatatype, propertyValueSchema } from './homie-values.js';

export const HOMIE_KIND = 'homie.device';

export const HOMIE_STATES = ['init', 'ready', 'disconnected', 'sleeping', 'alert', 'lost'] as const;
export type HomieState = (typeof HOMIE_STATES)[number];

export function isHomieState(s: string): s is HomieState {
  return (HOMIE_STATES as readonly string[]).includes(s);
}

export interface HomieMachineContext {
  /** The last `$state` the device published, as the machine saw it. */
  readonly homieState: HomieState | null;
  readonly firmware: string | null;
  readonly lastError: string | null;
}

export type HomieMachineEvent =
  | { type: 'CONNECT' }
  | { type: 'HELLO'; firmware: string }
  | { type: 'LINK_DOWN'; reason: string }
  | { type: 'HOMIE_STATE'; state: HomieState };

const onState = (state: HomieState, target: string) => ({
  guard: { type: 'isState' as const, params: { state } },
  target,
  actions: { type: 'enter' as const, params: { state } },
});

export const homieMachine = setup({
  types: {} as { context: HomieMachineContext; events: HomieMachineEvent },
  guards: {
    isState: ({ event }, params: { state: HomieState }) =>
      event.type === 'HOMIE_STATE' && event.state === params.state,
  },
  actions: {
    enter: assign(({ context }, params: { state: HomieState }) => ({
      homieState: params.state,
      lastError:
        params.state === 'lost' ? 'lost (last will)' : params.state === 'ready' ? null : context.lastError,
    })),
    hello: assign(({ event }) => ({
      firmware: event.type === 'HELLO' && event.firmware !== '' ? event.firmware : null,
      lastError: null,
    })),
    down: assign(({ event }) => ({ lastError: event.type === 'LINK_DOWN' ? event.reason : null })),
  },
}).createMachine({
  id: 'homie',
  initial: 'disconnected',
  context: { homieState: null, firmware: null, lastError: null },
  on: {
    HOMIE_STATE: [
      onState('init', '.connecting'),
      onState('ready', '.connected'),
      onState('alert', '.alert'),
      onState('sleeping', '.sleeping'),
      onState('disconnected', '.disconnected'),
      onState('lost', '.lost'),
    ],
  },
  states: {
    disconnected: { on: { CONNECT: 'connecting' } },
    connecting: {
      on: {
        HELLO: { target: 'connected', actions: 'hello' },
        LINK_DOWN: { target: 'disconnected', actions: 'down' },
      },
    },
    connected: {
      on: {
        HELLO: { actions: 'hello' },
        LINK_DOWN: { target: 'disconnected', actions: 'down' },
      },
    },
    alert: { on: { LINK_DOWN: { target: 'disconnected', actions: 'down' } } },
    sleeping: { on: { CONNECT: 'connecting' } },
    lost: { on: { CONNECT: 'connecting' } },
  },
});

const homieId = z.string().regex(HOMIE_ID, 'a Homie id: a-z, 0-9 and -, not starting with -');

export const homieAttributes = z.object({
  /** Where the device lives: `<baseTopic>/<device id>/…`. */
  baseTopic: z.string().regex(BASE_TOPIC, 'a topic without wildcards, like homie').default('homie'),
});
export type HomieAttributes = z.infer<typeof homieAttributes>;

export const homieSetArgs = z.object({
  node: homieId,
  property: homieId,
  // null passes here so the property's own check refuses it, naming the property.
  value: z.union([z.string().max(4096), z.number(), z.boolean(), z.null()]),
});
export type HomieSetArgs = z.infer<typeof homieSetArgs>;

export const homieDevice = defineDevice({
  kind: HOMIE_KIND,
  title: 'Homie device',
  convention: 'homie',
  attributes: homieAttributes,
  machine: homieMachine,
  actions: {
    set: {
      args: homieSetArgs,
      command: 'set',
      description: 'Set a settable property (checked against its $datatype and $format)',
    },
  },
  // A device stuck in `init` has not finished announcing itself.
  stuckAfterMs: { connecting: 5 * 60_000 },
});

/** One property as `status.properties['node/prop']` holds it. */
export interface HomiePropertyStatus {
  readonly node: string;
  readonly property: string;
  readonly name: string | null;
  /** As announced; `string` when the device did not say (the spec's default). */
  readonly datatype: HomieDatatype;
  readonly format: string | null;
  readonly unit: string | null;
  readonly settable: boolean;
  readonly retained: boolean;
}

/** The form of one settable property: what the UI shows and the JSON Schema of `set`'s arguments. */
export interface HomieSetForm {
  readonly node: string;
  readonly property: string;
  readonly title: string;
  readonly argsSchema: Record<string, unknown>;
}

/**
 * The `set` forms of a Homie device, from its status: one per settable property, with `node` and
 * `property` fixed and `value` typed by `$datatype` / `$format` (min/max, enum, boolean …).
 *
 * @example
 * homieSetForms(fleet.device('boiler')!.status)[0].argsSchema;
 * // { type: 'object', properties: { node: { const: 'heater' }, property: { const: 'target' },
 * //   value: { type: 'number', minimum: 5, maximum: 30, title: 'Target' } }, required: [...] }
 */
export function homieSetForms(status: JsonObject): HomieSetForm[] {
  const props = status.properties;
  if (!props || typeof props !== 'object' || Array.isArray(props)) return [];
  const forms: HomieSetForm[] = [];
  for (const [key, raw] of Object.entries(props as Record<string, JsonValue>)) {
    const p = raw as unknown as Partial<HomiePropertyStatus> | null;
    if (!p || typeof p !== 'object' || p.settable !== true) continue;
    if (typeof p.node !== 'string' || typeof p.property !== 'string') continue;
    const datatype = typeof p.datatype === 'string' && isHomieDatatype(p.datatype) ? p.datatype : 'string';
    const value = propertyValueSchema({
      datatype,
      format: p.format ?? null,
      name: p.name ?? null,
      unit: p.unit ?? null,
    });
    forms.push({
      node: p.node,
      property: p.property,
      title: p.name || key,
      argsSchema: {
        type: 'object',
        properties: { node: { const: p.node }, property: { const: p.property }, value },
        required: ['node', 'property', 'value'],
        additionalProperties: false,
      },
    });
  }
  return forms;
}
