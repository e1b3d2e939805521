/**
 * The demo's simulated devices and broker accounts (issue 12 §1: "the simulator and the demo use
 * credentials like a real device"), on real brokers:
 *
 * - the embedded broker with its accounts (the default): the devices get theirs, strangers stay out;
 * - a private Mosquitto with a `password_file` and no anonymous clients, which the host cannot
 *   add accounts to: `fleetvisor --mqtt-url … --demo-devices 2` (a real process) stops at once with
 *   one sentence saying what to do, not a 15 s wait and a stack;
 * - a private Mosquitto set up as the README says (`fleetvisor broker mosquitto-dynsec`): the host
 *   creates each device's account through the plugin (bound to its client id), the devices come up
 *   connected, and the accounts are deleted when the app stops; with a plugin file written before
 *   the host could manage accounts, the start says to write it again.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DemoUnavailableError } from '../../../src/host/app/demo-accounts.js';
import type { App } from '../../../src/host/app.js';
import { startApp } from '../../../src/host/app.js';
import { silentLogger } from '../../../src/runtime/runtime.js';
import type { BrokerAccounts } from '../../../src/transports/broker-accounts.js';
import { openBrokerAccounts } from '../../../src/transports/broker-accounts.js';
import { mosquittoDynsecConf } from '../../../src/transports/broker-accounts-dynsec.js';
import { waitFor } from '../../transports/helpers.js';
import {
  connectCode,
  HAS_MOSQUITTO as HAS_BROKER,
  startPrivateMosquitto,
} from '../../transports/private-mosquitto.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const MAIN = join(ROOT, 'src/host/main.ts');
const HAS_MOSQUITTO = HAS_BROKER && existsSync('/usr/bin/mosquitto_passwd');
const SKIPPED = HAS_MOSQUITTO ? '' : ' (skipped: mosquitto and mosquitto_passwd are not installed)';

const deviceIds = (app: App) =>
  app.fleet
    .list()
    .map((d) => d.id)
    .sort();

describe('the demo on the embedded broker (accounts on, the default)', () => {
  let dir: string;
  let app: App;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fv-demo-embedded-'));
    app = await startApp({
      dataDir: dir,
      logger: silentLogger,
      broker: { port: 0 },
      demo: { mqtt: 2, serial: 0 },
    });
  }, 60_000);
  afterAll(async () => {
    await app?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('its devices connect with accounts of their own; a client without one is refused', async () => {
    await waitFor(
      () => ['demo-m001', 'demo-m002'].every((id) => app.fleet.device(id)?.state === 'connected'),
      15_000,
      'the demo devices connected',
    );
    expect(app.brokerAccounts!.devices().map((d) => d.id)).toEqual(['demo-m001', 'demo-m002']);
    expect(await connectCode(app.brokerUrl!, { clientId: 'demo-m003' })).toBe(4);
    expect(
      await connectCode(app.brokerUrl!, { clientId: 'demo-m001', username: 'demo-m001', password: 'guess' }),
    ).toBe(4);
  }, 30_000);
});

describe.runIf(HAS_MOSQUITTO)(`the demo on an external Mosquitto that asks for accounts${SKIPPED}`, () => {
  const root = mkdtempSync(join(tmpdir(), 'fv-demo-external-'));
  const stops: (() => Promise<unknown>)[] = [];
  let dataDir: string;
  let accounts: BrokerAccounts;

  /** A private Mosquitto with `auth` (test/transports/private-mosquitto.ts), stopped after the tests. */
  async function startMosquitto(name: string, auth: readonly string[]) {
    const broker = await startPrivateMosquitto(root, name, auth, accounts.host);
    stops.push(broker.stop);
    return broker;
  }

  const external = (url: string) => ({
    logger: silentLogger,
    mqtt: { url, ...accounts.host },
    demo: { mqtt: 2, serial: 0 },
  });

  beforeAll(() => {
    dataDir = join(root, 'data');
    accounts = openBrokerAccounts(dataDir);
  });
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('with a password_file: `fleetvisor --demo-devices 2` stops at once and says what to do', async () => {
    const passwd = join(root, 'passwd');
    execFileSync('/usr/bin/mosquitto_passwd', [
      '-b',
      '-c',
      passwd,
      accounts.host.username,
      accounts.host.password,
    ]);
    const broker = await startMosquitto('passwd', [`password_file ${passwd}`]);
    const started = Date.now();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        MAIN,
        '--data-dir',
        join(root, 'cli-data'),
        '--mqtt-url',
        broker.url,
        '--mqtt-username',
        accounts.host.username,
        '--demo-devices',
        '2',
      ],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          FLEETVISOR_MQTT_PASSWORD: accounts.host.password,
          FLEETVISOR_DATA_DIR: '',
          FLEETVISOR_MQTT_URL: '',
          FLEETVISOR_PORT: '',
        },
      },
    );
    stops.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    // From the app's first line (the store opened; tsx's start-up before it is not the app's doing).
    let firstLineAt: number | undefined;
    child.stdout!.on('data', () => {
      firstLineAt ??= Date.now();
    });
    const code = await new Promise<number | null>((done) => child.on('exit', (c) => done(c)));
    const tookMs = Date.now() - (firstLineAt ?? started);
    console.log(`exit ${code} ${tookMs} ms after the app's first line; stderr:\n${stderr}`);
    expect(code).toBe(1);
    const said = stderr.trim();
    expect(said).toMatch(/^fleetvisor: the demo cannot run on mqtt:\/\/127\.0\.0\.1:\d+: /);
    expect(said).toContain('fleetvisor broker mosquitto-dynsec --out FILE');
    expect(said).toContain('--no-demo');
    expect(said).not.toMatch(/\n\s+at /); // one sentence, no stack
    // Not the devices' 15 s connect timeout: the host asks the plugin (3 s at most) and answers.
    expect(tookMs).toBeLessThan(10_000);
    // The broker refused no device: none was started.
    expect(broker.log()).not.toMatch(/demo-[0-9a-f]{8}-m00\d/);
  }, 60_000);

  it('set up by `fleetvisor broker mosquitto-dynsec`: the host makes each device an account, deleted when it stops', async () => {
    const file = join(root, 'dynsec.json');
    writeFileSync(file, accounts.mosquittoDynsecConfig(), { mode: 0o600 });
    const broker = await startMosquitto('dynsec', [mosquittoDynsecConf(file)]);
    const app = await startApp({ dataDir, ...external(broker.url) });
    try {
      const ids = deviceIds(app);
      expect(ids).toHaveLength(2);
      await waitFor(
        () => ids.every((id) => app.fleet.device(id)?.state === 'connected'),
        15_000,
        'the demo devices connected',
      );
      // In the plugin's file (Mosquitto keeps it up to date), each bound to its own client id.
      const clients = (
        JSON.parse(readFileSync(file, 'utf8')) as { clients: { username: string; clientid?: string }[] }
      ).clients;
      for (const id of ids)
        expect(clients).toContainEqual(expect.objectContaining({ username: id, clientid: id }));
      // Still nobody gets in without an account, nor with a device's name and a guess.
      expect(await connectCode(broker.url, { clientId: 'stranger' })).toBe(5);
      expect(await connectCode(broker.url, { clientId: ids[0]!, username: ids[0]!, password: 'guess' })).toBe(
        5,
      );
    } finally {
      await app.stop();
    }
    const after = (JSON.parse(readFileSync(file, 'utf8')) as { clients: { username: string }[] }).clients;
    expect(after.map((c) => c.username)).toEqual([accounts.host.username]);
  }, 60_000);

  it('with a plugin file written before the host could make accounts: the start says to write it again', async () => {
    const file = join(root, 'dynsec-old.json');
    const config = JSON.parse(accounts.mosquittoDynsecConfig()) as {
      roles: { rolename: string; acls: { topic: string }[] }[];
    };
    for (const role of config.roles) role.acls = role.acls.filter((a) => !a.topic.startsWith('$CONTROL'));
    writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
    const broker = await startMosquitto('dynsec-old', [mosquittoDynsecConf(file)]);
    const start = startApp({ dataDir, ...external(broker.url) });
    await expect(start).rejects.toBeInstanceOf(DemoUnavailableError);
    await expect(start).rejects.toThrow(/a plugin file written before the host could manage accounts/);
    await expect(start).rejects.toThrow(
      /fleetvisor broker mosquitto-dynsec --out FILE` \(again, if yours is older\)/,
    );
  }, 30_000);
});
