import { describe, expect, it } from 'vitest';
import type { LogLevel } from '../../src/host/console-logger.js';
import { createConsoleLogger, formatLine } from '../../src/host/console-logger.js';

const AT = new Date(Date.UTC(2026, 0, 1, 12, 4, 7, 311));

/** Every code point a terminal would act on or hide instead of showing (issue 12 §6). */
const HOSTILE = [
  '\u202e', // RIGHT-TO-LEFT OVERRIDE: reverses what follows on screen
  '\u200b', // ZERO WIDTH SPACE
  '\u2066', // LEFT-TO-RIGHT ISOLATE
  '\u2028', // LINE SEPARATOR: JSON.stringify leaves it raw
  '\ufeff', // BYTE ORDER MARK
  '\u001b', // ESC: starts a terminal control sequence
  '\u0007', // BEL
  '\r',
  '\n',
  '\u0085', // NEXT LINE (C1)
  '\u009b', // CSI (C1)
  '\ud800', // a lone surrogate
];

function lines(): { logger: ReturnType<typeof createConsoleLogger>; out: string[] } {
  const out: string[] = [];
  const logger = createConsoleLogger({
    level: 'debug',
    now: () => AT,
    write: (line: string, _level: LogLevel) => out.push(line),
  });
  return { logger, out };
}

describe('console logger', () => {
  it('prints time, level, message and fields, plain values bare and others quoted', () => {
    expect(formatLine('info', 'device online', { deviceId: 'sim-m001', via: 'mqtt', n: 3 }, AT)).toBe(
      '12:04:07.311 INFO  device online deviceId=sim-m001 via=mqtt n=3',
    );
    expect(formatLine('warn', 'x', { name: 'Pump 1', data: { a: [1] } }, AT)).toBe(
      '12:04:07.311 WARN  x name="Pump 1" data={"a":[1]}',
    );
  });

  it('escapes control and invisible characters of device-supplied text in fields, nested values and the message', () => {
    const { logger, out } = lines();
    for (const ch of HOSTILE) {
      const evil = `pump${ch}gpj.exe`;
      logger.warn(`refused id '${evil}'`, {
        deviceId: evil,
        topic: `fv/v1/${evil}/hello`,
        data: { name: evil },
      });
      logger.error('bad message', { error: new Error(`device ${evil} said no`) });
      logger.info('key', { [evil]: 1 });
    }
    expect(out).toHaveLength(HOSTILE.length * 3);
    for (const line of out) {
      const raw = [...line].filter((c) => /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u.test(c));
      expect(raw, JSON.stringify(line)).toEqual([]);
    }
    // Shown, not hidden: the reader sees which character it was.
    expect(out[0]).toContain('\\u202e');
    expect(out[0]).toMatch(/refused id 'pump\\u202egpj\.exe' deviceId="pump\\u202egpj\.exe"/);
    expect(out.join('\n')).toContain('\\u200b');
    expect(out.join('\n')).toContain('\\u001b');
  });

  it('leaves ordinary non-ASCII text alone', () => {
    expect(formatLine('info', 'Küche — Gerät', { name: 'Pumpe Nr. 1 ✓ 温度' }, AT)).toBe(
      '12:04:07.311 INFO  Küche — Gerät name="Pumpe Nr. 1 ✓ 温度"',
    );
  });
});
