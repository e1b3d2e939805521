/**
 * The Homie convention's options: what can be tuned, and their validation at the boundary (a
 * RangeError naming the field). The bridge (src/conventions/homie/homie-bridge.ts) re-exports them.
 *
 * @example
 * validateOptions({ adopt: 'manual', setTimeoutMs: 5000 }); // ok
 * normalizeBase('homie/'); // 'homie'
 */

import { z } from 'zod';
import { callback, checkOptions, nonEmptyString, nonNegativeInt, positiveInt } from '../../lib/options.js';
import type { ReconnectOptions } from '../../transports/reconnect.js';
import { reconnectSchema } from '../../transports/reconnect.js';
import { BASE_TOPIC, quote } from './homie-values.js';

export interface HomieConventionOptions {
  /** Default `homie`; a trailing `/` (homie-device's `homie/`) is dropped. */
  readonly baseTopic?: string;
  /** A new device: `auto` (default) adds it to the fleet, `manual` lists it for the operator. */
  readonly adopt?: 'auto' | 'manual';
  /**
   * Default `fleetvisor-homie-<random>`. This and `keepaliveMs`, `connectTimeoutMs`, `reconnect`
   * apply only to a connection of its own: on the host's (the MQTT link's), the link's apply.
   */
  readonly clientId?: string;
  /** How long a `set` waits for the device to publish the new value; default 10 000 ms. */
  readonly setTimeoutMs?: number;
  /** Most open `set` commands per device; default 20. */
  readonly maxOpenSetsPerDevice?: number;
  /** MQTT keepalive; default 30 000 (whole seconds on the wire). */
  readonly keepaliveMs?: number;
  /** TCP connect + CONNACK; default 10 000. */
  readonly connectTimeoutMs?: number;
  readonly reconnect?: Partial<ReconnectOptions>;
  /** Source of jitter, [0, 1); default Math.random. */
  readonly random?: () => number;
  /** Most devices tracked (adopted or not); more are refused. Default 10 000. */
  readonly maxDevices?: number;
  /** Most properties tracked per device; default 1000. */
  readonly maxPropertiesPerDevice?: number;
  /** Largest payload read; default 16 KiB. */
  readonly maxPayloadBytes?: number;
  /** `device.badMessage` events written per device per minute; default 10 (all are counted). */
  readonly maxErrorEventsPerMinute?: number;
  /** Status changes are coalesced this long before one write; default 100 ms. */
  readonly statusDelayMs?: number;
  /** Wait after live traffic from an incomplete device before re-subscribing; default 500 ms. */
  readonly resyncDelayMs?: number;
}

/** `homie/` → `homie`; throws RangeError for a base that is not a plain topic. */
export function normalizeBase(base: string | undefined): string {
  const b = (base ?? 'homie').replace(/\/$/, '');
  if (!BASE_TOPIC.test(b))
    throw new RangeError(`homie: baseTopic ${quote(String(base))} must be topic levels without wildcards`);
  return b;
}

/** What `homieConvention` accepts; the bridge fills the defaults itself. */
export const homieOptionsSchema = z.object({
  baseTopic: z.string({ error: 'must be a string' }).optional(),
  adopt: z.enum(['auto', 'manual'], { error: "must be 'auto' or 'manual'" }).optional(),
  clientId: nonEmptyString.optional(),
  setTimeoutMs: positiveInt.optional(),
  maxOpenSetsPerDevice: positiveInt.optional(),
  keepaliveMs: positiveInt.optional(),
  connectTimeoutMs: positiveInt.optional(),
  maxDevices: positiveInt.optional(),
  maxPropertiesPerDevice: positiveInt.optional(),
  maxPayloadBytes: positiveInt.optional(),
  maxErrorEventsPerMinute: nonNegativeInt.optional(),
  statusDelayMs: nonNegativeInt.optional(),
  resyncDelayMs: nonNegativeInt.optional(),
  reconnect: reconnectSchema.optional(),
  random: callback.optional(),
});

/** Throws RangeError naming the first bad field (the base topic's rule is {@link normalizeBase}'s). */
export function validateOptions(o: HomieConventionOptions): void {
  checkOptions('homieConvention', homieOptionsSchema, o);
  normalizeBase(o.baseTopic);
}
