import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineDevice } from '../../src/devices/define-device.js';
import { genericMachine } from '../../src/devices/generic.machine.js';
import { genericDevice } from '../../src/devices/generic-device.js';

describe('a kind declares the size of its firmware slot', () => {
  it('the generic kind takes images up to 4 MiB, the size of the simulator’s slot', () => {
    expect(genericDevice.firmwareSlotBytes).toBe(4 * 1024 * 1024);
  });

  it('a kind without a firmware channel declares no slot', () => {
    const k = defineDevice({ kind: 'no-fw', attributes: z.object({}), machine: genericMachine, actions: {} });
    expect(k.firmwareSlotBytes).toBeUndefined();
  });

  it('a slot size that is not a positive integer is refused at the declaration', () => {
    for (const bad of [0, -1, 1.5, Number.NaN])
      expect(() =>
        defineDevice({
          kind: 'bad-slot',
          attributes: z.object({}),
          machine: genericMachine,
          actions: {},
          firmwareSlotBytes: bad,
        }),
      ).toThrow(/firmwareSlotBytes/);
  });
});
