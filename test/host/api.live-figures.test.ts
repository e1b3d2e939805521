/**
 * The API's live figures count every convention, not only our own protocol (issue 11): a Homie
 * device (the npm `homie-device` peer in a child process) on the real app with its Homie bridge,
 * over a real broker. Its rows carry `lastSeen`, the push stream carries its telemetry, the
 * ingest rate counts its messages and a Homie write's round trip shows in the command latency.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { homieConvention } from '../../src/conventions/homie/homie-bridge.js';
import type { HostApiHandle } from '../../src/host/api.js';
import { createHostApi } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { DeviceRow, PushMessage, SystemStats } from '../../src/host/contract.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { clearRetained, onCleanup, runCleanups, startPeer } from '../conventions/homie-helpers.js';
import { uniqueId, waitFor } from '../transports/helpers.js';

let broker: EmbeddedBroker;
let app: App;
let api: HostApiHandle;
let dir: string;
const base = `fv-${uniqueId('live')}`;
const id = uniqueId('peer');

beforeAll(async () => {
  broker = await startEmbeddedBroker({ port: 0 });
  dir = mkdtempSync(join(tmpdir(), 'fv-live-'));
  app = await startApp({
    dataDir: dir,
    logger: silentLogger,
    mqtt: { url: broker.url },
    demo: false,
    conventions: [homieConvention({ baseTopic: base, adopt: 'auto' })],
  });
  api = createHostApi(app);
}, 30_000);

afterEach(runCleanups);

afterAll(async () => {
  api?.close();
  await app?.stop();
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function ok<T>(method: string, args: unknown): Promise<T> {
  const r = await api.call(method, args);
  if (!r.ok) throw new Error(`${method} failed: ${r.error.code} ${r.error.message}`);
  return r.value as T;
}

describe('live figures for a Homie device', () => {
  it('lastSeen, streamed telemetry, ingest rate and command latency all count it', async () => {
    onCleanup(() => clearRetained(broker.url, base, [id]));
    const got: PushMessage[] = [];
    const close = api.openStream({ send: (m) => got.push(m), congested: () => false });
    onCleanup(close);
    const peer = await startPeer(broker.url, { id, base, temperature: 20 });
    await waitFor(() => app.fleet.device(id)?.state === 'connected', 15_000, 'homie device connected');

    const sendAt = Date.now();
    for (let i = 0; i < 10; i++) {
      peer.send({ cmd: 'send', node: 'sensor', property: 'temperature', value: String(21 + i / 10) });
      await new Promise((r) => setTimeout(r, 100));
    }
    const streamed = () =>
      got.flatMap((m) => (m.type === 'diff' ? m.telemetry : [])).filter((p) => p.id === id);
    await waitFor(
      () => streamed().some((p) => p.metric === 'sensor/temperature'),
      10_000,
      'streamed telemetry',
    );

    const row = (await ok<{ items: DeviceRow[] }>('devices', { text: id })).items[0]!;
    expect(row.lastSeen).not.toBeNull();
    expect(row.lastSeen!).toBeGreaterThanOrEqual(sendAt - 1000);

    const r = await app.fleet.act(id, 'set', { node: 'sensor', property: 'count', value: 7 }, 'ana');
    expect(r.ok).toBe(true);
    await waitFor(
      () => app.fleet.commands.open(id).length === 0,
      10_000,
      'the Homie write confirmed by its echo',
    );
    await waitFor(
      () =>
        got.some(
          (m) => m.type !== 'resync' && m.stats !== undefined && m.stats.commandLatencyMs.p50 !== null,
        ),
      5000,
      'a command latency in the pushed stats',
    );
    const stats = await ok<SystemStats>('stats', {});
    expect(stats.ingestRate).toBeGreaterThan(0);
    expect(stats.commandLatencyMs.p50).not.toBeNull();
  }, 60_000);
});
