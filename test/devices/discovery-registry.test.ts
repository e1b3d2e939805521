/**
 * The discovery registry under floods (issue 12 §4): 10,000 hellos with distinct unknown ids, a
 * flood of fake devices with automatic adoption on, paging, manual adoption and ignore.
 * Deterministic: a hand-moved clock and an in-memory fleet port (the registry's own logic only).
 */
import { describe, expect, it } from 'vitest';
import type { AdoptionPolicy, Sighting } from '../../src/devices/discovery.js';
import { createDiscoveryRegistry } from '../../src/devices/discovery-registry.js';
import type { Fleet } from '../../src/devices/fleet.js';
import type { Clock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/runtime.js';

function setup(policy: AdoptionPolicy) {
  let t = 1_000_000;
  const clock = { now: () => t, wallNow: () => t } as unknown as Clock;
  const added: string[] = [];
  const fleet = {
    has: (id: string) => added.includes(id),
    kinds: new Map([['fleetvisor.generic', {}]]),
    addDevice: async (input: { id: string }) => {
      added.push(input.id);
      return { ok: true, value: {} };
    },
  } as unknown as Pick<Fleet, 'addDevice' | 'has' | 'kinds'>;
  const written: { kind: string; deviceId: string | undefined; data: unknown }[] = [];
  const events = {
    append: (kind: string, deviceId: string | undefined, data: unknown) =>
      written.push({ kind, deviceId, data }),
  };
  const discovery = createDiscoveryRegistry({
    runtime: { clock, logger: silentLogger },
    fleet,
    events,
    policy,
  });
  return { discovery, added, written, advance: (ms: number) => (t += ms) };
}

const sighting = (id: string, kind = 'fleetvisor.generic'): Sighting => ({
  id,
  convention: 'protocol',
  kind,
  via: 'mqtt',
  summary: { firmware: '1.0.0' },
});

describe('discovery registry', () => {
  it('10,000 hellos of distinct unknown ids: the list stays capped (oldest dropped, counted), events aggregated', () => {
    const { discovery, written, advance } = setup({ adopt: 'manual', maxDiscovered: 1000 });
    for (let i = 0; i < 10_000; i++) discovery.seen(sighting(`x${i}`, i % 2 ? 'pump' : 'fleetvisor.generic'));
    expect(discovery.stats()).toMatchObject({ listed: 1000, dropped: 9000 });
    const page = discovery.list({ limit: 10 });
    expect(page.total).toBe(1000);
    expect(page.items.map((d) => d.id)).toEqual(Array.from({ length: 10 }, (_, i) => `x${9999 - i}`));
    expect(discovery.list({ offset: 990, limit: 50 }).items.at(-1)?.id).toBe('x9000');
    expect(discovery.list({ kind: 'pump', limit: 5000 }).total).toBe(500);
    expect(discovery.list({ limit: 1_000_000 }).items.length).toBe(1000);
    expect(written.filter((e) => e.kind === 'device.discovered')).toHaveLength(20);
    advance(60_000);
    discovery.seen(sighting('late'));
    const summary = written.find((e) => e.kind === 'device.discoveredSuppressed');
    expect(summary?.data).toMatchObject({ count: 9980 });
  });

  it('automatic adoption is rate-limited: past the budget it pauses with a visible alarm until resumed', async () => {
    const { discovery, added, written } = setup({
      adopt: 'auto',
      autoAdoptMaxPerWindow: 200,
      autoAdoptWindowMs: 60_000,
    });
    const outcomes = Array.from({ length: 2000 }, (_, i) => discovery.seen(sighting(`fake${i}`)));
    await new Promise((r) => setTimeout(r, 0));
    expect(outcomes.filter((o) => o === 'adopted')).toHaveLength(200);
    expect(added).toHaveLength(200);
    const stats = discovery.stats();
    expect(stats.paused).toMatchObject({ newDevices: 2000, windowMs: 60_000 });
    expect(stats.listed).toBe(1800); // under the default cap (10,000): a real fleet waiting is listed whole
    expect(stats.dropped).toBe(0);
    const alarm = written.filter((e) => e.kind === 'discovery.adoptionPaused');
    expect(alarm).toHaveLength(1);
    expect((alarm[0]!.data as { message: string }).message).toBe('adoption paused: 201 new devices in 60 s');
    expect(discovery.list({ limit: 1 }).items[0]?.reason).toBe('adoptionPaused');
    discovery.resumeAutoAdoption('ana');
    expect(discovery.stats().paused).toBeUndefined();
    expect(discovery.seen(sighting('after-resume'))).toBe('adopted');
  });

  it('adopts listed devices by hand (per-id results), ignores others, never adopts an unknown kind', async () => {
    const { discovery, added } = setup({ adopt: 'manual' });
    discovery.seen(sighting('a'));
    discovery.seen(sighting('b'));
    discovery.seen(sighting('p', 'pump'));
    const results = await discovery.adopt(['a', 'p', 'nope'], 'ana');
    expect(results.map((r) => (r.result.ok ? 'ok' : r.result.error.code))).toEqual([
      'ok',
      'unknownKind',
      'notFound',
    ]);
    expect(added).toEqual(['a']);
    expect(discovery.stats().adoptedManual).toBe(1);
    discovery.ignore(['b'], 'ana');
    expect(discovery.seen(sighting('b'))).toBe('ignored');
    expect(discovery.list().items.find((d) => d.id === 'b')).toMatchObject({ reason: 'ignored', heard: 2 });
  });

  it('lists a refused identity once and counts the rest', () => {
    const { discovery, written } = setup({ adopt: 'manual' });
    for (let i = 0; i < 5; i++)
      discovery.refused({
        convention: 'homie',
        name: 'plant7/line.3',
        code: 'collision',
        id: 'plant7-line-3',
        heldBy: 'plant7/line-3',
      });
    expect(discovery.refusedIdentities()).toMatchObject([{ heard: 5, code: 'collision' }]);
    expect(written.filter((e) => e.kind === 'device.identityRefused')).toHaveLength(1);
  });

  it('refuses a bad policy at the boundary', () => {
    expect(() => setup({ adopt: 'auto', maxDiscovered: 0 })).toThrow(/maxDiscovered/);
  });
});
