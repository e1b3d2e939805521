/**
 * A fleet of simulated devices: N on MQTT, M on serial (each on its own socat pty pair), started
 * together and stopped together. The programmatic API behind `npm run sim` and the tests.
 *
 * MQTT devices are named `<prefix>-m001`, `<prefix>-m002`, … and start at most `concurrency` at a
 * time (default 20), so 100–1000 devices come up without a connect storm. Serial devices are
 * named `<prefix>-s01`, …; their pty pairs live in `ptyDir` as `<id>-host` (what the host opens:
 * listed in `hostPorts`) and `<id>-device` (what the simulated device holds).
 * If any device fails to start, everything already started is stopped and the error is thrown.
 *
 * @example
 * const fleet = await startSimFleet({ mqttUrl: broker.url, mqtt: 100, serial: 2 });
 * fleet.hostPorts;          // ['/tmp/fleetvisor-sim/sim-s01-host', '/tmp/fleetvisor-sim/sim-s02-host']
 * fleet.mqtt[0].device.id;  // 'sim-m001'
 * await fleet.stop();
 */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttSimDevice } from './mqtt-device.js';
import { startMqttSimDevice } from './mqtt-device.js';
import type { PtyPair } from './pty.js';
import { openPtyPair } from './pty.js';
import type { SerialSimDevice } from './serial-device.js';
import { startSerialSimDevice } from './serial-device.js';
import type { SimFirmwareOptions } from './sim-device.js';

export interface SimFleetOptions {
  /** Broker URL; required when `mqtt` > 0. */
  readonly mqttUrl?: string;
  /** Number of MQTT devices; default 0. */
  readonly mqtt?: number;
  /** Number of serial devices; default 0 (needs socat). */
  readonly serial?: number;
  /**
   * Devices list `fw.binary` and take binary chunks (frames on serial, payloads over MQTT,
   * docs/protocol.md §7.1); default true.
   */
  readonly binaryChunks?: boolean;
  /** Where the pty links go; default `<tmpdir>/fleetvisor-sim`. */
  readonly ptyDir?: string;
  /** Device id prefix; default `'sim'`. */
  readonly idPrefix?: string;
  readonly kind?: string;
  readonly telemetryIntervalMs?: number;
  readonly heartbeatMs?: number;
  readonly firmware?: SimFirmwareOptions;
  /** More capabilities every device lists in its hello (e.g. `fw.chunk.8192`, docs/protocol.md §5.5). */
  readonly extraCapabilities?: readonly string[];
  /** One username and password for every MQTT device (a shared account); prefer `credentials`. */
  readonly username?: string;
  readonly password?: string;
  /**
   * Each MQTT device's own broker credentials, like a real device's (username = device id on the
   * Fleetvisor broker); called once per device as it starts. Wins over `username`/`password`.
   */
  readonly credentials?: (id: string) => { readonly username: string; readonly password: string };
  /** TLS for every MQTT device (`mqtts://`, `wss://`): the CA to trust, a client certificate and key. */
  readonly tls?: MqttSimTls;
  /** MQTT devices connecting at the same time; default 20. */
  readonly concurrency?: number;
  /** How long one MQTT device may take to connect before the whole start fails; default 15 000 ms. */
  readonly startTimeoutMs?: number;
  /** Called once per device as it comes up (the CLI prints a line). */
  readonly onDeviceStarted?: (info: SimFleetDeviceInfo) => void;
}

/** As the host's MQTT link takes them (src/transports/mqtt-connection.ts, `BrokerSettings`): PEM. */
export interface MqttSimTls {
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

export type SimFleetDeviceInfo =
  | { readonly link: 'mqtt'; readonly id: string; readonly url: string }
  | { readonly link: 'serial'; readonly id: string; readonly hostPath: string; readonly devicePath: string };

export interface SimFleet {
  readonly mqtt: MqttSimDevice[];
  readonly serial: { device: SerialSimDevice; pty: PtyPair }[];
  /** The host ends of the pty pairs, in device order: what the host's serial link opens. */
  readonly hostPorts: string[];
  /** Stops every device and removes the pty pairs. Idempotent. */
  stop(): Promise<void>;
}

export const DEFAULT_PTY_DIR = join(tmpdir(), 'fleetvisor-sim');

function count(n: number | undefined, name: string): number {
  const v = n ?? 0;
  if (!(Number.isInteger(v) && v >= 0 && v <= 100_000)) {
    throw new RangeError(`startSimFleet: ${name} must be an integer 0…100000, got ${String(n)}`);
  }
  return v;
}

/** `sim-m001`: zero-padded to `width` digits (more if the number needs them). */
export function simDeviceId(prefix: string, link: 'm' | 's', n: number, width: number): string {
  return `${prefix}-${link}${String(n).padStart(width, '0')}`;
}

/**
 * Starts the fleet (see the file comment).
 *
 * @example
 * const fleet = await startSimFleet({ serial: 1, ptyDir: dir });
 * const host = new SerialPort({ path: fleet.hostPorts[0], baudRate: 115200 });
 */
export async function startSimFleet(options: SimFleetOptions = {}): Promise<SimFleet> {
  const nMqtt = count(options.mqtt, 'mqtt');
  const nSerial = count(options.serial, 'serial');
  const prefix = options.idPrefix ?? 'sim';
  const concurrency = options.concurrency ?? 20;
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) {
    throw new RangeError(`startSimFleet: concurrency must be a positive integer, got ${concurrency}`);
  }
  if (nMqtt > 0 && !options.mqttUrl) throw new Error('startSimFleet: mqttUrl is required for MQTT devices');

  const common = {
    ...(options.kind !== undefined && { kind: options.kind }),
    ...(options.telemetryIntervalMs !== undefined && { telemetryIntervalMs: options.telemetryIntervalMs }),
    ...(options.heartbeatMs !== undefined && { heartbeatMs: options.heartbeatMs }),
    ...(options.firmware !== undefined && { firmware: options.firmware }),
    ...(options.extraCapabilities !== undefined && { extraCapabilities: options.extraCapabilities }),
    ...(options.binaryChunks !== undefined && { binaryChunks: options.binaryChunks }),
  };

  const mqtt: MqttSimDevice[] = [];
  const serial: { device: SerialSimDevice; pty: PtyPair }[] = [];
  const ptys: PtyPair[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await Promise.allSettled([...mqtt.map((d) => d.stop()), ...serial.map((s) => s.device.stop())]);
      await Promise.allSettled(ptys.map((p) => p.close()));
    })();
    return stopping;
  };

  try {
    if (nSerial > 0) {
      const dir = options.ptyDir ?? DEFAULT_PTY_DIR;
      mkdirSync(dir, { recursive: true });
      for (let i = 1; i <= nSerial; i++) {
        const id = simDeviceId(prefix, 's', i, 2);
        const pty = await openPtyPair(join(dir, `${id}-host`), join(dir, `${id}-device`));
        ptys.push(pty);
        const device = await startSerialSimDevice(pty.devicePath, { id, ...common });
        serial.push({ device, pty });
        options.onDeviceStarted?.({ link: 'serial', id, hostPath: pty.hostPath, devicePath: pty.devicePath });
      }
    }

    if (nMqtt > 0) {
      const url = options.mqttUrl!;
      const slots: (MqttSimDevice | undefined)[] = new Array(nMqtt);
      let next = 0;
      let failure: unknown;
      const worker = async (): Promise<void> => {
        while (failure === undefined && next < nMqtt) {
          const i = next++;
          const id = simDeviceId(prefix, 'm', i + 1, 3);
          try {
            const own = options.credentials?.(id);
            const d = await startMqttSimDevice(url, {
              id,
              ...common,
              ...(options.username !== undefined && { username: options.username }),
              ...(options.password !== undefined && { password: options.password }),
              ...(own !== undefined && { username: own.username, password: own.password }),
              ...(options.tls?.ca !== undefined && { ca: options.tls.ca }),
              ...(options.tls?.cert !== undefined && { cert: options.tls.cert }),
              ...(options.tls?.key !== undefined && { key: options.tls.key }),
              ...(options.startTimeoutMs !== undefined && { startTimeoutMs: options.startTimeoutMs }),
            });
            slots[i] = d;
            mqtt.push(d);
            options.onDeviceStarted?.({ link: 'mqtt', id, url });
          } catch (error) {
            failure ??= error;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, nMqtt) }, worker));
      if (failure !== undefined) throw failure;
      mqtt.splice(0, mqtt.length, ...slots.filter((d): d is MqttSimDevice => d !== undefined));
    }
  } catch (error) {
    await stop();
    throw error;
  }

  return { mqtt, serial, hostPorts: serial.map((s) => s.pty.hostPath), stop };
}
