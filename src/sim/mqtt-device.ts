/**
 * A simulated device on MQTT: a {@link SimDevice} behind one mqtt.js client, doing what
 * docs/protocol.md §6 asks of firmware.
 *
 * - Client id = device id, MQTT 3.1.1 (`protocolVersion: 4`, which aedes and Mosquitto both speak),
 *   clean session.
 * - Every connection registers the last will `status` `offline` (retained, QoS 1) with the
 *   current `boot` and `conn` (connections since this boot, 1 for the first); then, on CONNACK,
 *   subscribes to `/cmd` and `/fw` at QoS 1, then (on the SUBACK) publishes `hello` (retained)
 *   and `status` `online` (retained). `connected` turns true once the SUBACK is in (it can receive commands).
 * - Retained messages on `/cmd` and `/fw` are ignored (a stale command must not run).
 * - Each message goes on its own channel with that channel's QoS and retain flag (CHANNELS):
 *   telemetry QoS 1, heartbeat QoS 0.
 * - Reconnects on its own, with jittered exponential backoff (a fresh client every time, as the
 *   will carries `conn`). A reboot drops the connection without DISCONNECT (so the broker
 *   announces the will, as for a real reset) once the reply that caused it is acknowledged, and
 *   connects again after the boot with the new boot's will.
 * - `dropLink()` destroys the socket without DISCONNECT (the broker publishes the will) and
 *   reconnects after a short pause; `stop()` publishes `offline` and disconnects cleanly.
 * - The `garbage` fault publishes an invalid payload on `/telemetry` before every other telemetry.
 * - Binary chunks (docs/protocol.md §7.1): by default the device lists `fw.binary` and takes a
 *   binary `fw.chunk` payload on `/fw`; with `binaryChunks: false` it is a device that predates
 *   them (JSON chunks only; a binary payload is a bad message, counted and not answered).
 * - Chunks that arrive together (one turn of the event loop) get one `fw.ack`, the offset held
 *   after the last (docs/protocol.md §5.1); `coalesceChunkAcks: false` acks each one.
 *
 * @example
 * const sim = await startMqttSimDevice('mqtt://127.0.0.1:1883', { id: 'sim-m001', telemetryIntervalMs: 500 });
 * sim.connected;            // true: hello and online are out, cmd/fw subscribed
 * sim.device.setFaults({ mute: true });
 * sim.dropLink();           // the broker publishes offline (same boot and conn), then it reconnects
 * await sim.stop();         // offline, then a clean DISCONNECT
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import { connect } from 'mqtt';
import { noDelay } from '../transports/mqtt-connection.js';
import type { Channel, DeviceId, Message, StatusMessage } from '../transports/protocol.js';
import { CHANNELS, channelFor, decodePublish, encodeMessage, topicFor } from '../transports/protocol.js';
import {
  decodeFwChunkPayload,
  FW_BINARY_CAPABILITY,
  isBinaryPayload,
} from '../transports/serial-fw-frame.js';
import { AckCoalescer } from './ack-coalescer.js';
import type { SimDeviceOptions } from './sim-device.js';
import { SimDevice } from './sim-device.js';

export interface MqttSimDeviceOptions extends Omit<SimDeviceOptions, 'hooks'> {
  readonly username?: string;
  readonly password?: string;
  /**
   * TLS for `mqtts://` and `wss://` (as the host's own link takes it: `--mqtt-ca`): CA
   * certificate(s) (PEM) to trust instead of the system's, e.g. a broker's private CA.
   */
  readonly ca?: string | Buffer;
  /** TLS client certificate and key (PEM), for a broker that asks devices for one. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** First reconnect delay; default 500 ms. Doubles per failed attempt, up to `reconnectMaxMs`. */
  readonly reconnectMinMs?: number;
  /** Longest reconnect delay; default 5000 ms. */
  readonly reconnectMaxMs?: number;
  /** Pause before reconnecting after `dropLink()`; default 300 ms. */
  readonly dropPauseMs?: number;
  /** CONNECT → CONNACK timeout; default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** MQTT keepalive; default 30 s. */
  readonly keepaliveSeconds?: number;
  /**
   * `startMqttSimDevice` resolves once connected and subscribed, or rejects after this long;
   * default 15 000 ms. `0`: resolve at once and keep trying in the background.
   */
  readonly startTimeoutMs?: number;
  /** List `fw.binary` and take `fw.chunk` as the binary payload; default true. */
  readonly binaryChunks?: boolean;
  /**
   * Answer the chunks that arrive together (in one turn of the event loop) with one `fw.ack`, the
   * held offset after the last, as docs/protocol.md §5.1 allows; default true. False: one ack each.
   */
  readonly coalesceChunkAcks?: boolean;
}

export interface MqttSimDeviceStats {
  /** Successful connections (all boots). */
  connects: number;
  /** Connections lost or dropped (not counting reboots and stop). */
  drops: number;
  publishErrors: number;
  /** Telemetry and heartbeats not published because too many publishes were in flight. */
  dropped: number;
  /** Retained messages on /cmd or /fw, ignored. */
  ignoredRetained: number;
  /** Publishes on /cmd or /fw that did not decode. */
  badMessages: number;
  /** Invalid payloads published by the garbage fault. */
  garbage: number;
  /** Binary `fw.chunk` payloads taken in (valid ones; a refused one counts in `badMessages`). */
  binaryChunks: number;
}

export interface MqttSimDevice {
  readonly id: string;
  readonly url: string;
  readonly device: SimDevice;
  /** Connected and subscribed: commands can reach the device. */
  readonly connected: boolean;
  /** `conn` of the current (or last) connection within this boot. */
  readonly conn: number;
  readonly stats: Readonly<MqttSimDeviceStats>;
  /** The last client error, if any. */
  readonly lastError: Error | undefined;
  /** Destroys the socket without DISCONNECT (the broker publishes the will); reconnects after `pauseMs`. */
  dropLink(pauseMs?: number): void;
  /** Publishes `offline`, disconnects cleanly, stops the device. Idempotent. */
  stop(): Promise<void>;
}

/** Publishes allowed in flight before telemetry and heartbeats are dropped. */
const MAX_INFLIGHT = 200;
/** How long a reboot waits for the PUBACK of the reply that caused it. */
const REBOOT_FLUSH_MS = 1000;

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([p, sleep(ms).then(() => undefined)]);
}

class MqttSimDeviceImpl implements MqttSimDevice {
  readonly id: string;
  readonly device: SimDevice;
  readonly stats: MqttSimDeviceStats = {
    connects: 0,
    drops: 0,
    publishErrors: 0,
    dropped: 0,
    ignoredRetained: 0,
    badMessages: 0,
    garbage: 0,
    binaryChunks: 0,
  };
  lastError: Error | undefined;

  private client: MqttClient | undefined;
  /** Takes binary `fw.chunk` payloads (lists `fw.binary`). */
  private readonly binary: boolean;
  /** Answers the chunks of one turn with one ack (protocol §5.1). */
  private readonly acks: AckCoalescer<MqttClient>;
  private ready = false;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private connCount = 0;
  private attempt = 0;
  private garbageTick = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private shutdown: Promise<void> | undefined;
  private readonly inflight = new Set<Promise<void>>();
  private readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private readonly o: MqttSimDeviceOptions;

  constructor(
    readonly url: string,
    options: MqttSimDeviceOptions,
  ) {
    this.o = options;
    this.binary = options.binaryChunks ?? true;
    this.acks = new AckCoalescer(options.coalesceChunkAcks ?? true, (client, msg) => {
      this.sendFrom(client, msg);
    });
    this.device = new SimDevice({
      ...options,
      extraCapabilities: [
        ...(options.extraCapabilities ?? []),
        ...(this.binary ? [FW_BINARY_CAPABILITY] : []),
      ],
      hooks: { onShutdown: () => this.onShutdown(), onBoot: () => this.onBoot() },
    });
    this.id = this.device.id;
  }

  get connected(): boolean {
    return this.ready;
  }
  get conn(): number {
    return this.connCount;
  }

  start(): void {
    this.open();
  }

  waitReady(timeoutMs: number): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.readyWaiters = this.readyWaiters.filter((w) => w !== waiter);
        const cause = this.lastError ? `: ${this.lastError.message}` : '';
        reject(
          new Error(
            `MQTT sim device ${this.id}: no connection to ${this.url} within ${timeoutMs} ms${cause}`,
          ),
        );
      }, timeoutMs);
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.readyWaiters.push(waiter);
    });
  }

  dropLink(pauseMs = this.o.dropPauseMs ?? 300): void {
    if (this.stopped) return;
    const client = this.client;
    if (client) {
      this.client = undefined;
      this.ready = false;
      this.device.detach();
      this.stats.drops++;
      client.end(true); // destroys the socket, no DISCONNECT: the broker publishes the will
    }
    this.scheduleReconnect(pauseMs);
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.device.stop();
    for (const w of this.readyWaiters.splice(0)) w.reject(new Error(`MQTT sim device ${this.id} stopped`));
    const client = this.client;
    const wasReady = this.ready;
    this.client = undefined;
    this.ready = false;
    if (client) {
      if (wasReady && client.connected) {
        const offline = this.status('offline', this.device.boot, this.connCount);
        await withTimeout(this.publish(client, this.topic('status'), offline, 1, true), 2000);
        const ended = await withTimeout(
          client.endAsync(false).then(() => true),
          2000,
        );
        if (!ended) client.end(true);
      } else {
        client.end(true);
      }
    }
    if (this.shutdown) await this.shutdown;
  }

  // -------------------------------------------------------------------------------------------

  private topic(channel: Channel): string {
    return topicFor(this.id as DeviceId, channel);
  }

  private status(state: 'online' | 'offline', boot: number, conn: number): Buffer {
    const msg: StatusMessage = { v: 1, type: 'status', state, boot, conn };
    return toBuffer(encodeMessage(msg));
  }

  private scheduleReconnect(delayMs: number): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.open();
    }, delayMs);
  }

  private backoffMs(): number {
    const min = this.o.reconnectMinMs ?? 500;
    const max = this.o.reconnectMaxMs ?? 5000;
    const base = Math.min(max, min * 2 ** Math.min(this.attempt, 20));
    this.attempt++;
    return Math.round(base * (0.5 + 0.5 * Math.random()));
  }

  private open(): void {
    if (this.stopped || this.client || this.device.rebooting) return;
    const boot = this.device.boot;
    const conn = (this.connCount + 1) >>> 0;
    const options: IClientOptions = {
      clientId: this.id,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0, // reconnects are ours: each connection needs its own will
      resubscribe: false,
      connectTimeout: this.o.connectTimeoutMs ?? 5000,
      keepalive: this.o.keepaliveSeconds ?? 30,
      will: {
        topic: this.topic('status'),
        payload: this.status('offline', boot, conn),
        qos: 1,
        retain: true,
      },
    };
    if (this.o.username !== undefined) options.username = this.o.username;
    if (this.o.password !== undefined) options.password = this.o.password;
    if (this.o.ca !== undefined) options.ca = this.o.ca;
    if (this.o.cert !== undefined) options.cert = this.o.cert;
    if (this.o.key !== undefined) options.key = this.o.key;
    const client = connect(this.url, options);
    this.client = client;
    client.on('connect', () => {
      noDelay(client);
      if (this.client === client) this.onConnect(client, boot, conn);
    });
    client.on('message', (topic, payload, packet) => {
      if (this.client === client) this.onMessage(topic, payload, packet.retain);
    });
    client.on('error', (error) => {
      this.lastError = error;
    });
    client.on('close', () => {
      if (this.client === client) this.onClose(client);
    });
  }

  private onConnect(client: MqttClient, boot: number, conn: number): void {
    if (boot !== this.device.boot || this.device.rebooting) {
      // The device rebooted while this connection was being made: its will is stale.
      this.client = undefined;
      client.end(true);
      this.open();
      return;
    }
    this.connCount = conn;
    this.stats.connects++;
    // Subscribed before saying online: the host sends waiting commands as soon as it sees
    // `online`, and a clean session drops what arrives before the SUBACK (docs/protocol.md §6).
    client.subscribe({ [this.topic('cmd')]: { qos: 1 }, [this.topic('fw')]: { qos: 1 } }, (error) => {
      if (this.client !== client || error) return; // a 'close' follows an error
      this.device.attach((msg) => this.acks.send(client, msg)); // hello (retained) first
      if (!this.device.faults.mute) {
        void this.publish(client, this.topic('status'), this.status('online', boot, conn), 1, true);
      }
      this.ready = true;
      this.attempt = 0;
      for (const w of this.readyWaiters.splice(0)) w.resolve();
    });
  }

  private onMessage(topic: string, payload: Buffer, retain: boolean): void {
    if (retain) {
      this.stats.ignoredRetained++;
      return;
    }
    if (this.binary && isBinaryPayload(payload)) {
      // Only on this device's /fw topic: a binary payload anywhere else is a bad message.
      const chunk = topic === this.topic('fw') ? decodeFwChunkPayload(payload) : undefined;
      if (!chunk?.ok) {
        this.stats.badMessages++;
        return;
      }
      this.stats.binaryChunks++;
      this.device.receive(chunk.value);
      return;
    }
    const r = decodePublish(topic, payload);
    if (!r.ok || r.value.deviceId !== this.id || (r.value.channel !== 'cmd' && r.value.channel !== 'fw')) {
      this.stats.badMessages++;
      return;
    }
    this.device.receive(r.value.message);
  }

  private onClose(client: MqttClient): void {
    this.client = undefined;
    this.ready = false;
    this.device.detach();
    client.end(true);
    if (this.stopped || this.device.rebooting) return; // a reboot reconnects on boot
    this.stats.drops++;
    this.scheduleReconnect(this.backoffMs());
  }

  private sendFrom(client: MqttClient, msg: Message): void {
    if (this.client !== client) return;
    const channel = channelFor(msg.type);
    const spec = CHANNELS[channel];
    if (msg.type === 'telemetry' && this.device.faults.garbage && this.garbageTick++ % 2 === 0) {
      this.stats.garbage++;
      void this.publish(client, this.topic('telemetry'), garbagePayload(), 0, false);
    }
    if (this.inflight.size >= MAX_INFLIGHT && (msg.type === 'telemetry' || msg.type === 'heartbeat')) {
      this.stats.dropped++;
      return;
    }
    void this.publish(client, this.topic(channel), toBuffer(encodeMessage(msg)), spec.qos, spec.retain);
  }

  private publish(
    client: MqttClient,
    topic: string,
    payload: Buffer,
    qos: 0 | 1,
    retain: boolean,
  ): Promise<void> {
    const p = new Promise<void>((resolve) => {
      client.publish(topic, payload, { qos, retain }, (error) => {
        if (error) this.stats.publishErrors++;
        resolve();
      });
    });
    this.inflight.add(p);
    void p.then(() => this.inflight.delete(p));
    return p;
  }

  /** The device went down for a reboot: flush the reply that caused it, then drop without DISCONNECT. */
  private onShutdown(): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.ready = false;
    this.connCount = 0;
    const client = this.client;
    if (!client) return;
    this.client = undefined;
    const pending = [...this.inflight];
    this.shutdown = withTimeout(Promise.allSettled(pending), REBOOT_FLUSH_MS).then(() => {
      client.end(true);
    });
  }

  private onBoot(): void {
    const shutdown = this.shutdown ?? Promise.resolve();
    void shutdown.then(() => {
      this.shutdown = undefined;
      this.attempt = 0;
      this.open();
    });
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Invalid payloads: truncated JSON, or bytes that are not UTF-8. */
function garbagePayload(): Buffer {
  if (Math.random() < 0.5) {
    return Buffer.from(`{"v":1,"type":"telemetry",${Math.random().toString(36).slice(2)}`, 'utf8');
  }
  const junk = Buffer.alloc(8 + Math.floor(Math.random() * 24));
  for (let i = 0; i < junk.length; i++) junk[i] = 0x80 + Math.floor(Math.random() * 0x80);
  junk[0] = 0xff; // never valid UTF-8
  return junk;
}

/**
 * Starts a simulated MQTT device and (unless `startTimeoutMs: 0`) waits until it is connected
 * and subscribed. Rejects, with the device stopped, if that takes longer than `startTimeoutMs`.
 *
 * @example
 * const sim = await startMqttSimDevice(broker.url, { id: 'sim-m001' });
 */
export async function startMqttSimDevice(url: string, options: MqttSimDeviceOptions): Promise<MqttSimDevice> {
  const sim = new MqttSimDeviceImpl(url, options);
  sim.start();
  const timeoutMs = options.startTimeoutMs ?? 15_000;
  if (timeoutMs > 0) {
    try {
      await sim.waitReady(timeoutMs);
    } catch (error) {
      await sim.stop();
      throw error;
    }
  }
  return sim;
}
