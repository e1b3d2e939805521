/**
 * A real host for browser tests: the app (embedded broker, SQLite file in a fresh data folder),
 * its API served by the host's own server with the production renderer build, and a page of
 * Debian's Chromium opened on it, collecting page errors. `close()` stops all of it and removes
 * the folders.
 *
 * @example
 * const host = await startRealHost({ name: 'tree', app: { demo: { mqtt: 3, serial: 0 }, conventions: [] } });
 * await host.page.getByTestId('nav-tree').click();
 * await host.close();
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import type { HostApiHandle } from '../../src/host/api.js';
import { createHostApi } from '../../src/host/api.js';
import type { App, AppOptions } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { RunningServer, ServerOptions } from '../../src/host/server.js';
import { startServer } from '../../src/host/server.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import { buildRenderer } from './serve-bundle.js';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
];
/** Where the browser tests put their screenshots (looked at by people, not asserted on). */
export const SHOTS = join(resolve(import.meta.dirname, '../..'), '.test-results', 'screenshots');

export interface RealHost {
  readonly app: App;
  readonly api: HostApiHandle;
  readonly server: RunningServer;
  readonly browser: Browser;
  readonly page: Page;
  readonly dataDir: string;
  /** Errors thrown in the page (a test expects none). */
  readonly pageErrors: string[];
  close(): Promise<void>;
}

export async function startRealHost(options: {
  /** Names the data folder, for a reader of /tmp. */
  readonly name: string;
  /** The app's options besides its data folder and logger (silent). */
  readonly app: Omit<AppOptions, 'dataDir' | 'logger'>;
  /** Runs once the app is up, before the API and the page (e.g. waits for the demo to connect). */
  readonly ready?: (app: App) => Promise<void>;
  /** The server's limits and timings besides its API, bundle and exports (e.g. `maxConnections`). */
  readonly server?: Omit<ServerOptions, 'api' | 'staticDir' | 'exports'>;
  /** Runs once the server listens, before the page opens it (e.g. fills its connections, adds init scripts). */
  readonly beforePage?: (server: RunningServer, page: Page) => Promise<void>;
}): Promise<RealHost> {
  const outDir = await mkdtemp(join(tmpdir(), 'fleetvisor-renderer-'));
  const dataDir = await mkdtemp(join(tmpdir(), `fleetvisor-${options.name}-`));
  const done: (() => Promise<void> | void)[] = [
    () => rm(outDir, { recursive: true, force: true }),
    () => rm(dataDir, { recursive: true, force: true }),
  ];
  const close = async () => {
    while (done.length > 0) await done.pop()!();
  };
  try {
    await buildRenderer(outDir);
    await mkdir(SHOTS, { recursive: true });
    const app = await startApp({ dataDir, logger: silentLogger, ...options.app });
    done.push(() => app.stop());
    await options.ready?.(app);
    const api = createHostApi(app);
    done.push(() => api.close());
    const server = await startServer({ ...options.server, api, staticDir: outDir, exports: app.exports! });
    done.push(() => server.close());
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    done.push(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await options.beforePage?.(server, page);
    await page.goto(server.url);
    return { app, api, server, browser, page, dataDir, pageErrors, close };
  } catch (error) {
    await close();
    throw error;
  }
}
