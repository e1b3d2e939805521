/**
 * The simulator on a broker whose certificate a private CA signed (issue 12): `--ca FILE` (and
 * `--cert/--key`, as the host's `--mqtt-ca/--mqtt-cert/--mqtt-key`) reach every simulated device's
 * connection. Real parts: the embedded broker's TLS listener with a certificate made here by
 * openssl (its own CA), its accounts, and the CLI as a user runs it (`npm run sim -- …`), stopped
 * with the signal Ctrl-C sends.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, parseCliArgs } from '../../src/sim/cli.js';
import { startSimFleet } from '../../src/sim/sim-fleet.js';
import type { BrokerAccounts } from '../../src/transports/broker-accounts.js';
import { openBrokerAccounts } from '../../src/transports/broker-accounts.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { waitFor } from '../transports/helpers.js';

let dir: string;
let certFile: string;
let keyFile: string;
let accounts: BrokerAccounts;
let broker: EmbeddedBroker;
let tlsUrl: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fv-sim-tls-'));
  keyFile = join(dir, 'key.pem');
  certFile = join(dir, 'cert.pem');
  // A self-signed certificate: its own CA, which no system trust store knows.
  const made = spawnSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '1',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ]);
  expect(made.status).toBe(0);
  accounts = openBrokerAccounts(join(dir, 'data'));
  broker = await startEmbeddedBroker({
    port: 0,
    auth: accounts,
    tls: { certFile, keyFile, host: '127.0.0.1', port: 0 },
  });
  tlsUrl = broker.tlsUrl!;
});

afterAll(async () => {
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('simulated devices on an mqtts:// broker with a private CA', () => {
  it('connect when given the CA, each with its own account', async () => {
    const fleet = await startSimFleet({
      mqttUrl: tlsUrl,
      mqtt: 2,
      idPrefix: 'tls',
      tls: { ca: readFileSync(certFile) },
      credentials: (id) => ({ username: id, password: accounts.issueDevice(id) }),
    });
    try {
      expect(fleet.mqtt.map((d) => d.connected)).toEqual([true, true]);
      expect(fleet.mqtt[0]!.url).toBe(tlsUrl);
    } finally {
      await fleet.stop();
    }
  });

  it('without it, the connection is refused for the certificate, and said so', async () => {
    await expect(
      startSimFleet({
        mqttUrl: tlsUrl,
        mqtt: 1,
        idPrefix: 'noca',
        startTimeoutMs: 1500,
        credentials: (id) => ({ username: id, password: accounts.issueDevice(id) }),
      }),
    ).rejects.toThrow(/self[- ]signed|certificate/i);
  });

  it('the CLI reads --ca, --cert and --key (together), for a broker given by --url only', () => {
    const parsed = parseCliArgs(['--url', tlsUrl, '--ca', certFile, '--cert', certFile, '--key', keyFile]);
    expect(parsed.kind).toBe('run');
    if (parsed.kind === 'run') {
      expect(parsed.options.tls.ca?.equals(readFileSync(certFile))).toBe(true);
      expect(parsed.options.tls.cert?.equals(readFileSync(certFile))).toBe(true);
      expect(parsed.options.tls.key?.equals(readFileSync(keyFile))).toBe(true);
    }
    expect(parseCliArgs(['--url', tlsUrl])).toMatchObject({ kind: 'run', options: { tls: {} } });
    expect(parseCliArgs(['--url', tlsUrl, '--cert', certFile])).toEqual({
      kind: 'error',
      message: '--cert and --key go together',
    });
    expect(parseCliArgs(['--ca', certFile])).toMatchObject({ kind: 'error', message: /--url/ });
    const missing = parseCliArgs(['--url', tlsUrl, '--ca', join(dir, 'nope.pem')]);
    expect(missing).toMatchObject({ kind: 'error', message: /^--ca .*nope\.pem: ENOENT/ });
  });

  it('`npm run sim -- --url mqtts://… --ca FILE --data-dir DIR` runs devices there until Ctrl-C', async () => {
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(`ERR ${l}`) };
    const running = main(
      ['--url', tlsUrl, '--ca', certFile, '--data-dir', join(dir, 'data'), '--mqtt', '2', '--prefix', 'cli'],
      io,
    );
    await waitFor(
      () => lines.some((l) => /device\(s\) running/.test(l)) || lines.some((l) => l.startsWith('ERR')),
      20_000,
      'the simulated devices to run',
    );
    expect(lines.filter((l) => l.startsWith('ERR'))).toEqual([]);
    expect(lines).toContain(`mqtt    cli-m001  connected to ${tlsUrl}`);
    // The signal Ctrl-C sends: the CLI's own handler stops the fleet and resolves.
    process.emit('SIGINT', 'SIGINT');
    expect(await running).toBe(0);
    expect(lines).toContain('stopped');
  }, 30_000);
});
