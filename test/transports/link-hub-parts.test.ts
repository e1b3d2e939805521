/**
 * The link hub's small pure parts, without a fleet: a shadow session (another instance's device),
 * a device's stats as a copy, the presence contradiction event, and the session table's observers.
 */
import { describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/runtime/runtime.js';
import { keepShadow } from '../../src/transports/link-hub-delivery.js';
import { createHubSessions, linkStatsOf } from '../../src/transports/link-hub-sessions.js';
import { contradiction } from '../../src/transports/link-presence.js';
import type { LinkHandle } from '../../src/transports/link-session.js';
import { newSession } from '../../src/transports/link-session.js';
import type { DeviceId, HelloMessage, Message } from '../../src/transports/protocol.js';

const link: LinkHandle = { via: 'mqtt', presence: 'status', send: () => true };
const hello: HelloMessage = {
  v: 1,
  type: 'hello',
  deviceId: 'pump-7' as DeviceId,
  kind: 'fleetvisor.generic',
  boot: 3,
  firmware: { version: '1.0.0', slot: 'A', confirmed: true, slots: { A: '1.0.0', B: null } },
  capabilities: [],
};
const telemetry: Message = { v: 1, type: 'telemetry', boot: 3, seq: 1, ts: 1, values: { t: 1 } };

describe('keepShadow', () => {
  it('keeps the hello, the status and the link of another instance’s device', () => {
    const s = newSession();
    keepShadow(s, hello, link);
    keepShadow(s, { v: 1, type: 'status', state: 'online', boot: 3, conn: 2 }, link);
    expect(s.hello).toBe(hello);
    expect(s.status).toEqual({ state: 'online', boot: 3, conn: 2 });
    expect(s.link).toBe(link);
    expect(s.online).toBe(false);
    expect(s.received).toBe(0);
  });
});

describe('linkStatsOf', () => {
  it('shows the counters as a copy', () => {
    const s = newSession();
    s.online = true;
    s.link = link;
    s.hello = hello;
    s.received = 5;
    s.duplicates = 1;
    s.gaps = 2;
    s.errors.badJson = 1;
    const stats = linkStatsOf('pump-7', s);
    expect(stats).toEqual({
      id: 'pump-7',
      online: true,
      via: 'mqtt',
      boot: 3,
      received: 5,
      duplicates: 1,
      gaps: 2,
      errors: { badJson: 1 },
    });
    s.errors.badJson = 2;
    expect(stats.errors).toEqual({ badJson: 1 });
  });
  it('a device heard from but never linked', () => {
    expect(linkStatsOf('x', newSession())).toMatchObject({ online: false, via: null, boot: null });
  });
});

describe('contradiction', () => {
  it('names what its status said and what came', () => {
    expect(contradiction({ boot: 3, conn: 2 }, 'telemetry', 3, 'mqtt')).toEqual({
      said: 'offline',
      statusBoot: 3,
      statusConn: 2,
      but: 'telemetry',
      boot: 3,
      via: 'mqtt',
    });
  });
});

describe('the session table', () => {
  it('makes a session once, counts accepted messages, and reports an observer that throws', () => {
    const reports: string[] = [];
    const keep = (message: string) => {
      reports.push(message);
    };
    const runtime = createRuntime({
      logger: { debug: () => {}, info: () => {}, warn: () => {}, error: keep },
    });
    const table = createHubSessions(runtime);
    const s = table.session('pump-7');
    expect(table.session('pump-7')).toBe(s);
    expect(table.sessions.size).toBe(1);
    const seen: string[] = [];
    const stop = table.observe((id, m) => seen.push(`${id}:${m.type}`));
    table.observe(() => {
      throw new Error('boom');
    });
    table.notify('pump-7', telemetry);
    stop();
    table.notify('pump-7', telemetry);
    expect(seen).toEqual(['pump-7:telemetry']);
    expect(table.received).toBe(2);
    expect(reports).toEqual(['link hub: an observer threw', 'link hub: an observer threw']);
    runtime.dispose();
  });
});
