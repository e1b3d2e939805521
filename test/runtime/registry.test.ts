import { describe, expect, it } from 'vitest';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import type { RuntimeEvent } from '../../src/runtime/events.js';
import { errorExit, NORMAL } from '../../src/runtime/exit-reason.js';
import { ProcessBase } from '../../src/runtime/process.js';
import { createRegistry, viaName } from '../../src/runtime/registry.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';

class Proc extends ProcessBase {
  constructor(rt: Runtime, name: string) {
    super(rt, 'server', name);
    this.started();
  }
  crash(): void {
    this.exit(errorExit(new Error('boom')));
  }
  finish(): void {
    this.exit(NORMAL);
  }
  protected terminate(): void {}
}

function setup() {
  const rt = createRuntime({ clock: createSimulatedClock() });
  const events: RuntimeEvent[] = [];
  rt.events.subscribe((e) => events.push(e));
  const spawn = (name = 'p') => new Proc(rt, name);
  return { rt, events, spawn };
}

describe('registry with unique keys', () => {
  it('a registered process is found by whereis and lookup, with its value', () => {
    const { rt, spawn } = setup();
    const names = createRegistry<{ port: string }>(rt, { keys: 'unique', name: 'devices' });
    const p = spawn('dev-1');
    expect(names.register('device:1', p, { port: '/dev/ttyA' })).toEqual({ ok: true });
    expect(names.whereis('device:1')).toBe(p);
    expect(names.lookup('device:1')).toEqual([
      { key: 'device:1', pid: p.pid, process: p, value: { port: '/dev/ttyA' } },
    ]);
    expect(names.whereis('device:2')).toBeUndefined();
    expect(names.lookup('device:2')).toEqual([]);
    expect(names.count()).toBe(1);
    expect(names.mode).toBe('unique');
    expect(names.name).toBe('devices');
  });

  it('a taken name gives alreadyRegistered with the holder pid (OTP already_started)', () => {
    const { rt, spawn } = setup();
    const names = createRegistry(rt, { keys: 'unique' });
    const first = spawn('first');
    const second = spawn('second');
    names.register('broker', first);
    const clash = names.register('broker', second);
    expect(clash.ok).toBe(false);
    if (clash.ok) return;
    expect(clash.error.code).toBe('alreadyRegistered');
    expect(clash.error).toMatchObject({ pid: first.pid });
    expect(clash.error.message).toContain('broker');
    // The same process registering the same key twice is refused too (Elixir returns its own pid).
    expect(names.register('broker', first)).toMatchObject({
      ok: false,
      error: { code: 'alreadyRegistered', pid: first.pid },
    });
    expect(names.whereis('broker')).toBe(first);
    expect(names.count()).toBe(1);
  });

  it('one process may hold several unique keys', () => {
    const { rt, spawn } = setup();
    const names = createRegistry(rt, { keys: 'unique' });
    const p = spawn();
    names.register('a', p);
    names.register('b', p);
    expect(names.keys(p)).toEqual(['a', 'b']);
    expect(names.whereis('a')).toBe(p);
    expect(names.whereis('b')).toBe(p);
  });

  it('a dead process cannot be registered (noproc)', async () => {
    const { rt, spawn } = setup();
    const names = createRegistry(rt, { keys: 'unique' });
    const p = spawn('gone');
    await p.stop();
    const r = names.register('x', p);
    expect(r).toMatchObject({ ok: false, error: { code: 'noproc' } });
    expect(names.count()).toBe(0);
  });

  it.each([
    ['crashes', (p: Proc) => p.crash()],
    ['finishes normally', (p: Proc) => p.finish()],
    ['is killed', (p: Proc) => p.kill()],
    ['is stopped', (p: Proc) => void p.stop()],
  ])('the name is freed as soon as the holder %s, and can be taken again', async (_what, end) => {
    const { rt, spawn } = setup();
    const names = createRegistry(rt, { keys: 'unique' });
    const p = spawn('old');
    names.register('device:7', p);
    names.register('other', p);
    end(p);
    await flushMicrotasks();
    expect(names.whereis('device:7')).toBeUndefined();
    expect(names.lookup('device:7')).toEqual([]);
    expect(names.keys(p)).toEqual([]);
    expect(names.count()).toBe(0);
    const q = spawn('new');
    expect(names.register('device:7', q)).toEqual({ ok: true });
    expect(names.whereis('device:7')).toBe(q);
  });

  it('lookups never return a dead process, even to an exit listener that runs before the registry cleans up', () => {
    const { rt, spawn } = setup();
    const names = createRegistry(rt, { keys: 'unique' });
    const p = spawn();
    let seenByListener: unknown = 'not called';
    // Linked before registration, so this listener runs first when p exits.
    p.onExit(() => {
      seenByListener = names.whereis('k');
    });
    names.register('k', p);
    p.crash();
    expect(seenByListener).toBeUndefined();
    expect(names.count()).toBe(0);
  });

  it('registries are isolated instances: the same key in two registries does not clash', () => {
    const { rt, spawn } = setup();
    const a = createRegistry(rt, { keys: 'unique' });
    const b = createRegistry(rt, { keys: 'unique' });
    const p = spawn('p');
    const q = spawn('q');
    expect(a.register('k', p)).toEqual({ ok: true });
    expect(b.register('k', q)).toEqual({ ok: true });
    expect(a.whereis('k')).toBe(p);
    expect(b.whereis('k')).toBe(q);
  });
});

describe('registry with duplicate keys (pub/sub)', () => {
  it('many processes share a key, each entry with its own value, in registration order', () => {
    const { rt, spawn } = setup();
    const topics = createRegistry<string>(rt, { keys: 'duplicate' });
    const a = spawn('a');
    const b = spawn('b');
    expect(topics.register('telemetry', a, 'chart')).toEqual({ ok: true });
    expect(topics.register('telemetry', b, 'table')).toEqual({ ok: true });
    expect(topics.register('telemetry', a, 'log')).toEqual({ ok: true });
    expect(topics.lookup('telemetry').map((e) => [e.process.name, e.value])).toEqual([
      ['a', 'chart'],
      ['b', 'table'],
      ['a', 'log'],
    ]);
    expect(topics.count()).toBe(3);
    expect(topics.keys(a)).toEqual(['telemetry', 'telemetry']);
  });

  it('whereis is only for unique registries (misuse throws)', () => {
    const { rt } = setup();
    const topics = createRegistry(rt, { keys: 'duplicate' });
    expect(() => topics.whereis('x')).toThrow(TypeError);
  });

  it('dispatch calls the function for every entry under the key and returns how many', () => {
    const { rt, spawn } = setup();
    const topics = createRegistry<string>(rt, { keys: 'duplicate' });
    const a = spawn('a');
    const b = spawn('b');
    topics.register('alarms', a, 'x');
    topics.register('alarms', b, 'y');
    topics.register('other', a, 'z');
    const seen: string[] = [];
    expect(topics.dispatch('alarms', (e) => seen.push(`${e.process.name}:${e.value}`))).toBe(2);
    expect(seen).toEqual(['a:x', 'b:y']);
    expect(topics.dispatch('nobody', () => seen.push('never'))).toBe(0);
  });

  it('a dispatch callback that throws for one entry is reported and the other entries still get it', () => {
    const { rt, events, spawn } = setup();
    const topics = createRegistry(rt, { keys: 'duplicate', name: 'topics' });
    const a = spawn('a');
    const b = spawn('b');
    topics.register('t', a);
    topics.register('t', b);
    const seen: string[] = [];
    const n = topics.dispatch('t', (e) => {
      if (e.process === a) throw new Error('subscriber a is broken');
      seen.push(e.process.name);
    });
    expect(n).toBe(2);
    expect(seen).toEqual(['b']);
    const reports = events.filter((e) => e.type === 'report');
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({
      level: 'error',
      pid: a.pid,
      error: { message: 'subscriber a is broken' },
    });
  });

  it('dispatch skips an entry that exited during the same dispatch', () => {
    const { rt, spawn } = setup();
    const topics = createRegistry(rt, { keys: 'duplicate' });
    const a = spawn('a');
    const b = spawn('b');
    topics.register('t', a);
    topics.register('t', b);
    const seen: string[] = [];
    const n = topics.dispatch('t', (e) => {
      seen.push(e.process.name);
      b.kill();
    });
    expect(seen).toEqual(['a']);
    expect(n).toBe(1);
  });

  it('an exiting subscriber disappears from every key it was under; the others stay', () => {
    const { rt, spawn } = setup();
    const topics = createRegistry(rt, { keys: 'duplicate' });
    const a = spawn('a');
    const b = spawn('b');
    topics.register('t1', a);
    topics.register('t2', a);
    topics.register('t1', b);
    a.crash();
    expect(topics.lookup('t1').map((e) => e.process)).toEqual([b]);
    expect(topics.lookup('t2')).toEqual([]);
    expect(topics.count()).toBe(1);
  });
});

describe('unregister and keys', () => {
  it('unregister removes only that process entries under that key', () => {
    const { rt, spawn } = setup();
    const topics = createRegistry(rt, { keys: 'duplicate' });
    const a = spawn('a');
    const b = spawn('b');
    topics.register('t', a);
    topics.register('t', a);
    topics.register('u', a);
    topics.register('t', b);
    expect(topics.unregister('t', a)).toBe(true);
    expect(topics.lookup('t').map((e) => e.process)).toEqual([b]);
    expect(topics.keys(a)).toEqual(['u']);
    expect(topics.unregister('t', a)).toBe(false);
    expect(topics.unregister('missing', b)).toBe(false);
    expect(topics.count()).toBe(2);
  });

  it('after unregistering everything the registry no longer watches the process', async () => {
    const { rt, spawn } = setup();
    const names = createRegistry(rt, { keys: 'unique' });
    const p = spawn();
    names.register('k', p);
    names.unregister('k', p);
    expect(names.count()).toBe(0);
    // Another process takes the key; p exiting later must not remove it.
    const q = spawn('q');
    names.register('k', q);
    p.crash();
    await flushMicrotasks();
    expect(names.whereis('k')).toBe(q);
  });

  it('keys of an unknown or dead process is empty', () => {
    const { rt, spawn } = setup();
    const names = createRegistry(rt, { keys: 'unique' });
    expect(names.keys(spawn())).toEqual([]);
  });

  it('rejects empty keys and a bad keys option (misuse)', () => {
    const { rt, spawn } = setup();
    const names = createRegistry(rt, { keys: 'unique' });
    expect(() => names.register('', spawn())).toThrow(TypeError);
    // @ts-expect-error: not a key mode
    expect(() => createRegistry(rt, { keys: 'many' })).toThrow(/keys/);
  });

  it('stays consistent with thousands of processes registering and exiting', () => {
    const { rt, spawn } = setup();
    const topics = createRegistry(rt, { keys: 'duplicate' });
    const procs = Array.from({ length: 5000 }, (_, i) => spawn(`p${i}`));
    for (const [i, p] of procs.entries()) {
      topics.register('all', p);
      topics.register(`own:${i}`, p);
    }
    expect(topics.count()).toBe(10_000);
    for (const [i, p] of procs.entries()) if (i % 2 === 0) p.kill();
    expect(topics.count()).toBe(5000);
    expect(topics.lookup('all')).toHaveLength(2500);
    expect(topics.lookup('own:0')).toEqual([]);
    expect(topics.lookup('own:1')).toHaveLength(1);
  });
});

describe('viaName', () => {
  it('names a process through a unique registry', () => {
    const { rt, spawn } = setup();
    const names = createRegistry(rt, { keys: 'unique' });
    const via = viaName(names, 'fleet:root');
    const sup = spawn('root');
    expect(via.register(sup)).toEqual({ ok: true });
    expect(via.whereis()).toBe(sup);
    expect(names.whereis('fleet:root')).toBe(sup);
    expect(via.key).toBe('fleet:root');
    expect(via.registry).toBe(names);
    expect(via.unregister(sup)).toBe(true);
    expect(via.whereis()).toBeUndefined();
  });

  it('a name held by a process outside the supervisor gives alreadyRegistered with its pid (OTP already_started_outside_supervisor)', () => {
    const { rt, spawn } = setup();
    const names = createRegistry(rt, { keys: 'unique' });
    const outsider = spawn('outsider');
    names.register('fleet:root', outsider);
    const r = viaName(names, 'fleet:root').register(spawn('sup'));
    expect(r).toMatchObject({ ok: false, error: { code: 'alreadyRegistered', pid: outsider.pid } });
  });

  it('carries a value for the entry', () => {
    const { rt, spawn } = setup();
    const names = createRegistry<string>(rt, { keys: 'unique' });
    const p = spawn();
    viaName(names, 'k', 'meta').register(p);
    expect(names.lookup('k')[0]?.value).toBe('meta');
  });

  it('needs a unique registry and a non-empty key (misuse throws)', () => {
    const { rt } = setup();
    expect(() => viaName(createRegistry(rt, { keys: 'duplicate' }), 'k')).toThrow(TypeError);
    expect(() => viaName(createRegistry(rt, { keys: 'unique' }), '')).toThrow(TypeError);
  });
});
