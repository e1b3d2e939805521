import { describe, expect, it } from 'vitest';
import { badRecord, readColumns } from '../../src/store/sqlite-firmware-context.js';

describe('readColumns', () => {
  const kinds = { id: 'text', created_at: 'number' } as const;

  it('reads the named columns of their kinds, and nothing else', () => {
    expect(readColumns({ id: 'r1', created_at: 5, other: 'x' }, kinds)).toEqual({ id: 'r1', created_at: 5 });
  });

  it.each([
    ['a missing column', { id: 'r1' }],
    ['a NULL', { id: 'r1', created_at: null }],
    ['text where a number belongs', { id: 'r1', created_at: '5' }],
    ['a number where text belongs', { id: 1, created_at: 5 }],
  ])('is undefined on %s', (_, row) => {
    expect(readColumns(row, kinds)).toBeUndefined();
  });
});

describe('badRecord', () => {
  it('is the per-row badRecord error', () => {
    expect(badRecord('r1', 'does not parse')).toEqual({
      ok: false,
      id: 'r1',
      error: { code: 'badRecord', message: 'does not parse' },
    });
  });
});
