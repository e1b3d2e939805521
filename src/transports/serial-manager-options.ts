/**
 * What the serial manager accepts: which ports to watch, how often, the reopen backoff, the
 * options of every link and the callbacks; checked once, at the boundary, by its schema.
 *
 * @example
 * checkSerialManagerOptions({ ports: 'auto', pollMs: 0, onMessage, onError }); // throws RangeError naming pollMs
 */
import { z } from 'zod';
import { callback, checkOptions, nonEmptyString, positiveInt } from '../lib/options.js';
import type { DeviceId, Message } from './protocol.js';
import type { ReconnectOptions } from './reconnect.js';
import { reconnectSchema } from './reconnect.js';
import type { SerialLink, SerialLinkError, SerialLinkOptions } from './serial-link.js';
import { serialLinkSettingsSchema } from './serial-link-options.js';
import type { PortInfo } from './serial-port-discovery.js';

export interface SerialManagerOptions {
  /** Paths to watch (device nodes or symlinks to them), or `'auto'`: `listPorts()` filtered by `autoFilter`. */
  readonly ports: readonly string[] | 'auto';
  /** For `'auto'`: which listed ports to open. Default: USB ports (a vendor id, or a ttyUSB/ttyACM path). */
  readonly autoFilter?: (info: PortInfo) => boolean;
  /** For `'auto'`: default `SerialPort.list` (injectable for tests). */
  readonly listPorts?: () => Promise<PortInfo[]>;
  /** How often presence is checked; default 1000. */
  readonly pollMs?: number;
  /** Reopen backoff; defaults as every link's (reconnect.ts). */
  readonly reconnect?: Partial<ReconnectOptions>;
  /** [0, 1) for the backoff jitter; default Math.random. */
  readonly random?: () => number;
  /** Options for every link. */
  readonly link?: Omit<SerialLinkOptions, 'path' | 'onMessage' | 'onError' | 'name'>;
  /** Every valid device → host message of every link (`link.deviceId` is undefined before its `hello`). */
  onMessage(message: Message, link: SerialLink): void;
  onError(error: SerialLinkError, link: SerialLink): void;
  /** A link opened (the device has not necessarily said hello yet). */
  onPortUp?(link: SerialLink): void;
  /** A link exited on its own (`reason` is its formatted exit reason); not called on stop. */
  onPortDown?(path: string, deviceId: DeviceId | undefined, reason: string): void;
}

/** What {@link startSerialManager} accepts. */
export const serialManagerOptionsSchema = z.object({
  ports: z.union([z.literal('auto'), z.array(nonEmptyString)], {
    error: "must be 'auto' or an array of paths",
  }),
  autoFilter: callback.optional(),
  listPorts: callback.optional(),
  pollMs: positiveInt.optional(),
  reconnect: reconnectSchema.optional(),
  random: callback.optional(),
  link: serialLinkSettingsSchema.optional(),
  onMessage: callback,
  onError: callback,
  onPortUp: callback.optional(),
  onPortDown: callback.optional(),
});

/** Throws `RangeError` naming the bad field, as `startSerialManager` does. */
export function checkSerialManagerOptions(o: SerialManagerOptions): void {
  checkOptions('startSerialManager', serialManagerOptionsSchema, o);
}
