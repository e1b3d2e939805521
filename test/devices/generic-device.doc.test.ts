/**
 * docs/protocol.md against the code a firmware author cannot read (issue 12 §7): the commands of
 * the `fleetvisor.generic` kind with their argument bounds (§4), the offline timeouts (§3
 * heartbeat) and the forms of the ids the host sends (§2). A change to either side fails here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { genericAttributes, genericDevice } from '../../src/devices/generic-device.js';
import { newCommandId } from '../../src/transports/protocol.js';
import { resolveSerialLinkOptions } from '../../src/transports/serial-link-options.js';

const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');

/** The rows of the markdown table that follows `heading`, as trimmed cells. */
function tableAfter(heading: string): string[][] {
  const start = doc.indexOf(heading);
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const lines = doc.slice(start).split('\n');
  const first = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim()),
    );
  }
  return rows;
}

const number = (text: string) => Number(text.replaceAll(',', ''));

describe('docs/protocol.md §4: the commands of the fleetvisor.generic kind', () => {
  const rows = tableAfter('### The commands of the `fleetvisor.generic` kind');
  const documented = new Map(rows.map(([action, args]) => [action!.replaceAll('`', ''), args!]));

  it('lists every command the kind sends, and hello (which every device answers); connect is no command', () => {
    const commands = Object.entries(genericDevice.actions)
      .filter(([, a]) => a.command !== undefined)
      .map(([name]) => name);
    expect([...documented.keys()].sort()).toEqual([...commands, 'hello'].sort());
    expect(genericDevice.actions.connect?.command).toBeUndefined();
  });

  it('states the bounds and defaults the kind checks', () => {
    const RANGE = /"(\w+)": ([\d,]+)…([\d,]+)/;
    for (const [action, args] of documented) {
      const range = RANGE.exec(args);
      if (!range) continue;
      const [, field, lo, hi] = range as unknown as [string, string, string, string];
      const ok = (value: number) => genericDevice.buildAction(action, { [field]: value }).ok;
      expect([ok(number(lo) - 1), ok(number(lo)), ok(number(hi)), ok(number(hi) + 1)], action).toEqual([
        false,
        true,
        true,
        false,
      ]);
      const fallback = /\(default ([\d,]+)\)/.exec(args)?.[1];
      const built = genericDevice.buildAction(action, {});
      if (fallback === undefined) expect(built.ok, `${action} without ${field}`).toBe(false);
      else expect(built).toMatchObject({ ok: true, value: { args: { [field]: number(fallback) } } });
    }
    expect([...documented.values()].filter((a) => RANGE.test(a))).toHaveLength(2); // identify, setInterval
  });
});

describe('docs/protocol.md §3: the offline timeouts', () => {
  const rows = tableAfter('**Offline timeouts**');
  const seconds = (what: string) => {
    const row = rows.find(([w]) => w!.startsWith(what));
    expect(row, what).toBeDefined();
    return number(/^(\d+) s$/.exec(row![1]!)![1]!) * 1000;
  };

  it('are the kind’s and the serial link’s defaults', () => {
    const attributes = genericAttributes.parse({});
    expect(seconds('liveness')).toBe(attributes.livenessTimeoutMs);
    expect(seconds('connecting')).toBe(attributes.connectTimeoutMs);
    const serial = resolveSerialLinkOptions({ path: '/dev/null', onMessage: () => {}, onError: () => {} });
    expect(seconds('serial probe')).toBe(serial.heartbeatMs);
    expect(seconds('serial silence')).toBe(serial.silenceMs);
  });
});

describe('docs/protocol.md §2: the ids the host sends', () => {
  it('presence commands are hello- or ping- and 12 more characters of the id rule', () => {
    expect(doc).toContain('`hello-`/`ping-` and 12 more');
    for (const action of ['hello', 'ping'])
      expect(newCommandId(action)).toMatch(new RegExp(`^${action}-[A-Za-z0-9_-]{12}$`));
  });
});
