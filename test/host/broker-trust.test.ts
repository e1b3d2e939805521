/**
 * The app's embedded broker lets no stranger in (issue 12 §1), performed on the real app: its
 * broker, its demo devices (which connect with their own credentials, like real ones) and an
 * attacker on the same machine with an mqtt.js client.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IClientOptions } from 'mqtt';
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHostApi } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { SystemStats } from '../../src/host/contract.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import { waitFor } from '../transports/helpers.js';

let dir: string;
let app: App;
const ids = ['demo-m001', 'demo-m002'];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fv-trust-'));
  app = await startApp({
    dataDir: dir,
    logger: silentLogger,
    broker: { port: 0 },
    demo: { mqtt: 2, serial: 0, telemetryIntervalMs: 200 },
  });
  await waitFor(
    () => ids.every((id) => app.fleet.device(id)?.state === 'connected'),
    15_000,
    'the demo devices (with their own credentials) to connect',
  );
});

afterAll(async () => {
  await app?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function connectCode(options: IClientOptions): Promise<number> {
  try {
    const c = await connectAsync(app.brokerUrl!, { protocolVersion: 4, reconnectPeriod: 0, ...options });
    await c.endAsync(true);
    return 0;
  } catch (error) {
    return (error as { code?: number }).code ?? -1;
  }
}

describe("the app's embedded broker", () => {
  it('refuses a local process without credentials (it cannot read # or send reboot)', async () => {
    expect(await connectCode({ clientId: 'spy' })).toBe(4);
    expect(await connectCode({ clientId: 'demo-m001', username: 'demo-m001', password: 'guess' })).toBe(4);
    const refusals = app.broker!.refusals();
    expect(refusals.connect).toBeGreaterThanOrEqual(2);
    expect(refusals.clients.map((c) => c.clientId)).toEqual(expect.arrayContaining(['spy', 'demo-m001']));
    // The operator sees the refusals in the system figures, and that nothing was lost.
    const api = createHostApi(app);
    try {
      const r = await api.call('stats', {});
      if (!r.ok) throw new Error(r.error.message);
      const stats = r.value as SystemStats;
      expect(stats.broker.refused.connect).toBe(refusals.connect);
      // Shown per client (issue 12 §1): who was refused, how often, and why, last.
      const spy = stats.broker.refused.clients?.find((c) => c.clientId === 'spy');
      expect(spy).toMatchObject({ username: null, connect: 1, publish: 0, subscribe: 0 });
      expect(spy?.lastReason).toBe('noCredentials');
      expect(stats.broker.refused.clients?.find((c) => c.clientId === 'demo-m001')).toMatchObject({
        username: 'demo-m001',
        connect: 1,
        lastReason: 'badCredentials',
      });
      expect(stats.dataLoss).toEqual({ total: 0, byCause: {} });
    } finally {
      api.close();
    }
  });

  it('the host and every demo device use accounts, and commands still run', async () => {
    expect(app.broker!.authenticated).toBe(true);
    expect(app.brokerAccounts!.devices().map((d) => d.id)).toEqual(expect.arrayContaining(ids));
    const r = await app.fleet.act('demo-m001', 'ping', {}, 'test');
    expect(r.ok).toBe(true);
  });
});

describe('command line: the embedded broker TLS listener', () => {
  it('takes a certificate and key (together only), a port, and the broker host', async () => {
    const { parseCommandLine, UsageError } = await import('../../src/host/main.js');
    const r = parseCommandLine(
      [
        '--broker-host',
        '0.0.0.0',
        '--broker-tls-cert',
        'c.pem',
        '--broker-tls-key',
        'k.pem',
        '--broker-tls-port',
        '8884',
      ],
      { FLEETVISOR_DATA_DIR: dir },
    );
    expect(r.help).toBe(false);
    if (!r.help)
      expect(r.options.broker?.tls).toEqual({
        certFile: 'c.pem',
        keyFile: 'k.pem',
        host: '0.0.0.0',
        port: 8884,
      });
    expect(() => parseCommandLine(['--broker-tls-cert', 'c.pem'], {})).toThrow(UsageError);
    expect(() =>
      parseCommandLine(['--mqtt-url', 'mqtt://x', '--broker-tls-cert', 'c', '--broker-tls-key', 'k'], {}),
    ).toThrow(/embedded broker/);
  });
});
