/**
 * The UI keeps its address across restarts: the second start listens on the first one's port with
 * its token (so an open tab reconnects), a taken port gives a free one, a port on the command line
 * wins, and a damaged session file is ignored rather than fatal.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadUiSession, startUiServer, UI_SESSION_FILE } from '../../src/host/ui-session.js';
import { createTestApi } from './helpers.js';

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'fv-ui-session-'));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

describe('startUiServer', () => {
  it('listens on the last port with the last token when the port is free', async () => {
    const first = await startUiServer({ api: createTestApi() }, { dataDir, port: 0 });
    await first.close();
    expect(statSync(join(dataDir, UI_SESSION_FILE)).mode & 0o777).toBe(0o600);
    const second = await startUiServer({ api: createTestApi() }, { dataDir, port: 0 });
    try {
      expect(second.port).toBe(first.port);
      expect(second.token).toBe(first.token);
      expect(second.url).toBe(first.url);
    } finally {
      await second.close();
    }
  });

  it('takes a free port when the last one is taken, and remembers that one', async () => {
    const first = await startUiServer({ api: createTestApi() }, { dataDir, port: 0 });
    await first.close();
    const squatter = createServer();
    await new Promise<void>((done) => squatter.listen({ port: first.port, host: '127.0.0.1' }, done));
    try {
      const second = await startUiServer({ api: createTestApi() }, { dataDir, port: 0 });
      await second.close();
      expect(second.port).not.toBe(first.port);
      expect(loadUiSession(dataDir)?.port).toBe(second.port);
    } finally {
      await new Promise((done) => squatter.close(done));
    }
  });

  it('a port given on the command line wins; a damaged file is ignored', async () => {
    writeFileSync(join(dataDir, UI_SESSION_FILE), '{"port": "x", "token": 5');
    expect(loadUiSession(dataDir)).toBeUndefined();
    const probe = createServer();
    const free = await new Promise<number>((done) =>
      probe.listen({ port: 0, host: '127.0.0.1' }, () => {
        const port = (probe.address() as { port: number }).port;
        probe.close(() => done(port));
      }),
    );
    const server = await startUiServer({ api: createTestApi() }, { dataDir, port: free });
    await server.close();
    expect(server.port).toBe(free);
    expect(JSON.parse(readFileSync(join(dataDir, UI_SESSION_FILE), 'utf8'))).toEqual({
      port: free,
      token: server.token,
    });
  });
});
