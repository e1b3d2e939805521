/**
 * Client ids bound to accounts on an external Mosquitto (issue 12 §1): with the files and the
 * mosquitto.conf lines `fleetvisor broker` generates, a device with a valid account of its own
 * cannot connect with the host's client id (guessable from Sparkplug STATE) nor with another
 * device's, so the broker never disconnects them for it. Real parts: a private Mosquitto started
 * on those files, the host's real MQTT link with its instance client id, real device clients.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IClientOptions, MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runBrokerCli } from '../../src/host/broker-cli.js';
import { instanceNames } from '../../src/host/data-folder.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { BrokerAccounts } from '../../src/transports/broker-accounts.js';
import { openBrokerAccounts } from '../../src/transports/broker-accounts.js';
import type { MqttLinkState } from '../../src/transports/mqtt-link.js';
import { startMqttLink } from '../../src/transports/mqtt-link.js';
import { freePort, waitFor } from './helpers.js';

const MOSQUITTO = '/usr/sbin/mosquitto';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** `fleetvisor broker ARGS --data-dir DIR`; what it printed, or a throw with its error output. */
function broker(dir: string, ...argv: string[]): string {
  let out = '';
  let err = '';
  const code = runBrokerCli(
    [...argv, '--data-dir', dir],
    {},
    {
      out: (t) => {
        out += t;
      },
      err: (t) => {
        err += t;
      },
    },
  );
  if (code !== 0) throw new Error(`fleetvisor broker ${argv.join(' ')}: exit ${code}: ${err}`);
  return out;
}

/** The CONNACK return code a connect got (0: accepted); the client is closed again. */
async function connectCode(url: string, options: IClientOptions): Promise<number> {
  try {
    const c = await connectAsync(url, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...options,
    });
    await c.endAsync(true);
    return 0;
  } catch (error) {
    return (error as { code?: number }).code ?? -1;
  }
}

/** A connected client that counts the times the broker closed it. */
async function stayingClient(
  url: string,
  options: IClientOptions,
): Promise<{ c: MqttClient; closes: () => number }> {
  const c = await connectAsync(url, {
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...options,
  });
  c.on('error', () => {});
  let closes = 0;
  c.on('close', () => {
    closes++;
  });
  cleanups.push(() => c.endAsync(true));
  return { c, closes: () => closes };
}

const instance = instanceNames('3f9a0c21');
let dir: string;
let accounts: BrokerAccounts;
let secrets: Record<string, string>;
let url: string;
let devicesUrl: string;
let mosquitto: ChildProcess | undefined;
let mosquittoLog = '';

/**
 * A private Mosquitto set up as the README's "Connecting devices" says for an external broker: the
 * file `fleetvisor broker mosquitto-dynsec` writes and the mosquitto.conf lines it prints, on a
 * listener for everyone (the host too), plus the optional listener for devices whose library
 * picks its own client id (the printed lines show it commented out).
 */
async function startGeneratedMosquitto(): Promise<{ url: string; devicesUrl: string }> {
  const [port, devicesPort] = [await freePort(), await freePort()];
  const file = join(dir, 'fleetvisor-dynsec.json');
  const printed = broker(dir, 'mosquitto-dynsec', '--out', file);
  const lines = printed.slice(printed.indexOf('\n\n', printed.indexOf('In mosquitto.conf')) + 2);
  expect(lines).toContain(`plugin_opt_config_file ${file}`);
  expect(lines).toContain('#use_username_as_clientid true');
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      'persistence false',
      // Run as root (CI containers), Mosquitto would switch to its own user and not read our 0600 files.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      lines,
      `listener ${port} 127.0.0.1`,
      `listener ${devicesPort} 127.0.0.1`,
      'use_username_as_clientid true',
      '',
    ].join('\n'),
  );
  const proc = spawn(MOSQUITTO, ['-c', conf, '-v'], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr.on('data', (d: Buffer) => {
    mosquittoLog += d.toString();
  });
  mosquitto = proc;
  const at = `mqtt://127.0.0.1:${port}`;
  const deadline = Date.now() + 5000;
  while ((await connectCode(at, { ...accounts.host, clientId: 'fleetvisor-probe' })) !== 0) {
    if (Date.now() > deadline) throw new Error(`mosquitto did not start: ${mosquittoLog}`);
    await sleep(100);
  }
  return { url: at, devicesUrl: `mqtt://127.0.0.1:${devicesPort}` };
}

describe.runIf(existsSync(MOSQUITTO))(
  'an external Mosquitto set up by `fleetvisor broker`: client ids belong to accounts',
  () => {
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'fv-broker-client-id-'));
      accounts = openBrokerAccounts(dir);
      secrets = {};
      for (const id of ['pump-1', 'pump-2']) secrets[id] = accounts.issueDevice(id);
      secrets.boiler = accounts.issueDevice('boiler', { convention: 'homie', base: 'homie' });
      ({ url, devicesUrl } = await startGeneratedMosquitto());
    });

    afterAll(async () => {
      const proc = mosquitto;
      if (proc && proc.exitCode === null) {
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    });

    it("a device with its own account cannot take the host's client ids: it is refused, and the host's link and bridges stay connected", async () => {
      const runtime = createRuntime({});
      cleanups.push(() => runtime.dispose());
      const states: MqttLinkState[] = [];
      const link = startMqttLink(runtime, {
        url,
        clientId: instance.mqttClientId,
        ...accounts.host,
        connectTimeoutMs: 2000,
        reconnect: { initialMs: 50, maxMs: 200, jitter: 0.5, stableMs: 2000 },
        onMessage: () => {},
        onDeviceError: () => {},
        onStateChange: (state) => states.push(state),
      });
      cleanups.push(() => link.stop());
      await waitFor(() => states.includes('connected'), 5000, "the host's link to connect");
      // The host's other connections (the Homie and Sparkplug bridges) share its account.
      const homie = await stayingClient(url, { ...accounts.host, clientId: instance.homieClientId });
      const sparkplug = await stayingClient(url, { ...accounts.host, clientId: instance.sparkplugClientId });

      for (const clientId of [instance.mqttClientId, instance.homieClientId, instance.sparkplugClientId]) {
        expect(
          await connectCode(url, { clientId, username: 'pump-1', password: secrets['pump-1'] }),
          clientId,
        ).toBe(5);
        // A Homie account (whose library may pick its own client id) may not take it either.
        expect(
          await connectCode(url, { clientId, username: 'boiler', password: secrets.boiler }),
          clientId,
        ).toBe(5);
      }
      await sleep(300);
      expect(states).toEqual(['connected']); // never dropped, never reconnected
      expect(homie.closes()).toBe(0);
      expect(sparkplug.closes()).toBe(0);
      expect(mosquittoLog).not.toMatch(/already connected, closing old connection/);
    });

    it("a device cannot take another device's client id; each still connects with its own", async () => {
      const victim = await stayingClient(url, {
        clientId: 'pump-2',
        username: 'pump-2',
        password: secrets['pump-2'],
      });
      expect(
        await connectCode(url, { clientId: 'pump-2', username: 'pump-1', password: secrets['pump-1'] }),
      ).toBe(5);
      expect(
        await connectCode(url, { clientId: 'pump-2', username: 'boiler', password: secrets.boiler }),
      ).toBe(5);
      await sleep(300);
      expect(victim.closes()).toBe(0);
      expect(victim.c.connected).toBe(true);
      expect(
        await connectCode(url, { clientId: 'pump-1', username: 'pump-1', password: secrets['pump-1'] }),
      ).toBe(0);
      expect(mosquittoLog).not.toMatch(/already connected, closing old connection/);
    });

    it("a library's own client id: refused on the host's listener, replaced by the username on the devices' one", async () => {
      const random = 'mqttjs_5e1f09ab';
      expect(await connectCode(url, { clientId: random, username: 'boiler', password: secrets.boiler })).toBe(
        5,
      );
      expect(
        await connectCode(url, { clientId: random, username: 'pump-1', password: secrets['pump-1'] }),
      ).toBe(5);
      const homie = await stayingClient(devicesUrl, {
        clientId: random,
        username: 'boiler',
        password: secrets.boiler,
      });
      expect(homie.c.connected).toBe(true);
      await waitFor(
        () => mosquittoLog.includes('as boiler (p2'),
        2000,
        'Mosquitto to log the client as boiler',
      );
      expect(mosquittoLog).not.toContain(random);
      // The devices' listener still asks for the account's password.
      expect(await connectCode(devicesUrl, { clientId: 'x', username: 'pump-1', password: 'guess' })).toBe(5);
    });
  },
);
