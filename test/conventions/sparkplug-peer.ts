/**
 * A real Sparkplug B edge node for the tests: Eclipse Tahu's `sparkplug-client` with devices, run
 * in a child process so a test can SIGKILL it (its will, NDEATH, is then published by the broker).
 *
 * It publishes NBIRTH and a DBIRTH per device on every connection, DDATA every `dataIntervalMs`
 * (the temperature by alias only, as a bandwidth-minded node does), answers
 * `Node Control/Rebirth` with its births, and applies a DCMD by reporting the new values back in
 * DDATA. It tells the parent (IPC) what happens: `connected`, `births`, `ncmd`, `dcmd`.
 *
 * @example
 * const child = spawn(process.execPath, ['--import', 'tsx', 'test/conventions/sparkplug-peer.ts', JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
 * child.on('message', (m) => console.log(m)); // { type: 'dcmd', device: 'dev1', metrics: [{ name: 'setpoint', value: 42 }] }
 */
import sparkplugClient from 'sparkplug-client';
import type { UMetric, UPayload } from 'sparkplug-payload/lib/sparkplugbpayload.js';

export interface PeerConfig {
  readonly url: string;
  readonly group: string;
  readonly node: string;
  readonly devices: readonly string[];
  readonly clientId: string;
  /** MQTT keepalive in seconds. */
  readonly keepalive: number;
  /** 0: no periodic DDATA. */
  readonly dataIntervalMs: number;
  /** Its broker account, when the broker asks for one. */
  readonly username?: string;
  readonly password?: string;
}

export type PeerReport =
  | { type: 'connected' }
  | { type: 'births'; count: number }
  | { type: 'ncmd'; metrics: { name: string | null; value: unknown }[] }
  | { type: 'dcmd'; device: string; metrics: { name: string | null; value: unknown }[] };

const config = JSON.parse(process.argv[2] ?? '{}') as PeerConfig;
const report = (r: PeerReport) => process.send?.(r);

interface DeviceState {
  temperature: number;
  setpoint: number;
  running: boolean;
  label: string;
}
const devices = new Map<string, DeviceState>(
  config.devices.map((d) => [d, { temperature: 21.5, setpoint: 20, running: true, label: `device ${d}` }]),
);
// Aliases are unique across the node and its devices (Sparkplug 3.0).
const alias = (deviceIndex: number, metric: number) => 100 * (deviceIndex + 1) + metric;
let births = 0;
const startedAt = Date.now();

const client = sparkplugClient.newClient({
  serverUrl: config.url,
  username: config.username ?? '',
  password: config.password ?? '',
  groupId: config.group,
  edgeNode: config.node,
  clientId: config.clientId,
  keepalive: config.keepalive,
  publishDeath: true,
  mqttOptions: { reconnectPeriod: 500 },
});

function deviceMetrics(i: number, d: DeviceState): UMetric[] {
  return [
    { name: 'temperature', alias: alias(i, 1), type: 'Float', value: d.temperature },
    { name: 'setpoint', alias: alias(i, 2), type: 'Int32', value: d.setpoint },
    { name: 'running', alias: alias(i, 3), type: 'Boolean', value: d.running },
    {
      name: 'label',
      alias: alias(i, 4),
      type: 'String',
      value: d.label,
      properties: { readOnly: { type: 'Boolean', value: true } },
    },
  ];
}

function publishBirths(): void {
  const now = Date.now();
  const node: UPayload = {
    timestamp: now,
    metrics: [
      { name: 'Node Control/Rebirth', alias: 1, type: 'Boolean', value: false },
      { name: 'Properties/Firmware', alias: 2, type: 'String', value: '2.1.0' },
      { name: 'uptime', alias: 3, type: 'Int64', value: Math.round((now - startedAt) / 1000) },
    ],
  };
  client.publishNodeBirth(node);
  [...devices].forEach(([name, d], i) => {
    client.publishDeviceBirth(name, { timestamp: now, metrics: deviceMetrics(i, d) });
  });
  births++;
  report({ type: 'births', count: births });
}

function publishData(): void {
  [...devices].forEach(([name, d], i) => {
    d.temperature = Math.round((d.temperature + (Math.random() - 0.5)) * 10) / 10;
    // By alias only: the host resolves it from the DBIRTH.
    client.publishDeviceData(name, {
      timestamp: Date.now(),
      metrics: [{ alias: alias(i, 1), type: 'Float', value: d.temperature } as UMetric],
    });
  });
}

const summary = (p: UPayload) => (p.metrics ?? []).map((m) => ({ name: m.name ?? null, value: m.value }));

client.on('connect', () => report({ type: 'connected' }));
client.on('birth', publishBirths);
client.on('ncmd', (payload) => {
  report({ type: 'ncmd', metrics: summary(payload) });
  if ((payload.metrics ?? []).some((m) => m.name === 'Node Control/Rebirth' && m.value === true))
    publishBirths();
});
client.on('dcmd', (device, payload) => {
  report({ type: 'dcmd', device, metrics: summary(payload) });
  const d = devices.get(device);
  if (!d) return;
  const i = [...devices.keys()].indexOf(device);
  const changed: UMetric[] = [];
  for (const m of payload.metrics ?? []) {
    if (m.name === 'setpoint' && typeof m.value === 'number') d.setpoint = m.value;
    else if (m.name === 'running' && typeof m.value === 'boolean') d.running = m.value;
    else if (m.name === 'temperature' && typeof m.value === 'number') d.temperature = m.value;
    else continue;
    changed.push(deviceMetrics(i, d).find((x) => x.name === m.name)!);
  }
  if (changed.length > 0) client.publishDeviceData(device, { timestamp: Date.now(), metrics: changed });
});
client.on('error', (error) => console.error('sparkplug peer:', error.message));

if (config.dataIntervalMs > 0) setInterval(publishData, config.dataIntervalMs);
process.on('disconnect', () => process.exit(0)); // the test runner went away
process.on('message', (m: { type?: string }) => {
  if (m.type === 'stop') {
    client.stop();
    setTimeout(() => process.exit(0), 100);
  }
});
