/**
 * The simulator and the demo on a Mosquitto whose TLS certificate a private CA signed (issue 12):
 * simulated devices take the CA (`--ca`) and, where the listener asks devices for a certificate,
 * a client certificate and key (`--cert/--key`), as the host's own link takes them
 * (`--mqtt-ca/--mqtt-cert/--mqtt-key`); the demo's devices trust the CA the host was given.
 * Real parts: a private Mosquitto with the dynamic security plugin (as the README sets it up) and
 * two TLS listeners (one that requires a client certificate), a CA and certificates made here by
 * openssl, the app with its SQLite store.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import { runBrokerCli } from '../../src/host/broker-cli.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import { startSimFleet } from '../../src/sim/sim-fleet.js';
import type { BrokerAccounts } from '../../src/transports/broker-accounts.js';
import { openBrokerAccounts } from '../../src/transports/broker-accounts.js';
import { findDynsecPlugin, mosquittoDynsecConf } from '../../src/transports/broker-accounts-dynsec.js';
import { freePort, waitFor } from '../transports/helpers.js';
import type { PrivateMosquitto } from '../transports/private-mosquitto.js';
import { HAS_MOSQUITTO, startPrivateMosquitto } from '../transports/private-mosquitto.js';

const PLUGIN = findDynsecPlugin();
const CAN_RUN = HAS_MOSQUITTO && existsSync(PLUGIN) && spawnSync('openssl', ['version']).status === 0;
const SKIPPED = CAN_RUN ? '' : ` (skipped: mosquitto, its plugin ${PLUGIN} or openssl is not installed)`;

function openssl(...args: string[]): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** A private CA, and a certificate it signs for `cn` (a server's with its address, or a client's). */
function makeCertificates(dir: string) {
  const f = (name: string) => join(dir, name);
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=Fleetvisor test CA',
  );
  const signed = (name: string, cn: string, ext?: string) => {
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
      '-subj',
      `/CN=${cn}`,
    );
    const extFile = f(`${name}.ext`);
    if (ext) spawnSync('sh', ['-c', `printf '%s\\n' '${ext}' > '${extFile}'`]);
    openssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f(`${name}.pem`),
      '-days',
      '1',
      ...(ext ? ['-extfile', extFile] : []),
    );
    return { cert: f(`${name}.pem`), key: f(`${name}.key`) };
  };
  return {
    ca: f('ca.pem'),
    server: signed('server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1'),
    client: signed('client', 'tls-m001'),
  };
}

function cli(dataDir: string, ...argv: string[]): string {
  let out = '';
  const code = runBrokerCli(
    [...argv, '--data-dir', dataDir],
    {},
    { out: (t) => (out += t), err: (t) => (out += t) },
  );
  if (code !== 0) throw new Error(`fleetvisor broker ${argv.join(' ')}: exit ${code}: ${out}`);
  return out;
}

describe.runIf(CAN_RUN)(`simulated devices on Mosquitto over TLS with a private CA${SKIPPED}`, () => {
  const root = mkdtempSync(join(tmpdir(), 'fv-sim-tls-mosq-'));
  const dataDir = join(root, 'data');
  let accounts: BrokerAccounts;
  let broker: PrivateMosquitto;
  let certs: ReturnType<typeof makeCertificates>;
  let tlsUrl: string;
  let mtlsUrl: string;
  const secrets = new Map<string, string>();
  let app: App | undefined;

  beforeAll(async () => {
    certs = makeCertificates(root);
    accounts = openBrokerAccounts(dataDir);
    for (const id of ['tls-m001', 'tls-m002']) secrets.set(id, accounts.issueDevice(id));
    const file = join(root, 'dynsec.json');
    cli(dataDir, 'mosquitto-dynsec', '--out', file);
    const [tlsPort, mtlsPort] = [await freePort(), await freePort()];
    tlsUrl = `mqtts://127.0.0.1:${tlsPort}`;
    mtlsUrl = `mqtts://127.0.0.1:${mtlsPort}`;
    const tls = [`cafile ${certs.ca}`, `certfile ${certs.server.cert}`, `keyfile ${certs.server.key}`];
    broker = await startPrivateMosquitto(
      root,
      'tls',
      [
        mosquittoDynsecConf(file, PLUGIN),
        `listener ${tlsPort} 127.0.0.1`,
        ...tls,
        `listener ${mtlsPort} 127.0.0.1`,
        ...tls,
        'require_certificate true',
      ],
      accounts.host,
    );
  }, 60_000);

  afterAll(async () => {
    await app?.stop();
    await broker?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const credentials = (id: string) => ({ username: id, password: secrets.get(id)! });

  it('connect with the CA (`--ca`), and not without it', async () => {
    const fleet = await startSimFleet({
      mqttUrl: tlsUrl,
      mqtt: 2,
      idPrefix: 'tls',
      tls: { ca: readFileSync(certs.ca) },
      credentials,
    });
    try {
      expect(fleet.mqtt.map((d) => d.connected)).toEqual([true, true]);
    } finally {
      await fleet.stop();
    }
    await expect(
      startSimFleet({ mqttUrl: tlsUrl, mqtt: 1, idPrefix: 'tls', startTimeoutMs: 1500, credentials }),
    ).rejects.toThrow(/self[- ]signed|certificate/i);
  }, 30_000);

  it('connect where a client certificate is required (`--cert/--key`), and not without one', async () => {
    const fleet = await startSimFleet({
      mqttUrl: mtlsUrl,
      mqtt: 1,
      idPrefix: 'tls',
      tls: {
        ca: readFileSync(certs.ca),
        cert: readFileSync(certs.client.cert),
        key: readFileSync(certs.client.key),
      },
      credentials,
    });
    try {
      expect(fleet.mqtt[0]!.connected).toBe(true);
    } finally {
      await fleet.stop();
    }
    await expect(
      startSimFleet({
        mqttUrl: mtlsUrl,
        mqtt: 1,
        idPrefix: 'tls',
        startTimeoutMs: 1500,
        tls: { ca: readFileSync(certs.ca) },
        credentials,
      }),
    ).rejects.toThrow();
  }, 30_000);

  it("the demo's devices trust the CA the host was given (`--mqtt-ca`)", async () => {
    app = await startApp({
      dataDir,
      logger: silentLogger,
      mqtt: { url: tlsUrl, ca: readFileSync(certs.ca), ...accounts.host },
      demo: { mqtt: 2, serial: 0, telemetryIntervalMs: 500 },
    });
    const ids = app.sim!.mqtt.map((d) => d.id);
    expect(ids).toHaveLength(2);
    expect(app.sim!.mqtt.every((d) => d.url === tlsUrl && d.connected)).toBe(true);
    await waitFor(
      () => ids.every((id) => app!.fleet.device(id)?.state === 'connected'),
      15_000,
      'the demo devices connected over TLS',
    );
  }, 60_000);
});
