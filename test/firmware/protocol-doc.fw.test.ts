/**
 * docs/protocol.md §5 against the simulator's device side (src/sim/sim-device.ts): the error-code
 * table of §5.3 and the offsets of §5.2, each row provoked on a real SimDevice driven in-process.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SimDevice, type SimDeviceOptions } from '../../src/sim/sim-device.js';
import type { FwAckMessage, FwStep, Message } from '../../src/transports/protocol.js';
import { encodeMessage } from '../../src/transports/protocol.js';
import { registerCleanups, waitFor } from '../sim/helpers.js';

const cleanup = registerCleanups();

const read = (path: string) => readFileSync(fileURLToPath(new URL(path, import.meta.url)), 'utf8');
const doc = read('../../docs/protocol.md');
const section5 = doc.slice(doc.indexOf('## 5. Firmware transfer'), doc.indexOf('## 6. MQTT'));

/** The body rows of the first table after the header line that starts with `header`, split in cells. */
function table(header: string): string[][] {
  const lines = section5.split('\n');
  const at = lines.findIndex((l) => l.startsWith(header));
  if (at < 0) throw new Error(`no table starting ${header} in §5`);
  const rows: string[][] = [];
  for (const line of lines.slice(at + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    );
  }
  return rows;
}

const ticked = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
const OFFSET_WORDS = new Set(['0', 'held', 'size']);

// ---------------------------------------------------------------------------------------------
// Driving one device

const IMAGE = randomBytes(16);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const CHUNK = 4;

interface Rig {
  d: SimDevice;
  say(msg: Message): FwAckMessage;
}

function rig(options: Partial<SimDeviceOptions> = {}): Rig {
  const d = new SimDevice({ id: 'fw-doc', bootDelayMs: 0, telemetryIntervalMs: 3_600_000, ...options });
  cleanup(() => d.stop());
  const sent: Message[] = [];
  d.attach((m) => {
    encodeMessage(m); // every answer must be a valid v1 message
    sent.push(m);
  });
  return {
    d,
    say(msg) {
      const before = sent.length;
      d.receive(msg);
      const acks = sent.slice(before).filter((m): m is FwAckMessage => m.type === 'fw.ack');
      expect(acks, `one fw.ack for ${msg.type}`).toHaveLength(1);
      return acks[0]!;
    },
  };
}

const begin = (transferId: string, image = IMAGE, sha256 = sha(image)): Message => ({
  v: 1,
  type: 'fw.begin',
  transferId,
  version: '2.0.0',
  size: image.length,
  sha256,
  chunkBytes: CHUNK,
});
const chunk = (transferId: string, offset: number, data: Uint8Array): Message => ({
  v: 1,
  type: 'fw.chunk',
  transferId,
  offset,
  data,
});
const step = (
  type: 'fw.verify' | 'fw.apply' | 'fw.confirm' | 'fw.rollback',
  transferId: string,
): Message => ({
  v: 1,
  type,
  transferId,
});

/** Sends chunks [0, upTo) of the image; returns the last chunk ack. */
function chunks(r: Rig, transferId: string, upTo: number, image = IMAGE): FwAckMessage | undefined {
  let last: FwAckMessage | undefined;
  for (let at = 0; at < upTo; at += CHUNK)
    last = r.say(chunk(transferId, at, image.subarray(at, at + CHUNK)));
  return last;
}

async function rebooted(r: Rig, bootBefore: number): Promise<void> {
  await waitFor(() => r.d.boot !== bootBefore && r.d.attached, 5000, 'the reboot');
}

/** begin, all chunks, verify, apply, and the reboot into the new slot (on trial). */
async function install(r: Rig, transferId: string): Promise<FwAckMessage> {
  r.say(begin(transferId));
  chunks(r, transferId, IMAGE.length);
  expect(r.say(step('fw.verify', transferId)).error).toBeUndefined();
  const boot = r.d.boot;
  const ack = r.say(step('fw.apply', transferId));
  expect(ack.error).toBeUndefined();
  await rebooted(r, boot);
  expect(r.d.firmware).toMatchObject({ version: '2.0.0', confirmed: false });
  return ack;
}

interface Outcome {
  ack: FwAckMessage;
  /** Bytes of this transfer the test has sent contiguously from 0 (the doc's `held`). */
  held: number;
  size: number;
}

const S = IMAGE.length;

/** Each `code/step` of the §5.3 table, provoked. */
const ERROR_CASES: Record<string, () => Promise<Outcome>> = {
  'tooLarge/begin': async () => {
    const r = rig({ maxImageBytes: S - 1 });
    return { ack: r.say(begin('t1')), held: 0, size: S };
  },
  'busy/begin': async () => {
    const r = rig();
    await install(r, 't1');
    return { ack: r.say(begin('t2', randomBytes(8))), held: 0, size: 8 };
  },
  ...Object.fromEntries(
    (['chunk', 'verify', 'apply', 'confirm', 'rollback'] as const).map((s) => [
      `unknownTransfer/${s}`,
      async (): Promise<Outcome> => {
        const r = rig();
        r.say(begin('known'));
        chunks(r, 'known', CHUNK);
        const msg =
          s === 'chunk' ? chunk('other', 0, IMAGE.subarray(0, CHUNK)) : step(`fw.${s}` as const, 'other');
        return { ack: r.say(msg), held: 0, size: S };
      },
    ]),
  ),
  'badChunk/chunk': async () => {
    const r = rig();
    r.say(begin('t1'));
    chunks(r, 't1', CHUNK);
    return { ack: r.say(chunk('t1', CHUNK, IMAGE.subarray(CHUNK, 3 * CHUNK))), held: CHUNK, size: S };
  },
  'badOffset/chunk': async () => {
    const image = IMAGE.subarray(0, 10);
    const r = rig();
    r.say(begin('t1', image));
    chunks(r, 't1', 8, image);
    return { ack: r.say(chunk('t1', 8, randomBytes(CHUNK))), held: 8, size: 10 };
  },
  'incomplete/verify': async () => {
    const r = rig();
    r.say(begin('t1'));
    chunks(r, 't1', 2 * CHUNK);
    return { ack: r.say(step('fw.verify', 't1')), held: 2 * CHUNK, size: S };
  },
  'hashMismatch/verify': async () => {
    const r = rig();
    r.say(begin('t1', IMAGE, 'ab'.repeat(32)));
    chunks(r, 't1', S);
    const ack = r.say(step('fw.verify', 't1'));
    expect(r.say(begin('t1', IMAGE, 'ab'.repeat(32))).offset).toBe(0); // erased: starts again
    return { ack, held: S, size: S };
  },
  'notVerified/apply': async () => {
    const r = rig();
    r.say(begin('t1'));
    chunks(r, 't1', S);
    return { ack: r.say(step('fw.apply', 't1')), held: S, size: S };
  },
  'rolledBack/apply': async () => {
    const r = rig();
    await install(r, 't1');
    const boot = r.d.boot;
    expect(r.say(step('fw.rollback', 't1')).error).toBeUndefined();
    await rebooted(r, boot);
    return { ack: r.say(step('fw.apply', 't1')), held: S, size: S };
  },
  'rolledBack/confirm': async () => {
    const r = rig();
    await install(r, 't1');
    const boot = r.d.boot;
    r.d.reboot(); // on trial: the bootloader goes back by itself
    await rebooted(r, boot);
    expect(r.d.firmware).toMatchObject({ version: '1.0.0', confirmed: true });
    return { ack: r.say(step('fw.confirm', 't1')), held: S, size: S };
  },
  'notApplied/confirm': async () => {
    const r = rig();
    r.say(begin('t1'));
    chunks(r, 't1', S);
    r.say(step('fw.verify', 't1'));
    return { ack: r.say(step('fw.confirm', 't1')), held: S, size: S };
  },
  'noImage/rollback': async () => {
    const r = rig();
    await install(r, 't1');
    expect(r.say(step('fw.confirm', 't1')).error).toBeUndefined();
    expect(r.say(begin('t2', randomBytes(8))).error).toBeUndefined(); // erases the old slot
    return { ack: r.say(step('fw.rollback', 't1')), held: 0, size: S };
  },
};

/** Successful acks of §5.2, per step, in the order of the offsets named in its row. */
const OK_CASES: Record<FwStep, (() => Promise<Outcome>)[]> = {
  begin: [
    async () => {
      const r = rig();
      r.say(begin('t1'));
      chunks(r, 't1', 2 * CHUNK);
      return { ack: r.say(begin('t1')), held: 2 * CHUNK, size: S }; // resumes
    },
  ],
  chunk: [
    async () => {
      const r = rig();
      r.say(begin('t1'));
      chunks(r, 't1', CHUNK);
      const gap = r.say(chunk('t1', 3 * CHUNK, IMAGE.subarray(3 * CHUNK))); // not written, no error
      expect(gap).toMatchObject({ offset: CHUNK });
      expect(gap.error).toBeUndefined();
      return { ack: r.say(chunk('t1', CHUNK, IMAGE.subarray(CHUNK, 2 * CHUNK))), held: 2 * CHUNK, size: S };
    },
  ],
  verify: [
    async () => {
      const r = rig();
      r.say(begin('t1'));
      chunks(r, 't1', S);
      return { ack: r.say(step('fw.verify', 't1')), held: S, size: S };
    },
  ],
  apply: [async () => ({ ack: await install(rig(), 't1'), held: S, size: S })],
  confirm: [
    async () => {
      const r = rig();
      await install(r, 't1');
      return { ack: r.say(step('fw.confirm', 't1')), held: S, size: S };
    },
  ],
  rollback: [
    async () => {
      const r = rig();
      await install(r, 't1');
      return { ack: r.say(step('fw.rollback', 't1')), held: S, size: S };
    },
    async () => {
      const r = rig();
      r.say(begin('t1'));
      chunks(r, 't1', CHUNK);
      const ack = r.say(step('fw.rollback', 't1')); // abandons the transfer
      expect(r.say(begin('t1')).offset).toBe(0);
      return { ack, held: CHUNK, size: S };
    },
  ],
};

function expected(word: string, o: Outcome): number {
  if (word === '0') return 0;
  if (word === 'held') return o.held;
  if (word === 'size') return o.size;
  throw new Error(`unknown offset word ${word}`);
}

// ---------------------------------------------------------------------------------------------

const errorRows = table('| `code`').map(([code, steps, , offset]) => ({
  code: ticked(code!)[0]!,
  steps: ticked(steps!),
  offset: ticked(offset!)[0]!,
}));

describe('docs/protocol.md §5.3: the fw.ack error codes', () => {
  it('the table lists every code the simulator can send in a fw.ack, and no other', () => {
    // The simulator's fw.* answers (its flash; SimDevice only sends them).
    const fwPart = read('../../src/sim/sim-firmware.ts');
    const simCodes = new Set([...fwPart.matchAll(/code: '([A-Za-z0-9_.-]+)'/g)].map((m) => m[1]!));
    expect(simCodes.size).toBeGreaterThan(5);
    expect(errorRows.map((r) => r.code).sort()).toEqual([...simCodes].sort());
  });

  it('every row names steps and an offset, and has a case here (and every case a row)', () => {
    for (const row of errorRows) {
      expect(row.steps.length, row.code).toBeGreaterThan(0);
      expect(OFFSET_WORDS.has(row.offset), `${row.code}: offset ${row.offset}`).toBe(true);
    }
    const documented = errorRows.flatMap((r) => r.steps.map((s) => `${r.code}/${s}`));
    expect(documented.sort()).toEqual(Object.keys(ERROR_CASES).sort());
  });

  for (const row of errorRows) {
    for (const s of row.steps) {
      it(`${row.code} in answer to ${s}, offset ${row.offset}`, async () => {
        const provoke = ERROR_CASES[`${row.code}/${s}`];
        expect(provoke, `a case for ${row.code}/${s}`).toBeDefined();
        const o = await provoke!();
        expect(o.ack.step).toBe(s);
        expect(o.ack.error?.code).toBe(row.code);
        expect(o.ack.offset).toBe(expected(row.offset, o));
      });
    }
  }
});

const okRows = table('| Successful ack').map(([s, offset]) => ({
  step: ticked(s!)[0] as FwStep,
  offsets: ticked(offset!).filter((w) => OFFSET_WORDS.has(w)),
}));

describe('docs/protocol.md §5.2: offset in successful acks', () => {
  it('the table has one row per step', () => {
    expect(okRows.map((r) => r.step).sort()).toEqual(Object.keys(OK_CASES).sort());
  });

  for (const row of okRows) {
    it(`${row.step}: ${row.offsets.join(' / ')}`, async () => {
      const cases = OK_CASES[row.step];
      expect(row.offsets).toHaveLength(cases.length);
      for (const [i, run] of cases.entries()) {
        const o = await run();
        expect(o.ack.step).toBe(row.step);
        expect(o.ack.error).toBeUndefined();
        expect(o.ack.offset).toBe(expected(row.offsets[i]!, o));
      }
    });
  }
});

describe('docs/protocol.md §5.4: abandoned transfers and slots', () => {
  it('a new fw.begin replaces an unapplied transfer at once; the old id is then unknown', () => {
    const r = rig();
    r.say(begin('t1'));
    chunks(r, 't1', 2 * CHUNK);
    const other = randomBytes(8);
    expect(r.say(begin('t2', other))).toMatchObject({ offset: 0 });
    expect(r.say(chunk('t1', 2 * CHUNK, IMAGE.subarray(2 * CHUNK, 3 * CHUNK))).error?.code).toBe(
      'unknownTransfer',
    );
    expect(r.d.firmware.slots).toEqual({ A: '1.0.0', B: null });
  });

  it('slots after verify, apply, rollback; a rolled-back image is applied again by a new begin with its id', async () => {
    const r = rig();
    r.say(begin('t1'));
    chunks(r, 't1', S);
    r.say(step('fw.verify', 't1'));
    expect(r.d.firmware).toEqual({
      version: '1.0.0',
      slot: 'A',
      confirmed: true,
      slots: { A: '1.0.0', B: '2.0.0' },
    });
    let boot = r.d.boot;
    r.say(step('fw.apply', 't1'));
    await rebooted(r, boot);
    expect(r.d.firmware).toEqual({
      version: '2.0.0',
      slot: 'B',
      confirmed: false,
      slots: { A: '1.0.0', B: '2.0.0' },
    });
    boot = r.d.boot;
    r.say(step('fw.rollback', 't1'));
    await rebooted(r, boot);
    expect(r.d.firmware).toEqual({
      version: '1.0.0',
      slot: 'A',
      confirmed: true,
      slots: { A: '1.0.0', B: '2.0.0' },
    });

    expect(r.say(begin('t1'))).toMatchObject({ offset: S });
    expect(r.say(step('fw.verify', 't1')).error).toBeUndefined();
    boot = r.d.boot;
    expect(r.say(step('fw.apply', 't1')).error).toBeUndefined();
    await rebooted(r, boot);
    expect(r.d.firmware).toMatchObject({ version: '2.0.0', slot: 'B', confirmed: false });
    expect(r.say(step('fw.confirm', 't1')).error).toBeUndefined();
    expect(r.d.firmware).toEqual({
      version: '2.0.0',
      slot: 'B',
      confirmed: true,
      slots: { A: '1.0.0', B: '2.0.0' },
    });
  });
});
