/**
 * The app's root supervisor on the real app: it holds the broker, the devices and the links; a
 * part the root cannot start again (the links) ending on its own stops the app, which says so.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import { silentLogger } from '../../src/runtime/runtime.js';

const dirs: string[] = [];
const apps: App[] = [];

afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function start(): Promise<App> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fv-root-'));
  dirs.push(dataDir);
  const app = await startApp({
    dataDir,
    logger: silentLogger,
    broker: { port: 0 },
    demo: false,
    conventions: [],
  });
  apps.push(app);
  return app;
}

describe("the app's root supervisor", () => {
  it('holds broker, devices and links (newest first, as OTP lists them)', async () => {
    const app = await start();
    const children = app.supervisor.whichChildren();
    expect(children.map((c) => c.id)).toEqual(['links', 'devices', 'broker']);
    expect(children.every((c) => c.status === 'running')).toBe(true);
    expect(children.find((c) => c.id === 'devices')?.pid).toBe(app.fleet.supervisor.pid);
    expect(children.find((c) => c.id === 'links')?.pid).toBe(app.links.supervisor?.pid);
  });

  it('when the links end on their own, the root stops the rest and the app stops, saying why', async () => {
    const app = await start();
    const stopped = app.whenStopped();
    app.links.supervisor!.kill();
    const reason = await stopped;
    expect(reason).toEqual({ type: 'shutdown' });
    expect(app.supervisor.alive).toBe(false);
    expect(app.fleet.supervisor.alive).toBe(false);
  });

  it('a stop asked for resolves whenStopped with no reason of its own', async () => {
    const app = await start();
    const stopped = app.whenStopped();
    await app.stop();
    expect(await stopped).toBeUndefined();
  });
});
