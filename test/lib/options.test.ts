/** Options checked by zod schemas: the first problem names the function, the field and the value. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  callback,
  checkOptions,
  fraction,
  nonEmptyString,
  nonNegativeInt,
  optionsProblem,
  positiveInt,
} from '../../src/lib/options.js';

const schema = z.object({
  path: nonEmptyString,
  pollMs: positiveInt.optional(),
  ttlMs: nonNegativeInt.optional(),
  retry: z.object({ jitter: fraction.optional() }).optional(),
  ports: z.array(nonEmptyString).optional(),
  onMessage: callback,
});

describe('checkOptions', () => {
  const good = { path: '/dev/x', onMessage: () => {} };

  it('returns the options unchanged when they pass', () => {
    const withExtra = { ...good, pollMs: 10, ttlMs: 0, extra: 'kept' };
    expect(checkOptions('start', schema, withExtra)).toBe(withExtra);
  });

  it.each([
    [{ pollMs: 0 }, 'start: pollMs must be a positive integer, got 0'],
    [{ pollMs: 1.5 }, 'start: pollMs must be a positive integer, got 1.5'],
    [{ pollMs: '5' }, 'start: pollMs must be a positive integer, got "5"'],
    [{ ttlMs: -1 }, 'start: ttlMs must be a whole number >= 0, got -1'],
    [{ retry: { jitter: 2 } }, 'start: retry.jitter must be within 0…1, got 2'],
    [{ ports: ['a', ''] }, 'start: ports[1] must be a non-empty string, got ""'],
    [{ path: '' }, 'start: path must be a non-empty string, got ""'],
    [{ onMessage: 'x' }, 'start: onMessage must be a function, got "x"'],
  ])('refuses %j with a RangeError naming the field', (bad, message) => {
    expect(() => checkOptions('start', schema, { ...good, ...bad })).toThrow(new RangeError(message));
  });

  it('caps a long value in the message', () => {
    const problem = optionsProblem(schema, { ...good, path: 7, pollMs: 'x'.repeat(500) });
    expect(problem).toBe('path must be a non-empty string, got 7');
    const long = optionsProblem(schema, { ...good, pollMs: 'x'.repeat(500) })!;
    expect(long).toMatch(/^pollMs must be a positive integer, got "x{79}…$/);
  });
});
