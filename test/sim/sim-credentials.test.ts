/** Simulated devices use broker credentials like real ones (issue 12 §1): each its own account. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCliArgs } from '../../src/sim/cli.js';
import { startSimFleet } from '../../src/sim/sim-fleet.js';
import type { BrokerAccounts } from '../../src/transports/broker-accounts.js';
import { openBrokerAccounts } from '../../src/transports/broker-accounts.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';

let dir: string;
let accounts: BrokerAccounts;
let broker: EmbeddedBroker;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fv-sim-cred-'));
  accounts = openBrokerAccounts(dir);
  broker = await startEmbeddedBroker({ port: 0, auth: accounts });
});
afterAll(async () => {
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('simulated devices on a broker with accounts', () => {
  it('connect with their own accounts, and cannot without', async () => {
    const fleet = await startSimFleet({
      mqttUrl: broker.url,
      mqtt: 3,
      idPrefix: 'cred',
      credentials: (id) => ({ username: id, password: accounts.issueDevice(id) }),
    });
    try {
      expect(fleet.mqtt.every((d) => d.connected)).toBe(true);
      expect(broker.refusals().connect).toBe(0);
    } finally {
      await fleet.stop();
    }
    await expect(
      startSimFleet({ mqttUrl: broker.url, mqtt: 1, idPrefix: 'anon', startTimeoutMs: 1500 }),
    ).rejects.toThrow();
    expect(broker.refusals().connect).toBeGreaterThan(0);
  });

  it('the CLI takes a data folder or a provisioning secret, not both', () => {
    expect(parseCliArgs(['--data-dir', '/tmp/x'])).toMatchObject({
      kind: 'run',
      options: { dataDir: '/tmp/x' },
    });
    expect(parseCliArgs(['--provisioning-secret', 's'])).toMatchObject({
      kind: 'run',
      options: { provisioningSecret: 's' },
    });
    expect(parseCliArgs(['--data-dir', '/tmp/x', '--provisioning-secret', 's'])).toMatchObject({
      kind: 'error',
    });
  });
});
