/**
 * The Homie carrier: how a `set { node, property, value }` reaches a Homie device and is confirmed,
 * inside the fleet's one command lifecycle (src/devices/create-command-tracker.ts: audited before
 * the wire, kept while the device is away, reloaded after an app restart).
 *
 * - `prepare` checks the set against the property as the device described it (settable,
 *   `$datatype`, `$format`), from the bridge's live view or, when the bridge has not seen the
 *   device since it connected (an app restart), from the description the fleet stored in
 *   `status.properties`. A bad set is refused `badArgs`, naming the property; number datatypes take
 *   numbers (not the text `"12"`), booleans `true`/`false`, and `null` is refused like any other
 *   bad value.
 * - `dispatch` publishes `<base>/<id>/<node>/<prop>/set` (QoS 1, not retained) while the device is
 *   `ready` or `alert` and the bridge is connected; otherwise the set waits (`notReachable`) and
 *   goes out when the device is ready again.
 * - Confirmation: the device publishing the same value on the property topic ({@link HomieCarrier.echo});
 *   no echo within the reply time is `timedOut`. A set is idempotent on the device (it sets a value),
 *   so one unconfirmed when the link drops is sent again (`resendsAfterDrop`).
 *
 * @example
 * const carrier = createHomieCarrier({ fleet, route: (id) => bridgeOf(id), replyTimeoutMs: 10_000 });
 * fleet.setCarrier(HOMIE_KIND, carrier);
 * // in the bridge, on a property value:
 * carrier.echo('boiler', 'heater', 'target', spec, '21.5');
 */
import type { z } from 'zod';
import type { CommandCarrier, DispatchOutcome, TrackedCommand } from '../../devices/command-tracker.js';
import type { Fleet } from '../../devices/fleet.js';
import type { JsonObject } from '../../lib/json.js';
import { isJsonObject } from '../../lib/json.js';
import { err, ok } from '../../lib/result.js';
import type { HomieSetArgs } from './homie-kind.js';
import { homieSetArgs } from './homie-kind.js';
import type { ValueSpec } from './homie-values.js';
import { encodeSetValue, isHomieDatatype, quote, sameValue } from './homie-values.js';

/** One property as a set needs it. */
export interface HomieSetProperty {
  readonly node: string;
  readonly property: string;
  readonly spec: ValueSpec;
  /** `$settable` as announced; null when the device did not say. */
  readonly settable: boolean | null;
}

/** What the carrier needs of the bridge that serves a device's base topic. */
export interface HomieSetTarget {
  readonly baseTopic: string;
  /** The device's declared properties as the bridge sees them now; undefined: not seen since it connected. */
  describe(deviceId: string): ReadonlyMap<string, HomieSetProperty> | undefined;
  /**
   * Publishes the set; `notReachable` when the bridge is not connected or the device is not
   * `ready`/`alert`. `failed` is called if the broker refuses the publish.
   */
  publishSet(
    deviceId: string,
    set: { readonly node: string; readonly property: string; readonly payload: string },
    failed: (message: string) => void,
  ): 'sent' | 'notReachable';
}

export interface HomieCarrierOptions {
  readonly fleet: Fleet;
  /** The bridge serving this device's base topic; undefined: none runs for it. */
  route(deviceId: string): HomieSetTarget | undefined;
  /** How long a set waits for its echo; default 10 000 ms. */
  readonly replyTimeoutMs?: number;
  /** Most open sets per device; default 20. */
  readonly maxOpenPerDevice?: number;
}

export interface HomieCarrier extends CommandCarrier {
  /** A value the device published on a property: settles the sets it confirms. */
  echo(deviceId: string, node: string, property: string, spec: ValueSpec, payload: string): void;
}

/** The description the bridge stored in `status.properties` (what survives an app restart). */
function storedProperties(status: JsonObject | undefined): Map<string, HomieSetProperty> | undefined {
  const props = status?.properties;
  if (!isJsonObject(props)) return undefined;
  const out = new Map<string, HomieSetProperty>();
  for (const [key, p] of Object.entries(props)) {
    if (!isJsonObject(p) || typeof p.node !== 'string' || typeof p.property !== 'string') continue;
    const datatype = typeof p.datatype === 'string' && isHomieDatatype(p.datatype) ? p.datatype : 'string';
    const format = typeof p.format === 'string' ? p.format : null;
    const settable = typeof p.settable === 'boolean' ? p.settable : null;
    out.set(key, { node: p.node, property: p.property, spec: { datatype, format }, settable });
  }
  return out;
}

const describeSpec = (spec: ValueSpec): string =>
  spec.format ? `${spec.datatype} ${spec.format}` : spec.datatype;

const MAX_SHOWN_VALUE = 1024;

type Encoded =
  | { readonly ok: true; readonly payload: string; readonly spec: ValueSpec }
  | { readonly ok: false; readonly code: 'badArgs' | 'noLink'; readonly message: string };

/**
 * The payload of a set for the property as the device describes it (`props`; undefined: not
 * described), or why it cannot be sent: `noLink` while undescribed, else `badArgs` naming the property.
 */
function encodeSet(
  deviceId: string,
  baseTopic: string,
  props: ReadonlyMap<string, HomieSetProperty> | undefined,
  set: HomieSetArgs,
): Encoded {
  if (!props)
    return {
      ok: false,
      code: 'noLink',
      message: `Homie device ${deviceId} has not been seen on ${baseTopic}/ since the bridge connected, and describes no properties yet`,
    };
  const key = `${set.node}/${set.property}`;
  const p = props.get(key);
  if (!p) {
    const settable = [...props.values()]
      .filter((x) => x.settable === true)
      .map((x) => `${x.node}/${x.property}`);
    return {
      ok: false,
      code: 'badArgs',
      message: `device ${deviceId} has no property ${key} (settable: ${settable.length > 0 ? settable.join(', ') : 'none'})`,
    };
  }
  if (p.settable !== true)
    return {
      ok: false,
      code: 'badArgs',
      message: `property ${key} of ${deviceId} is not settable ($settable is ${p.settable ?? 'unset'})`,
    };
  const encoded = encodeSetValue(p.spec, set.value);
  if (!encoded.ok)
    return {
      ok: false,
      code: 'badArgs',
      message: `property ${key} of ${deviceId} (${describeSpec(p.spec)}): ${encoded.message}`,
    };
  return { ok: true, payload: encoded.payload, spec: p.spec };
}

/** Whether a value the device published on `node/property` confirms this open command. */
function confirms(
  c: TrackedCommand,
  node: string,
  property: string,
  spec: ValueSpec,
  payload: string,
): boolean {
  if (c.status !== 'sent' || c.carrier !== 'homie' || c.args.node !== node || c.args.property !== property)
    return false;
  const value = c.args.value;
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return false;
  const wanted = encodeSetValue(spec, value);
  return wanted.ok && sameValue(spec, wanted.payload, payload);
}

const issuesOf = (error: z.ZodError): string =>
  error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');

export function createHomieCarrier(options: HomieCarrierOptions): HomieCarrier {
  const { fleet } = options;
  const maxOpen = options.maxOpenPerDevice ?? 20;

  // Checked against the bridge's live view, or the description the fleet stored (an app restart).
  const encode = (deviceId: string, target: HomieSetTarget, set: HomieSetArgs) =>
    encodeSet(
      deviceId,
      target.baseTopic,
      target.describe(deviceId) ?? storedProperties(fleet.device(deviceId)?.status),
      set,
    );

  const noBridge = (deviceId: string) => {
    const base = fleet.device(deviceId)?.attributes.baseTopic ?? 'homie';
    return `no Homie bridge runs for base topic '${String(base)}'`;
  };

  return {
    name: 'homie',
    queuesWhileOffline: true,
    resendsAfterDrop: true,
    replyTimeoutMs: options.replyTimeoutMs ?? 10_000,

    prepare({ deviceId, action, args }) {
      if (action !== 'set')
        return err('badArgs', `Homie devices take 'set' only, not ${quote(String(action))}`);
      const parsed = homieSetArgs.safeParse(args);
      if (!parsed.success) return err('badArgs', `set: ${issuesOf(parsed.error)}`);
      const target = options.route(deviceId);
      if (!target) return err('noLink', noBridge(deviceId));
      const encoded = encode(deviceId, target, parsed.data);
      if (!encoded.ok) return err(encoded.code, encoded.message);
      const open = fleet.commands.open(deviceId).length;
      if (open >= maxOpen)
        return err('outboxFull', `device ${deviceId} has ${open} sets waiting for their echo`);
      const { node, property, value } = parsed.data;
      return ok({ node, property, value });
    },

    dispatch(command): DispatchOutcome {
      const target = options.route(command.deviceId);
      if (!target) return 'notReachable';
      const parsed = homieSetArgs.safeParse(command.args);
      if (!parsed.success)
        return { ok: false, error: { code: 'badArgs', message: `set: stored args no longer parse` } };
      // Checked again: the device may have described itself anew since the set was asked.
      const encoded = encode(command.deviceId, target, parsed.data);
      if (!encoded.ok)
        return encoded.code === 'noLink'
          ? 'notReachable'
          : { ok: false, error: { code: encoded.code, message: encoded.message } };
      const { commandId } = command;
      return target.publishSet(
        command.deviceId,
        { node: parsed.data.node, property: parsed.data.property, payload: encoded.payload },
        (message) => {
          fleet.commands.settle(commandId, { ok: false, error: { code: 'noLink', message } });
        },
      );
    },

    echo(deviceId, node, property, spec, payload) {
      for (const c of fleet.commands.open(deviceId))
        if (confirms(c, node, property, spec, payload))
          fleet.commands.settle(
            c.commandId,
            { ok: true, result: { value: payload.slice(0, MAX_SHOWN_VALUE) } },
            deviceId,
          );
    },
  };
}
