/**
 * Ingest benchmark (`npm run bench -- ingest`; `BENCH_QUICK=1` for a smaller run): the host's CPU
 * per MQTT telemetry message with nothing else on the machine's cores but the host. The links
 * suite measures the whole chain (a publisher process, a real broker, the host) and its figures
 * move with whatever else runs; this one feeds the same real host — MQTT link → hub → fleet →
 * SQLite store on a temp file — from a fake broker inside this process that does next to nothing:
 * it answers CONNECT and SUBSCRIBE, then writes pre-encoded PUBLISH packets (protocol v1
 * telemetry of 100 devices, 2 metrics each, encoded before the clock starts) as fast as the host
 * reads them: QoS 0 in 256-packet writes, QoS 1 with at most 20 unacknowledged (Mosquitto's
 * `max_inflight_messages`), topped up as PUBACKs come. The clock and `process.cpuUsage()` run
 * from the first write until the store has committed every point (its own counter); the CPU is
 * the whole process's, the fake broker's small share included. On Linux the note splits it into
 * the main thread and the others (SQLite's work on the libuv pool, V8's GC helpers).
 *
 * Baseline in the same run: a plain mqtt.js subscriber that only counts, fed the same way (its
 * QoS 1 PUBACKs are mqtt.js's own). Use this suite to compare two versions of the host in turns
 * (A/B in two worktrees); the links suite's figures are the ones the issue's goals name.
 *
 * Nothing is asserted: figures are printed as BENCH lines (bench-kit.ts).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
// mqtt.js's own packet codec (a dependency of mqtt): the fake broker's side of the wire.
import { generate, parser as packetParser } from 'mqtt-packet';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { createLinks } from '../../src/transports/links.js';
import { gc, nowUs, report } from './bench-kit.js';

const SUITE = 'ingest';
const QUICK = process.env.BENCH_QUICK === '1';
const N = { 0: QUICK ? 30_000 : 100_000, 1: QUICK ? 20_000 : 50_000 } as const;
const WARMUP = QUICK ? 5_000 : 20_000;
const DEVICES = 100;
const METRICS = 2;
const BOOT = 7;
/** Mosquitto's default `max_inflight_messages`. */
const INFLIGHT = 20;
/** QoS 0 packets per socket write. */
const WRITE_PACKETS = 256;
/** Issue 16's goals for the host (the links suite's figures): µs of CPU per message. */
const CPU_GOAL_US = { 0: 20, 1: 30 } as const;

const ids = Array.from({ length: DEVICES }, (_, i) => `ingest-dev-${String(i).padStart(3, '0')}`);

// ---- what the fake broker sends ----

const seqs = new Map<string, number>();
let messageId = 0;

/** `n` telemetry publishes, round-robin over the devices, as wire bytes. */
function telemetry(n: number, qos: 0 | 1): Buffer[] {
  const ts = Date.now();
  return Array.from({ length: n }, (_, i) => {
    const id = ids[i % DEVICES]!;
    const seq = (seqs.get(id) ?? 0) + 1;
    seqs.set(id, seq);
    const payload = `{"v":1,"type":"telemetry","boot":${BOOT},"seq":${seq},"ts":${ts + i},"values":{"temp":${20 + (seq % 100) / 10},"rssi":${-60 - (seq % 20)}}}`;
    const topic = `fleetvisor/v1/${id}/telemetry`;
    if (qos === 0) return generate({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false });
    messageId = (messageId % 65_535) + 1;
    return generate({ cmd: 'publish', topic, payload, qos: 1, messageId, retain: false, dup: false });
  });
}

/** Each device's hello and status, so the host has them connected before telemetry. */
function presence(): Buffer[] {
  return ids.flatMap((id) => {
    const hello = {
      v: 1,
      type: 'hello',
      deviceId: id,
      kind: 'fleetvisor.generic',
      boot: BOOT,
      firmware: { version: '1.0.0', slot: 'A', confirmed: true, slots: { A: '1.0.0', B: null } },
      capabilities: ['reboot'],
    };
    const status = { v: 1, type: 'status', state: 'online', boot: BOOT, conn: 1 };
    return [
      generate({
        cmd: 'publish',
        topic: `fleetvisor/v1/${id}/hello`,
        payload: JSON.stringify(hello),
        qos: 0,
        retain: false,
        dup: false,
      }),
      generate({
        cmd: 'publish',
        topic: `fleetvisor/v1/${id}/status`,
        payload: JSON.stringify(status),
        qos: 0,
        retain: false,
        dup: false,
      }),
    ];
  });
}

// ---- the fake broker: one subscriber at a time ----

interface Subscriber {
  readonly socket: Socket;
  acked: number;
  onAck: () => void;
}

let current: Subscriber | undefined;
let subscribed: (() => void) | undefined;

const broker = createServer((socket) => {
  socket.setNoDelay(true);
  const sub: Subscriber = { socket, acked: 0, onAck: () => {} };
  const parser = packetParser({ protocolVersion: 4 });
  parser.on('packet', (packet) => {
    if (packet.cmd === 'connect')
      socket.write(generate({ cmd: 'connack', returnCode: 0, sessionPresent: false }));
    else if (packet.cmd === 'subscribe') {
      const granted = packet.subscriptions.map((s) => s.qos);
      socket.write(generate({ cmd: 'suback', messageId: packet.messageId ?? 0, granted }));
      current = sub;
      subscribed?.();
    } else if (packet.cmd === 'pingreq') socket.write(generate({ cmd: 'pingresp' }));
    else if (packet.cmd === 'puback') sub.acked++;
  });
  // Topped up once per read, whatever number of PUBACKs it held: one write, as a broker would.
  socket.on('data', (bytes) => {
    const acked = sub.acked;
    parser.parse(bytes);
    if (sub.acked !== acked) sub.onAck();
  });
  socket.on('error', () => {});
});

function untilSubscribed(): Promise<void> {
  return new Promise((resolve) => {
    subscribed = resolve;
  });
}

/** Sends `packets` to the current subscriber as fast as it reads them (QoS 1: 20 in flight). */
async function send(packets: readonly Buffer[], qos: 0 | 1): Promise<void> {
  const sub = current!;
  if (qos === 0) {
    for (let i = 0; i < packets.length; i += WRITE_PACKETS)
      if (!sub.socket.write(Buffer.concat(packets.slice(i, i + WRITE_PACKETS))))
        await new Promise((resolve) => sub.socket.once('drain', resolve));
    return;
  }
  const base = sub.acked;
  let sent = 0;
  await new Promise<void>((resolve) => {
    sub.onAck = () => {
      const upTo = Math.min(packets.length, sub.acked - base + INFLIGHT);
      if (sent < upTo) {
        sub.socket.write(Buffer.concat(packets.slice(sent, upTo)));
        sent = upTo;
      }
      if (sub.acked - base >= packets.length) resolve();
    };
    sub.onAck();
  });
}

// ---- measuring ----

/** CPU µs of this process's main thread and of its other threads (Linux; undefined elsewhere). */
function threadCpu(): { main: number; other: number } | undefined {
  try {
    let main = 0;
    let other = 0;
    for (const tid of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const us = (Number(f[11]) + Number(f[12])) * 10_000; // clock ticks of 10 ms
      if (Number(tid) === process.pid) main += us;
      else other += us;
    }
    return { main, other };
  } catch {
    return undefined;
  }
}

interface Measured {
  readonly cpuUs: number;
  readonly rate: number;
  readonly split: string;
}

async function measure(n: number, run: () => Promise<void>): Promise<Measured> {
  gc();
  const cpu0 = process.cpuUsage();
  const t0 = threadCpu();
  const start = nowUs();
  await run();
  const seconds = (nowUs() - start) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  const t1 = threadCpu();
  const split =
    t0 && t1
      ? `main thread ${((t1.main - t0.main) / n).toFixed(1)}, other threads ${((t1.other - t0.other) / n).toFixed(1)} µs/msg`
      : 'no per-thread split here';
  return { cpuUs: (cpu.user + cpu.system) / n, rate: n / seconds, split };
}

/** A plain mqtt.js subscriber that only counts: µs of CPU per message, same feed. */
async function raw(url: string, qos: 0 | 1): Promise<Measured> {
  const counted = { n: 0 };
  const ready = untilSubscribed();
  const client = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, clean: true });
  client.on('message', () => {
    counted.n++;
  });
  await client.subscribeAsync('fleetvisor/v1/+/telemetry', { qos });
  await ready;
  const until = async (count: number) => {
    while (counted.n < count) await new Promise((resolve) => setTimeout(resolve, 2));
  };
  try {
    await send(telemetry(WARMUP, qos), qos);
    await until(WARMUP);
    const packets = telemetry(N[qos], qos);
    return await measure(N[qos], async () => {
      await send(packets, qos);
      await until(WARMUP + N[qos]);
    });
  } finally {
    await client.endAsync(true);
  }
}

/** The host: every point committed to the SQLite store. */
async function host(url: string, dir: string) {
  const store = await openSqliteStore({ file: join(dir, 'fleetvisor.sqlite') });
  const runtime = createRuntime({});
  const links = createLinks({ runtime, store, mqtt: { url } });
  const fleet = createFleet({
    runtime,
    store,
    kinds: [genericDevice],
    carrier: links.carrier,
    reconcileIntervalMs: 0,
  });
  await fleet.start();
  for (const id of ids) {
    const r = await fleet.addDevice({
      id,
      kind: 'fleetvisor.generic',
      attributes: { livenessTimeoutMs: 3_600_000 },
    });
    if (!r.ok) throw new Error(`addDevice ${id}: ${r.error.message}`);
  }
  const ready = untilSubscribed();
  await links.attach(fleet, { adopt: 'manual' });
  await ready;
  await send(presence(), 0);
  const committed = () => store.stats().telemetry.written;
  const until = async (points: number) => {
    while (committed() < points) await new Promise((resolve) => setTimeout(resolve, 2));
  };
  const ingest = async (qos: 0 | 1): Promise<Measured> => {
    const warm = committed() + WARMUP * METRICS;
    await send(telemetry(WARMUP, qos), qos);
    await until(warm);
    const packets = telemetry(N[qos], qos);
    return measure(N[qos], async () => {
      await send(packets, qos);
      await until(warm + N[qos] * METRICS);
    });
  };
  const stop = async () => {
    await links.stop();
    await fleet.stop();
    await store.close();
    runtime.dispose();
  };
  return { ingest, stop, lost: () => links.mqtt?.stats().lost ?? {} };
}

const dir = mkdtempSync(join(tmpdir(), 'fleetvisor-bench-ingest-'));
let exitCode = 0;
try {
  await new Promise<void>((resolve) => broker.listen(0, '127.0.0.1', resolve));
  const url = `mqtt://127.0.0.1:${(broker.address() as { port: number }).port}`;
  const baseline = { 0: await raw(url, 0), 1: await raw(url, 1) };
  const h = await host(url, dir);
  const measured = { 0: await h.ingest(0), 1: await h.ingest(1) };
  const lost = h.lost();
  await h.stop();
  for (const qos of [0, 1] as const) {
    const m = measured[qos];
    const r = baseline[qos];
    report(
      SUITE,
      `cpu_us_qos${qos}`,
      m.cpuUs,
      'µs/msg',
      '<=',
      CPU_GOAL_US[qos],
      `QoS ${qos}, ${N[qos]} msgs × ${METRICS} metrics from ${DEVICES} devices, publish read → committed in SQLite, ` +
        `whole process (fake broker included): ${m.split}; ${Math.round(m.rate)} msg/s; ` +
        `lost ${JSON.stringify(lost)}; goal: issue 16's for the links suite`,
    );
    report(
      SUITE,
      `raw_cpu_us_qos${qos}`,
      r.cpuUs,
      'µs/msg',
      '>=',
      0,
      `baseline, not a goal: plain mqtt.js subscriber that only counts, same feed; ${r.split}; ${Math.round(r.rate)} msg/s`,
    );
    report(
      SUITE,
      `cpu_vs_raw_qos${qos}`,
      m.cpuUs / r.cpuUs,
      'x',
      '>=',
      0,
      'host CPU per message ÷ the plain subscriber’s, same run: what the host adds to reading MQTT (not a goal)',
    );
  }
} catch (error) {
  exitCode = 1;
  console.error('# ingest bench failed:', error);
} finally {
  current?.socket.destroy();
  broker.close();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);
