import { describe, expect, it } from 'vitest';
import { createLifecycleSummary } from '../../src/devices/lifecycle-summary.js';
import { createSimulatedClock } from '../../src/runtime/clock.js';
import type { Logger } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';

type Line = { level: string; message: string; fields: Record<string, unknown> | undefined };

function setup(online = () => 0) {
  const lines: Line[] = [];
  const at =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, message, fields });
    };
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  const clock = createSimulatedClock();
  const runtime = createRuntime({ clock, logger });
  const summary = createLifecycleSummary({ runtime, intervalMs: 5000, onlineNow: online });
  const info = () => lines.filter((l) => l.level === 'info');
  return { lines, info, clock, summary };
}

describe('lifecycle summary', () => {
  it('logs one INFO line per interval with the counts of that interval', () => {
    let up = 0;
    const { info, clock, summary } = setup(() => up);
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
    expect(info()[0]?.message).toBe('devices: 1,994 online (+1,995), 1 offline, 3 added, 1,995 connected');
    expect(info()[0]?.fields).toMatchObject({ online: 1994, wentOnline: 1995, wentOffline: 1, added: 3 });

    // The next interval counts afresh.
    summary.note('device.online', 'd1', {});
    up++;
    clock.advance(5000);
    expect(info()).toHaveLength(2);
    expect(info()[1]?.message).toBe('devices: 1,995 online (+1)');
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
    expect(lines.map((l) => l.message)).toEqual(['devices: 0 online (+50)']);
    summary.note('device.online', 'late', {});
    expect(clock.pending()).toBe(0);
  });
});
