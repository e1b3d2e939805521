/**
 * The generic kind's actions: each one has a lasting effect. `disconnect` had none (the link is
 * up, so the device was back to connected within a second: issue 13 §6) and is not offered.
 */
import { describe, expect, it } from 'vitest';
import { describeKind } from '../../src/devices/define-device.js';
import { genericDevice } from '../../src/devices/generic-device.js';

describe('generic device kind', () => {
  it('offers no disconnect action, whose effect the live link undid at once', () => {
    const names = describeKind(genericDevice).actions.map((a) => a.name);
    expect(names).not.toContain('disconnect');
    expect(names).toEqual(expect.arrayContaining(['connect', 'update']));
  });
});
