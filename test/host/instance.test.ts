/**
 * `startInstance` (src/host/instance.ts), the one start of both front doors (the headless
 * server and the desktop shell): the data folder's lock comes first, so a second start on a folder
 * in use fails naming the running one, before it opens the database or connects to the broker;
 * the app connects with this instance's own client ids (from the instance id kept in the folder);
 * after a stop and release the folder starts again, with the same instance id.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataFolderLockedError, instanceNames } from '../../src/host/data-folder.js';
import { startInstance } from '../../src/host/instance.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { waitFor } from '../transports/helpers.js';

let dir: string;
let broker: EmbeddedBroker;
const connected = new Set<string>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fv-instance-'));
  broker = await startEmbeddedBroker({ port: 0 });
  broker.aedes.on('client', (client) => connected.add(client.id));
  broker.aedes.on('clientDisconnect', (client) => connected.delete(client.id));
});

afterAll(async () => {
  await broker?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const options = () => ({
  dataDir: dir,
  logger: silentLogger,
  mqtt: { url: broker.url },
  demo: false as const,
});

describe('startInstance', () => {
  it('holds the data folder: a second start fails naming the first, and touches no broker', async () => {
    const first = await startInstance(options());
    const names = instanceNames(first.folder.instanceId);
    expect(first.folder.instanceId).toMatch(/^[0-9a-f]{8}$/);
    await waitFor(() => connected.has(names.mqttClientId), 10_000, 'the host link on the broker', 50);
    // The link carries Homie too (issue 11 §2): Sparkplug keeps its own for its STATE will.
    await waitFor(() => connected.has(names.sparkplugClientId), 10_000, 'the Sparkplug bridge', 50);
    expect([...connected].sort()).toEqual([names.mqttClientId, names.sparkplugClientId].sort());

    const second = await startInstance(options()).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(second).toBeInstanceOf(DataFolderLockedError);
    expect((second as Error).message).toContain(`in use by Fleetvisor pid ${process.pid}`);
    expect(connected.size).toBe(2); // the refused start connected nothing

    await first.app.stop();
    first.folder.release();
    await waitFor(() => connected.size === 0, 10_000, 'the first instance off the broker', 50);

    const again = await startInstance(options());
    expect(again.folder.instanceId).toBe(first.folder.instanceId);
    await waitFor(() => connected.has(names.mqttClientId), 10_000, 'the host link back', 50);
    await again.app.stop();
    again.folder.release();
  }, 60_000);

  it('releases the folder when the app cannot start', async () => {
    const bad = await startInstance({ ...options(), mqtt: { url: 'ftp://nowhere' } }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(bad).toBeInstanceOf(Error);
    expect(bad).not.toBeInstanceOf(DataFolderLockedError);
    const next = await startInstance(options());
    await next.app.stop();
    next.folder.release();
  }, 60_000);
});
