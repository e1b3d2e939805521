import { describe, expect, it } from 'vitest';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import type { RuntimeEvent } from '../../src/runtime/events.js';
import type { ExitReason } from '../../src/runtime/exit-reason.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { CallReturn } from '../../src/runtime/server.js';
import { startServer } from '../../src/runtime/server.js';

function setup() {
  const clock = createSimulatedClock();
  const rt = createRuntime({ clock });
  const events: RuntimeEvent[] = [];
  rt.events.subscribe((e) => events.push(e));
  return { rt, clock, events };
}

/** Resolves after `ms` of simulated time. */
const sleep = (rt: Runtime, ms: number) => new Promise<void>((resolve) => rt.timers.schedule(ms, resolve));

type Req = { type: 'get' } | { type: 'slowGet'; ms: number } | { type: 'fail'; message: string };

function counter(rt: Runtime, extra: { terminated?: [ExitReason, number][] } = {}) {
  return startServer(rt, {
    name: 'counter',
    init: () => 0,
    handleCall: async (req: Req, n: number) => {
      if (req.type === 'fail') throw new Error(req.message);
      if (req.type === 'slowGet') await sleep(rt, req.ms);
      return { reply: n, state: n };
    },
    handleCast: (by: number, n: number) => n + by,
    terminate: (reason, n) => {
      extra.terminated?.push([reason, n]);
    },
  });
}

describe('startServer', () => {
  it('a call gets the reply, casts change the state, in the order they were sent', async () => {
    const { rt } = setup();
    const server = counter(rt);
    server.cast(2);
    server.cast(3);
    const r = await server.call({ type: 'get' });
    expect(r).toEqual({ ok: true, value: 5 });
    expect(server.kind).toBe('server');
    expect(server.name).toBe('counter');
  });

  it('announces itself on the event stream and measures call latency', async () => {
    const { rt, clock, events } = setup();
    const server = counter(rt);
    const pending = server.call({ type: 'slowGet', ms: 40 });
    await clock.advanceAsync(40);
    await pending;
    expect(events[0]).toMatchObject({
      type: 'process.started',
      pid: server.pid,
      kind: 'server',
      name: 'counter',
    });
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'measurement',
        name: 'server.call',
        value: 40,
        unit: 'ms',
        pid: server.pid,
      }),
    );
  });

  it('handles one message at a time, even when handlers are async', async () => {
    const { rt, clock } = setup();
    let running = 0;
    let maxRunning = 0;
    const order: string[] = [];
    const server = startServer(rt, {
      name: 'serial',
      init: () => [] as string[],
      handleCall: async (id: string, log: string[]) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        order.push(`start:${id}`);
        await sleep(rt, 100);
        order.push(`end:${id}`);
        running--;
        return { reply: id, state: [...log, id] };
      },
      handleCast: async (id: string, log: string[]) => {
        order.push(`cast:${id}`);
        await sleep(rt, 10);
        return [...log, id];
      },
    });
    const a = server.call('a');
    server.cast('x');
    const b = server.call('b');
    expect(server.mailboxLength).toBe(3);
    await clock.advanceAsync(100);
    expect(order).toEqual(['start:a', 'end:a', 'cast:x']);
    await clock.advanceAsync(110);
    expect(await a).toEqual({ ok: true, value: 'a' });
    expect(await b).toEqual({ ok: true, value: 'b' });
    expect(order).toEqual(['start:a', 'end:a', 'cast:x', 'start:b', 'end:b']);
    expect(maxRunning).toBe(1);
  });

  it('a call that gets no reply in time resolves timeout through the runtime timers; the server lives on', async () => {
    const { rt, clock } = setup();
    const server = counter(rt);
    let result: unknown;
    void server.call({ type: 'slowGet', ms: 10_000 }, 1000).then((r) => {
      result = r;
    });
    await flushMicrotasks();
    expect(rt.timers.ownedBy(server.pid).map((t) => t.label)).toContain('call.timeout');
    await clock.advanceAsync(999);
    expect(result).toBeUndefined();
    await clock.advanceAsync(1);
    expect(result).toMatchObject({ ok: false, error: { code: 'timeout' } });
    expect(server.alive).toBe(true);
    // OTP: the request is still handled when its turn comes; the late reply is dropped.
    const next = server.call({ type: 'get' }, 20_000);
    await clock.advanceAsync(9000);
    expect(await next).toEqual({ ok: true, value: 0 });
  });

  it('a reply cancels its timeout timer, so nothing is left scheduled', async () => {
    const { rt } = setup();
    const server = counter(rt);
    await server.call({ type: 'get' });
    expect(rt.timers.size()).toBe(0);
  });

  it('a call with timeoutMs Infinity waits as long as it takes and arms no timer', async () => {
    const { rt, clock } = setup();
    const server = counter(rt);
    const r = server.call({ type: 'slowGet', ms: 60_000 }, Number.POSITIVE_INFINITY);
    await flushMicrotasks();
    expect(rt.timers.ownedBy(server.pid)).toEqual([]);
    await clock.advanceAsync(60_000);
    expect(await r).toEqual({ ok: true, value: 0 });
  });

  it('a handler that throws crashes the server with that error; every pending call answers exited', async () => {
    const { rt, events } = setup();
    const terminated: [ExitReason, number][] = [];
    const server = counter(rt, { terminated });
    server.cast(7);
    const failing = server.call({ type: 'fail', message: 'sensor unplugged' });
    const queued = server.call({ type: 'get' });
    expect(await failing).toMatchObject({ ok: false, error: { code: 'exited' } });
    const q = await queued;
    expect(q).toMatchObject({ ok: false, error: { code: 'exited' } });
    if (!q.ok) expect(q.error.message).toContain('sensor unplugged');
    const reason = await server.whenExited();
    expect(reason).toMatchObject({ type: 'error', error: { message: 'sensor unplugged' } });
    expect(server.alive).toBe(false);
    // OTP calls terminate(Reason, State) on a crash.
    expect(terminated).toEqual([[reason, 7]]);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'report', level: 'error', pid: server.pid }),
    );
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'process.exited', pid: server.pid, reason }),
    );
  });

  it('a cast handler that throws synchronously crashes the server too', async () => {
    const { rt } = setup();
    const server = startServer(rt, {
      name: 'fragile',
      init: () => 0,
      handleCast: (msg: 'ok' | 'bad', n: number) => {
        if (msg === 'bad') throw new Error('bad cast');
        return n + 1;
      },
    });
    server.cast('ok');
    server.cast('bad');
    server.cast('ok');
    expect(await server.whenExited()).toMatchObject({ type: 'error', error: { message: 'bad cast' } });
  });

  it('a call after the server exited answers noproc, and a cast is dropped', async () => {
    const { rt } = setup();
    const server = counter(rt);
    await server.stop();
    expect(await server.call({ type: 'get' })).toMatchObject({ ok: false, error: { code: 'noproc' } });
    expect(server.cast(1)).toBe(false);
  });

  it('stop lets the handler in flight finish and reply, then runs terminate; queued calls answer exited', async () => {
    const { rt, clock } = setup();
    const terminated: [ExitReason, number][] = [];
    const server = counter(rt, { terminated });
    server.cast(1);
    const inFlight = server.call({ type: 'slowGet', ms: 500 });
    const queued = server.call({ type: 'get' });
    await flushMicrotasks();
    const stopping = server.stop();
    expect(server.status).toBe('stopping');
    expect(server.cast(5)).toBe(false);
    await clock.advanceAsync(499);
    expect(terminated).toEqual([]);
    await clock.advanceAsync(1);
    expect(await inFlight).toEqual({ ok: true, value: 1 });
    expect(await queued).toMatchObject({ ok: false, error: { code: 'exited' } });
    expect(await stopping).toEqual({ type: 'shutdown' });
    expect(terminated).toEqual([[{ type: 'shutdown' }, 1]]);
  });

  it('a call made while the server is stopping answers exited once it has stopped', async () => {
    const { rt, clock } = setup();
    const server = startServer(rt, {
      name: 'slow-stop',
      init: () => 0,
      handleCall: (_: 'get', n: number) => ({ reply: n, state: n }),
      terminate: () => sleep(rt, 300),
    });
    const stopping = server.stop();
    const late = server.call('get');
    await clock.advanceAsync(300);
    expect(await late).toMatchObject({ ok: false, error: { code: 'exited' } });
    expect(await stopping).toEqual({ type: 'shutdown' });
  });

  it('a terminate that throws on stop makes the exit an error', async () => {
    const { rt } = setup();
    const server = startServer(rt, {
      name: 'bad-terminate',
      init: () => 0,
      terminate: () => {
        throw new Error('flush failed');
      },
    });
    expect(await server.stop()).toMatchObject({ type: 'error', error: { message: 'flush failed' } });
  });

  it('stopping drops the queued messages: a queued call that would crash never runs', async () => {
    const { rt, clock } = setup();
    const server = counter(rt);
    void server.call({ type: 'slowGet', ms: 100 });
    const failing = server.call({ type: 'fail', message: 'never handled' });
    await flushMicrotasks();
    const stopping = server.stop();
    await clock.advanceAsync(100);
    expect(await stopping).toEqual({ type: 'shutdown' });
    expect(await failing).toMatchObject({ ok: false, error: { code: 'exited' } });
  });

  it('a crash of the handler in flight while being stopped keeps the crash reason (OTP sup_stop_race)', async () => {
    const { rt, clock } = setup();
    const server = startServer(rt, {
      name: 'crashes-in-flight',
      init: () => 0,
      handleCall: async (_: 'go', _n: number): Promise<CallReturn<number, number>> => {
        await sleep(rt, 100);
        throw new Error('crashed mid-stop');
      },
    });
    const call = server.call('go');
    await flushMicrotasks();
    const stopped = server.stop();
    await clock.advanceAsync(100);
    expect(await stopped).toMatchObject({ type: 'error', error: { message: 'crashed mid-stop' } });
    expect(await call).toMatchObject({ ok: false, error: { code: 'exited' } });
  });

  it('kill answers pending calls at once, skips terminate, and ignores the handler finishing later', async () => {
    const { rt, clock } = setup();
    const terminated: [ExitReason, number][] = [];
    const server = counter(rt, { terminated });
    const inFlight = server.call({ type: 'slowGet', ms: 100 });
    const queued = server.call({ type: 'get' });
    await flushMicrotasks();
    server.kill();
    expect(await inFlight).toMatchObject({ ok: false, error: { code: 'exited' } });
    expect(await queued).toMatchObject({ ok: false, error: { code: 'exited' } });
    expect(server.exitReason).toEqual({ type: 'killed' });
    await clock.advanceAsync(200);
    expect(terminated).toEqual([]);
    expect(rt.timers.size()).toBe(0);
  });

  it('an init that throws makes startServer throw (a start failure for the supervisor) and starts nothing', () => {
    const { rt, events } = setup();
    expect(() =>
      startServer(rt, {
        name: 'no-port',
        init: () => {
          throw new Error('port busy');
        },
      }),
    ).toThrow('port busy');
    expect(events.filter((e) => e.type === 'process.started')).toEqual([]);
  });

  it('a handleCall that returns something other than { reply, state } crashes the server', async () => {
    const { rt } = setup();
    const server = startServer(rt, {
      name: 'wrong-shape',
      init: () => 0,
      // @ts-expect-error: deliberately wrong return shape
      handleCall: () => 42,
    });
    expect(await server.call(undefined as never)).toMatchObject({ ok: false, error: { code: 'exited' } });
    expect(server.exitReason).toMatchObject({ type: 'error', error: { message: /reply, state/ } });
  });

  it('misuse throws: calling a server without handleCall, casting without handleCast, a negative timeout', () => {
    const { rt } = setup();
    const server = startServer<number, string, number, string>(rt, { name: 'bare', init: () => 0 });
    expect(() => server.call('x')).toThrow(TypeError);
    expect(() => server.cast('x')).toThrow(TypeError);
    const c = counter(rt);
    expect(() => c.call({ type: 'get' }, -1)).toThrow(RangeError);
  });

  it('passes parent and childId to its process.started event', () => {
    const { rt, events } = setup();
    const server = startServer(rt, { name: 'child', init: () => 0, parent: 99 as never, childId: 'link' });
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'process.started', pid: server.pid, parent: 99, childId: 'link' }),
    );
  });
});
