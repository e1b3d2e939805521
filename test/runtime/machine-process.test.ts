import { describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { createSimulatedClock } from '../../src/runtime/clock.js';
import { KILLED } from '../../src/runtime/exit-reason.js';
import type { PersistedMachineState } from '../../src/runtime/machine-process.js';
import { type MachineProcess, startMachine } from '../../src/runtime/machine-process.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { startSupervisor } from '../../src/runtime/supervisor.js';
import { createRig } from './helpers.js';

/** The generic device life cycle in miniature: a connect timeout and a liveness timeout. */
const device = setup({
  types: {} as {
    context: { attempts: number };
    events:
      | { type: 'CONNECT' }
      | { type: 'CONNECTED' }
      | { type: 'POISON' }
      | { type: 'FINISH' }
      | { type: 'LIVENESS_TIMEOUT' }
      | { type: 'PING' };
  },
  actions: {
    explode: () => {
      throw new Error('device code crashed');
    },
  },
}).createMachine({
  id: 'device',
  initial: 'disconnected',
  context: { attempts: 0 },
  states: {
    disconnected: { on: { CONNECT: 'connecting', FINISH: 'retired' } },
    connecting: {
      entry: assign({ attempts: ({ context }) => context.attempts + 1 }),
      after: { 5000: 'disconnected' },
      on: { CONNECTED: 'connected', POISON: { actions: 'explode' } },
    },
    connected: { on: { LIVENESS_TIMEOUT: 'disconnected', PING: {} } },
    retired: { type: 'final' },
  },
});

describe('machine process (xstate actor as a supervised gen_statem)', () => {
  it('runs the machine, reports transitions on the event stream and lists the running timeout with its deadline', async () => {
    const rig = createRig();
    const p = startMachine(rig.rt, 'd1', { machine: device });
    expect(p.state).toBe('disconnected');
    p.send({ type: 'CONNECT' });
    expect(p.state).toBe('connecting');
    const timers = p.timers();
    expect(timers).toHaveLength(1);
    expect(timers[0]).toMatchObject({
      kind: 'after',
      delayMs: 5000,
      event: { type: 'xstate.after.5000.device.connecting' },
    });
    expect(timers[0]!.wallDeadlineMs).toBe(rig.clock.wallNow() + 5000);
    expect(rig.events.find((e) => e.type === 'state.transition' && e.to === 'connecting')).toMatchObject({
      from: 'disconnected',
      event: 'CONNECT',
    });
  });

  it('an after delay fires on the shared timer heap and is cancelled when the state is left', async () => {
    const rig = createRig();
    const p = startMachine(rig.rt, 'd1', { machine: device });
    p.send({ type: 'CONNECT' });
    await rig.clock.advanceAsync(4999);
    expect(p.state).toBe('connecting');
    await rig.clock.advanceAsync(1);
    expect(p.state).toBe('disconnected');
    p.send({ type: 'CONNECT' });
    p.send({ type: 'CONNECTED' });
    expect(p.timers()).toEqual([]);
    expect(rig.rt.timers.size()).toBe(0);
  });

  it('an error in the machine is an abnormal exit; reaching a final state is a normal exit', async () => {
    const rig = createRig();
    const crashing = startMachine(rig.rt, 'd1', { machine: device });
    crashing.send({ type: 'CONNECT' });
    crashing.send({ type: 'POISON' });
    expect(crashing.exitReason).toMatchObject({ type: 'error', error: { message: 'device code crashed' } });
    expect(rig.rt.timers.size()).toBe(0);
    const finishing = startMachine(rig.rt, 'd2', { machine: device });
    finishing.send({ type: 'FINISH' });
    expect(finishing.exitReason).toEqual({ type: 'normal' });
  });

  it('a crashed device is restarted by its supervisor in its last good state with the remaining time, not a fresh timeout', async () => {
    const rig = createRig();
    let last: MachineProcess<typeof device> | undefined;
    const sup = await startSupervisor(rig.rt, {
      maxRestarts: 3,
      children: [
        {
          id: 'machine',
          start: () => {
            last = startMachine(rig.rt, 'd1', { machine: device }, { restore: last?.persistedState() });
            return last;
          },
        },
      ],
    });
    expect(sup.ok).toBe(true);
    const first = last!;
    first.send({ type: 'CONNECT' });
    await rig.clock.advanceAsync(3000);
    first.send({ type: 'POISON' });
    await rig.settle();
    const second = last!;
    expect(second).not.toBe(first);
    expect(second.state).toBe('connecting');
    expect(second.getSnapshot()?.context.attempts).toBe(1); // restored, entry actions not re-run
    expect(second.timers()[0]!.wallDeadlineMs - rig.clock.wallNow()).toBe(2000);
    await rig.clock.advanceAsync(1999);
    expect(second.state).toBe('connecting');
    await rig.clock.advanceAsync(1);
    expect(second.state).toBe('disconnected');
  });

  it('persists the running timeout by its xstate id even when nobody watches the event stream', async () => {
    const clock = createSimulatedClock();
    const rt = createRuntime({ clock });
    const p = startMachine(rt, 'quiet', { machine: device });
    p.send({ type: 'CONNECT' });
    await clock.advanceAsync(1000);
    p.send({ type: 'POISON' });
    const saved = p.persistedState();
    expect(saved?.timers).toEqual([
      {
        kind: 'after',
        id: 'xstate.after.5000.device.connecting',
        event: { type: 'xstate.after.5000.device.connecting' },
        delayMs: 5000,
        wallDeadlineMs: clock.wallNow() + 4000,
      },
    ]);
    const back = startMachine(rt, 'quiet', { machine: device }, { restore: saved });
    await clock.advanceAsync(3999);
    expect(back.state).toBe('connecting');
    await clock.advanceAsync(1);
    expect(back.state).toBe('disconnected');
  });

  it('a deadline that passed while the app was down fires at once after restore', async () => {
    const rig = createRig();
    const p = startMachine(rig.rt, 'd1', { machine: device });
    p.send({ type: 'CONNECT' });
    const saved: PersistedMachineState = JSON.parse(JSON.stringify(p.persistedState()));
    await p.stop();
    await rig.clock.advanceAsync(60_000); // the app was down for a minute
    const back = startMachine(rig.rt, 'd1', { machine: device }, { restore: saved });
    expect(back.state).toBe('connecting');
    await rig.clock.advanceAsync(0);
    expect(back.state).toBe('disconnected');
  });

  it('gen_statem timeouts: a state timeout is cancelled by a state change, an event timeout by any event, a named one survives both', async () => {
    const rig = createRig();
    const p = startMachine(rig.rt, 'd1', { machine: device });
    p.send({ type: 'CONNECT' });
    p.send({ type: 'CONNECTED' });
    p.startTimer('named', 'liveness', 30_000, { type: 'LIVENESS_TIMEOUT' });
    p.startTimer('event', 'idle', 1000, { type: 'LIVENESS_TIMEOUT' });
    p.send({ type: 'PING' });
    expect(p.timers().map((t) => t.kind)).toEqual(['named']);
    p.startTimer('state', 'st', 1000, { type: 'LIVENESS_TIMEOUT' });
    // telemetry pushes the liveness deadline back without an event through the machine
    await rig.clock.advanceAsync(20_000);
    p.startTimer('named', 'liveness', 30_000, { type: 'LIVENESS_TIMEOUT' });
    expect(p.state).toBe('disconnected'); // the state timeout fired at 1 s
    expect(p.timers()).toHaveLength(1);
    expect(p.timers()[0]).toMatchObject({ kind: 'named', id: 'liveness' });
    await rig.clock.advanceAsync(30_000);
    expect(p.timers()).toEqual([]);
  });

  it('hibernates after being idle, keeps its state and deadlines, and wakes on the next event', async () => {
    const rig = createRig();
    const p = startMachine(rig.rt, 'd1', { machine: device, hibernateAfterMs: 1000 });
    p.send({ type: 'CONNECT' });
    p.send({ type: 'CONNECTED' });
    await rig.clock.advanceAsync(1000);
    expect(p.isHibernating).toBe(true);
    expect(p.state).toBe('connected');
    expect(p.getSnapshot()?.context.attempts).toBe(1);
    p.send({ type: 'LIVENESS_TIMEOUT' });
    expect(p.isHibernating).toBe(false);
    expect(p.state).toBe('disconnected');
  });

  it('a hibernated machine wakes at its earliest deadline and the timeout fires on time', async () => {
    const rig = createRig();
    const p = startMachine(rig.rt, 'd1', { machine: device, hibernateAfterMs: 1000 });
    p.send({ type: 'CONNECT' });
    await rig.clock.advanceAsync(1000);
    expect(p.isHibernating).toBe(true);
    expect(p.timers()[0]!.wallDeadlineMs - rig.clock.wallNow()).toBe(4000);
    await rig.clock.advanceAsync(3999);
    expect(p.state).toBe('connecting');
    await rig.clock.advanceAsync(1);
    expect(p.state).toBe('disconnected');
  });

  it('a killed machine leaves no timer behind and ignores late events', async () => {
    const rig = createRig();
    const p = startMachine(rig.rt, 'd1', { machine: device });
    p.send({ type: 'CONNECT' });
    p.startTimer('named', 'liveness', 100, { type: 'LIVENESS_TIMEOUT' });
    p.kill();
    expect(p.exitReason).toEqual(KILLED);
    expect(rig.rt.timers.size()).toBe(0);
    p.send({ type: 'CONNECTED' });
    await rig.clock.advanceAsync(10_000);
    expect(p.state).toBe('connecting');
  });
});
