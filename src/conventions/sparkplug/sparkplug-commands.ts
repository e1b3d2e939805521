/**
 * The NCMD/DCMD messages the host publishes: a write or a rebirth request to an edge node or one
 * of its devices, at QoS 0 and not retained (Sparkplug B). What they carry is decided elsewhere
 * (the carrier for commands, the session model for the host's own rebirth requests).
 *
 * @example
 * const m = rebirthMessage('Plant1', 'Line4', Date.now());
 * client.publish(m.topic, m.payload, COMMAND_PUBLISH);
 */
import type { Datatype, ScalarValue } from './sparkplug-codec.js';
import { commandTopic, encodeSparkplugCommand, REBIRTH_METRIC } from './sparkplug-codec.js';
import type { SparkplugFleetDevice } from './sparkplug-effects.js';
import { SPARKPLUG_DEVICE_KIND } from './sparkplug-kind.js';

/** Sparkplug: NCMD/DCMD at QoS 0. */
export const COMMAND_PUBLISH = { qos: 0, retain: false } as const;

export interface SparkplugAddress {
  readonly group: string;
  readonly node: string;
  /** Undefined for the edge node itself. */
  readonly device: string | undefined;
}

export interface SparkplugCommandMessage {
  readonly topic: string;
  readonly payload: Buffer;
}

/** Where a fleet node or device takes its commands (its Sparkplug names, from its attributes). */
export function commandAddress(v: SparkplugFleetDevice): SparkplugAddress {
  return {
    group: String(v.attributes.group),
    node: String(v.attributes.node),
    device: v.kind === SPARKPLUG_DEVICE_KIND ? String(v.attributes.device) : undefined,
  };
}

/** NCMD (no device) or DCMD with these metrics, stamped `at`. */
export function commandMessage(
  to: SparkplugAddress,
  metrics: readonly { readonly name: string; readonly datatype: Datatype; readonly value: ScalarValue }[],
  at: number,
): SparkplugCommandMessage {
  return {
    topic: commandTopic(to.group, to.node, to.device),
    payload: Buffer.from(encodeSparkplugCommand([...metrics], at)),
  };
}

/** NCMD `Node Control/Rebirth = true`: the node publishes its NBIRTH and DBIRTHs again. */
export function rebirthMessage(group: string, node: string, at: number): SparkplugCommandMessage {
  return commandMessage(
    { group, node, device: undefined },
    [{ name: REBIRTH_METRIC, datatype: 'Boolean', value: true }],
    at,
  );
}
