/**
 * Helpers for the simulator tests: condition polling, per-test cleanups, the broker variants
 * (embedded aedes always, the broker at FLEETVISOR_TEST_MQTT_URL when set), and the host side
 * of both links as raw clients: an MQTT observer (plain mqtt.js) and a serial host (a raw
 * SerialPort with createDeframer), plus a windowed firmware sender.
 *
 * @example
 * const cleanup = registerCleanups();
 * const host = await MqttObserver.open(url, id, cleanup);
 * const reply = await host.command({ v: 1, type: 'cmd', cmdId: 'c1', action: 'ping' });
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import { SerialPort } from 'serialport';
import { afterEach } from 'vitest';
import type { PtyPair } from '../../src/sim/pty.js';
import { openPtyPair } from '../../src/sim/pty.js';
import type { SerialSimDevice, SerialSimDeviceOptions } from '../../src/sim/serial-device.js';
import { startSerialSimDevice } from '../../src/sim/serial-device.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import type { FrameError } from '../../src/transports/framing.js';
import { createDeframer, encodeFrame } from '../../src/transports/framing.js';
import type {
  Channel,
  CommandMessage,
  DeviceId,
  FwAckMessage,
  FwStep,
  HelloMessage,
  Message,
  ReplyMessage,
} from '../../src/transports/protocol.js';
import {
  channelFor,
  decodeMessage,
  decodePublish,
  encodeMessage,
  topicFor,
} from '../../src/transports/protocol.js';
import { waitFor as waitForCondition } from '../transports/helpers.js';

/** Waits longer by default than the link tests: simulated devices boot and reconnect. */
export const waitFor = (predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> =>
  waitForCondition(predicate, timeoutMs, what);

export type Cleanup = (fn: () => unknown) => void;

/** Registers an afterEach that runs the pushed cleanups in reverse order (each one even if another throws). */
export function registerCleanups(): Cleanup {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    const errors: unknown[] = [];
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw errors[0];
  });
  return (fn) => cleanups.push(fn);
}

import { uniqueId } from '../transports/helpers.js';

export { uniqueId };

export interface BrokerVariant {
  readonly name: string;
  readonly skip: boolean;
  /** The broker URL for one test (an embedded broker is started per test and closed after it). */
  url(cleanup: Cleanup): Promise<string>;
}

const externalUrl = process.env.FLEETVISOR_TEST_MQTT_URL;

export const BROKERS: readonly BrokerVariant[] = [
  {
    name: 'embedded aedes',
    skip: false,
    async url(cleanup) {
      const broker: EmbeddedBroker = await startEmbeddedBroker({ port: 0 });
      cleanup(() => broker.close());
      return broker.url;
    },
  },
  {
    name: externalUrl
      ? `external broker at ${externalUrl}`
      : 'external broker (skipped: set FLEETVISOR_TEST_MQTT_URL, e.g. mqtt://127.0.0.1:1883 for Mosquitto)',
    skip: !externalUrl,
    async url() {
      return externalUrl ?? '';
    },
  },
];

// ---------------------------------------------------------------------------------------------
// A host over MQTT

export interface Observed {
  readonly topic: string;
  readonly channel: Channel | undefined;
  readonly retain: boolean;
  readonly payload: Buffer;
  /** The decoded message, or undefined if the payload did not decode. */
  readonly message: Message | undefined;
  readonly error: string | undefined;
  readonly at: number;
}

/** Anything a test can send commands through and read device messages from. */
export interface TestHost {
  readonly messages: Message[];
  send(msg: Message): Promise<void>;
}

export class MqttObserver implements TestHost {
  readonly received: Observed[] = [];

  private constructor(
    readonly client: MqttClient,
    readonly deviceId: string,
  ) {}

  /** Subscribes to every channel of one device; clears its retained hello/status on cleanup. */
  static async open(url: string, deviceId: string, cleanup: Cleanup): Promise<MqttObserver> {
    const client = await connectAsync(url, {
      clientId: `obs-${uniqueId()}`,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    client.on('error', () => {});
    const obs = new MqttObserver(client, deviceId);
    client.on('message', (topic, payload, packet) => {
      const r = decodePublish(topic, payload);
      obs.received.push({
        topic,
        channel: r.ok ? r.value.channel : (topic.split('/')[3] as Channel | undefined),
        retain: packet.retain,
        payload,
        message: r.ok ? r.value.message : undefined,
        error: r.ok ? undefined : r.error.code,
        at: Date.now(),
      });
    });
    cleanup(async () => {
      // Leave no retained messages behind on a shared broker.
      for (const channel of ['hello', 'status'] as const) {
        await client.publishAsync(topicFor(deviceId as DeviceId, channel), '', { qos: 1, retain: true });
      }
      await client.endAsync(true);
    });
    await client.subscribeAsync(`fleetvisor/v1/${deviceId}/#`, { qos: 1 });
    return obs;
  }

  get messages(): Message[] {
    return this.received.flatMap((o) => (o.message ? [o.message] : []));
  }

  async send(msg: Message): Promise<void> {
    await this.client.publishAsync(
      topicFor(this.deviceId as DeviceId, channelFor(msg.type)),
      Buffer.from(encodeMessage(msg)),
      { qos: 1 },
    );
  }
}

// ---------------------------------------------------------------------------------------------
// A host over serial

export class SerialHost implements TestHost {
  readonly messages: Message[] = [];
  readonly frameErrors: FrameError[] = [];
  readonly decodeErrors: string[] = [];
  closed = false;
  private readonly deframer = createDeframer({
    onFrame: (payload) => {
      const r = decodeMessage(payload);
      if (r.ok) this.messages.push(r.value);
      else this.decodeErrors.push(r.error.code);
    },
    onError: (error) => this.frameErrors.push(error),
  });

  private constructor(readonly port: SerialPort) {
    port.on('data', (chunk: Buffer) => this.deframer.push(chunk));
    port.on('close', () => {
      this.closed = true;
    });
    port.on('error', () => {});
  }

  static async open(path: string, cleanup: Cleanup): Promise<SerialHost> {
    const port = new SerialPort({ path, baudRate: 115_200, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((error) => (error ? reject(error) : resolve())));
    const host = new SerialHost(port);
    cleanup(() => host.close());
    return host;
  }

  send(msg: Message): Promise<void> {
    const frame = encodeFrame(encodeMessage(msg));
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('serial write timed out')), 3000);
      this.port.write(Buffer.from(frame), (error) => {
        clearTimeout(t);
        if (error) reject(error);
        else resolve();
      });
    });
  }

  async close(): Promise<void> {
    if (!this.port.isOpen) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 1000);
      this.port.close(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Host-side protocol helpers

export function hellos(host: TestHost): HelloMessage[] {
  return host.messages.filter((m): m is HelloMessage => m.type === 'hello');
}

export function repliesTo(host: TestHost, cmdId: string): ReplyMessage[] {
  return host.messages.filter((m): m is ReplyMessage => m.type === 'reply' && m.cmdId === cmdId);
}

export function acks(host: TestHost, transferId: string, step?: FwStep): FwAckMessage[] {
  return host.messages.filter(
    (m): m is FwAckMessage =>
      m.type === 'fw.ack' && m.transferId === transferId && (step === undefined || m.step === step),
  );
}

let cmdCounter = 0;
export function cmd(
  action: string,
  args?: CommandMessage['args'],
  extra: Partial<CommandMessage> = {},
): CommandMessage {
  const base: CommandMessage = {
    v: 1,
    type: 'cmd',
    cmdId: `c${Date.now().toString(36)}${++cmdCounter}`,
    action,
  };
  return { ...base, ...(args !== undefined && { args }), ...extra };
}

/** Sends a command and waits for its (first new) reply. */
export async function command(host: TestHost, c: CommandMessage, timeoutMs = 10_000): Promise<ReplyMessage> {
  const before = repliesTo(host, c.cmdId).length;
  await host.send(c);
  await waitFor(() => repliesTo(host, c.cmdId).length > before, timeoutMs, `the reply to ${c.action}`);
  return repliesTo(host, c.cmdId)[before]!;
}

/** Sends one fw.* message and waits for the next ack of that step. */
export async function fwStep(
  host: TestHost,
  msg: Message & { transferId: string },
  step: FwStep,
  timeoutMs = 10_000,
): Promise<FwAckMessage> {
  const before = acks(host, msg.transferId, step).length;
  await host.send(msg);
  await waitFor(() => acks(host, msg.transferId, step).length > before, timeoutMs, `the ${step} ack`);
  return acks(host, msg.transferId, step)[before]!;
}

/**
 * Sends `image[from…]` as fw.chunk messages with up to `window` in flight, going back to the
 * device's held offset when all sent chunks are acknowledged but the offset is behind.
 * Resolves with the final held offset.
 */
export async function sendChunks(
  host: TestHost,
  transferId: string,
  image: Uint8Array,
  options: { chunkBytes: number; window: number; from: number; timeoutMs?: number },
): Promise<{ held: number; maxInFlight: number; chunksSent: number }> {
  const { chunkBytes, window } = options;
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let held = options.from;
  let next = options.from;
  let sent = 0;
  let acked = acks(host, transferId, 'chunk').length;
  const ackBase = acked;
  let maxInFlight = 0;
  while (held < image.length) {
    if (Date.now() > deadline)
      throw new Error(`firmware transfer stalled at ${held} of ${image.length} bytes`);
    while (next < image.length && sent - (acked - ackBase) < window) {
      const data = image.subarray(next, Math.min(image.length, next + chunkBytes));
      await host.send({ v: 1, type: 'fw.chunk', transferId, offset: next, data });
      next += data.length;
      sent++;
      maxInFlight = Math.max(maxInFlight, sent - (acked - ackBase));
    }
    await waitFor(() => acks(host, transferId, 'chunk').length > acked, 10_000, 'a chunk ack');
    const all = acks(host, transferId, 'chunk');
    for (const a of all.slice(acked)) held = Math.max(held, a.offset);
    acked = all.length;
    if (sent === acked - ackBase && held < next) next = held; // a gap: go back
  }
  return { held, maxInFlight, chunksSent: sent };
}

/**
 * A simulated serial device on a fresh socat pty pair, a {@link SerialHost} on the other end;
 * resolves once the device's hello is in. Everything is closed by `cleanup`.
 */
export async function serialSimOnPty(
  cleanup: Cleanup,
  options: Partial<SerialSimDeviceOptions> = {},
): Promise<{ p: PtyPair; host: SerialHost; d: SerialSimDevice }> {
  const dir = mkdtempSync(join(tmpdir(), 'fv-sim-test-'));
  const p = await openPtyPair(join(dir, 'host'), join(dir, 'device'));
  cleanup(() => rmSync(dir, { recursive: true, force: true }));
  cleanup(() => p.close());
  const host = await SerialHost.open(p.hostPath, cleanup);
  const d = await startSerialSimDevice(p.devicePath, { id: uniqueId('ser'), ...options });
  cleanup(() => d.stop());
  await waitFor(() => hellos(host).length >= 1, 10_000, 'the hello');
  return { p, host, d };
}
