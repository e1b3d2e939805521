/**
 * What a simulated device (sim-device.ts) says, as protocol v1 messages (docs/protocol.md): its
 * hello, telemetry, heartbeats and events, built from what the device passes in. Pure: the device
 * stamps each with its boot, the next `seq` of that boot and the time; sim-link.ts sends them.
 *
 * @example
 * helloMessage({ id: 'pump-7', kind: 'pump', boot: 3, firmware, capabilities: ['ping', 'fw'] });
 * eventMessage({ boot: 3, seq: 12, ts: Date.now() }, 'identify', 'info', { seconds: 5 });
 */
import type {
  EventMessage,
  FirmwareInfo,
  HeartbeatMessage,
  HelloMessage,
  JsonObject,
  Severity,
  TelemetryMessage,
} from '../transports/protocol.js';

/** Where a telemetry or event message sits: its boot, its `seq` in that boot (shared by both), its time. */
export interface Stamp {
  readonly boot: number;
  readonly seq: number;
  /** Wall-clock ms (the device's clock). */
  readonly ts: number;
}

/** What a device's hello says about it. */
export interface HelloSource {
  readonly id: string;
  readonly kind: string;
  readonly boot: number;
  readonly firmware: FirmwareInfo;
  readonly capabilities: readonly string[];
}

export function helloMessage(d: HelloSource): HelloMessage {
  return {
    v: 1,
    type: 'hello',
    deviceId: d.id as HelloMessage['deviceId'],
    kind: d.kind,
    boot: d.boot,
    firmware: d.firmware,
    capabilities: d.capabilities,
  };
}

export function telemetryMessage(stamp: Stamp, values: Record<string, number>): TelemetryMessage {
  return { v: 1, type: 'telemetry', ...stamp, values };
}

export function heartbeatMessage(boot: number, uptimeMs: number): HeartbeatMessage {
  return { v: 1, type: 'heartbeat', boot, uptimeMs };
}

/** An event; `severity` and `data` only when given. */
export function eventMessage(
  stamp: Stamp,
  name: string,
  severity?: Severity,
  data?: JsonObject,
): EventMessage {
  const msg: { -readonly [K in keyof EventMessage]: EventMessage[K] } = {
    v: 1,
    type: 'event',
    ...stamp,
    name,
  };
  if (severity !== undefined) msg.severity = severity;
  if (data !== undefined) msg.data = data;
  return msg;
}
