/**
 * The Sparkplug convention's options, with their defaults, and their validation (once, at the
 * boundary: a `RangeError` naming the field).
 *
 * @example
 * validateSparkplugOptions({ hostId: 'scada', groups: ['Plant1'] }); // fine
 * validateSparkplugOptions({ groups: ['STATE'] }); // RangeError: 'STATE' is reserved, not a group
 */
import { z } from 'zod';
import { callback, checkOptions, nonEmptyString, nonNegativeInt, positiveInt } from '../../lib/options.js';
import type { ReconnectOptions } from '../../transports/reconnect.js';
import { reconnectSchema } from '../../transports/reconnect.js';
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
  /**
   * Most nodes and devices listed as discovered (`manual`, or not added); default 10 000. Past it
   * the oldest is dropped (counted): a flood of invented names does not grow without bound.
   */
  readonly maxDiscovered?: number;
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

/** A Sparkplug topic level (a host id, a group): no '/', '+' or '#' (the codec's `topicLevelProblem`). */
const topicLevel = z
  .string({ error: 'must be a non-empty string' })
  .min(1, { error: 'must be a non-empty string' })
  .refine((v) => topicLevelProblem(v) === undefined, { error: "must not contain '/', '+' or '#'" });

/** What `sparkplugConvention` accepts; the bridge fills the defaults itself. */
export const sparkplugOptionsSchema = z.object({
  hostId: topicLevel.optional(),
  groups: z
    .array(
      topicLevel.refine((g) => g !== 'STATE', { error: "is 'STATE', which is reserved, not a group" }),
      {
        error: 'must be an array of group ids',
      },
    )
    .optional(),
  adopt: z.enum(['auto', 'manual'], { error: "must be 'auto' or 'manual'" }).optional(),
  maxDiscovered: positiveInt.optional(),
  clientId: nonEmptyString.optional(),
  commandTimeoutMs: positiveInt.optional(),
  rebirthMinIntervalMs: nonNegativeInt.optional(),
  maxRebirthsPerMinute: nonNegativeInt.optional(),
  rebirthOnConnect: z.boolean({ error: 'must be true or false' }).optional(),
  maxPayloadBytes: positiveInt.optional(),
  maxErrorEventsPerMinute: nonNegativeInt.optional(),
  keepaliveMs: positiveInt.optional(),
  connectTimeoutMs: positiveInt.optional(),
  reconnect: reconnectSchema.optional(),
  random: callback.optional(),
});

/** Throws `RangeError` for a bad option, naming the field. */
export function validateSparkplugOptions(o: SparkplugOptions): void {
  checkOptions('sparkplugConvention', sparkplugOptionsSchema, o);
}
