/**
 * Contract tests of the headless transport (src/host/server.ts) over the real server, with a
 * small in-test HostApi: the token, the Host and Origin allowlists, body and message limits,
 * static files and their headers, the stream's order and congestion, calls over the socket,
 * graceful close, and the browser client (renderer/src/api/http-client.ts) against it.
 *
 * @example
 * // npx vitest run test/host/server.test.ts
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import {
  createHttpClient,
  TOKEN_STORAGE_KEY,
  takeTokenFromLocation,
} from '../../renderer/src/api/http-client.js';
import type { PushMessage } from '../../src/host/contract.js';
import {
  allowedNames,
  createAuthLimiter,
  isLoopbackHost,
  staticPathFor,
  tokensEqual,
} from '../../src/host/security.js';
import type { RunningServer, ServerOptions } from '../../src/host/server.js';
import { startServer } from '../../src/host/server.js';
import { waitFor } from '../transports/helpers.js';
import type { TestApi } from './helpers.js';
import {
  captureLogger,
  closed,
  collect,
  createTestApi,
  diff,
  openSocket,
  postCall,
  rawRequest,
  snapshot,
  upgradeStatus,
} from './helpers.js';

const running: RunningServer[] = [];
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const fn of cleanups.splice(0)) await fn();
  await Promise.all(running.splice(0).map((s) => s.close()));
});

async function start(
  overrides: Partial<ServerOptions> = {},
  api: TestApi = createTestApi(),
): Promise<{ server: RunningServer; api: TestApi }> {
  const server = await startServer({ api, ...overrides });
  running.push(server);
  return { server, api };
}

function auth(server: RunningServer): Record<string, string> {
  return { Authorization: `Bearer ${server.token}` };
}

/** A socket that is open and authenticated (the stream has been opened on the api). */
async function authedSocket(server: RunningServer, api: TestApi): Promise<WebSocket> {
  const before = api.streams.length;
  const ws = await openSocket(server.port, { origin: server.origin });
  cleanups.push(() => ws.terminate());
  ws.send(JSON.stringify({ type: 'auth', token: server.token }));
  await waitFor(() => api.streams.length > before, 2000, 'the stream to open');
  return ws;
}

/** A socket that offers the token as its subprotocol, as the UI does. */
function tokenSocket(server: RunningServer, token = server.token): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(
      `ws://127.0.0.1:${server.port}/api/stream`,
      ['fleetvisor', `fleetvisor.token.${token}`],
      {
        origin: server.origin,
      },
    );
    ws.once('open', () => {
      cleanups.push(() => ws.terminate());
      resolve(ws);
    });
    ws.once('unexpected-response', (_req, res) => {
      reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode }));
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

let ipv6 = false;
beforeAll(async () => {
  ipv6 = await new Promise<boolean>((resolve) => {
    const s = createConnection({ host: '::1', port: 9 });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
  });
});

// -----------------------------------------------------------------------------------------------

describe('startup', () => {
  it('listens on a free loopback port and prints a url with a fresh 256-bit token in the fragment', async () => {
    const { server: a } = await start();
    const { server: b } = await start();
    expect(a.port).toBeGreaterThan(0);
    expect(a.origin).toBe(`http://127.0.0.1:${a.port}`);
    expect(a.url).toBe(`${a.origin}/#token=${a.token}`);
    expect(a.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.token).not.toBe(b.token);
  });

  it('answers on [::1] too when the host has IPv6', async () => {
    if (!ipv6) return;
    const { server } = await start();
    const r = await rawRequest({
      port: server.port,
      address: '::1',
      path: '/',
      headers: { Host: `[::1]:${server.port}` },
    });
    expect(r.status).toBe(200);
  });

  it('listens only on an explicit host', async () => {
    const { server } = await start({ host: '127.0.0.1' });
    expect(server.origin).toBe(`http://127.0.0.1:${server.port}`);
    if (!ipv6) return;
    await expect(
      rawRequest({ port: server.port, address: '::1', path: '/', headers: { Host: `[::1]:${server.port}` } }),
    ).rejects.toThrow(/ECONNREFUSED/);
  });

  it('refuses a short token', async () => {
    await expect(startServer({ api: createTestApi(), token: 'short' })).rejects.toThrow(/16/);
  });
});

describe('POST /api/call', () => {
  it('without a token → 401 unauthorized envelope', async () => {
    const { server, api } = await start();
    const r = await postCall(server.origin, { method: 'tree', args: {} });
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    expect(api.calls).toHaveLength(0);
  });

  it('with a wrong token of the same or another length → 401', async () => {
    const { server, api } = await start();
    const sameLength = `${server.token.slice(0, -1)}${server.token.endsWith('A') ? 'B' : 'A'}`;
    for (const wrong of [sameLength, `${server.token}x`, 'abc', '']) {
      const r = await postCall(
        server.origin,
        { method: 'tree', args: {} },
        { Authorization: `Bearer ${wrong}` },
      );
      expect(r.status).toBe(401);
      expect(r.body).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    }
    // a token in a cookie or the query string is not a token
    const cookie = await postCall(
      server.origin,
      { method: 'tree', args: {} },
      { Cookie: `token=${server.token}` },
    );
    expect(cookie.status).toBe(401);
    const query = await fetch(`${server.origin}/api/call?token=${server.token}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"method":"tree","args":{}}',
    });
    expect(query.status).toBe(401);
    expect(api.calls).toHaveLength(0);
  });

  it('with the token → the envelope, 200, no-store, actor filled in', async () => {
    const { server, api } = await start();
    const response = await fetch(`${server.origin}/api/call`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...auth(server) },
      body: JSON.stringify({ method: 'device', args: { id: 'pump-1' } }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    expect(await response.json()).toMatchObject({ ok: true, value: { id: 'pump-1' } });
    expect(api.calls).toEqual([{ method: 'device', args: { id: 'pump-1' }, actor: 'operator' }]);
    const missing = await postCall(server.origin, { method: 'device', args: { id: 'nope' } }, auth(server));
    expect(missing).toMatchObject({ status: 200, body: { ok: false, error: { code: 'notFound' } } });
  });

  it('unknown method and bad arguments → badRequest envelope (200); non-JSON → 400', async () => {
    const { server } = await start();
    for (const body of [
      { method: 'nope', args: {} },
      { method: 'toString', args: {} },
      { method: 'device', args: { id: '' } },
      { method: 'devices', args: { limit: 'lots' } },
      { method: 'tree', args: { extra: true } },
    ]) {
      const r = await postCall(server.origin, body, auth(server));
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ ok: false, error: { code: 'badRequest' } });
    }
    const notJson = await postCall(server.origin, '{"method": tree', auth(server));
    expect(notJson).toMatchObject({ status: 400, body: { ok: false, error: { code: 'badRequest' } } });
    const noMethod = await postCall(server.origin, { args: {} }, auth(server));
    expect(noMethod).toMatchObject({ status: 400, body: { ok: false, error: { code: 'badRequest' } } });
  });

  it('a form content type → 415; GET → 405; no CORS for a preflight', async () => {
    const { server, api } = await start();
    const form = await fetch(`${server.origin}/api/call`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...auth(server) },
      body: 'method=tree',
    });
    expect(form.status).toBe(415);
    const get = await fetch(`${server.origin}/api/call`, { headers: auth(server) });
    expect(get.status).toBe(405);
    const preflight = await fetch(`${server.origin}/api/call`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(api.calls).toHaveLength(0);
  });

  it('cross-site Sec-Fetch-Site or a foreign Origin → 403 even with the token', async () => {
    const { server, api } = await start();
    const site = await postCall(
      server.origin,
      { method: 'tree', args: {} },
      { ...auth(server), 'Sec-Fetch-Site': 'cross-site' },
    );
    expect(site.status).toBe(403);
    const origin = await postCall(
      server.origin,
      { method: 'tree', args: {} },
      { ...auth(server), Origin: 'http://evil.example' },
    );
    expect(origin.status).toBe(403);
    const same = await postCall(
      server.origin,
      { method: 'tree', args: {} },
      { ...auth(server), Origin: server.origin, 'Sec-Fetch-Site': 'same-origin' },
    );
    expect(same.status).toBe(200);
    expect(api.calls).toHaveLength(1);
  });

  it('an oversized body → 413 envelope (declared length and chunked)', async () => {
    const { server, api } = await start({ maxBodyBytes: 1024 });
    const big = JSON.stringify({ method: 'tree', args: {}, pad: 'x'.repeat(4096) });
    const r = await postCall(server.origin, big, auth(server));
    expect(r.status).toBe(413);
    expect(r.body).toMatchObject({ ok: false, error: { code: 'badRequest' } });
    const chunked = await rawRequest({
      port: server.port,
      method: 'POST',
      path: '/api/call',
      headers: {
        Host: `127.0.0.1:${server.port}`,
        'Content-Type': 'application/json',
        'Transfer-Encoding': 'chunked',
        ...auth(server),
      },
      body: big,
    });
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.body)).toMatchObject({ ok: false, error: { code: 'badRequest' } });
    expect(api.calls).toHaveLength(0);
  });

  it('rate-limits wrong tokens only: after 20 wrong ones the next wrong one gets 429, the right one still gets in', async () => {
    const { server } = await start();
    for (let i = 0; i < 200; i++) {
      const r = await postCall(
        server.origin,
        { method: 'tree', args: {} },
        { Authorization: `Bearer wrong${i}` },
      );
      expect(r.status).toBe(i < 20 ? 401 : 429);
    }
    // The operator's token is checked before the limiter: a flood of wrong ones cannot lock it out.
    expect((await postCall(server.origin, { method: 'tree', args: {} }, auth(server))).status).toBe(200);
    // no token at all does not count (a web page's blind requests cannot lock the operator out)
    const { server: other } = await start();
    for (let i = 0; i < 30; i++) await postCall(other.origin, { method: 'tree', args: {} });
    expect((await postCall(other.origin, { method: 'tree', args: {} }, auth(other))).status).toBe(200);
  });

  it('an act whose args nest 10,000 deep → badRequest, not internal (over HTTP and the socket)', async () => {
    const { server, api } = await start();
    const deep = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
    const body = `{"method":"act","args":{"ids":["x"],"action":"ping","args":${deep}}}`;
    const r = await fetch(`${server.origin}/api/call`, {
      method: 'POST',
      headers: { ...auth(server), 'Content-Type': 'application/json' },
      body,
    });
    expect(r.status).toBe(400);
    const envelope = (await r.json()) as { ok: boolean; error: { code: string; message: string } };
    expect(envelope.error.code).toBe('badRequest');
    expect(envelope.error.message).toMatch(/nest/);
    const ws = await authedSocket(server, api);
    const got = collect(ws);
    ws.send(`{"type":"call","id":7,"method":"act","args":{"ids":["x"],"action":"ping","args":${deep}}}`);
    await waitFor(
      () => got.messages.some((m) => (m as { type?: string; id?: number }).type === 'reply'),
      3000,
      'the reply',
    );
    const reply = got.messages.find((m) => (m as { type?: string }).type === 'reply') as {
      envelope: { ok: boolean; error: { code: string } };
    };
    expect(reply.envelope.error.code).toBe('badRequest');
    expect(api.calls.filter((c) => c.method === 'act')).toHaveLength(0);
  });
});

describe('Host header allowlist (DNS rebinding)', () => {
  it('refuses a foreign Host with 421 before anything else', async () => {
    const { server, api } = await start();
    for (const host of [
      `evil.example:${server.port}`,
      `127.0.0.1:${server.port + 1}`,
      '127.0.0.1',
      `127.0.0.1.evil.example:${server.port}`,
    ]) {
      const call = await rawRequest({
        port: server.port,
        method: 'POST',
        path: '/api/call',
        headers: { Host: host, 'Content-Type': 'application/json', ...auth(server) },
        body: '{"method":"tree","args":{}}',
      });
      expect(call.status).toBe(421);
      const page = await rawRequest({ port: server.port, path: '/', headers: { Host: host } });
      expect(page.status).toBe(421);
      expect(page.headers['content-security-policy']).toBeUndefined();
    }
    expect(api.calls).toHaveLength(0);
    expect(
      await upgradeStatus(server.port, {
        headers: { Host: `evil.example:${server.port}` },
        origin: server.origin,
      }),
    ).toBe(421);
  });

  it('accepts 127.0.0.1, localhost and [::1] with the exact port', async () => {
    const { server } = await start();
    for (const host of [
      `127.0.0.1:${server.port}`,
      `localhost:${server.port}`,
      `[::1]:${server.port}`,
      `LOCALHOST:${server.port}`,
    ]) {
      const r = await rawRequest({
        port: server.port,
        method: 'POST',
        path: '/api/call',
        headers: { Host: host, 'Content-Type': 'application/json', ...auth(server) },
        body: '{"method":"tree","args":{}}',
      });
      expect(r.status).toBe(200);
    }
  });
});

describe('WebSocket /api/stream', () => {
  it('refuses a foreign, look-alike or missing Origin (403) and a wrong path (404)', async () => {
    const { server, api } = await start();
    expect(await upgradeStatus(server.port, { origin: 'http://evil.example' })).toBe(403);
    expect(await upgradeStatus(server.port, { origin: `${server.origin}.evil.example` })).toBe(403);
    expect(await upgradeStatus(server.port, { origin: `https://127.0.0.1:${server.port}` })).toBe(403);
    expect(await upgradeStatus(server.port, { origin: 'null' })).toBe(403);
    expect(await upgradeStatus(server.port, {})).toBe(403);
    expect(await upgradeStatus(server.port, { origin: server.origin })).toBe(101);
    expect(await upgradeStatus(server.port, { origin: `http://localhost:${server.port}` })).toBe(101);
    const wrongPath = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api/other`, { origin: server.origin });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => resolve(-1));
    });
    expect(wrongPath).toBe(404);
    expect(api.streams).toHaveLength(0);
  });

  it('closes 4401 without an auth message in time, or with a wrong token or another first message', async () => {
    const { server, api } = await start({ authTimeoutMs: 200 });
    const silent = await openSocket(server.port, { origin: server.origin });
    expect((await closed(silent)).code).toBe(4401);

    const wrong = await openSocket(server.port, { origin: server.origin });
    const wrongClosed = closed(wrong);
    wrong.send(JSON.stringify({ type: 'auth', token: `${server.token.slice(1)}x` }));
    expect((await wrongClosed).code).toBe(4401);

    const early = await openSocket(server.port, { origin: server.origin });
    const earlyClosed = closed(early);
    early.send(JSON.stringify({ type: 'call', id: 1, method: 'tree', args: {} }));
    expect((await earlyClosed).code).toBe(4401);
    expect(api.streams).toHaveLength(0);
    expect(api.calls).toHaveLength(0);
  });

  it('after auth: snapshot then diffs, in order; the stream closes with the socket', async () => {
    const api = createTestApi({ onOpen: (s) => s.sink.send(snapshot(1)) });
    const { server } = await start({}, api);
    const ws = await openSocket(server.port, { origin: server.origin });
    const got = collect(ws);
    ws.send(JSON.stringify({ type: 'auth', token: server.token }));
    await waitFor(() => api.streams.length === 1, 2000, 'stream');
    const stream = api.streams[0]!;
    for (let seq = 2; seq <= 50; seq++) stream.sink.send(diff(seq));
    stream.sink.send({ type: 'resync', reason: 'test' });
    await waitFor(() => got.messages.length === 51, 2000, 'all pushes');
    const types = got.messages.map((m) => (m as PushMessage).type);
    expect(types[0]).toBe('snapshot');
    expect(types.at(-1)).toBe('resync');
    expect(got.messages.slice(0, 50).map((m) => (m as { seq: number }).seq)).toEqual(
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    expect(stream.sink.congested()).toBe(false);
    ws.close();
    await waitFor(() => stream.closed, 2000, 'the stream to close');
    expect(stream.sink.congested()).toBe(true);
  });

  it('answers calls over the socket, matched by id', async () => {
    const { server, api } = await start();
    const ws = await authedSocket(server, api);
    const got = collect(ws);
    ws.send(JSON.stringify({ type: 'call', id: 7, method: 'device', args: { id: 'pump-2' } }));
    ws.send(JSON.stringify({ type: 'call', id: 8, method: 'device', args: { id: 42 } }));
    ws.send(JSON.stringify({ type: 'call', id: 9, method: 'setDemo', args: { on: true } }));
    await waitFor(() => got.messages.length === 3, 2000, 'three replies');
    const byId = new Map(got.messages.map((m) => [(m as { id: number }).id, m]));
    expect(byId.get(7)).toMatchObject({ type: 'reply', envelope: { ok: true, value: { id: 'pump-2' } } });
    expect(byId.get(8)).toMatchObject({
      type: 'reply',
      envelope: { ok: false, error: { code: 'badRequest' } },
    });
    expect(byId.get(9)).toMatchObject({ type: 'reply', envelope: { ok: true, value: { on: true } } });
    expect(api.calls.map((c) => c.actor)).toEqual(['operator', 'operator', 'operator']);
  });

  it('answers 408 to a client that sends its headers too slowly, at the configured time, not at Node\u2019s 30 s check', async () => {
    const { server } = await start({ headersTimeoutMs: 1000, requestTimeoutMs: 2000 });
    const socket: Socket = createConnection({ host: '127.0.0.1', port: server.port });
    cleanups.push(() => socket.destroy());
    let answer = '';
    socket.on('data', (d) => {
      answer += d.toString();
    });
    const ended = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now())));
    const began = Date.now();
    socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n'); // and never the blank line
    const at = await ended;
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(at - began).toBeLessThan(10_000); // Node's own check interval would have taken up to 30 s
  }, 20_000);

  it('answers 408 to a client whose request body trickles past the configured request time (issue 12 §6)', async () => {
    const { server } = await start({ headersTimeoutMs: 1000, requestTimeoutMs: 3000 });
    const socket: Socket = createConnection({ host: '127.0.0.1', port: server.port });
    cleanups.push(() => socket.destroy());
    let answer = '';
    socket.on('data', (d) => {
      answer += d.toString();
    });
    const ended = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now())));
    const began = Date.now();
    // Whole headers at once (so the headers time is met), then one byte of the body a second.
    socket.write(
      `POST /api/call HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nAuthorization: Bearer ${server.token}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n',
    );
    const drip = setInterval(() => socket.writable && socket.write(' '), 1000);
    cleanups.push(() => clearInterval(drip));
    const at = await ended;
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    // Cut by the request time (3 s), not the headers time, and not at Node's 30 s check.
    expect(at - began).toBeGreaterThanOrEqual(2500);
    expect(at - began).toBeLessThan(10_000);
  }, 20_000);

  it('carries a firmware-sized call (2 MiB) on an authenticated socket; a stranger may not send 64 KiB', async () => {
    const { server, api } = await start();
    const ws = await authedSocket(server, api);
    const replies: unknown[] = [];
    ws.on('message', (d) => replies.push(JSON.parse(d.toString())));
    ws.send(
      JSON.stringify({ type: 'call', id: 77, method: 'tree', args: { pad: 'x'.repeat(2 * 1024 * 1024) } }),
    );
    await waitFor(
      () => replies.some((r) => (r as { id?: number }).id === 77),
      10_000,
      'the reply to the 2 MiB call',
    );
    expect(ws.readyState).toBe(ws.OPEN);
    ws.close();
    const stranger = await openSocket(server.port, { origin: server.origin });
    const done = closed(stranger);
    stranger.send(JSON.stringify({ type: 'auth', token: 'x'.repeat(64 * 1024) }));
    expect((await done).code).toBe(1009);
  });

  it('closes on malformed frames: 1009 oversized, 1007 non-JSON, 1003 binary, 1008 bad call', async () => {
    const { server, api } = await start({ maxMessageBytes: 1024 });
    const cases: [string | Buffer, number][] = [
      [JSON.stringify({ type: 'call', id: 1, method: 'tree', args: { pad: 'x'.repeat(4096) } }), 1009],
      ['not json', 1007],
      [Buffer.from([1, 2, 3]), 1003],
      [JSON.stringify({ type: 'call', id: { not: 'an id' }, method: 'tree' }), 1008],
    ];
    for (const [frame, code] of cases) {
      const ws = await authedSocket(server, api);
      const done = closed(ws);
      ws.send(frame);
      expect((await done).code).toBe(code);
    }
    // an oversized first (auth) frame is refused the same way
    const ws = await openSocket(server.port, { origin: server.origin });
    const done = closed(ws);
    ws.send(JSON.stringify({ type: 'auth', token: 'x'.repeat(4096) }));
    expect((await done).code).toBe(1009);
  });

  it('reports congestion to the api when the client stops reading, and drops it rather than buffer without bound', async () => {
    const MiB = 1024 * 1024;
    const { server, api } = await start({ maxBufferedBytes: MiB, hardBufferedBytes: 8 * MiB });
    const ws = await authedSocket(server, api);
    const stream = api.streams[0]!;
    let received = 0;
    ws.on('message', () => {
      received += 1;
    });
    const raw = (ws as unknown as { _socket: Socket })._socket;
    raw.pause();

    // the api pushes 100 kB diffs until the transport says the client is congested
    let sent = 0;
    while (!stream.sink.congested() && sent < 500) {
      stream.sink.send(diff(++sent, 100_000));
      if (sent % 10 === 0) await new Promise((r) => setTimeout(r, 5)); // let the kernel buffers fill
    }
    expect(stream.sink.congested()).toBe(true);
    expect(sent).toBeLessThan(500); // congested well before 50 MB
    const untilCongested = sent;

    // the client reads again: the backlog drains, congestion clears, nothing was lost or reordered
    raw.resume();
    await waitFor(
      () => !stream.sink.congested() && received === untilCongested,
      10_000,
      'the backlog to drain',
    );

    // stops reading again; an api that ignores congestion and pushes 50 MB gets the client dropped
    raw.pause();
    const dropped = closed(ws);
    for (let i = 0; i < 500 && !stream.closed; i++) {
      stream.sink.send(diff(++sent, 100_000));
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    expect(stream.closed).toBe(true);
    expect(stream.sink.congested()).toBe(true);
    raw.resume();
    expect((await dropped).code).toBe(1006);
    // what got through before the drop is bounded by the hard bound plus the kernel's buffers, not 50 MB
    expect(sent - untilCongested).toBeLessThan(500);
  });

  it('closes sockets that stop answering pings, keeps live ones', async () => {
    const { server, api } = await start({ heartbeatMs: 100 });
    const live = await authedSocket(server, api);
    const dead = await authedSocket(server, api);
    const deadClosed = closed(dead);
    (dead as unknown as { _socket: Socket })._socket.pause();
    await waitFor(() => api.streams[1]!.closed, 3000, 'the dead socket to be dropped');
    (dead as unknown as { _socket: Socket })._socket.resume();
    await deadClosed;
    await new Promise((r) => setTimeout(r, 350));
    expect(live.readyState).toBe(WebSocket.OPEN);
    expect(api.streams[0]!.closed).toBe(false);
  });

  it('a socket with a wrong token while wrong tokens are rate-limited is closed 4429 (retry later), the right token still gets in', async () => {
    const { server, api } = await start();
    for (let i = 0; i < 20; i++) {
      const ws = await openSocket(server.port, { origin: server.origin });
      const done = closed(ws);
      ws.send(JSON.stringify({ type: 'auth', token: `wrong${i}` }));
      expect((await done).code).toBe(4401);
    }
    const limited = await openSocket(server.port, { origin: server.origin });
    const limitedClosed = closed(limited);
    limited.send(JSON.stringify({ type: 'auth', token: 'wrong-again' }));
    expect((await limitedClosed).code).toBe(4429);
    await authedSocket(server, api);
  });

  it('unauthenticated sockets in a reconnect loop cannot starve the operator', async () => {
    const { server, api } = await start({ authTimeoutMs: 5000 });
    let stop = false;
    const squatters: WebSocket[] = [];
    cleanups.push(() => {
      stop = true;
      for (const w of squatters) w.terminate();
    });
    // 40 sockets that never authenticate, each reopened as soon as it is closed.
    const squat = async (): Promise<void> => {
      while (!stop) {
        try {
          const w = await openSocket(server.port, { origin: server.origin });
          squatters.push(w);
          await closed(w);
        } catch {
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    };
    for (let i = 0; i < 40; i++) void squat();
    await new Promise((r) => setTimeout(r, 300));
    // The operator's UI offers its token as a subprotocol: authenticated at the upgrade.
    for (let i = 0; i < 3; i++) {
      const ws = await tokenSocket(server);
      cleanups.push(() => ws.terminate());
      expect(ws.protocol).toBe('fleetvisor');
    }
    await waitFor(() => api.streams.length === 3, 2000, 'three streams');
    // A wrong token offered that way is refused at the upgrade.
    expect(
      await tokenSocket(server, 'wrong').then(
        () => 101,
        (e: { status?: number }) => e.status,
      ),
    ).toBe(401);
  });

  it('caps authenticated sockets and, separately, sockets waiting to authenticate', async () => {
    const { server, api } = await start({ maxConnections: 2, maxUnauthenticated: 2 });
    const a = await openSocket(server.port, { origin: server.origin });
    const b = await openSocket(server.port, { origin: server.origin });
    cleanups.push(
      () => a.terminate(),
      () => b.terminate(),
    );
    expect(await upgradeStatus(server.port, { origin: server.origin })).toBe(503);
    // Waiting sockets do not take an operator's place.
    await tokenSocket(server);
    await tokenSocket(server);
    await waitFor(() => api.streams.length === 2, 2000, 'two streams');
    // The operator's own client is told why (a browser cannot read a refused upgrade's status).
    const third = await tokenSocket(server);
    expect(await closed(third)).toEqual({ code: 4429, reason: 'too many connections (2 of 2 in use)' });
    expect(api.streams.length).toBe(2);
  });
});

describe('static files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleetvisor-static-'));
    await mkdir(join(dir, 'dist', 'assets'), { recursive: true });
    await writeFile(join(dir, 'dist', 'index.html'), '<!doctype html><title>Fleetvisor</title>');
    await writeFile(join(dir, 'dist', 'assets', 'app-1234.js'), 'console.log(1)');
    await writeFile(join(dir, 'dist', 'assets', 'app-1234.css'), 'body{}');
    await writeFile(join(dir, 'secret.txt'), 'root:x:0:0 outside the static dir');
    await symlink(join(dir, 'secret.txt'), join(dir, 'dist', 'escape.txt'));
    return () => rm(dir, { recursive: true, force: true });
  });

  it('serves index.html with the CSP and security headers, assets with their types', async () => {
    const { server } = await start({ staticDir: join(dir, 'dist') });
    const page = await fetch(`${server.origin}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>Fleetvisor</title>');
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-store');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self';");
    expect(csp).toContain(`connect-src 'self' ws://127.0.0.1:${server.port}`);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("base-uri 'none'");
    expect(csp).toContain("form-action 'none'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(page.headers.get('access-control-allow-origin')).toBeNull();

    const js = await fetch(`${server.origin}/assets/app-1234.js`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toContain('immutable');
    const css = await fetch(`${server.origin}/assets/app-1234.css?v=1`);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect((await fetch(`${server.origin}/index.html`)).status).toBe(200);
    expect((await fetch(`${server.origin}/nope.js`)).status).toBe(404);
    expect((await fetch(`${server.origin}/assets/`)).status).toBe(404); // no listing
    expect((await fetch(`${server.origin}/assets`)).status).toBe(404);
    expect((await fetch(`${server.origin}/`, { method: 'DELETE' })).status).toBe(405);
  });

  it('refuses directory traversal and symbolic links out of the directory', async () => {
    const { server } = await start({ staticDir: join(dir, 'dist') });
    for (const path of [
      '/../../etc/passwd',
      '/../secret.txt',
      '/..%2fsecret.txt',
      '/%2e%2e/secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/%2e%2e%5csecret.txt',
      '/..\\secret.txt',
      '/index.html%00.js',
      '/escape.txt',
      '//etc/passwd',
      '/%',
    ]) {
      const r = await rawRequest({ port: server.port, path, headers: { Host: `127.0.0.1:${server.port}` } });
      expect([400, 404], `${path} → ${r.status}`).toContain(r.status);
      expect(r.body).not.toContain('root:');
    }
  });

  it('without a built renderer, / says how to build it', async () => {
    for (const staticDir of [undefined, join(dir, 'missing')]) {
      const { server } = await start(staticDir === undefined ? {} : { staticDir });
      const page = await fetch(`${server.origin}/`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
      const text = await page.text();
      expect(text).toContain('not built');
      expect(text).toContain('npm run build:renderer');
      expect(text).not.toContain(server.token);
      expect((await fetch(`${server.origin}/assets/app.js`)).status).toBe(404);
    }
  });
});

describe('logs and shutdown', () => {
  it('never logs the token', async () => {
    const log = captureLogger();
    const api = createTestApi({ onOpen: (s) => s.sink.send(snapshot(1)) });
    const { server } = await start({ logger: log.logger, authTimeoutMs: 200 }, api);
    await postCall(server.origin, { method: 'tree', args: {} }, auth(server));
    await postCall(server.origin, { method: 'tree', args: {} }, { Authorization: `Bearer ${server.token}x` });
    await postCall(
      server.origin,
      { method: 'tree', args: {} },
      { Authorization: `Bearer ${server.token.slice(2)}` },
    );
    const good = await authedSocket(server, api);
    const bad = await openSocket(server.port, { origin: server.origin });
    const badClosed = closed(bad);
    bad.send(JSON.stringify({ type: 'auth', token: server.token.slice(0, 20) }));
    await badClosed;
    await upgradeStatus(server.port, { origin: `http://evil.example/${server.token}` });
    const goodClosed = closed(good);
    await server.close();
    await goodClosed;
    expect(log.lines.length).toBeGreaterThan(2);
    expect(log.lines.some((l) => l.includes('wrong token'))).toBe(true);
    for (const needle of [server.token, server.token.slice(0, 20), server.token.slice(2)])
      for (const line of log.lines) expect(line).not.toContain(needle);
  });

  it('close(): stops listening, closes sockets with 1001 and their streams; idempotent', async () => {
    const { server, api } = await start();
    const ws = await authedSocket(server, api);
    const wsClosed = closed(ws);
    await Promise.all([server.close(), server.close()]);
    expect((await wsClosed).code).toBe(1001);
    expect(api.streams[0]!.closed).toBe(true);
    await expect(fetch(`${server.origin}/`)).rejects.toThrow();
  });
});

describe('security helpers', () => {
  it('compares tokens of any length', () => {
    expect(tokensEqual('a'.repeat(43), 'a'.repeat(43))).toBe(true);
    expect(tokensEqual('a'.repeat(42), 'a'.repeat(43))).toBe(false);
    expect(tokensEqual('', 'a'.repeat(43))).toBe(false);
    expect(tokensEqual(null, 'a')).toBe(false);
  });

  it('knows loopback hosts and builds exact allowlists', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LocalHost'])
      expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.2', 'evil.example', '127.0.0.1.evil.example'])
      expect(isLoopbackHost(h)).toBe(false);
    const names = allowedNames({ port: 80, bindHost: '192.168.1.2' });
    expect([...names.hosts]).toEqual(['127.0.0.1:80', 'localhost:80', '[::1]:80', '192.168.1.2:80']);
    expect(names.origins.has('http://192.168.1.2:80')).toBe(true);
    expect([...allowedNames({ port: 80, bindHost: '0.0.0.0' }).hosts]).toHaveLength(3);
  });

  it('maps static paths inside the root only', () => {
    expect(staticPathFor('/srv/ui', '/index.html')).toBe('/srv/ui/index.html');
    expect(staticPathFor('/srv/ui', '/a%20b.js')).toBe('/srv/ui/a b.js');
    for (const p of ['/../x', '/a/../../x', '/%2e%2e/x', '/..%2fx', '/a\\..\\x', '/x%00', 'x', '/%E0%A4%A'])
      expect(staticPathFor('/srv/ui', p)).toBeNull();
  });

  it('locks after too many failures inside the window', () => {
    let now = 0;
    const limiter = createAuthLimiter({ max: 2, windowMs: 1000, now: () => now });
    limiter.fail();
    expect(limiter.allow()).toBe(true);
    limiter.fail();
    expect(limiter.allow()).toBe(false);
    now = 1001;
    expect(limiter.allow()).toBe(true);
  });
});

// -----------------------------------------------------------------------------------------------

describe('browser client (renderer/src/api/http-client.ts) against the server', () => {
  function socketFactory(origin: string) {
    return (url: string) => new WebSocket(url, { origin }) as unknown as globalThis.WebSocket;
  }

  it('offers its token at the upgrade, so it gets in even while strangers fill the waiting slots', async () => {
    const api = createTestApi({ onOpen: (s) => s.sink.send(snapshot(1)) });
    const { server } = await start({ maxUnauthenticated: 1 }, api);
    const stranger = await openSocket(server.port, { origin: server.origin });
    cleanups.push(() => stranger.terminate());
    const client = createHttpClient({
      baseUrl: server.origin,
      token: server.token,
      createSocket: (url, protocols) =>
        new WebSocket(url, protocols, { origin: server.origin }) as unknown as globalThis.WebSocket,
    });
    cleanups.push(() => client.close());
    const pushes: PushMessage[] = [];
    client.subscribe((m) => pushes.push(m));
    await waitFor(() => pushes.length > 0, 3000, 'the snapshot');
    expect(api.streams.length).toBe(1);
  });

  it('calls over fetch while connecting, then over the socket; subscribe gets the snapshot and diffs', async () => {
    const api = createTestApi({ onOpen: (s) => s.sink.send(snapshot(1)) });
    const { server } = await start({}, api);
    let fetches = 0;
    const client = createHttpClient({
      baseUrl: server.origin,
      token: server.token,
      createSocket: socketFactory(server.origin),
      fetch: (input, init) => {
        fetches += 1;
        return fetch(input, init);
      },
    });
    cleanups.push(() => client.close());
    const first = await client.call('device', { id: 'pump-1' });
    expect(first).toMatchObject({ ok: true, value: { id: 'pump-1' } });
    expect(fetches).toBe(1);
    await waitFor(() => client.status === 'open' && api.streams.length === 1, 2000, 'socket');
    const second = await client.call('devices', {});
    expect(second).toMatchObject({ ok: true, value: { total: 2 } });
    const bad = await client.call('device', { id: '' });
    expect(bad).toMatchObject({ ok: false, error: { code: 'badRequest' } });
    expect(fetches).toBe(1);

    // subscribing late still starts from the snapshot (replayed), then live diffs
    const got: PushMessage[] = [];
    const off = client.subscribe((m) => got.push(m));
    api.streams[0]!.sink.send(diff(2));
    await waitFor(() => got.length === 2, 2000, 'snapshot and diff');
    expect(got.map((m) => m.type)).toEqual(['snapshot', 'diff']);
    off();
  });

  it('reconnects with backoff while subscribed and starts again from a fresh snapshot', async () => {
    let seq = 0;
    const api = createTestApi({ onOpen: (s) => s.sink.send(snapshot(++seq)) });
    const token = 'a-fixed-test-token-0123456789';
    const { server } = await start({ token }, api);
    const client = createHttpClient({
      baseUrl: server.origin,
      token,
      createSocket: socketFactory(server.origin),
    });
    cleanups.push(() => client.close());
    const got: PushMessage[] = [];
    client.subscribe((m) => got.push(m));
    await waitFor(() => got.length === 1, 2000, 'first snapshot');
    const port = server.port;
    await server.close();
    await waitFor(() => client.status === 'closed', 2000, 'client to notice');
    const { server: again } = await start({ token, port, host: '127.0.0.1' }, api);
    expect(again.port).toBe(port);
    await waitFor(() => got.length === 2, 5000, 'a fresh snapshot after reconnecting');
    expect(got[1]).toMatchObject({ type: 'snapshot', seq: 2 });
  });

  it('every connection taken: says why (4429) and waits longer each time, then gets in when one frees', async () => {
    const api = createTestApi({ onOpen: (s) => s.sink.send(snapshot(1)) });
    const { server } = await start({ maxConnections: 1 }, api);
    const holder = await tokenSocket(server);
    const details: { reason: string; retryInMs?: number }[] = [];
    const client = createHttpClient({
      baseUrl: server.origin,
      token: server.token,
      createSocket: (url, protocols) =>
        new WebSocket(url, protocols, { origin: server.origin }) as unknown as globalThis.WebSocket,
      onStatus: (s, detail) => {
        if (s === 'closed' && detail) details.push(detail);
      },
    });
    cleanups.push(() => client.close());
    const pushes: PushMessage[] = [];
    client.subscribe((m) => pushes.push(m));
    await waitFor(() => details.length >= 2, 5000, 'two refusals');
    expect(details[0]!.reason).toBe('the host refused for now: too many connections (1 of 1 in use)');
    // 1 s, then 2 s, … before jitter (50–100 %): never the 250 ms of an ordinary close.
    expect(details[0]!.retryInMs).toBeGreaterThanOrEqual(500);
    expect(details[1]!.retryInMs).toBeGreaterThanOrEqual(1000);
    holder.close();
    await waitFor(() => pushes.length > 0, 6000, 'the snapshot once a connection is free');
    expect(client.status).toBe('open');
  });

  it('a wrong token: calls are unauthorized and the socket gives up', async () => {
    const { server } = await start();
    const statuses: string[] = [];
    const client = createHttpClient({
      baseUrl: server.origin,
      token: `${server.token}x`,
      createSocket: socketFactory(server.origin),
      onStatus: (s) => statuses.push(s),
    });
    cleanups.push(() => client.close());
    const r = await client.call('tree', {});
    expect(r).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    await waitFor(() => client.status === 'unauthorized', 2000, 'unauthorized');
    expect(statuses).toEqual(['connecting', 'open', 'unauthorized']);
  });

  it('without a token or a server: envelopes, not exceptions', async () => {
    const none = createHttpClient({ baseUrl: 'http://127.0.0.1:1', token: '' });
    expect(await none.call('tree', {})).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    const down = createHttpClient({
      baseUrl: 'http://127.0.0.1:1',
      token: 'x'.repeat(20),
      createSocket: socketFactory('http://127.0.0.1:1'),
    });
    cleanups.push(() => down.close());
    expect(await down.call('tree', {})).toMatchObject({ ok: false, error: { code: 'unavailable' } });
  });

  it('takes the token from #token=…, keeps it in sessionStorage and removes it from the address bar', () => {
    const store = new Map<string, string>();
    const replaced: string[] = [];
    vi.stubGlobal('location', {
      hash: '#token=abc_DEF-123&view=fleet',
      pathname: '/',
      search: '?x=1',
      origin: 'http://127.0.0.1:9',
    });
    vi.stubGlobal('history', {
      state: null,
      replaceState: (_s: unknown, _t: string, url: string) => replaced.push(url),
    });
    vi.stubGlobal('sessionStorage', {
      getItem: (k: string) => store.get(k) ?? null,
      setItem: (k: string, v: string) => store.set(k, v),
    });
    cleanups.push(() => vi.unstubAllGlobals());
    expect(takeTokenFromLocation()).toBe('abc_DEF-123');
    expect(store.get(TOKEN_STORAGE_KEY)).toBe('abc_DEF-123');
    expect(replaced).toEqual(['/?x=1#view=fleet']);
    // after a reload the address bar has no token: sessionStorage has it
    vi.stubGlobal('location', { hash: '', pathname: '/', search: '', origin: 'http://127.0.0.1:9' });
    expect(takeTokenFromLocation()).toBe('abc_DEF-123');
    expect(replaced).toHaveLength(1);
  });
});
