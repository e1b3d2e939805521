import { describe, expect, it } from 'vitest';
import { RegistryEntries } from '../../src/runtime/registry-entries.js';
import { createRig, TestWorker } from './helpers.js';

function setup() {
  const rig = createRig();
  const a = new TestWorker(rig.rt, 'a', rig);
  const b = new TestWorker(rig.rt, 'b', rig);
  return { rig, a, b, entries: new RegistryEntries<string>() };
}

describe('RegistryEntries (the two indexes under a registry)', () => {
  it('lists the entries under a key in registration order, with their values', () => {
    const { a, b, entries } = setup();
    entries.add('topic', a, 'chart');
    entries.add('topic', b, 'table');
    entries.add('topic', a, 'log');
    entries.add('other', b, undefined);
    expect(entries.live('topic').map((e) => [e.process.name, e.value])).toEqual([
      ['a', 'chart'],
      ['b', 'table'],
      ['a', 'log'],
    ]);
    expect(entries.size).toBe(4);
    expect([...entries.ownerOf(a.pid)!.entries].map((e) => e.key)).toEqual(['topic', 'topic']);
    expect(entries.live('none')).toEqual([]);
  });

  it('links to a process once and drops all its entries when it exits', () => {
    const { a, b, entries } = setup();
    entries.add('x', a, undefined);
    entries.add('y', a, undefined);
    entries.add('x', b, undefined);
    a.crash();
    expect(entries.live('x').map((e) => e.process)).toEqual([b]);
    expect(entries.live('y')).toEqual([]);
    expect(entries.ownerOf(a.pid)).toBeUndefined();
    expect(entries.size).toBe(1);
  });

  it('removing an owner’s last entry unlinks it from the process', () => {
    const { a, entries } = setup();
    entries.add('x', a, undefined);
    const [entry] = entries.live('x');
    entries.remove(entry!);
    expect(entries.ownerOf(a.pid)).toBeUndefined();
    expect(entries.size).toBe(0);
    // Registered again after the unlink: a fresh owner, and its exit still clears it.
    entries.add('x', a, undefined);
    a.finish();
    expect(entries.size).toBe(0);
  });

  it('live() never returns a dead process, even before its exit listener ran', () => {
    const { rig, entries } = setup();
    const early = new TestWorker(rig.rt, 'early', rig);
    // Another exit listener, registered first, looks the process up while it is exiting.
    let seen: string[] | undefined;
    early.onExit(() => {
      seen = entries.live('k').map((e) => e.process.name);
    });
    entries.add('k', early, undefined);
    early.finish();
    expect(seen).toEqual([]);
    expect(entries.size).toBe(0);
  });
});
