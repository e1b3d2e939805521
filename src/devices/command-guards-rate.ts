/**
 * The command guards' rate limits (command-guards.ts): token buckets, one per device and one for
 * the fleet. A command takes one token from each, or neither when either is empty; it is then
 * refused with `rateLimited` and `retryAt`, when a token will be there.
 *
 * @example
 * const bucket = { tokens: 10, at: clock.now() };
 * refill(bucket, DEFAULT_DEVICE_RATE, clock.now() + 400); // 10 (at most `burst`)
 */
import type { CommandFailure } from './command-tracker.js';

export interface RateSettings {
  /** Tokens added per second. */
  readonly perSecond: number;
  /** Most tokens held (a burst after a quiet time). */
  readonly burst: number;
}

export const DEFAULT_DEVICE_RATE: RateSettings = { perSecond: 5, burst: 10 };
export const DEFAULT_FLEET_RATE: RateSettings = { perSecond: 200, burst: 400 };

/** A token bucket on a monotonic clock. */
export interface TokenBucket {
  tokens: number;
  at: number;
}

/** Tokens now: what it held plus what came in since, at most `burst`. Mutates the bucket. */
export function refill(bucket: TokenBucket, rate: RateSettings, nowMs: number): number {
  const elapsed = Math.max(0, nowMs - bucket.at);
  bucket.tokens = Math.min(rate.burst, bucket.tokens + (elapsed * rate.perSecond) / 1000);
  bucket.at = nowMs;
  return bucket.tokens;
}

/** How long until the bucket holds a whole token (0 when it does). */
export const waitForTokenMs = (bucket: TokenBucket, rate: RateSettings): number =>
  // The epsilon keeps float noise (0.998 tokens → 1.0000000000000009 ms) from adding a millisecond.
  bucket.tokens >= 1 ? 0 : Math.ceil(((1 - bucket.tokens) * 1000) / rate.perSecond - 1e-9);

export function resolveRate(
  where: string,
  rate: Partial<RateSettings> | undefined,
  defaults: RateSettings,
): RateSettings {
  const r = { ...defaults, ...rate };
  if (!(Number.isFinite(r.perSecond) && r.perSecond > 0))
    throw new Error(`${where}.perSecond must be > 0, got ${r.perSecond}`);
  if (!(Number.isFinite(r.burst) && r.burst >= 1))
    throw new Error(`${where}.burst must be ≥ 1, got ${r.burst}`);
  return r;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Refills both buckets to `nowMs` and takes one token from each; when either holds less than one,
 * takes none and answers the refusal (the device's bucket is looked at first). `wallMs` dates
 * the refusal's `retryAt`.
 */
export function takeTokens(
  deviceId: string,
  device: { readonly bucket: TokenBucket; readonly rate: RateSettings },
  fleetBucket: TokenBucket,
  fleetRate: RateSettings,
  nowMs: number,
  wallMs: number,
): CommandFailure | undefined {
  refill(device.bucket, device.rate, nowMs);
  refill(fleetBucket, fleetRate, nowMs);
  if (device.bucket.tokens < 1) {
    const retryAt = wallMs + waitForTokenMs(device.bucket, device.rate);
    return {
      code: 'rateLimited',
      message: `${deviceId}: at most ${device.rate.perSecond} commands a second (burst ${device.rate.burst}); retry at ${iso(retryAt)}`,
      retryAt,
    };
  }
  if (fleetBucket.tokens < 1) {
    const retryAt = wallMs + waitForTokenMs(fleetBucket, fleetRate);
    return {
      code: 'rateLimited',
      message: `the fleet takes at most ${fleetRate.perSecond} commands a second (burst ${fleetRate.burst}); retry at ${iso(retryAt)}`,
      retryAt,
    };
  }
  device.bucket.tokens -= 1;
  fleetBucket.tokens -= 1;
  return undefined;
}
