/**
 * The Sparkplug convention's options, with their defaults, and their validation (once, at the
 * boundary: a `RangeError` naming the field).
 *
 * @example
 * validateSparkplugOptions({ hostId: 'scada', groups: ['Plant1'] }); // fine
 * validateSparkplugOptions({ groups: ['STATE'] }); // RangeError: 'STATE' is reserved, not a group
 */
import type { ReconnectOptions } from '../../transports/reconnect.js';
import { topicLevelProblem } from './sparkplug-codec.js';

export interface SparkplugOptions {
  /** The Primary Host id: the STATE topic `spBv1.0/STATE/<hostId>`; default `fleetvisor`. */
  readonly hostId?: string;
  /** Sparkplug groups to follow; default all (`spBv1.0/+/#`). */
  readonly groups?: readonly string[];
  /**
   * An edge node or device the fleet does not know, on its birth: `auto` (default) adds it;
   * `manual` lists it in {@link SparkplugBridge.discovered} until {@link SparkplugBridge.adopt}.
   */
  readonly adopt?: 'auto' | 'manual';
  /** MQTT client id; default `<hostId>-sparkplug-host`. */
  readonly clientId?: string;
  /** How long a write waits for its value to come back; default 10 000 ms. */
  readonly commandTimeoutMs?: number;
  /** Least time between two unanswered rebirth requests to one node; default 5000 ms. */
  readonly rebirthMinIntervalMs?: number;
  /**
   * Rebirth requests the host makes on its own (gaps, data before birth, unreadable births) per
   * node per minute; default 6. Answered births do not reset it, so a node whose every answer
   * brings a new gap is not asked in a loop. An operator's `rebirth` and an adoption are not counted.
   */
  readonly maxRebirthsPerMinute?: number;
  /** Ask every known node for a rebirth on each (re)connection; default true. */
  readonly rebirthOnConnect?: boolean;
  /** Largest payload decoded (also after inflating a compressed one); default 1 MiB. */
  readonly maxPayloadBytes?: number;
  /** `device.badMessage` events per node or device per minute; default 10 (all are counted). */
  readonly maxErrorEventsPerMinute?: number;
  /** MQTT keepalive; default 30 000 ms. */
  readonly keepaliveMs?: number;
  /** TCP connect + CONNACK; default 10 000 ms. */
  readonly connectTimeoutMs?: number;
  readonly reconnect?: Partial<ReconnectOptions>;
  /** Source of jitter, [0, 1); default Math.random. */
  readonly random?: () => number;
}

/** Throws `RangeError` for a bad option, naming the field. */
export function validateSparkplugOptions(o: SparkplugOptions): void {
  const hostProblem = topicLevelProblem(o.hostId ?? 'fleetvisor');
  if (hostProblem) throw new RangeError(`sparkplugConvention: hostId ${hostProblem}`);
  if (o.groups !== undefined) {
    if (!Array.isArray(o.groups))
      throw new RangeError('sparkplugConvention: groups must be an array of group ids');
    for (const g of o.groups) {
      const p = topicLevelProblem(g);
      if (p) throw new RangeError(`sparkplugConvention: group ${p}`);
      if (g === 'STATE') throw new RangeError("sparkplugConvention: 'STATE' is reserved, not a group");
    }
  }
  if (o.adopt !== undefined && o.adopt !== 'auto' && o.adopt !== 'manual')
    throw new RangeError(`sparkplugConvention: adopt must be 'auto' or 'manual', got ${String(o.adopt)}`);
  const positive: [string, number | undefined][] = [
    ['commandTimeoutMs', o.commandTimeoutMs],
    ['maxPayloadBytes', o.maxPayloadBytes],
    ['keepaliveMs', o.keepaliveMs],
    ['connectTimeoutMs', o.connectTimeoutMs],
  ];
  for (const [field, value] of positive)
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0))
      throw new RangeError(`sparkplugConvention: ${field} must be a positive integer, got ${String(value)}`);
  for (const [field, value] of [
    ['rebirthMinIntervalMs', o.rebirthMinIntervalMs],
    ['maxRebirthsPerMinute', o.maxRebirthsPerMinute],
    ['maxErrorEventsPerMinute', o.maxErrorEventsPerMinute],
  ] as const)
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0))
      throw new RangeError(
        `sparkplugConvention: ${field} must be a non-negative integer, got ${String(value)}`,
      );
}
