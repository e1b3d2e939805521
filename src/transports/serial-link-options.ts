/**
 * The options of a serial link: their defaults, their schema (checked once, at the boundary) and
 * the settings a link runs with once the defaults are filled in.
 *
 * @example
 * const settings = resolveSerialLinkOptions({ path: '/dev/ttyUSB0', heartbeatMs: 5000, onMessage, onError });
 * settings.silenceMs; // 15000 (3 × heartbeatMs)
 */
import { z } from 'zod';
import { callback, checkOptions, nonEmptyString, positiveInt } from '../lib/options.js';
import { DEFAULT_MAX_FRAME_BYTES } from './framing.js';
import type { Message } from './protocol.js';
import { DEFAULT_MAX_PAYLOAD_BYTES } from './protocol.js';
import type { SerialLink } from './serial-link.js';
import type { SerialLinkError } from './serial-link-errors.js';

export const DEFAULT_SERIAL_BAUD_RATE = 115_200;
export const DEFAULT_SERIAL_HEARTBEAT_MS = 10_000;
export const DEFAULT_SERIAL_WRITE_TIMEOUT_MS = 2000;

export interface SerialLinkOptions {
  /** The device node, e.g. `/dev/ttyUSB0` or `/dev/serial/by-id/…` (symlinks are followed). */
  readonly path: string;
  /** Default 115 200 (ptys ignore it). */
  readonly baudRate?: number;
  /** Largest decoded frame (payload + 4 CRC bytes); default {@link DEFAULT_MAX_FRAME_BYTES}. */
  readonly maxFrameBytes?: number;
  /** Largest payload decoded or sent; default {@link DEFAULT_MAX_PAYLOAD_BYTES}. */
  readonly maxPayloadBytes?: number;
  /** No intact frame for this long → probe the device with a `ping` command; default 10 000. */
  readonly heartbeatMs?: number;
  /** No intact frame for this long → exit with `silent`; default 3 × `heartbeatMs`. */
  readonly silenceMs?: number;
  /**
   * A write (or the open, or the close) not done within this (a write: plus the time its bytes take
   * at `baudRate`) → the port is dangling: exit. Also sizes a write: frames waiting together go in
   * one write of at most what the line carries in this time. Default 2000.
   */
  readonly writeTimeoutMs?: number;
  /** Process name; default `serial-link:<path>`. */
  readonly name?: string;
  /**
   * Every valid device → host message, in order. `link.deviceId` is undefined until the device's
   * first `hello`. Runs synchronously on the link; a throw is reported, never fatal.
   */
  onMessage(message: Message, link: SerialLink): void;
  /** A frame or message that could not be used: counted in `stats().errors`, and the link carries on. */
  onError(error: SerialLinkError, link: SerialLink): void;
}

/** The numbers a link runs with: {@link SerialLinkOptions} with every default filled in. */
export interface SerialLinkSettings {
  readonly baudRate: number;
  readonly maxFrameBytes: number;
  readonly maxPayloadBytes: number;
  readonly heartbeatMs: number;
  readonly silenceMs: number;
  readonly writeTimeoutMs: number;
}

/** The options of one link (also checked per link by the serial manager). */
export const serialLinkSettingsSchema = z.object({
  baudRate: positiveInt.optional(),
  maxFrameBytes: positiveInt.min(5, { error: 'must be at least 5 (one byte and the CRC-32)' }).optional(),
  maxPayloadBytes: positiveInt.optional(),
  heartbeatMs: positiveInt.optional(),
  silenceMs: positiveInt.optional(),
  writeTimeoutMs: positiveInt.optional(),
});

/** What {@link startSerialLink} accepts. */
export const serialLinkOptionsSchema = serialLinkSettingsSchema.extend({
  path: nonEmptyString,
  name: z.string().optional(),
  onMessage: callback,
  onError: callback,
});

/** Checks `o` (throws `RangeError` naming the field, as `startSerialLink`) and fills in the defaults. */
export function resolveSerialLinkOptions(o: SerialLinkOptions): SerialLinkSettings {
  checkOptions('startSerialLink', serialLinkOptionsSchema, o);
  const heartbeatMs = o.heartbeatMs ?? DEFAULT_SERIAL_HEARTBEAT_MS;
  return {
    baudRate: o.baudRate ?? DEFAULT_SERIAL_BAUD_RATE,
    maxFrameBytes: o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    maxPayloadBytes: o.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    heartbeatMs,
    silenceMs: o.silenceMs ?? 3 * heartbeatMs,
    writeTimeoutMs: o.writeTimeoutMs ?? DEFAULT_SERIAL_WRITE_TIMEOUT_MS,
  };
}
