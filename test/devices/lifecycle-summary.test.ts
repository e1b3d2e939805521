import { describe, expect, it } from 'vitest';
import { createLifecycleSummary } from '../../src/devices/lifecycle-summary.js';
import { createSimulatedClock } from '../../src/runtime/clock.js';
import type { Logger } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';

type Line = { level: string; message: string; fields: Record<string, unknown> | undefined };

function setup(online = () => 0, total?: () => number) {
  const lines: Line[] = [];
  const at =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, message, fields });
    };
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  const clock = createSimulatedClock();
  const runtime = createRuntime({ clock, logger });
  const summary = createLifecycleSummary({
    runtime,
    intervalMs: 5000,
    onlineNow: online,
    ...(total ? { devicesNow: total } : {}),
  });
  const info = () => lines.filter((l) => l.level === 'info');
  return { lines, info, clock, summary };
}

describe('lifecycle summary', () => {
  it('logs one INFO line per interval with the counts of that interval', () => {
    let up = 0;
    const { info, clock, summary } = setup(
      () => up,
      () => 1998,
    );
    for (let i = 0; i < 1995; i++) {
      summary.note('device.online', `d${i}`, { via: 'mqtt' });
      summary.note('device.state', `d${i}`, { from: 'disconnected', to: 'connected.idle' });
      up++;
    }
    for (let i = 0; i < 3; i++) summary.note('device.added', `n${i}`, {});
    summary.note('device.offline', 'd1', {});
    up--;
    expect(info()).toHaveLength(0);
    clock.advance(4999);
    expect(info()).toHaveLength(0);
    clock.advance(1);
    expect(info()).toHaveLength(1);
    expect(info()[0]?.message).toBe(
      'devices: 1,994 of 1,998 online (1,995 came online, 1 went offline), 3 added, 1,995 connected',
    );
    expect(info()[0]?.fields).toMatchObject({
      online: 1994,
      devices: 1998,
      wentOnline: 1995,
      wentOffline: 1,
      added: 3,
    });

    // The next interval counts afresh.
    summary.note('device.online', 'd1', {});
    up++;
    clock.advance(5000);
    expect(info()).toHaveLength(2);
    expect(info()[1]?.message).toBe('devices: 1,995 of 1,998 online (1 came online)');
  });

  it('logs nothing and arms no timer while nothing happens', () => {
    const { lines, clock, summary } = setup();
    clock.advance(60_000);
    expect(lines).toHaveLength(0);
    expect(clock.pending()).toBe(0);
    // A move inside one top-level state and an event kind that is not lifecycle: not counted.
    summary.note('device.state', 'd1', { from: 'connected.idle', to: 'connected.busy' });
    summary.note('device.action', 'd1', { action: 'reboot' });
    expect(clock.pending()).toBe(0);
    clock.advance(60_000);
    expect(lines).toHaveLength(0);

    summary.note('device.removed', 'd1', {});
    clock.advance(5000);
    expect(lines.map((l) => l.message)).toEqual(['devices: 1 removed']);
    expect(clock.pending()).toBe(0);
    clock.advance(60_000);
    expect(lines).toHaveLength(1);
  });

  it('writes no per-device line at INFO; stop logs what is left and arms nothing more', () => {
    const { lines, clock, summary } = setup();
    for (let i = 0; i < 50; i++) summary.note('device.online', `d${i}`, {});
    expect(lines.filter((l) => l.level !== 'debug')).toHaveLength(0);
    summary.stop();
    expect(lines.map((l) => l.message)).toEqual(['devices: 0 online (50 came online)']);
    summary.note('device.online', 'late', {});
    expect(clock.pending()).toBe(0);
  });

  it('after a host restart counts devices, not events: restated offlines and flaps are no extra transitions', () => {
    // Measured on the real path (2,000 devices, host restarted): the line read
    // "0 online (+980), 2,040 offline" for a fleet of 2,000.
    let up = 0;
    const { info, clock, summary } = setup(
      () => up,
      () => 2000,
    );
    // Restore: every device starts offline.
    for (let i = 0; i < 2000; i++)
      summary.note('device.offline', `d${i}`, { via: 'mqtt', reason: 'restored' });
    // 980 say hello again; 40 of them flap (off and on again) within the interval.
    for (let i = 0; i < 980; i++) {
      summary.note('device.online', `d${i}`, { via: 'mqtt' });
      up++;
    }
    for (let i = 0; i < 40; i++) {
      summary.note('device.offline', `d${i}`, { via: 'mqtt', reason: 'will' });
      summary.note('device.online', `d${i}`, { via: 'mqtt' });
    }
    // The broker's drop restates the reason of devices already offline: no transition.
    for (let i = 980; i < 2000; i++)
      summary.note('device.offline', `d${i}`, { via: 'mqtt', reason: 'broker unreachable', restated: true });
    clock.advance(5000);
    expect(info().map((l) => l.message)).toEqual([
      'devices: 980 of 2,000 online (980 came online, 2,000 went offline)',
    ]);
  });
});
