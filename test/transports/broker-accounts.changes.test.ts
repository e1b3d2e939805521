/**
 * Every change of the broker accounts is seen by every watcher (issue 12, "trust"): a revocation
 * written by another process (`fleetvisor broker device revoke`) or made in this one (a device
 * removed through the API) is counted by {@link BrokerAccounts.changes}, even when another caller
 * re-read the file first (a device's connect verifies against a fresh read). Before, the embedded
 * broker went by `refresh()`'s answer and missed both: the revoked device stayed connected.
 * Real parts: the accounts files in a temp folder, the embedded aedes broker, mqtt.js clients.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { openBrokerAccounts } from '../../src/transports/broker-accounts.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { waitFor } from './helpers.js';

const dirs: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'fv-accounts-changes-'));
  dirs.push(d);
  return d;
};

describe('BrokerAccounts.changes', () => {
  it("counts another process's revocation although a connect re-read the file first", async () => {
    const dir = tempDir();
    const app = openBrokerAccounts(dir);
    const operator = openBrokerAccounts(dir); // the CLI, another process
    const secret = operator.issueDevice('pump-1');
    const seen = app.changes();
    operator.revokeDevice('pump-1');
    // A connect re-reads the file: refresh() has nothing left to say, the count has.
    expect((await app.verify('pump-1', Buffer.from(secret), 'pump-1')).ok).toBe(false);
    expect(app.refresh()).toBe(false);
    expect(app.changes()).toBeGreaterThan(seen);
  });

  it("counts this process's own changes, which refresh() never reports", () => {
    const app = openBrokerAccounts(tempDir());
    const before = app.changes();
    app.issueDevice('pump-2');
    app.revokeDevice('pump-2');
    expect(app.refresh()).toBe(false);
    expect(app.changes()).toBe(before + 2);
  });
});

describe('the embedded broker and a revocation made in its own process', () => {
  it('disconnects the device, after telling the host (onAccountsChanged)', async () => {
    const accounts = openBrokerAccounts(tempDir());
    const secret = accounts.issueDevice('pump-3');
    const order: string[] = [];
    const broker: EmbeddedBroker = await startEmbeddedBroker({
      port: 0,
      auth: accounts,
      accountsRefreshMs: 100,
      onAccountsChanged: () => order.push('told'),
    });
    cleanups.push(() => broker.close());
    const device: MqttClient = await connectAsync(broker.url, {
      clientId: 'pump-3',
      username: 'pump-3',
      password: secret,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    cleanups.push(() => device.endAsync(true));
    device.on('close', () => order.push('closed'));
    await new Promise((r) => setTimeout(r, 300)); // a few re-reads with nothing changed
    expect(order).toEqual([]);

    accounts.revokeDevice('pump-3'); // as the app does when the device is removed from the fleet
    await waitFor(() => order.includes('closed'), 5000, 'pump-3 disconnected');
    expect(order).toEqual(['told', 'closed']);
  });
});
