/**
 * Account changes reach a running Mosquitto live (issue 12 §1, external broker): the host, joined
 * to a private Mosquitto set up as the README says (`fleetvisor broker mosquitto-dynsec`), passes
 * every change of the data folder's accounts to its dynamic security plugin — no broker restart.
 * Real parts: the Mosquitto process (never restarted here), the app with its SQLite store, the
 * `fleetvisor broker` command as an operator runs it, simulated devices on their own accounts.
 *
 * - adopt: a device given an account while the host runs connects with it at once, and is adopted;
 * - rotate: its old secret is refused at once, the new one works;
 * - revoke: its session ends and it cannot connect again;
 * - removed from the fleet: its client is deleted too;
 * - host restart: what changed while it was down is made true on the broker, and only the host's
 *   own clients are deleted (the broker admin's others stay);
 * - a broker that does not take changes (a plugin file without $CONTROL for the host, or a
 *   password_file): the change is kept in the accounts, the host says once to write the file
 *   again, and no secret stays in clear in the data folder.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostApiHandle } from '../../../src/host/api.js';
import { createHostApi } from '../../../src/host/api.js';
import type { App } from '../../../src/host/app.js';
import { startApp } from '../../../src/host/app.js';
import { runBrokerCli } from '../../../src/host/broker-cli.js';
import { instanceIdOf } from '../../../src/host/data-folder.js';
import type { Logger } from '../../../src/runtime/runtime.js';
import type { MqttSimDevice } from '../../../src/sim/mqtt-device.js';
import { startMqttSimDevice } from '../../../src/sim/mqtt-device.js';
import type { BrokerAccounts } from '../../../src/transports/broker-accounts.js';
import { openBrokerAccounts } from '../../../src/transports/broker-accounts.js';
import {
  dynsecDeviceAccountCommands,
  findDynsecPlugin,
  mosquittoDynsecConf,
} from '../../../src/transports/broker-accounts-dynsec.js';
import { HANDOVER_DIR } from '../../../src/transports/broker-accounts-handover.js';
import { sendDynsecCommands } from '../../../src/transports/mosquitto-dynsec-control.js';
import { waitFor } from '../../transports/helpers.js';
import type { PrivateMosquitto } from '../../transports/private-mosquitto.js';
import { connectCode, HAS_MOSQUITTO, startPrivateMosquitto } from '../../transports/private-mosquitto.js';

const PLUGIN = findDynsecPlugin();
const CAN_RUN = HAS_MOSQUITTO && existsSync(PLUGIN);
const SKIPPED = CAN_RUN ? '' : ` (skipped: mosquitto or its plugin ${PLUGIN} is not installed)`;

/** `fleetvisor broker ARGS --data-dir DIR`: what it printed; a throw with its error output. */
function cli(dataDir: string, ...argv: string[]): string {
  let out = '';
  let errors = '';
  const code = runBrokerCli(
    [...argv, '--data-dir', dataDir],
    {},
    {
      out: (t) => {
        out += t;
      },
      err: (t) => {
        errors += t;
      },
    },
  );
  if (code !== 0) throw new Error(`fleetvisor broker ${argv.join(' ')}: exit ${code}: ${errors}`);
  return out;
}

/** The secret `device add|rotate` printed (the line after "password:"). */
const secretIn = (out: string) => out.split('\n')[1]!.trim();

/** Every line the app logs, with its level. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (message: string) => {
    lines.push(`${level} ${message}`);
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

async function timed(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}

describe.runIf(CAN_RUN)(`account changes on a running dynsec Mosquitto, live${SKIPPED}`, () => {
  const root = mkdtempSync(join(tmpdir(), 'fv-accounts-sync-'));
  const dataDir = join(root, 'data');
  const sims: MqttSimDevice[] = [];
  let accounts: BrokerAccounts;
  let broker: PrivateMosquitto;
  let app: App | undefined;
  let api: HostApiHandle | undefined;
  let log = recordingLogger();

  const login = (id: string, password: string) => ({ clientId: id, username: id, password });
  const asHost = () => ({ url: broker.url, ...accounts.host });
  const brokerClients = async (): Promise<{ username: string; textdescription?: string }[]> => {
    const r = await sendDynsecCommands(asHost(), [{ command: 'listClients', verbose: true, count: -1 }], {
      clientId: 'test-admin',
    });
    if (!r.ok) throw new Error(r.error.message);
    return (r.value[0]!.data as { clients: { username: string; textdescription?: string }[] }).clients;
  };
  const start = async () => {
    log = recordingLogger();
    app = await startApp({
      dataDir,
      logger: log,
      mqtt: asHost(),
      demo: false,
      adopt: 'manual',
    });
    api = createHostApi(app);
  };
  const stop = async () => {
    api?.close();
    await app?.stop();
    app = undefined;
  };
  const sim = async (id: string, password: string) => {
    const d = await startMqttSimDevice(broker.url, {
      id,
      username: id,
      password,
      telemetryIntervalMs: 500,
      reconnectMaxMs: 1000,
      startTimeoutMs: 10_000,
    });
    sims.push(d);
    return d;
  };

  /** Adopted through the API as an operator would, once the host lists it as discovered. */
  const adopt = (id: string) =>
    timed(async () => (await api!.call('adopt', { id }, { actor: 'alice' })).ok, `${id} adopted`);

  beforeAll(async () => {
    accounts = openBrokerAccounts(dataDir);
    const file = join(root, 'dynsec.json');
    const said = cli(dataDir, 'mosquitto-dynsec', '--out', file);
    expect(said).toContain('later account changes reach it live');
    broker = await startPrivateMosquitto(root, 'dynsec', [mosquittoDynsecConf(file, PLUGIN)], accounts.host);
    // The broker admin's own clients: one with its own role, one that looks like a device's
    // (Fleetvisor's role name) but was not made from these accounts. The host must leave both.
    const admin = await sendDynsecCommands(
      asHost(),
      [
        { command: 'createRole', rolename: 'dashboards', acls: [] },
        {
          command: 'createClient',
          username: 'admin-tool',
          password: 'admin-pw',
          roles: [{ rolename: 'dashboards' }],
        },
        ...dynsecDeviceAccountCommands('legacy-1', 'legacy-pw'),
      ],
      { clientId: 'test-admin' },
    );
    expect(admin.ok && admin.value.filter((a) => a.command.startsWith('create')).every((a) => !a.error)).toBe(
      true,
    );
    await start();
    await waitFor(
      () => existsSync(join(dataDir, HANDOVER_DIR)),
      10_000,
      'the host to manage the accounts live',
    );
  }, 60_000);

  afterAll(async () => {
    for (const d of sims) await d.stop();
    await stop();
    await broker?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('adopt: a device given an account while the host runs connects with it at once, no restart', async () => {
    const out = cli(dataDir, 'device', 'add', 'pump-1');
    expect(out).toContain('no restart needed');
    const secret = secretIn(out);
    const tookMs = await timed(
      async () => (await connectCode(broker.url, login('pump-1', secret))) === 0,
      'pump-1 in',
    );
    console.log(`pump-1's account on the broker ${tookMs} ms after \`device add\``);
    expect(tookMs).toBeLessThan(5000);
    const d = await sim('pump-1', secret);
    await adopt('pump-1');
    await waitFor(() => app!.fleet.device('pump-1')?.state === 'connected', 10_000, 'pump-1 connected');
    expect(d.connected).toBe(true);
    // Made through the plugin, bound to its client id, marked as this host's.
    expect(broker.log()).toMatch(
      /dynsec: fleetvisor-[0-9a-f]{8}-accounts-sync\/fleetvisor\.host \| createClient \| username=pump-1/,
    );
    const client = (await brokerClients()).find((c) => c.username === 'pump-1');
    expect(client?.textdescription).toContain(instanceIdOf(dataDir));
    // Nothing in clear left behind.
    expect(readdirSync(join(dataDir, HANDOVER_DIR))).toEqual([]);
    // Still bound: another account cannot take its client id.
    expect(await connectCode(broker.url, { ...login('legacy-1', 'legacy-pw'), clientId: 'pump-1' })).toBe(5);
  }, 30_000);

  it('rotate: the old secret is refused at once, the new one works', async () => {
    const old = secretIn(cli(dataDir, 'device', 'add', 'valve-1'));
    await timed(async () => (await connectCode(broker.url, login('valve-1', old))) === 0, 'valve-1 in');
    const fresh = secretIn(cli(dataDir, 'device', 'rotate', 'valve-1'));
    const tookMs = await timed(
      async () => (await connectCode(broker.url, login('valve-1', old))) === 5,
      "valve-1's old secret refused",
    );
    console.log(`valve-1's old secret refused ${tookMs} ms after \`device rotate\``);
    expect(tookMs).toBeLessThan(5000);
    expect(await connectCode(broker.url, login('valve-1', fresh))).toBe(0);
  }, 30_000);

  it('revoke: its session ends and it cannot connect again', async () => {
    const secret = secretIn(cli(dataDir, 'device', 'add', 'fan-1'));
    await timed(async () => (await connectCode(broker.url, login('fan-1', secret))) === 0, 'fan-1 in');
    const d = await sim('fan-1', secret);
    await adopt('fan-1');
    await waitFor(() => app!.fleet.device('fan-1')?.state === 'connected', 10_000, 'fan-1 connected');
    const connects = d.stats.connects;

    const out = cli(dataDir, 'device', 'revoke', 'fan-1');
    expect(out).toContain('no restart needed');
    const tookMs = await timed(async () => !d.connected, "fan-1's session ended");
    console.log(`fan-1's session ended ${tookMs} ms after \`device revoke\``);
    expect(tookMs).toBeLessThan(5000);
    expect(broker.log()).toMatch(/Client fan-1 been disconnected by administrative action/);
    // It keeps trying (its reconnect backoff is 1 s at most here), and is refused every time.
    await new Promise((r) => setTimeout(r, 2500));
    expect(d.stats.connects).toBe(connects);
    expect(d.connected).toBe(false);
    expect(await connectCode(broker.url, login('fan-1', secret))).toBe(5);
    // (Mosquitto publishes no will for a client it disconnects this way, checked on 2.0.11: the
    // host shows fan-1 disconnected by the revocation itself: test/host/app/broker-revoke-presence.test.ts.)
    await d.stop();
  }, 30_000);

  it('a device removed from the fleet: its client is deleted on the broker', async () => {
    const secret = secretIn(cli(dataDir, 'device', 'rotate', 'pump-1'));
    await timed(
      async () => (await connectCode(broker.url, login('pump-1', secret))) === 0,
      'pump-1 in, rotated',
    );
    const removed = await api!.call('deviceRemove', { id: 'pump-1', purge: false }, { actor: 'alice' });
    expect(removed).toMatchObject({ ok: true, value: { brokerAccountRevoked: true } });
    await timed(async () => (await connectCode(broker.url, login('pump-1', secret))) === 5, 'pump-1 out');
    expect((await brokerClients()).map((c) => c.username)).not.toContain('pump-1');
  }, 30_000);

  it('host restart: the changes made while it was down reach the broker, and only its own clients go', async () => {
    const keep = secretIn(cli(dataDir, 'device', 'add', 'gate-1'));
    await timed(async () => (await connectCode(broker.url, login('gate-1', keep))) === 0, 'gate-1 in');
    await stop();

    // While the host is down: one device revoked, one added, and a client this instance made for
    // an account the data folder no longer has (as after restoring an older data folder).
    cli(dataDir, 'device', 'revoke', 'gate-1');
    const late = secretIn(cli(dataDir, 'device', 'add', 'late-1'));
    const owner = instanceIdOf(dataDir);
    await sendDynsecCommands(asHost(), dynsecDeviceAccountCommands('gone-1', 'gone-pw', undefined, owner), {
      clientId: 'test-admin',
    });
    expect(await connectCode(broker.url, login('gate-1', keep))).toBe(0); // the broker was not told
    expect(await connectCode(broker.url, login('late-1', late))).toBe(5);
    expect(await connectCode(broker.url, login('gone-1', 'gone-pw'))).toBe(0);

    await start();
    const tookMs = await timed(
      async () =>
        (await connectCode(broker.url, login('late-1', late))) === 0 &&
        (await connectCode(broker.url, login('gate-1', keep))) === 5 &&
        (await connectCode(broker.url, login('gone-1', 'gone-pw'))) === 5,
      'the broker reconciled',
    );
    console.log(`broker reconciled ${tookMs} ms after the host's start returned`);
    const names = (await brokerClients()).map((c) => c.username).sort();
    expect(names).toEqual(['admin-tool', 'fleetvisor.host', 'late-1', 'legacy-1', 'valve-1']);
    expect(await connectCode(broker.url, login('valve-1', 'x'))).toBe(5);
    expect(
      await connectCode(broker.url, { clientId: 'admin-tool', username: 'admin-tool', password: 'admin-pw' }),
    ).toBe(0);
    expect(log.lines.filter((l) => l.startsWith('warn'))).toEqual([]);
  }, 60_000);
});

describe.runIf(CAN_RUN)(`a broker that does not take account changes${SKIPPED}`, () => {
  const root = mkdtempSync(join(tmpdir(), 'fv-accounts-nosync-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  async function changesOn(name: string, auth: (dataDir: string) => string[]) {
    const dataDir = join(root, name);
    const accounts = openBrokerAccounts(dataDir);
    cli(dataDir, 'device', 'add', 'old-1');
    const broker = await startPrivateMosquitto(root, name, auth(dataDir), accounts.host);
    const log = recordingLogger();
    let app: App | undefined;
    try {
      app = await startApp({
        dataDir,
        logger: log,
        mqtt: { url: broker.url, ...accounts.host },
        demo: false,
      });
      const warned = () => log.lines.filter((l) => l.startsWith('warn'));
      await waitFor(() => warned().length > 0, 10_000, 'the host to say what to do');
      // Changes go on: kept in the accounts, nothing in clear, said once only.
      const out = cli(dataDir, 'device', 'add', 'new-1');
      expect(out).not.toContain('no restart needed');
      cli(dataDir, 'device', 'revoke', 'old-1');
      await new Promise((r) => setTimeout(r, 4500)); // the host asked again (noAnswer: 3 s)
      accounts.refresh();
      expect(accounts.devices().map((d) => [d.id, d.revokedAt === null])).toEqual([
        ['new-1', true],
        ['old-1', false],
      ]);
      expect(existsSync(join(dataDir, HANDOVER_DIR))).toBe(false);
      expect(warned()).toHaveLength(1);
      expect(warned()[0]).toContain('fleetvisor broker mosquitto-dynsec --out FILE');
      expect(warned()[0]).toContain('restart Mosquitto');
      return warned()[0]!;
    } finally {
      await app?.stop();
      await broker.stop();
    }
  }

  it('a plugin file that does not let the host use $CONTROL', async () => {
    const said = await changesOn('dynsec-old', (dataDir) => {
      const file = join(root, 'dynsec-old.json');
      const config = JSON.parse(openBrokerAccounts(dataDir).mosquittoDynsecConfig()) as {
        roles: { rolename: string; acls: { topic: string }[] }[];
      };
      for (const role of config.roles) role.acls = role.acls.filter((a) => !a.topic.startsWith('$CONTROL'));
      writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
      return [mosquittoDynsecConf(file, PLUGIN)];
    });
    // Mosquitto 2.0 grants the subscription to the answers and drops the command: no answer.
    expect(said).toMatch(/no answer on \$CONTROL\/dynamic-security\/v1\/response|refused fleetvisor\.host/);
  }, 60_000);

  it('a password_file (no plugin)', async () => {
    const said = await changesOn('passwd', (dataDir) => {
      const file = join(root, 'passwd.txt');
      writeFileSync(file, openBrokerAccounts(dataDir).mosquittoPasswordFile(), { mode: 0o600 });
      return [`password_file ${file}`];
    });
    expect(said).toMatch(/no answer on \$CONTROL\/dynamic-security\/v1\/response/);
  }, 60_000);
});
