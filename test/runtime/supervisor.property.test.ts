/**
 * Random crash and admin sequences against a small pure model of an OTP supervisor: after every
 * step, which children exist and run, the counts, and whether the supervisor gave up must match.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RestartType, Strategy } from '../../src/runtime/child-spec.js';
import type { ExitReason } from '../../src/runtime/exit-reason.js';
import { errorExit, KILLED, NORMAL, SHUTDOWN } from '../../src/runtime/exit-reason.js';
import { addRestart } from '../../src/runtime/restart-intensity.js';
import { startSupervisor } from '../../src/runtime/supervisor.js';
import { createRig, workers } from './helpers.js';

interface ModelChild {
  id: string;
  restart: RestartType;
  running: boolean;
}

interface Model {
  children: ModelChild[];
  times: number[];
  alive: boolean;
}

type Cmd =
  | { kind: 'crash'; id: string; reason: 'normal' | 'shutdown' | 'error' | 'killed' }
  | { kind: 'terminate'; id: string }
  | { kind: 'restart'; id: string }
  | { kind: 'delete'; id: string }
  | { kind: 'start'; id: string; restart: RestartType }
  | { kind: 'advance'; ms: number };

const ids = ['a', 'b', 'c', 'd', 'e'];
const restartArb = fc.constantFrom<RestartType>('permanent', 'transient', 'temporary');
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('crash' as const),
      id: fc.constantFrom(...ids),
      reason: fc.constantFrom('normal' as const, 'shutdown' as const, 'error' as const, 'killed' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('terminate' as const), id: fc.constantFrom(...ids, 'zz') }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('restart' as const), id: fc.constantFrom(...ids, 'zz') }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('delete' as const), id: fc.constantFrom(...ids, 'zz') }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('start' as const),
      id: fc.constantFrom(...ids),
      restart: restartArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 3000 }) }),
  },
);

const reasons: Record<string, ExitReason> = {
  normal: NORMAL,
  shutdown: SHUTDOWN,
  error: errorExit(new Error('random crash')),
  killed: KILLED,
};

function modelCrash(
  m: Model,
  child: ModelChild,
  reason: string,
  now: number,
  strategy: Strategy,
  max: number,
  periodMs: number,
) {
  const clean = reason === 'normal' || reason === 'shutdown';
  const restart = child.restart === 'permanent' || (child.restart === 'transient' && !clean);
  child.running = false;
  if (!restart) {
    if (child.restart === 'temporary') m.children = m.children.filter((c) => c !== child);
    return;
  }
  const d = addRestart(m.times, now, { maxRestarts: max, periodMs });
  m.times = d.times;
  if (d.decision === 'giveUp') {
    m.alive = false;
    for (const c of m.children) c.running = false;
    return;
  }
  const index = m.children.indexOf(child);
  const group =
    strategy === 'oneForOne' ? [child] : strategy === 'oneForAll' ? [...m.children] : m.children.slice(index);
  for (const c of group) {
    if (c !== child && c.restart === 'temporary') m.children = m.children.filter((x) => x !== c);
    else c.running = true;
  }
}

describe('supervisor against a pure model (property)', () => {
  it('which children exist and run, the counts and when it gives up always match the model', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Strategy>('oneForOne', 'oneForAll', 'restForOne'),
        fc.integer({ min: 0, max: 4 }),
        fc.constantFrom(1000, 5000),
        fc.array(restartArb, { minLength: 1, maxLength: 5 }),
        fc.array(cmdArb, { minLength: 1, maxLength: 40 }),
        async (strategy, maxRestarts, periodMs, initial, cmds) => {
          const rig = createRig();
          const w = workers(rig);
          const model: Model = {
            children: initial.map((restart, i) => ({ id: ids[i]!, restart, running: true })),
            times: [],
            alive: true,
          };
          const res = await startSupervisor(rig.rt, {
            strategy,
            maxRestarts,
            periodMs,
            children: model.children.map((c) => ({ ...w.spec(c.id), restart: c.restart })),
          });
          if (!res.ok) throw new Error(res.error.message);
          const sup = res.value;
          for (const cmd of cmds) {
            if (!model.alive) break;
            const child = model.children.find((c) => 'id' in cmd && c.id === cmd.id);
            switch (cmd.kind) {
              case 'crash': {
                if (!child?.running) continue;
                modelCrash(model, child, cmd.reason, rig.clock.now(), strategy, maxRestarts, periodMs);
                w.get(cmd.id).exitWith(reasons[cmd.reason]!);
                await rig.settle();
                break;
              }
              case 'terminate': {
                const r = await sup.terminateChild(cmd.id);
                expect(r.ok).toBe(child !== undefined);
                if (child) {
                  child.running = false;
                  if (child.restart === 'temporary')
                    model.children = model.children.filter((c) => c !== child);
                }
                break;
              }
              case 'restart': {
                const r = await sup.restartChild(cmd.id);
                const expected = !child ? 'notFound' : child.running ? 'running' : 'ok';
                expect(r.ok ? 'ok' : r.error.code).toBe(expected);
                if (child) child.running = true;
                break;
              }
              case 'delete': {
                const r = await sup.deleteChild(cmd.id);
                const expected = !child ? 'notFound' : child.running ? 'running' : 'ok';
                expect(r.ok ? 'ok' : r.error.code).toBe(expected);
                if (expected === 'ok') model.children = model.children.filter((c) => c !== child);
                break;
              }
              case 'start': {
                const r = await sup.startChild({ ...w.spec(cmd.id), restart: cmd.restart });
                const expected = !child ? 'ok' : child.running ? 'alreadyStarted' : 'alreadyPresent';
                expect(r.ok ? 'ok' : r.error.code).toBe(expected);
                if (!child) model.children.push({ id: cmd.id, restart: cmd.restart, running: true });
                break;
              }
              case 'advance':
                await rig.clock.advanceAsync(cmd.ms);
                break;
            }
            expect(sup.alive).toBe(model.alive);
            if (!model.alive) break;
            expect(sup.whichChildren().map((c) => [c.id, c.status])).toEqual(
              [...model.children].reverse().map((c) => [c.id, c.running ? 'running' : 'stopped']),
            );
            const running = model.children.filter((c) => c.running).length;
            expect(sup.countChildren()).toEqual({
              specs: model.children.length,
              active: running,
              supervisors: 0,
              workers: model.children.length,
            });
          }
          if (!model.alive) {
            for (const c of model.children) expect(w.get(c.id).alive).toBe(false);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
