/**
 * The simulated device's flash on its own (src/sim/sim-firmware.ts): each fw.* message answered
 * with its ack and the reboot it asks for, and the bootloader's choice on the way back up. No
 * device, link or timer.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SimFirmware } from '../../src/sim/sim-firmware.js';

const IMAGE = Uint8Array.from({ length: 10 }, (_, i) => i + 1);
const SHA = createHash('sha256').update(IMAGE).digest('hex');

const begin = (transferId = 't1', size = IMAGE.length, sha256 = SHA) =>
  ({ v: 1, type: 'fw.begin', transferId, version: '2.0.0', size, sha256, chunkBytes: 4 }) as const;
const chunk = (offset: number, data: Uint8Array, transferId = 't1') =>
  ({ v: 1, type: 'fw.chunk', transferId, offset, data }) as const;
const step = <T extends 'fw.verify' | 'fw.apply' | 'fw.confirm' | 'fw.rollback'>(
  type: T,
  transferId = 't1',
) => ({ v: 1, type, transferId }) as const;

/** A flash holding IMAGE, verified, in slot B. */
function loaded(): SimFirmware {
  const f = new SimFirmware({ version: '1.0.0' }, 1024);
  f.handle(begin());
  for (let o = 0; o < IMAGE.length; o += 4) f.handle(chunk(o, IMAGE.subarray(o, o + 4)));
  expect(f.handle(step('fw.verify')).ack).toMatchObject({ step: 'verify', offset: 10 });
  return f;
}

describe('SimFirmware', () => {
  it('starts in the given slot, confirmed, with the other slot as told', () => {
    expect(new SimFirmware({ version: '1.0.0' }, 1024).info).toEqual({
      version: '1.0.0',
      slot: 'A',
      confirmed: true,
      slots: { A: '1.0.0', B: null },
    });
    expect(new SimFirmware({ version: '3.0.0', slot: 'B', otherVersion: '2.0.0' }, 1024).info).toEqual({
      version: '3.0.0',
      slot: 'B',
      confirmed: true,
      slots: { A: '2.0.0', B: '3.0.0' },
    });
  });

  it('takes chunks in order, acks where to go on after a gap, and refuses a chunk too long or past the end', () => {
    const f = new SimFirmware({ version: '1.0.0' }, 1024);
    expect(f.handle(begin()).ack).toEqual({
      v: 1,
      type: 'fw.ack',
      transferId: 't1',
      step: 'begin',
      offset: 0,
    });
    expect(f.handle(chunk(0, IMAGE.subarray(0, 4))).ack.offset).toBe(4);
    expect(f.handle(chunk(8, IMAGE.subarray(8, 10))).ack.offset).toBe(4); // a gap: not written
    expect(f.handle(chunk(2, IMAGE.subarray(2, 6))).ack.offset).toBe(6); // an overlap continues
    expect(f.handle(chunk(6, IMAGE.subarray(0, 5))).ack.error?.code).toBe('badChunk');
    expect(f.handle(chunk(8, new Uint8Array(3))).ack.error?.code).toBe('badOffset');
    expect(f.handle(chunk(0, IMAGE.subarray(0, 1), 'nope')).ack.error?.code).toBe('unknownTransfer');
    expect(f.transferState()).toMatchObject({ transferId: 't1', slot: 'B', held: 6, verified: false });
    // The same begin resumes where it stopped.
    expect(f.handle(begin()).ack.offset).toBe(6);
  });

  it('refuses an image larger than the slot, and erases one whose hash does not match', () => {
    const f = new SimFirmware({ version: '1.0.0' }, 8);
    expect(f.handle(begin()).ack.error?.code).toBe('tooLarge');
    const g = new SimFirmware({ version: '1.0.0' }, 1024);
    g.handle(begin('t1', 4, '0'.repeat(64)));
    expect(g.handle(step('fw.verify')).ack.error?.code).toBe('incomplete');
    g.handle(chunk(0, IMAGE.subarray(0, 4)));
    expect(g.handle(step('fw.verify')).ack).toMatchObject({ offset: 0, error: { code: 'hashMismatch' } });
    expect(g.transferState()?.held).toBe(0);
  });

  it('apply asks for a reboot; the bootloader runs the new slot on trial, confirm makes it permanent', () => {
    const f = loaded();
    expect(f.info.slots.B).toBe('2.0.0');
    expect(f.handle(step('fw.confirm')).ack.error?.code).toBe('notApplied');
    expect(f.handle(step('fw.apply'))).toMatchObject({
      ack: { step: 'apply', offset: 10 },
      reboot: 'fwApply',
    });
    f.boot();
    expect(f.info).toMatchObject({ version: '2.0.0', slot: 'B', confirmed: false });
    expect(f.handle(begin('t2')).ack.error?.code).toBe('busy');
    expect(f.handle(step('fw.apply'))).toEqual({ ack: expect.objectContaining({ step: 'apply' }) }); // a repeat
    expect(f.handle(step('fw.confirm')).ack.error).toBeUndefined();
    expect(f.info).toMatchObject({ slot: 'B', confirmed: true });
  });

  it('a reboot before confirm falls back to the previous slot, and says so', () => {
    const f = loaded();
    f.handle(step('fw.apply'));
    f.boot();
    f.boot(); // rebooted on trial
    expect(f.info).toMatchObject({ version: '1.0.0', slot: 'A', confirmed: true });
    expect(f.handle(step('fw.confirm')).ack.error).toEqual({
      code: 'rolledBack',
      message: 'rebooted before confirm; back on slot A',
    });
    expect(f.handle(step('fw.rollback'))).toEqual({ ack: expect.objectContaining({ step: 'rollback' }) });
  });

  it('rollback asks for a reboot into the previous slot; before apply it abandons the transfer', () => {
    const f = loaded();
    f.handle(step('fw.apply'));
    f.boot();
    expect(f.handle(step('fw.rollback')).reboot).toBe('fwRollback');
    f.boot();
    expect(f.info).toMatchObject({ slot: 'A', confirmed: true });
    expect(f.handle(step('fw.apply')).ack.error?.code).toBe('rolledBack');
    // The same image begun again can be applied anew.
    expect(f.handle(begin()).ack.offset).toBe(10);
    expect(f.handle(step('fw.apply')).reboot).toBe('fwApply');

    const g = new SimFirmware({ version: '1.0.0' }, 1024);
    g.handle(begin());
    expect(g.handle(step('fw.rollback'))).toEqual({
      ack: { v: 1, type: 'fw.ack', transferId: 't1', step: 'rollback', offset: 0 },
    });
    expect(g.transferState()).toBeUndefined();
  });
});
