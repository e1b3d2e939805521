import { describe, expect, it } from 'vitest';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import { startEventManager } from '../../src/runtime/event-manager.js';
import type { RuntimeEvent } from '../../src/runtime/events.js';
import type { ExitReason } from '../../src/runtime/exit-reason.js';
import { createRegistry } from '../../src/runtime/registry.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';

function setup() {
  const clock = createSimulatedClock();
  const rt = createRuntime({ clock });
  const events: RuntimeEvent[] = [];
  rt.events.subscribe((e) => events.push(e));
  return { rt, clock, events };
}

const sleep = (rt: Runtime, ms: number) => new Promise<void>((resolve) => rt.timers.schedule(ms, resolve));

/** A handler that records what it saw, with a counter as its state. */
function recorder(log: string[], tag: string, terminated?: [string, ExitReason, number][]) {
  return {
    init: () => 0,
    handleEvent: (event: string, n: number) => {
      log.push(`${tag}:${event}`);
      return n + 1;
    },
    terminate: (reason: ExitReason, n: number) => {
      terminated?.push([tag, reason, n]);
    },
  };
}

describe('startEventManager', () => {
  it('notify reaches every handler in the order they were added, each with its own state', async () => {
    const { rt, events } = setup();
    const manager = startEventManager<string>(rt, { name: 'alarms' });
    const log: string[] = [];
    const terminated: [string, ExitReason, number][] = [];
    expect(await manager.addHandler('a', recorder(log, 'a', terminated))).toEqual({ ok: true });
    expect(await manager.addHandler('b', recorder(log, 'b', terminated))).toEqual({ ok: true });
    expect(manager.whichHandlers()).toEqual(['a', 'b']);
    expect(manager.notify('e1')).toBe(true);
    expect(manager.notify('e2')).toBe(true);
    expect(log).toEqual([]); // notify is asynchronous, through the mailbox
    await flushMicrotasks();
    expect(log).toEqual(['a:e1', 'b:e1', 'a:e2', 'b:e2']);
    await manager.stop();
    expect(terminated).toEqual([
      ['a', { type: 'shutdown' }, 2],
      ['b', { type: 'shutdown' }, 2],
    ]);
    expect(manager.kind).toBe('eventManager');
    expect(events[0]).toMatchObject({
      type: 'process.started',
      pid: manager.pid,
      kind: 'eventManager',
      name: 'alarms',
    });
  });

  it('a handler only sees events notified after it was added', async () => {
    const { rt } = setup();
    const manager = startEventManager<string>(rt, { name: 'm' });
    const log: string[] = [];
    manager.notify('before');
    const added = manager.addHandler('late', recorder(log, 'late'));
    manager.notify('after');
    expect(await added).toEqual({ ok: true });
    await flushMicrotasks();
    expect(log).toEqual(['late:after']);
  });

  it('adding an id twice gives alreadyPresent; an init that throws gives initFailed and installs nothing', async () => {
    const { rt } = setup();
    const manager = startEventManager<string>(rt, { name: 'm' });
    await manager.addHandler('a', recorder([], 'a'));
    expect(await manager.addHandler('a', recorder([], 'a2'))).toMatchObject({
      ok: false,
      error: { code: 'alreadyPresent' },
    });
    const r = await manager.addHandler('broken', {
      init: () => {
        throw new Error('no config');
      },
      handleEvent: (_e: string, s: undefined) => s,
    });
    expect(r).toMatchObject({ ok: false, error: { code: 'initFailed' } });
    if (!r.ok) expect(r.error.message).toContain('no config');
    expect(manager.whichHandlers()).toEqual(['a']);
  });

  it('a handler that throws is removed and reported; the manager keeps serving the others', async () => {
    const { rt, events } = setup();
    const manager = startEventManager<string>(rt, { name: 'alarms' });
    const log: string[] = [];
    const terminated: [ExitReason, number][] = [];
    await manager.addHandler('a', recorder(log, 'a'));
    await manager.addHandler('faulty', {
      init: () => 10,
      handleEvent: (event: string, n: number) => {
        if (event === 'poison') throw new Error('cannot parse poison');
        return n + 1;
      },
      terminate: (reason: ExitReason, n: number) => {
        terminated.push([reason, n]);
      },
    });
    await manager.addHandler('c', recorder(log, 'c'));
    manager.notify('ok');
    manager.notify('poison');
    manager.notify('after');
    await flushMicrotasks();
    expect(log).toEqual(['a:ok', 'c:ok', 'a:poison', 'c:poison', 'a:after', 'c:after']);
    expect(manager.whichHandlers()).toEqual(['a', 'c']);
    expect(manager.alive).toBe(true);
    expect(terminated).toEqual([[{ type: 'error', error: new Error('cannot parse poison') }, 11]]);
    const removed = events.filter((e) => e.type === 'handler.removed');
    expect(removed).toEqual([
      expect.objectContaining({
        pid: manager.pid,
        handlerId: 'faulty',
        error: new Error('cannot parse poison'),
      }),
    ]);
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'report',
        level: 'error',
        pid: manager.pid,
        message: expect.stringContaining('faulty'),
      }),
    );
  });

  it('an async handler that rejects is removed the same way', async () => {
    const { rt, clock, events } = setup();
    const manager = startEventManager<string>(rt, { name: 'm' });
    const log: string[] = [];
    await manager.addHandler('async-faulty', {
      handleEvent: async (event: string, s: undefined) => {
        await sleep(rt, 50);
        if (event === 'bad') throw new Error('rejected');
        return s;
      },
    });
    await manager.addHandler('b', recorder(log, 'b'));
    const done = manager.syncNotify('bad');
    await clock.advanceAsync(50);
    expect(await done).toEqual({ ok: true });
    expect(log).toEqual(['b:bad']);
    expect(manager.whichHandlers()).toEqual(['b']);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'handler.removed', handlerId: 'async-faulty' }),
    );
  });

  it('a terminate that throws while removing a crashed handler is reported too; the manager lives on', async () => {
    const { rt, events } = setup();
    const manager = startEventManager<string>(rt, { name: 'm' });
    await manager.addHandler('x', {
      handleEvent: () => {
        throw new Error('first');
      },
      terminate: () => {
        throw new Error('second');
      },
    });
    await manager.syncNotify('e');
    const reports = events.filter((e) => e.type === 'report');
    expect(reports.map((r) => r.error?.message)).toEqual(['first', 'second']);
    expect(manager.alive).toBe(true);
  });

  it('syncNotify resolves only after every handler, async ones included, has handled the event', async () => {
    const { rt, clock } = setup();
    const manager = startEventManager<string>(rt, { name: 'm' });
    const log: string[] = [];
    await manager.addHandler('slow', {
      handleEvent: async (e: string, s: undefined) => {
        await sleep(rt, 200);
        log.push(`slow:${e}`);
        return s;
      },
    });
    await manager.addHandler('fast', recorder(log, 'fast'));
    let resolved = false;
    void manager.syncNotify('e').then(() => {
      resolved = true;
    });
    await clock.advanceAsync(199);
    expect(resolved).toBe(false);
    expect(log).toEqual([]);
    await clock.advanceAsync(1);
    expect(log).toEqual(['slow:e', 'fast:e']);
    expect(resolved).toBe(true);
  });

  it('events are handled one at a time: the next event waits for every handler of the previous one', async () => {
    const { rt, clock } = setup();
    const manager = startEventManager<string>(rt, { name: 'm' });
    const log: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    await manager.addHandler('slow', {
      handleEvent: async (e: string, s: undefined) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        log.push(`start:${e}`);
        await sleep(rt, 100);
        log.push(`end:${e}`);
        inFlight--;
        return s;
      },
    });
    manager.notify('1');
    manager.notify('2');
    await clock.advanceAsync(200);
    expect(log).toEqual(['start:1', 'end:1', 'start:2', 'end:2']);
    expect(maxInFlight).toBe(1);
  });

  it('removeHandler runs terminate with normal and the handler sees no later events; unknown ids give notFound', async () => {
    const { rt, events } = setup();
    const manager = startEventManager<string>(rt, { name: 'm' });
    const log: string[] = [];
    const terminated: [string, ExitReason, number][] = [];
    await manager.addHandler('a', recorder(log, 'a', terminated));
    manager.notify('before');
    expect(await manager.removeHandler('a')).toEqual({ ok: true });
    manager.notify('after');
    await flushMicrotasks();
    expect(log).toEqual(['a:before']);
    expect(terminated).toEqual([['a', { type: 'normal' }, 1]]);
    expect(manager.whichHandlers()).toEqual([]);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'handler.removed', handlerId: 'a', error: undefined }),
    );
    expect(await manager.removeHandler('a')).toMatchObject({ ok: false, error: { code: 'notFound' } });
  });

  it('removeHandler resolves after an async terminate has finished', async () => {
    const { rt, clock } = setup();
    const manager = startEventManager<string>(rt, { name: 'm' });
    let flushed = false;
    await manager.addHandler('file', {
      handleEvent: (_e: string, s: undefined) => s,
      terminate: async () => {
        await sleep(rt, 30);
        flushed = true;
      },
    });
    let removed = false;
    void manager.removeHandler('file').then(() => {
      removed = true;
    });
    await clock.advanceAsync(29);
    expect(removed).toBe(false);
    await clock.advanceAsync(1);
    expect(flushed).toBe(true);
    expect(removed).toBe(true);
  });

  it('stop waits for the event in flight, then terminates every handler; later requests answer noproc', async () => {
    const { rt, clock } = setup();
    const manager = startEventManager<string>(rt, { name: 'm' });
    const log: string[] = [];
    const terminated: [string, ExitReason, number][] = [];
    await manager.addHandler('slow', {
      init: () => 0,
      handleEvent: async (e: string, n: number) => {
        await sleep(rt, 100);
        log.push(`slow:${e}`);
        return n + 1;
      },
      terminate: (reason: ExitReason, n: number) => {
        terminated.push(['slow', reason, n]);
      },
    });
    await manager.addHandler('b', recorder(log, 'b', terminated));
    const first = manager.syncNotify('1');
    const second = manager.syncNotify('2');
    await flushMicrotasks();
    const stopping = manager.stop();
    expect(manager.notify('dropped')).toBe(false);
    expect(await manager.addHandler('x', recorder(log, 'x'))).toMatchObject({
      ok: false,
      error: { code: 'noproc' },
    });
    expect(await second).toMatchObject({ ok: false, error: { code: 'noproc' } });
    await clock.advanceAsync(100);
    expect(await first).toEqual({ ok: true });
    expect(await stopping).toEqual({ type: 'shutdown' });
    expect(log).toEqual(['slow:1', 'b:1']);
    expect(terminated).toEqual([
      ['slow', { type: 'shutdown' }, 1],
      ['b', { type: 'shutdown' }, 1],
    ]);
    expect(await manager.removeHandler('b')).toMatchObject({ ok: false, error: { code: 'noproc' } });
    expect(await manager.syncNotify('3')).toMatchObject({ ok: false, error: { code: 'noproc' } });
    expect(manager.whichHandlers()).toEqual([]);
  });

  it('kill drops the handlers without terminate and answers a pending syncNotify with noproc', async () => {
    const { rt, clock } = setup();
    const manager = startEventManager<string>(rt, { name: 'm' });
    const log: string[] = [];
    const terminated: [string, ExitReason, number][] = [];
    await manager.addHandler('slow', {
      handleEvent: async (e: string, s: undefined) => {
        await sleep(rt, 100);
        log.push(`slow:${e}`);
        return s;
      },
      terminate: () => {
        terminated.push(['slow', { type: 'normal' }, 0]);
      },
    });
    await manager.addHandler('b', recorder(log, 'b', terminated));
    const inFlight = manager.syncNotify('1');
    await flushMicrotasks();
    manager.kill();
    expect(await inFlight).toMatchObject({ ok: false, error: { code: 'noproc' } });
    await clock.advanceAsync(200);
    expect(log).toEqual(['slow:1']); // the running handler cannot be pre-empted; 'b' never runs
    expect(terminated).toEqual([]);
    expect(manager.exitReason).toEqual({ type: 'killed' });
  });

  it('implements the process contract: exit listeners receive the manager, and a registry can name it', async () => {
    const { rt } = setup();
    const manager = startEventManager<string>(rt, { name: 'm', parent: 1 as never, childId: 'events' });
    const names = createRegistry(rt, { keys: 'unique' });
    expect(names.register('alarms', manager)).toEqual({ ok: true });
    expect(names.whereis('alarms')).toBe(manager);
    let seen: unknown;
    manager.onExit((reason, process) => {
      seen = [reason, process];
    });
    const waited = manager.whenExited();
    await manager.stop({ type: 'shutdown', detail: 'app quit' });
    expect(seen).toEqual([{ type: 'shutdown', detail: 'app quit' }, manager]);
    expect(await waited).toEqual({ type: 'shutdown', detail: 'app quit' });
    expect(manager.status).toBe('exited');
    expect(manager.alive).toBe(false);
    expect(manager.exitReason).toEqual({ type: 'shutdown', detail: 'app quit' });
    expect(names.whereis('alarms')).toBeUndefined();
  });

  it('misuse throws: an empty handler id or a handler without handleEvent', () => {
    const { rt } = setup();
    const manager = startEventManager<string>(rt, { name: 'm' });
    expect(() => manager.addHandler('', recorder([], 'x'))).toThrow(TypeError);
    // @ts-expect-error: handleEvent is required
    expect(() => manager.addHandler('x', {})).toThrow(TypeError);
  });
});
