/**
 * The Homie convention's options: what can be tuned, and their validation at the boundary (a
 * RangeError naming the field). The bridge (src/conventions/homie/homie-bridge.ts) re-exports them.
 *
 * @example
 * validateOptions({ adopt: 'manual', setTimeoutMs: 5000 }); // ok
 * normalizeBase('homie/'); // 'homie'
 */

import type { ReconnectOptions } from '../../transports/reconnect.js';
import { BASE_TOPIC, quote } from './homie-values.js';

export interface HomieConventionOptions {
  /** Default `homie`; a trailing `/` (homie-device's `homie/`) is dropped. */
  readonly baseTopic?: string;
  /** A new device: `auto` (default) adds it to the fleet, `manual` lists it for the operator. */
  readonly adopt?: 'auto' | 'manual';
  /** Default `fleetvisor-homie-<random>`. */
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

/** Throws RangeError naming the first bad field. */
export function validateOptions(o: HomieConventionOptions): void {
  if (o.adopt !== undefined && o.adopt !== 'auto' && o.adopt !== 'manual')
    throw new RangeError(`homie: adopt must be 'auto' or 'manual', got ${quote(String(o.adopt))}`);
  const positive: [string, number | undefined][] = [
    ['setTimeoutMs', o.setTimeoutMs],
    ['maxOpenSetsPerDevice', o.maxOpenSetsPerDevice],
    ['keepaliveMs', o.keepaliveMs],
    ['connectTimeoutMs', o.connectTimeoutMs],
    ['maxDevices', o.maxDevices],
    ['maxPropertiesPerDevice', o.maxPropertiesPerDevice],
    ['maxPayloadBytes', o.maxPayloadBytes],
    ['reconnect.initialMs', o.reconnect?.initialMs],
    ['reconnect.maxMs', o.reconnect?.maxMs],
    ['reconnect.stableMs', o.reconnect?.stableMs],
  ];
  for (const [field, value] of positive)
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0))
      throw new RangeError(`homie: ${field} must be a positive integer, got ${String(value)}`);
  const nonNegative: [string, number | undefined][] = [
    ['maxErrorEventsPerMinute', o.maxErrorEventsPerMinute],
    ['statusDelayMs', o.statusDelayMs],
    ['resyncDelayMs', o.resyncDelayMs],
  ];
  for (const [field, value] of nonNegative)
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0))
      throw new RangeError(`homie: ${field} must be a non-negative integer, got ${String(value)}`);
  const jitter = o.reconnect?.jitter;
  if (jitter !== undefined && !(jitter >= 0 && jitter <= 1))
    throw new RangeError(`homie: reconnect.jitter must be within 0…1, got ${String(jitter)}`);
}
