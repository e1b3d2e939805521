/**
 * The pure parts of sending an event by hand (src/devices/fleet/send-event.ts): the payload's
 * checks and the event types a machine knows. The fleet's side is tested on the real app
 * (test/host/api.inspect.test.ts).
 */

import { describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import {
  checkPayload,
  eventTypesOf,
  MAX_EVENT_PAYLOAD_CHARS,
} from '../../../src/devices/fleet/send-event.js';
import { genericMachine } from '../../../src/devices/generic.machine.js';

describe('checkPayload', () => {
  it('takes a JSON object (or nothing) and gives back a plain copy', () => {
    expect(checkPayload(undefined)).toEqual({ ok: true, value: {} });
    expect(checkPayload({ firmware: '1.0', n: [1, { a: null }] })).toEqual({
      ok: true,
      value: { firmware: '1.0', n: [1, { a: null }] },
    });
  });

  it.each([
    [null, 'not null'],
    [[1], 'not an array'],
    ['x', 'not string'],
    [3, 'not number'],
    [{ type: 'HELLO' }, "must not carry 'type'"],
    [{ blob: 'x'.repeat(MAX_EVENT_PAYLOAD_CHARS) }, `over the ${MAX_EVENT_PAYLOAD_CHARS} allowed`],
  ])('refuses %j as badPayload (%s)', (payload, says) => {
    const r = checkPayload(payload);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('badPayload');
      expect(r.error.message).toContain(says);
    }
  });
});

describe('eventTypesOf', () => {
  it("lists a machine's event types from every state, sorted, without xstate's own", () => {
    expect(eventTypesOf(genericMachine)).toEqual([
      'CONNECT',
      'DISCONNECT',
      'HELLO',
      'LINK_DOWN',
      'LIVENESS_TIMEOUT',
    ]);
  });

  it('walks nested states and leaves out wildcards and delays', () => {
    const m = setup({}).createMachine({
      initial: 'a',
      on: { RESET: '.a', '*': {} },
      states: {
        a: { after: { 100: 'b' }, on: { GO: 'b' } },
        b: { initial: 'x', states: { x: { on: { DEEP: 'y' } }, y: {} } },
      },
    });
    expect(eventTypesOf(m)).toEqual(['DEEP', 'GO', 'RESET']);
  });
});
