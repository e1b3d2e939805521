/**
 * The presence rules (docs/protocol.md §3) as tables: connected, a stale offline status, what a
 * message of a device not online means, and a will that was part of the host's own link drop.
 */
import { describe, expect, it } from 'vitest';
import {
  aliveRule,
  isConnected,
  isStaleOffline,
  RESTATE_WINDOW_MS,
  wentDownWithLink,
} from '../../src/transports/link-presence-rules.js';
import type { Session } from '../../src/transports/link-session.js';
import type { DeviceId, HelloMessage } from '../../src/transports/protocol.js';

const hello = (boot: number): HelloMessage => ({
  v: 1,
  type: 'hello',
  deviceId: 'pump-7' as DeviceId,
  kind: 'fleetvisor.generic',
  boot,
  firmware: { version: '1.0.0', slot: 'A', confirmed: true, slots: { A: '1.0.0', B: null } },
  capabilities: [],
});
type Status = Session['status'];
const online = (boot: number, conn: number): Status => ({ state: 'online', boot, conn });
const offline = (boot: number, conn: number): Status => ({ state: 'offline', boot, conn });

describe('isConnected', () => {
  it.each([
    ['serial: the hello is the connection', 'hello', undefined, 4, true],
    ['serial, whatever the status says', 'hello', offline(4, 1), 4, true],
    ['MQTT: online of the same boot', 'status', online(4, 1), 4, true],
    ['MQTT: online of another boot (a retained hello of a dead device)', 'status', online(3, 1), 4, false],
    ['MQTT: offline of the same boot', 'status', offline(4, 1), 4, false],
    ['MQTT: no status yet', 'status', undefined, 4, false],
  ] as const)('%s', (_name, presence, status, helloBoot, expected) => {
    expect(isConnected(presence, status, helloBoot)).toBe(expected);
  });
});

describe('isStaleOffline', () => {
  it.each([
    ['no status before: it counts', undefined, { boot: 4, conn: 1 }, false],
    ['offline before: it counts', offline(4, 1), { boot: 4, conn: 1 }, false],
    ['the current connection’s will: it counts', online(4, 2), { boot: 4, conn: 2 }, false],
    ['a newer connection of the same boot: it counts', online(4, 2), { boot: 4, conn: 3 }, false],
    ['an older connection’s will, late: stale', online(4, 2), { boot: 4, conn: 1 }, true],
    ['another boot’s will: stale', online(5, 1), { boot: 4, conn: 9 }, true],
  ] as const)('%s', (_name, current, will, expected) => {
    expect(isStaleOffline(current, will)).toBe(expected);
  });
});

describe('aliveRule', () => {
  it.each([
    ['no hello known: ask for one', undefined, undefined, 'status', 4, 'askHello'],
    ['no hello known, over serial too', undefined, undefined, 'hello', 4, 'askHello'],
    ['serial: a sign of life', hello(4), offline(4, 1), 'hello', 4, 'online'],
    ['MQTT, no status of its own: a sign of life', hello(4), undefined, 'status', 4, 'online'],
    ['MQTT, its status online: a sign of life', hello(4), online(4, 1), 'status', 4, 'online'],
    [
      'MQTT, said offline, an older boot’s message: nothing',
      hello(4),
      offline(4, 1),
      'status',
      3,
      'olderBoot',
    ],
    [
      'MQTT, said offline, its current boot still sends',
      hello(4),
      offline(4, 1),
      'status',
      4,
      'contradiction',
    ],
    ['MQTT, said offline, a reply (no boot)', hello(4), offline(4, 1), 'status', undefined, 'contradiction'],
  ] as const)('%s', (_name, h, status, presence, boot, expected) => {
    expect(aliveRule({ hello: h, status }, presence, boot)).toBe(expected);
  });
});

describe('wentDownWithLink', () => {
  const t = 1_800_000_000_000;
  const down = (byStatus: boolean, via: string, at: number) => ({
    online: false,
    down: { at, via, byStatus },
  });
  it.each([
    ['its own will on that link just before the drop', down(true, 'mqtt', t - 100), true],
    ['exactly at the window’s edge', down(true, 'mqtt', t - RESTATE_WINDOW_MS), true],
    ['past the window', down(true, 'mqtt', t - RESTATE_WINDOW_MS - 1), false],
    ['on another link', down(true, 'serial:/dev/ttyUSB0', t - 100), false],
    ['down for another reason (not its status)', down(false, 'mqtt', t - 100), false],
    ['online again since', { online: true, down: { at: t - 100, via: 'mqtt', byStatus: true } }, false],
    ['never down', { online: false, down: undefined }, false],
  ] as const)('%s', (_name, s, expected) => {
    expect(wentDownWithLink(s, 'mqtt', t)).toBe(expected);
  });
});
