import { describe, expect, it } from 'vitest';
import { compareFirmwareVersions, parseFirmwareVersion } from '../../src/firmware/version.js';

describe('firmware versions', () => {
  it.each([
    ['1.4.2', true],
    ['2.0.0-rc.1+build.7', true],
    ['1', true],
    ['1.2.3.4', true],
    ['', false],
    ['v1.2', false],
    ['1.2 ', false],
    ['1..2', false],
    ['1.2.3.4.5', false],
    ['1.2-', false],
    [`1.${'0'.repeat(70)}`, false],
  ])('%j is a version: %s', (text, valid) => {
    expect(parseFirmwareVersion(text).ok).toBe(valid);
  });

  it('names the rule when a version is refused', () => {
    const r = parseFirmwareVersion('v1');
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.error).toMatchObject({ code: 'badVersion', message: expect.stringMatching(/1\.4\.2/) });
  });

  it.each([
    ['1.0.0', '1.0.1', -1],
    ['1.10.0', '1.9.0', 1],
    ['1.0', '1.0.0', 0],
    ['2.0.0-rc.1', '2.0.0', -1],
    ['2.0.0-rc.2', '2.0.0-rc.10', -1],
    ['2.0.0-alpha', '2.0.0-alpha.1', -1],
    ['2.0.0-1', '2.0.0-alpha', -1],
    ['1.0.0+a', '1.0.0+b', 0],
  ])('%s against %s: %i', (a, b, expected) => {
    expect(Math.sign(compareFirmwareVersions(a, b))).toBe(expected);
    expect(Math.sign(compareFirmwareVersions(b, a))).toBe(-expected || 0);
  });
});
