/**
 * The Firmware view's "running on" and "wanted by" cells (renderer/src/lib/format.ts): seen on a
 * cluster trial with 16 devices on one image, the cell read "trl-m001, trl-m…", its "+13" cut
 * off by the column. The count now comes first, so the cell never hides how many.
 */
import { describe, expect, it } from 'vitest';
import { formatDeviceList } from '../../../renderer/src/lib/format.js';

describe('formatDeviceList', () => {
  it('none, one, a few and many: the count first whenever there is more than one', () => {
    expect(formatDeviceList([])).toBe('—');
    expect(formatDeviceList(['pump-7'])).toBe('pump-7');
    expect(formatDeviceList(['a', 'b'])).toBe('2: a, b');
    expect(formatDeviceList(['a', 'b', 'c'])).toBe('3: a, b, c');
    const many = Array.from({ length: 16 }, (_, i) => `trl-m${String(i + 1).padStart(3, '0')}`);
    expect(formatDeviceList(many)).toBe('16: trl-m001, trl-m002, trl-m003, …');
  });
});
