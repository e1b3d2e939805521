/**
 * Sparkplug's discovered list is the bounded one every convention uses
 * (src/transports/discovered-list.ts): under a flood of births with invented node names
 * (`adopt: 'manual'`), the list stays at its bound (the oldest dropped, counted), 20 are announced
 * and the rest summed up once when the minute ends, and a listed node is still adopted. The
 * session model without a broker (payloads encoded with Tahu's codec), on a simulated clock.
 */
import type { UPayload } from 'sparkplug-payload/lib/sparkplugbpayload.js';
import { describe, expect, it } from 'vitest';
import { encodeSparkplugPayload } from '../../src/conventions/sparkplug/sparkplug-codec.js';
import type { SparkplugEffect } from '../../src/conventions/sparkplug/sparkplug-effects.js';
import { SparkplugModel } from '../../src/conventions/sparkplug/sparkplug-model.js';
import { sparkplugAnnouncements } from '../../src/conventions/sparkplug/sparkplug-names.js';
import { createSimulatedClock } from '../../src/runtime/clock.js';
import { inMemoryFleetFacts } from './sparkplug-fleet-facts.js';

function setup(maxDiscovered?: number) {
  const clock = createSimulatedClock({ wallStartMs: 1_800_000_000_000 });
  const effects: SparkplugEffect[] = [];
  const emit = (e: SparkplugEffect) => effects.push(e);
  const fleet = inMemoryFleetFacts();
  const model = new SparkplugModel(
    {
      fleet: fleet.facts,
      now: () => clock.wallNow(),
      connected: () => true,
      emit,
      announcements: sparkplugAnnouncements(clock, emit),
    },
    {
      hostId: 'fleetvisor',
      groups: undefined,
      adopt: 'manual',
      rebirthMinIntervalMs: 5000,
      maxRebirthsPerMinute: 6,
      maxPayloadBytes: 1024 * 1024,
      ...(maxDiscovered !== undefined ? { maxDiscovered } : {}),
    },
  );
  const events = (kind: string) =>
    effects.filter(
      (e): e is Extract<SparkplugEffect, { type: 'event' }> => e.type === 'event' && e.kind === kind,
    );
  return { clock, model, effects, fleet, events };
}

const nbirth: UPayload = {
  timestamp: 1000,
  seq: 0,
  metrics: [
    { name: 'bdSeq', type: 'UInt64', value: 0 },
    { name: 'Node Control/Rebirth', type: 'Boolean', value: false },
  ],
};
const payload = Buffer.from(encodeSparkplugPayload(nbirth));

describe('Sparkplug discovered list under a flood of invented names', () => {
  it('stays at its bound, announces 20, sums up the rest, and a listed node is still adopted', async () => {
    const { clock, model, fleet, events } = setup(50);
    for (let i = 0; i < 500; i++) model.receive(`spBv1.0/Plant1/NBIRTH/Invented${i}`, payload);
    await model.idle();

    const listed = model.discovered();
    expect(listed).toHaveLength(50);
    expect(listed[0]!.id).toBe('Plant1-Invented450'); // the oldest 450 dropped
    expect(model.discoveryStats()).toEqual({ listed: 50, dropped: 450 });
    expect(events('device.discovered')).toHaveLength(20);
    expect(events('device.discoveredSummary')).toEqual([]);

    clock.advance(60_000);
    expect(events('device.discoveredSummary').map((e) => e.data)).toEqual([
      { count: 480, windowMs: 60_000, via: 'sparkplug' },
    ]);

    expect(await model.adopt('Plant1-Invented499')).toEqual({ ok: true });
    expect(fleet.devices.has('Plant1-Invented499')).toBe(true);
    expect(model.discovered()).toHaveLength(49);
    const dropped = await model.adopt('Plant1-Invented0');
    expect(dropped).toMatchObject({ ok: false, error: { code: 'notFound' } });
  });

  it('a node born again while listed keeps its place and is not announced twice', async () => {
    const { model, events } = setup(3);
    for (const name of ['A', 'B', 'C', 'A']) model.receive(`spBv1.0/Plant1/NBIRTH/${name}`, payload);
    await model.idle();
    expect(model.discovered().map((d) => d.id)).toEqual(['Plant1-A', 'Plant1-B', 'Plant1-C']);
    expect(events('device.discovered').map((e) => e.deviceId)).toEqual(['Plant1-A', 'Plant1-B', 'Plant1-C']);
  });

  it('lists 10,000 by default: a real plant waiting for adoption fits', async () => {
    const { model } = setup();
    for (let i = 0; i < 2000; i++) model.receive(`spBv1.0/Plant1/NBIRTH/Line${i}`, payload);
    await model.idle();
    expect(model.discoveryStats()).toEqual({ listed: 2000, dropped: 0 });
  });
});
