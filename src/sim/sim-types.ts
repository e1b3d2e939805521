/**
 * The simulated device's public vocabulary (sim-device.ts): its options, the transport hooks
 * around a reboot, its state snapshot and its events. Types only; sim-device.ts re-exports them,
 * so importers keep importing from there.
 *
 * @example
 * import type { SimDeviceOptions } from './sim-device.js';
 * const options: SimDeviceOptions = { id: 'pump-7', kind: 'pump', telemetryIntervalMs: 500 };
 */
import type { FirmwareInfo, JsonObject, Message } from '../transports/protocol.js';
import type { SimDevice } from './sim-device.js';
import type { SimFaults } from './sim-faults.js';
import type { SimFirmwareOptions, SimTransferState } from './sim-firmware.js';

export type SendFn = (msg: Message) => void;

/** Why the device rebooted. */
export type RebootReason = 'command' | 'fwApply' | 'fwRollback' | 'crash' | 'requested';

/** Transport hooks around a reboot. Adapters set them; without them the device re-attaches by itself. */
export interface SimDeviceHooks {
  /** The device just went down for a reboot: it is detached already, its boot state is the new one. */
  readonly onShutdown?: (reason: RebootReason) => void;
  /** The device finished booting (`bootDelayMs` later): attach it to a link. */
  readonly onBoot?: () => void;
}

export interface SimDeviceOptions {
  /** Device id, 1–64 of `A–Z a–z 0–9 _ -`. */
  readonly id: string;
  /** Device kind sent in hello; default `'fleetvisor.generic'`. */
  readonly kind?: string;
  /** Firmware at power-on; default `{ version: '1.0.0' }` in slot A, confirmed, slot B empty. */
  readonly firmware?: SimFirmwareOptions;
  /** Telemetry period, 100…3 600 000 ms; default 1000. */
  readonly telemetryIntervalMs?: number;
  /** Heartbeat after this long without any other message; default 10 000. */
  readonly heartbeatMs?: number;
  /** Telemetry values; default temp (random walk 20–25 °C), rssi (dBm) and uptime (s). */
  readonly metrics?: (device: SimDevice) => Record<string, number>;
  /** Random source in [0, 1); default `Math.random`. */
  readonly random?: () => number;
  /** Boot counter at power-on (uint32); default random. Every reboot adds 1 (wrapping). */
  readonly boot?: number;
  /** The device's wall clock in ms (for `ts` and `expiresAt`); default `Date.now`. */
  readonly now?: () => number;
  /** Time between going down and coming back up on a reboot; default 100 ms. */
  readonly bootDelayMs?: number;
  /** Largest firmware image the inactive slot takes; default 4 MiB. */
  readonly maxImageBytes?: number;
  /** Faults active from power-on. */
  readonly faults?: SimFaults;
  /**
   * Capabilities listed in `hello` after the built-in ones (the actions and `fw`): names, as in
   * docs/protocol.md §2. The serial adapter adds `fw.binary` here when it takes binary chunk frames.
   */
  readonly extraCapabilities?: readonly string[];
  /** Set by the transport adapters. */
  readonly hooks?: SimDeviceHooks;
}

/** A snapshot of the device for tests and the UI. */
export interface SimDeviceState {
  readonly id: string;
  readonly kind: string;
  readonly boot: number;
  /** The `seq` the next telemetry or event will carry. */
  readonly seq: number;
  readonly firmware: FirmwareInfo;
  readonly config: JsonObject;
  readonly intervalMs: number;
  readonly identifying: boolean;
  readonly attached: boolean;
  /** Down between a reboot and its `bootDelayMs`. */
  readonly rebooting: boolean;
  readonly reboots: number;
  readonly uptimeMs: number;
  readonly faults: SimFaults;
  readonly transfer: SimTransferState | undefined;
  readonly sent: number;
  readonly received: number;
}

export interface SimDeviceEvents {
  /** A message went to the link. */
  sent: [msg: Message];
  /** A host → device message arrived (and the device was up to take it). */
  received: [msg: Message];
  /** The device went down for a reboot; `boot` is the new boot value. */
  reboot: [reason: RebootReason, boot: number];
}
