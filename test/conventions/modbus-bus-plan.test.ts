/**
 * The Modbus bus's schedule without a port (src/conventions/modbus/modbus-bus-plan.ts): batching
 * of a slave's registers, round-robin turns with a silent slave on the bus (played on a simulated
 * clock, the way the bus's loop plays them), the probe backoff's growth, and what a refusal, a
 * corrupt reply or a fault does to a slave.
 *
 * @example
 * npx vitest run test/conventions/modbus-bus-plan.test.ts
 */
import { describe, expect, it } from 'vitest';
import type { ProbeBackoff, SlaveState } from '../../src/conventions/modbus/modbus-bus-plan.js';
import {
  abandonCycle,
  afterCorruptReply,
  afterRefusal,
  BusSchedule,
  decodeReply,
  finishCycle,
  isDueDown,
  markDown,
  nextBatch,
  recordFault,
  recordReply,
  recordValues,
  scheduleProbe,
  startCycle,
  timeoutReason,
} from '../../src/conventions/modbus/modbus-bus-plan.js';
import type { SlaveConfig } from '../../src/conventions/modbus/modbus-bus-types.js';
import type { RegisterDef } from '../../src/conventions/modbus/modbus-kind.js';
import { registerSchema } from '../../src/conventions/modbus/modbus-kind.js';
import { DEFAULT_RECONNECT } from '../../src/transports/reconnect.js';

const reg = (r: Record<string, unknown>): RegisterDef => registerSchema.parse(r);

function slave(deviceId: string, unitId: number, over: Partial<SlaveConfig> = {}): SlaveConfig {
  return {
    deviceId,
    unitId,
    // Two batches: holding 0–1 (one request) and input 0 (another).
    registers: [
      reg({ name: 'a', table: 'holding', address: 0 }),
      reg({ name: 'b', table: 'holding', address: 1 }),
      reg({ name: 'c', table: 'input', address: 0 }),
    ],
    pollMs: 1000,
    timeoutMs: 200,
    retries: 1,
    ...over,
  };
}

const noJitter: ProbeBackoff = { reconnect: DEFAULT_RECONNECT, probeMaxMs: 4000, random: () => 0 };

/** A reply of the right size for a batch (bits for coils and discrete inputs, words otherwise). */
const replyFor = (s: SlaveState, index: number) => {
  const b = s.batches[index]!;
  return {
    data: b.table === 'coil' || b.table === 'discrete' ? Array(b.count).fill(true) : Array(b.count).fill(7),
  };
};

interface Turn {
  readonly id: string;
  readonly at: number;
}

/**
 * Plays the bus loop's polling on a simulated clock, as modbus-bus-requests.ts does: each turn
 * one request of the slave picked; a reply takes `replyMs`, a silence `timeoutMs` (then retried
 * next turn while the slave is up, else it is probed with backoff).
 */
function play(
  schedule: BusSchedule,
  options: { readonly fromMs?: number; readonly untilMs: number; readonly silent: ReadonlySet<string> },
): { turns: Turn[]; cycles: Map<string, number>; downs: string[]; ups: string[]; endMs: number } {
  const replyMs = 20;
  const turns: Turn[] = [];
  const cycles = new Map<string, number>();
  const downs: string[] = [];
  const ups: string[] = [];
  let now = options.fromMs ?? 0;
  while (now < options.untilMs) {
    const s = schedule.pickDue(now);
    if (!s) {
      now += schedule.untilNextDueMs(now);
      continue;
    }
    const id = s.config.deviceId;
    turns.push({ id, at: now });
    const cycle = startCycle(s, now);
    s.counters.requests++;
    if (!options.silent.has(id)) {
      const reply = replyFor(s, cycle.index);
      now += replyMs;
      recordValues(cycle, s.batches[cycle.index]!, reply);
      if (recordReply(s, now)) ups.push(id);
      if (nextBatch(s, cycle, now)) cycles.set(id, (cycles.get(id) ?? 0) + 1);
      continue;
    }
    now += s.config.timeoutMs;
    s.consecutiveTimeouts++;
    if (isDueDown(s) && markDown(s, timeoutReason(s.config, s.consecutiveTimeouts, '/dev/pty')))
      downs.push(id);
    if (s.online) s.nextDueMono = now;
    else {
      abandonCycle(s);
      scheduleProbe(s, now, noJitter);
    }
  }
  return { turns, cycles, downs, ups, endMs: now };
}

describe('Modbus bus plan: batching', () => {
  it("a slave's registers are read in batches: contiguous ones of a table together, a gap or another table apart", () => {
    const schedule = new BusSchedule();
    schedule.setSlaves(
      [
        slave('m', 1, {
          registers: [
            reg({ name: 'h0', table: 'holding', address: 0 }),
            reg({ name: 'h1', table: 'holding', address: 1, type: 'uint32' }), // 1–2
            reg({ name: 'h3', table: 'holding', address: 3 }),
            reg({ name: 'h10', table: 'holding', address: 10 }), // a gap: its own request
            reg({ name: 'i0', table: 'input', address: 0 }),
            reg({ name: 'pump', table: 'coil', address: 0 }),
            reg({ name: 'fan', table: 'coil', address: 1 }),
          ],
        }),
      ],
      0,
    );
    const s = schedule.find('m')!;
    expect(s.batches.map((b) => [b.table, b.address, b.count, b.registers.map((r) => r.name)])).toEqual([
      ['coil', 0, 2, ['pump', 'fan']],
      ['holding', 0, 4, ['h0', 'h1', 'h3']],
      ['holding', 10, 1, ['h10']],
      ['input', 0, 1, ['i0']],
    ]);
    expect(decodeReply(s.batches[0]!, { data: [true, false] })).toEqual({ pump: 1, fan: 0 });
    expect(decodeReply(s.batches[1]!, { data: [5, 1, 2, 9] })).toEqual({ h0: 5, h1: 65_538, h3: 9 });
  });

  it('a cycle reads each batch in turn and reports its values once, the next cycle due pollMs after it began', () => {
    const schedule = new BusSchedule();
    schedule.setSlaves([slave('m', 1)], 0);
    const s = schedule.pickDue(0)!;
    const cycle = startCycle(s, 0);
    recordValues(cycle, s.batches[0]!, replyFor(s, 0));
    expect(nextBatch(s, cycle, 10)).toBeUndefined();
    expect(s.nextDueMono).toBe(10); // the second batch: at once
    recordValues(cycle, s.batches[1]!, replyFor(s, 1));
    expect(nextBatch(s, cycle, 20)).toEqual({ a: 7, b: 7, c: 7 });
    expect(s.counters.cycles).toBe(1);
    expect(s.cycle).toBeUndefined();
    expect(s.nextDueMono).toBe(1000);
  });

  it('setSlaves: an unchanged slave keeps its state, a changed one restarts its cycle keeping its counters, removed ones are named', () => {
    const schedule = new BusSchedule();
    schedule.setSlaves([slave('b', 2), slave('a', 1), slave('gone', 3)], 0);
    expect(schedule.slaves.map((s) => s.config.deviceId)).toEqual(['a', 'b', 'gone']); // by unit id
    const a = schedule.find('a')!;
    const b = schedule.find('b')!;
    a.counters.requests = 5;
    b.counters.requests = 6;
    startCycle(b, 0);
    b.nextDueMono = 900;
    const removed = schedule.setSlaves([slave('a', 1), slave('b', 2, { pollMs: 500 })], 100);
    expect([...removed]).toEqual(['gone']);
    expect(schedule.find('a')).toBe(a);
    expect(schedule.find('b')).toBe(b);
    expect(b.counters.requests).toBe(6);
    expect(b.cycle).toBeUndefined();
    expect(b.nextDueMono).toBe(100);
  });
});

describe('Modbus bus plan: round-robin with a silent slave', () => {
  it('one request per turn: the slaves interleave, none waits for a whole cycle of another', () => {
    const schedule = new BusSchedule();
    schedule.setSlaves([slave('A', 1), slave('B', 2), slave('C', 3)], 0);
    const { turns } = play(schedule, { untilMs: 500, silent: new Set() }); // one cycle each
    expect(turns.map((t) => t.id)).toEqual(['A', 'B', 'C', 'A', 'B', 'C']);
  });

  it('a silent slave costs one timeout per probe, its probes thin out; the others keep their rate', () => {
    const untilMs = 30_000;
    const alone = new BusSchedule();
    alone.setSlaves([slave('A', 1), slave('C', 3)], 0);
    const base = play(alone, { untilMs, silent: new Set() });

    const schedule = new BusSchedule();
    schedule.setSlaves([slave('A', 1), slave('B', 2), slave('C', 3)], 0);
    const run = play(schedule, { untilMs, silent: new Set(['B']) });

    // B's first timeout already costs the others nothing but its turn: A, B, C, then A and C again.
    expect(run.turns.slice(0, 5).map((t) => t.id)).toEqual(['A', 'B', 'C', 'A', 'C']);
    // A and C keep their poll rate (one cycle a second), as without B, give or take a cycle.
    for (const id of ['A', 'C']) {
      expect(run.cycles.get(id)).toBeGreaterThanOrEqual(base.cycles.get(id)! - 1);
      expect(run.cycles.get(id)).toBeGreaterThanOrEqual(29);
    }
    // B is reported down once (after retries + 1 timeouts), and probed ever less often: 1 s, 2 s,
    // then every probeMaxMs (plus the timeout each probe costs).
    expect(run.downs).toEqual(['B']);
    const probes = run.turns.filter((t) => t.id === 'B').map((t) => t.at);
    const gaps = probes.slice(1).map((at, i) => at - probes[i]!);
    expect(gaps.slice(0, 3)).toEqual([1200, 2200, 4200]);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]).toBeGreaterThanOrEqual(gaps[i - 1]!);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(noJitter.probeMaxMs + 200 + 40); // + its timeout, + a turn or two
    expect(probes.length).toBeLessThanOrEqual(10);
    expect(probes.length / run.turns.length).toBeLessThan(0.1);

    // B answers again: its next probe brings it up, and it is polled at its rate from then on.
    const back = play(schedule, { fromMs: run.endMs, untilMs: run.endMs + 10_000, silent: new Set() });
    expect(back.ups).toEqual(['B']);
    const firstB = back.turns.find((t) => t.id === 'B')!;
    expect(firstB.at - run.endMs).toBeLessThanOrEqual(noJitter.probeMaxMs + 200);
    expect(schedule.find('B')!.probeAttempts).toBe(0);
    expect(back.cycles.get('B')).toBeGreaterThanOrEqual(8);
  });
});

describe('Modbus bus plan: probe backoff', () => {
  it('grows from pollMs, doubling, up to probeMaxMs; a reply starts it over', () => {
    const schedule = new BusSchedule();
    schedule.setSlaves([slave('m', 1, { pollMs: 500 })], 0);
    const s = schedule.find('m')!;
    const probe: ProbeBackoff = { reconnect: DEFAULT_RECONNECT, probeMaxMs: 10_000, random: () => 0 };
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      scheduleProbe(s, 1000, probe);
      delays.push(s.nextDueMono - 1000);
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
    expect(recordReply(s, 0)).toBe(true);
    scheduleProbe(s, 0, probe);
    expect(s.nextDueMono).toBe(500);
  });

  it('is jittered (up to half of it taken off), and never shorter than pollMs when probeMaxMs is', () => {
    const schedule = new BusSchedule();
    schedule.setSlaves([slave('m', 1, { pollMs: 2000 })], 0);
    const s = schedule.find('m')!;
    scheduleProbe(s, 0, { reconnect: DEFAULT_RECONNECT, probeMaxMs: 10_000, random: () => 0.5 });
    expect(s.nextDueMono).toBe(1500); // 2000 less 25 %
    s.probeAttempts = 0;
    for (let i = 0; i < 4; i++) {
      scheduleProbe(s, 0, { reconnect: DEFAULT_RECONNECT, probeMaxMs: 100, random: () => 0 });
      expect(s.nextDueMono).toBe(2000);
    }
  });

  it('a slave is reported down once, after retries + 1 timeouts, and again only after it came back', () => {
    const schedule = new BusSchedule();
    schedule.setSlaves([slave('m', 1, { retries: 2 })], 0);
    const s = schedule.find('m')!;
    recordReply(s, 0);
    const reported: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      s.consecutiveTimeouts++;
      reported.push(isDueDown(s) && markDown(s, timeoutReason(s.config, s.consecutiveTimeouts, '/dev/pty')));
    }
    expect(reported).toEqual([false, false, true, false, false]);
    expect(s.lastError).toBe('no reply from slave 1 on /dev/pty: 3 timeouts in a row (200 ms each)');
    expect(recordReply(s, 0)).toBe(true);
    expect(s.lastError).toBeNull();
    expect(markDown(s, 'port gone')).toBe(true);
  });
});

describe('Modbus bus plan: refusals, corrupt replies, faults', () => {
  it('a batch refused for an illegal address is split into one request per register; another exception skips it', () => {
    const registers = [0, 1, 2].map((address) => reg({ name: `r${address}`, table: 'holding', address }));
    const schedule = new BusSchedule();
    schedule.setSlaves([slave('m', 1, { registers })], 0);
    const s = schedule.find('m')!;
    const cycle = startCycle(s, 0);
    const refused = afterRefusal(s, cycle, s.batches[0]!, 2, 5);
    expect(refused).toEqual({ split: true, finished: undefined });
    expect(s.batches.map((b) => [b.address, b.count])).toEqual([
      [0, 1],
      [1, 1],
      [2, 1],
    ]);
    expect(cycle.index).toBe(0);
    expect(s.nextDueMono).toBe(5);

    expect(afterRefusal(s, cycle, s.batches[0]!, 1, 6)).toEqual({ split: false, finished: undefined });
    expect(cycle.index).toBe(1);
    expect(s.batches).toHaveLength(3);
  });

  it('a corrupt reply is retried on the next turn, retries times; then the cycle ends with what it read', () => {
    const schedule = new BusSchedule();
    schedule.setSlaves([slave('m', 1, { retries: 1 })], 0);
    const s = schedule.find('m')!;
    const cycle = startCycle(s, 0);
    recordValues(cycle, s.batches[0]!, replyFor(s, 0));
    nextBatch(s, cycle, 10);
    expect(afterCorruptReply(s, cycle, 20)).toBeUndefined();
    expect(s.nextDueMono).toBe(20);
    expect(afterCorruptReply(s, cycle, 30)).toEqual({ a: 7, b: 7 });
    expect(s.counters.cycles).toBe(1);
    expect(s.nextDueMono).toBe(1000);
    expect(finishCycle(s, 40)).toBeUndefined(); // no cycle under way
  });

  it('a fault is counted and described naming the slave, registers, function code and address', () => {
    const schedule = new BusSchedule();
    schedule.setSlaves([slave('m', 4)], 0);
    const s = schedule.find('m')!;
    const batch = s.batches[0]!;
    const request = {
      operation: 'read' as const,
      functionCode: 3,
      address: batch.address,
      count: batch.count,
      registers: batch.registers,
    };
    const timeout = recordFault(s, '/dev/pty', { code: 'timeout', message: 'Timed out' }, request);
    expect(timeout.message).toBe(
      'slave 4 on /dev/pty: no reply within 200 ms reading a, b (FC03 at 0, count 2)',
    );
    expect(s.lastError).toBeNull(); // timeouts speak through the down reason
    const refused = recordFault(
      s,
      '/dev/pty',
      { code: 'exception', exceptionCode: 2, message: 'exception 2 (illegal data address)' },
      request,
    );
    expect(refused).toMatchObject({ code: 'exception', exceptionCode: 2, registers: ['a', 'b'] });
    expect(s.lastError).toBe(
      'slave 4 on /dev/pty refused reading a, b (FC03 at 0, count 2): exception 2 (illegal data address)',
    );
    recordFault(s, '/dev/pty', { code: 'crc', message: 'CRC error in the reply' }, request);
    recordFault(s, '/dev/pty', { code: 'badFrame', message: 'malformed reply: x' }, request);
    expect(s.counters).toMatchObject({ timeouts: 1, exceptions: 1, crcErrors: 1, badFrames: 1 });
  });
});
