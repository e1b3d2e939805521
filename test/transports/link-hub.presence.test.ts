/**
 * Presence as one rule (docs/protocol.md: any message is a sign of life): the link hub over a
 * real fleet and a real SQLite file, on a simulated clock. The link is the hub's `LinkHandle`
 * interface, recording what the host sends; the wire itself is covered by links.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Fleet } from '../../src/devices/fleet.js';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import type { SimulatedClock } from '../../src/runtime/clock.js';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { LinkHandle, LinkHub } from '../../src/transports/link-hub.js';
import { createLinkHub } from '../../src/transports/link-hub.js';
import type { DeviceId, HelloMessage, Message } from '../../src/transports/protocol.js';
import { createProtocolCarrier } from '../../src/transports/protocol-carrier.js';
import { tempDir } from '../store/helpers.js';

interface Rig {
  clock: SimulatedClock;
  store: SqliteStore;
  fleet: Fleet;
  hub: LinkHub;
  sent: { deviceId: string; message: Message }[];
  mqtt: LinkHandle;
  serial: LinkHandle;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const ID = 'pump-7' as DeviceId;
const LIVENESS_MS = 30_000;

async function rig(): Promise<Rig> {
  const tmp = tempDir();
  cleanups.push(tmp.cleanup);
  const clock = createSimulatedClock({ wallStartMs: 1_800_000_000_000 });
  const store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 0, now: () => clock.wallNow() });
  const runtime = createRuntime({ clock });
  const sent: Rig['sent'] = [];
  let hub: LinkHub | undefined;
  const carrier = createProtocolCarrier({ send: (id, m) => hub?.send(id, m) ?? false, replyTimeoutMs: 5000 });
  const fleet = createFleet({ runtime, store, kinds: [genericDevice], carrier, reconcileIntervalMs: 0 });
  await fleet.start();
  const added = await fleet.addDevice({
    id: ID,
    kind: 'fleetvisor.generic',
    attributes: { livenessTimeoutMs: LIVENESS_MS },
  });
  expect(added.ok).toBe(true);
  hub = createLinkHub({ runtime, fleet, store });
  const handle = (via: string, presence: 'status' | 'hello'): LinkHandle => ({
    via,
    presence,
    send: (deviceId, message) => {
      sent.push({ deviceId, message });
      return true;
    },
  });
  cleanups.push(async () => {
    await fleet.stop().catch(() => {});
    await store.close().catch(() => {});
    runtime.dispose();
  });
  return {
    clock,
    store,
    fleet,
    hub,
    sent,
    mqtt: handle('mqtt', 'status'),
    serial: handle('serial:/dev/pts/9', 'hello'),
  };
}

const hello = (boot: number): HelloMessage => ({
  v: 1,
  type: 'hello',
  deviceId: ID,
  kind: 'fleetvisor.generic',
  boot,
  firmware: { version: '1.0.0', slot: 'A', confirmed: true, slots: { A: '1.0.0', B: null } },
  capabilities: [],
});
const status = (state: 'online' | 'offline', boot: number, conn: number): Message => ({
  v: 1,
  type: 'status',
  state,
  boot,
  conn,
});
const telemetry = (boot: number, seq: number): Message => ({
  v: 1,
  type: 'telemetry',
  boot,
  seq,
  ts: 1_800_000_000_000,
  values: { level: seq },
});

async function events(r: Rig, kind: string) {
  await r.hub.flush();
  await r.fleet.flush();
  const page = await r.store.queryEvents({ deviceId: ID, kind, limit: 100 });
  return page.items.flatMap((i) => (i.ok ? [i.value] : []));
}

const view = (r: Rig) => r.fleet.device(ID)!;

describe('presence: one rule', () => {
  it('a device said offline (a forged retained status of its own boot/conn) but still sending is brought back, the contradiction in its events', async () => {
    const r = await rig();
    r.hub.deliver(ID, status('online', 5, 1), r.mqtt);
    r.hub.deliver(ID, hello(5), r.mqtt);
    expect(view(r)).toMatchObject({ state: 'connected', link: { up: true } });
    r.hub.deliver(ID, status('offline', 5, 1), r.mqtt); // what an attacker republished
    expect(view(r)).toMatchObject({ state: 'disconnected', link: { up: false } });
    r.hub.deliver(ID, telemetry(5, 1), r.mqtt);
    expect(view(r)).toMatchObject({ state: 'connected', link: { up: true } });
    const contradiction = await events(r, 'device.presenceContradiction');
    expect(contradiction).toHaveLength(1);
    expect(contradiction[0]!.data).toMatchObject({ said: 'offline', but: 'telemetry', boot: 5 });
    // A late message of an older boot does not bring a device back.
    r.hub.deliver(ID, status('offline', 5, 1), r.mqtt);
    r.hub.deliver(ID, telemetry(4, 99), r.mqtt);
    expect(view(r).link.up).toBe(false);
  });

  it('a device of the fleet heard from with no hello known (a retained hello the broker dropped) is asked for one, and its answer brings it online', async () => {
    const r = await rig();
    // A restarted host whose broker dropped the retained hello and status: only telemetry arrives.
    r.hub.deliver(ID, telemetry(5, 1), r.mqtt);
    expect(view(r).link.up).toBe(false);
    const asks = () => r.sent.filter((x) => x.message.type === 'cmd' && x.message.action === 'hello');
    expect(asks()).toHaveLength(1);
    // Not asked again at every message: again only after 5 s without an answer.
    r.hub.deliver(ID, telemetry(5, 2), r.mqtt);
    expect(asks()).toHaveLength(1);
    // The device answers as §4 says: a fresh hello, then the reply, which is the hub's own.
    const asked = asks()[0]!.message as { cmdId: string };
    r.hub.deliver(ID, hello(5), r.mqtt);
    r.hub.deliver(ID, { v: 1, type: 'reply', cmdId: asked.cmdId, ok: true }, r.mqtt);
    r.hub.deliver(ID, telemetry(5, 3), r.mqtt);
    expect(view(r)).toMatchObject({ state: 'connected', link: { up: true } });
    expect(await events(r, 'device.badMessage')).toEqual([]);
  });

  it('a device not in the fleet heard from with no hello (a dropped retained hello) is asked for one, and its answer lists it as discovered', async () => {
    const r = await rig();
    const stranger = 'pump-99' as DeviceId;
    const asks = () =>
      r.sent.filter(
        (x) => x.deviceId === stranger && x.message.type === 'cmd' && x.message.action === 'hello',
      );
    r.hub.deliver(stranger, telemetry(2, 1), r.mqtt);
    r.hub.deliver(stranger, telemetry(2, 2), r.mqtt);
    expect(asks()).toHaveLength(1); // not at every message
    expect(r.hub.discovered()).toEqual([]);
    const asked = asks()[0]!.message as { cmdId: string };
    r.hub.deliver(stranger, { ...hello(2), deviceId: stranger }, r.mqtt);
    r.hub.deliver(stranger, { v: 1, type: 'reply', cmdId: asked.cmdId, ok: true }, r.mqtt);
    expect(r.hub.discovered().map((d) => [d.id, d.reason])).toEqual([[stranger, 'manual']]);
    expect(r.fleet.has(stranger)).toBe(false); // listed for the operator, not adopted
    // Its two messages before the hello are counted as such; the reply to the hub's ask is not.
    await r.hub.flush();
    const bad = await r.store.queryEvents({ deviceId: stranger, kind: 'device.badMessage', limit: 10 });
    const codes = bad.items.flatMap((i) => (i.ok ? [(i.value.data as { code: string }).code] : []));
    expect(codes.every((c) => c === 'unknownDevice')).toBe(true);
    expect(codes.length).toBeLessThanOrEqual(2);
  });

  it('a reply is a sign of life: a device that only answers commands is not timed out (serial too)', async () => {
    const r = await rig();
    r.hub.deliver(ID, hello(1), r.serial);
    expect(view(r)).toMatchObject({ state: 'connected', link: { up: true, via: 'serial:/dev/pts/9' } });
    for (let i = 0; i < 4; i++) {
      await r.clock.advanceAsync(LIVENESS_MS - 5000);
      const c = await r.fleet.act(ID, 'identify', { seconds: 1 }, 'ana');
      expect(c.ok).toBe(true);
      const cmd = r.sent.at(-1)!.message;
      expect(cmd.type).toBe('cmd');
      if (cmd.type === 'cmd')
        r.hub.deliver(ID, { v: 1, type: 'reply', cmdId: cmd.cmdId, ok: true }, r.serial);
    }
    expect(view(r)).toMatchObject({ state: 'connected', link: { up: true } });
    await flushMicrotasks();
  });

  it('liveness and link never disagree: a silent device shows its link down, and is back at its next message', async () => {
    const r = await rig();
    r.hub.deliver(ID, hello(1), r.serial);
    await r.clock.advanceAsync(LIVENESS_MS + 1);
    expect(view(r)).toMatchObject({
      state: 'disconnected',
      link: { up: false, reason: expect.stringContaining('silent') },
    });
    // A command meanwhile waits, as for any offline device.
    const c = await r.fleet.act(ID, 'identify', { seconds: 1 }, 'ana');
    expect(c).toMatchObject({ ok: true, value: { commandStatus: 'pending' } });
    r.hub.deliver(ID, { v: 1, type: 'heartbeat', boot: 1, uptimeMs: 1 }, r.serial);
    expect(view(r)).toMatchObject({ state: 'connected', link: { up: true, reason: null } });
    expect(r.fleet.commands.open(ID)[0]?.status).toBe('sent');
  });

  it('the host’s own broker drop is the reason, also for the wills the broker sent as it went down', async () => {
    const r = await rig();
    r.hub.deliver(ID, status('online', 2, 1), r.mqtt);
    r.hub.deliver(ID, hello(2), r.mqtt);
    r.hub.deliver(ID, status('offline', 2, 1), r.mqtt); // the broker publishes wills as it stops
    expect(view(r).link.reason).toBe('offline (last will or goodbye)');
    await r.clock.advanceAsync(500);
    r.hub.linkDown('mqtt', 'the host lost its broker connection (broker unreachable: ECONNREFUSED)');
    expect(view(r).link).toMatchObject({
      up: false,
      reason: expect.stringContaining('the host lost its broker'),
    });
  });
});
