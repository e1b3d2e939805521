/**
 * The inspector's history of machine events (src/host/api/machine-events.ts), without an app:
 * newest first, at most so many per device and so many devices (the least recently active or
 * asked about goes first, and what is known of a device says since when), payloads as JSON cut
 * past their bound, whatever they hold.
 */
import { describe, expect, it } from 'vitest';
import {
  MachineEventHistory,
  PAYLOAD_CHARS_KEPT,
  payloadText,
} from '../../../src/host/api/machine-events.js';

describe('MachineEventHistory', () => {
  it('keeps the last events of a device, newest first, with their payloads and states', () => {
    let now = 1_000;
    const h = new MachineEventHistory(() => now, { devices: 10, events: 3 });
    for (let i = 0; i < 5; i++) h.record('a', 2_000 + i, { type: `E${i}`, n: i }, `s${i}`, `s${i + 1}`);
    now = 9_000;
    expect(h.of('a')).toEqual({
      events: [
        { at: 2_004, type: 'E4', payload: { n: 4 }, from: 's4', to: 's5' },
        { at: 2_003, type: 'E3', payload: { n: 3 }, from: 's3', to: 's4' },
        { at: 2_002, type: 'E2', payload: { n: 2 }, from: 's2', to: 's3' },
      ],
      since: 1_000,
    });
    expect(h.of('quiet')).toEqual({ events: [], since: 1_000 });
  });

  it('drops the least recently active device past its bound, and says since when the others are known', () => {
    let now = 0;
    const h = new MachineEventHistory(() => now, { devices: 2, events: 5 });
    h.record('a', 1, { type: 'X' }, 'p', 'q');
    h.record('b', 2, { type: 'X' }, 'p', 'q');
    now = 10;
    h.of('a'); // asked about: kept longer than b
    now = 20;
    h.record('c', 20, { type: 'X' }, 'p', 'q');
    expect(h.size).toBe(2);
    expect(h.of('b')).toEqual({ events: [], since: 20 });
    expect(h.of('a').events).toHaveLength(1);
    expect(h.of('a').since).toBe(0);
    expect(h.of('c').since).toBe(20);
    h.forget('a');
    expect(h.of('a').events).toEqual([]);
  });

  it('cuts a long payload and marks it; an event with no fields has an empty one', () => {
    const h = new MachineEventHistory(() => 0);
    h.record('a', 1, { type: 'BIG', blob: 'x'.repeat(3 * PAYLOAD_CHARS_KEPT) }, 'p', 'p');
    h.record('a', 2, { type: 'BARE' }, 'p', 'p');
    const [bare, big] = h.of('a').events;
    expect(bare).toEqual({ at: 2, type: 'BARE', payload: {}, from: 'p', to: 'p' });
    expect(big!.truncated).toBe(true);
    expect(typeof big!.payload).toBe('string');
    expect((big!.payload as string).length).toBe(PAYLOAD_CHARS_KEPT);
  });

  it('writes any payload as JSON: errors by message, bigints as text, functions left out, cycles said', () => {
    expect(payloadText({ type: 'E', error: new Error('boom'), n: 10n, f: () => 1 })).toBe(
      '{"error":{"error":"boom"},"n":"10"}',
    );
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(JSON.parse(payloadText({ type: 'E', cycle }))).toHaveProperty('unserialisable');
  });
});
