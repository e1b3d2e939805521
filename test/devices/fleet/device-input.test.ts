/**
 * The fleet's checks of an operator's input (src/devices/fleet/device-input.ts): a new device's
 * id, kind, attributes and spec, in a fixed order, and what a patch changes.
 */
import { describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import type { DeviceKind } from '../../../src/devices/define-device.js';
import { defineDevice } from '../../../src/devices/define-device.js';
import type { KnownDevices } from '../../../src/devices/fleet/device-input.js';
import { checkNewDevice, diffPatch } from '../../../src/devices/fleet/device-input.js';
import type { DeviceRecord } from '../../../src/store/store.js';

const pump = defineDevice({
  kind: 'test.pump',
  attributes: z.object({ litres: z.number().int().positive().default(10) }),
  machine: setup({}).createMachine({ id: 'pump', initial: 'idle', states: { idle: {} } }),
  actions: {},
  spec: z.object({ speed: z.number().min(0).max(100) }),
});
const valve = defineDevice({
  kind: 'test.valve',
  attributes: z.object({}),
  machine: setup({}).createMachine({ id: 'valve', initial: 'shut', states: { shut: {} } }),
  actions: {},
});

const known = (over: Partial<KnownDevices> = {}): KnownDevices => ({
  kinds: new Map<string, DeviceKind>([
    [pump.kind, pump],
    [valve.kind, valve],
  ]),
  owns: undefined,
  has: (id) => id === 'pump-1',
  ...over,
});

const codeOf = (r: { ok: boolean; error?: { code: string } }) => (r.ok ? 'ok' : r.error?.code);

describe('checkNewDevice', () => {
  it.each([
    ['a bad id', { id: 'pump 9', kind: 'test.pump' }, known(), 'badDeviceId'],
    ['an id taken', { id: 'pump-1', kind: 'nope' }, known(), 'alreadyExists'],
    ['another instance’s shard', { id: 'pump-2', kind: 'nope' }, known({ owns: () => false }), 'notOwner'],
    ['an unknown kind', { id: 'pump-2', kind: 'nope', attributes: 'x' }, known(), 'unknownKind'],
    [
      'bad attributes',
      { id: 'pump-2', kind: 'test.pump', attributes: { litres: -1 }, spec: 1 },
      known(),
      'badAttributes',
    ],
    ['a bad spec', { id: 'pump-2', kind: 'test.pump', spec: { speed: 101 } }, known(), 'badSpec'],
    ['a spec without a schema', { id: 'v-1', kind: 'test.valve', spec: { any: 'thing' } }, known(), 'ok'],
  ])('refuses the first thing wrong: %s → %s', (_what, input, fleet, code) => {
    expect(codeOf(checkNewDevice(input, fleet))).toBe(code);
  });

  it('answers the parsed attributes (with their defaults) and the spec, {} when none', () => {
    expect(checkNewDevice({ id: 'pump-2', kind: 'test.pump' }, known())).toEqual({
      ok: true,
      value: { id: 'pump-2', kind: pump, attributes: { litres: 10 }, spec: {} },
    });
    const r = checkNewDevice({ id: 'pump-3', kind: 'test.pump', spec: { speed: 40 } }, known());
    expect(r.ok && r.value.spec).toEqual({ speed: 40 });
  });

  it('names the kinds it knows, and the field a spec got wrong', () => {
    const unknown = checkNewDevice({ id: 'p', kind: 'test.pumpp' }, known());
    expect(unknown.ok || unknown.error.message).toBe(
      "unknown kind 'test.pumpp' (known: test.pump, test.valve)",
    );
    const spec = checkNewDevice({ id: 'p', kind: 'test.pump', spec: { speed: 'fast' } }, known());
    expect(spec.ok || spec.error.message).toMatch(/^speed: /);
  });
});

describe('diffPatch', () => {
  const record: DeviceRecord = {
    id: 'pump-1',
    kind: 'test.pump',
    name: 'Pump 1',
    tags: ['hall'],
    attributes: { litres: 10 },
    spec: {},
    status: {},
    createdAt: 0,
    updatedAt: 0,
  };

  it.each([
    ['nothing', {}, [], undefined],
    ['the same values', { name: 'Pump 1', tags: ['hall'], attributes: {} }, [], undefined],
    ['a new name', { name: 'Pump one' }, ['name'], undefined],
    ['other tags', { tags: ['hall', 'north'] }, ['tags'], undefined],
    ['other attributes', { attributes: { litres: 12 } }, ['attributes'], { litres: 12 }],
    [
      'all three',
      { attributes: { litres: 12 }, tags: [], name: 'x' },
      ['name', 'tags', 'attributes'],
      { litres: 12 },
    ],
  ])('%s → changed %j', (_what, patch, changed, attributes) => {
    expect(diffPatch(record, pump, patch)).toEqual({ ok: true, value: { changed, attributes } });
  });

  it('refuses attributes the kind refuses, whatever else changes', () => {
    expect(codeOf(diffPatch(record, pump, { name: 'x', attributes: { litres: 'ten' } }))).toBe(
      'badAttributes',
    );
  });
});
