/**
 * A simulated device's options (sim-types.ts) with their defaults filled and checked once, at
 * construction; and the default telemetry a device sends when it is given no `metrics`.
 *
 * @example
 * const o = resolveSimOptions({ id: 'pump-7' }); // { id: 'pump-7', kind: 'fleetvisor.generic', intervalMs: 1000, … }
 * resolveSimOptions({ id: 'pump-7', heartbeatMs: 5 }); // throws RangeError naming heartbeatMs
 */
import { parseDeviceId } from '../transports/protocol.js';
import { MAX_INTERVAL_MS, MIN_INTERVAL_MS } from './sim-commands.js';
import type { SimFirmwareOptions } from './sim-firmware.js';
import type { SimDeviceOptions } from './sim-types.js';

export interface ResolvedSimOptions {
  readonly id: string;
  readonly kind: string;
  readonly random: () => number;
  readonly now: () => number;
  readonly intervalMs: number;
  readonly heartbeatMs: number;
  readonly bootDelayMs: number;
  readonly maxImageBytes: number;
  readonly boot: number;
  readonly firmware: SimFirmwareOptions;
}

function isUint32(x: number): boolean {
  return Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
}

function checkInterval(ms: number, name: string): number {
  if (!(Number.isInteger(ms) && ms >= MIN_INTERVAL_MS && ms <= MAX_INTERVAL_MS)) {
    throw new RangeError(
      `SimDevice: ${name} must be an integer ${MIN_INTERVAL_MS}…${MAX_INTERVAL_MS}, got ${ms}`,
    );
  }
  return ms;
}

/**
 * The options with defaults (see {@link SimDeviceOptions}). Throws `RangeError` naming the first
 * bad field. A random `boot` is drawn from `random` here, before anything else draws from it.
 */
export function resolveSimOptions(options: SimDeviceOptions): ResolvedSimOptions {
  const id = parseDeviceId(options.id);
  if (!id.ok) throw new RangeError(`SimDevice: bad id: ${id.error.message}`);
  const random = options.random ?? Math.random;
  const intervalMs = checkInterval(options.telemetryIntervalMs ?? 1000, 'telemetryIntervalMs');
  const heartbeatMs = options.heartbeatMs ?? 10_000;
  if (!(Number.isFinite(heartbeatMs) && heartbeatMs >= 10)) {
    throw new RangeError(`SimDevice: heartbeatMs must be at least 10, got ${options.heartbeatMs}`);
  }
  const bootDelayMs = options.bootDelayMs ?? 100;
  if (!(Number.isFinite(bootDelayMs) && bootDelayMs >= 0)) {
    throw new RangeError(`SimDevice: bootDelayMs must be ≥ 0, got ${options.bootDelayMs}`);
  }
  const boot = options.boot ?? Math.floor(random() * 0x1_0000_0000);
  if (!isUint32(boot)) throw new RangeError(`SimDevice: boot must be a uint32, got ${options.boot}`);
  return {
    id: id.value,
    kind: options.kind ?? 'fleetvisor.generic',
    random,
    now: options.now ?? Date.now,
    intervalMs,
    heartbeatMs,
    bootDelayMs,
    maxImageBytes: options.maxImageBytes ?? 4 * 1024 * 1024,
    boot,
    firmware: options.firmware ?? { version: '1.0.0' },
  };
}

/**
 * The default telemetry: temp as a random walk within 20–25 °C, rssi in dBm, uptime in seconds.
 * Draws its starting temperature from `random` at once.
 */
export function randomWalkMetrics(random: () => number): (uptimeMs: number) => Record<string, number> {
  let temp = 20 + 5 * random();
  return (uptimeMs) => {
    temp = Math.min(25, Math.max(20, temp + (random() - 0.5) * 0.4));
    return {
      temp: Math.round(temp * 100) / 100,
      rssi: -40 - Math.floor(random() * 50),
      uptime: Math.floor(uptimeMs / 1000),
    };
  };
}
