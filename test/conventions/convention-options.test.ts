/**
 * The conventions' options are checked once, at the boundary, by zod schemas (issue 11: one way
 * to validate options): the first problem throws a RangeError naming the convention, the field
 * and the value given.
 */
import { describe, expect, it } from 'vitest';
import { homieConvention } from '../../src/conventions/homie/homie-bridge.js';
import { modbusConvention } from '../../src/conventions/modbus/modbus-bridge.js';
import { sparkplugConvention } from '../../src/conventions/sparkplug/sparkplug-bridge.js';

const problem = (make: () => unknown): string => {
  try {
    make();
  } catch (error) {
    expect(error).toBeInstanceOf(RangeError);
    return (error as Error).message;
  }
  return 'accepted';
};

describe('convention options', () => {
  it('Sparkplug: names the field and the value', () => {
    expect(problem(() => sparkplugConvention({ groups: ['STATE'] }))).toBe(
      `sparkplugConvention: groups[0] is 'STATE', which is reserved, not a group, got "STATE"`,
    );
    expect(problem(() => sparkplugConvention({ hostId: 'a/b' }))).toBe(
      `sparkplugConvention: hostId must not contain '/', '+' or '#', got "a/b"`,
    );
    expect(problem(() => sparkplugConvention({ adopt: 'sometimes' as never }))).toBe(
      `sparkplugConvention: adopt must be 'auto' or 'manual', got "sometimes"`,
    );
    expect(problem(() => sparkplugConvention({ maxRebirthsPerMinute: -1 }))).toMatch(
      /^sparkplugConvention: maxRebirthsPerMinute must be a whole number >= 0, got -1$/,
    );
    expect(problem(() => sparkplugConvention({ reconnect: { jitter: 2 } }))).toMatch(/reconnect\.jitter/);
    expect(
      problem(() => sparkplugConvention({ hostId: 'scada', groups: ['Plant1'], maxRebirthsPerMinute: 0 })),
    ).toBe('accepted');
  });

  it('Homie: names the field and the value; the base topic keeps its own rule', () => {
    expect(problem(() => homieConvention({ setTimeoutMs: 0 }))).toBe(
      'homieConvention: setTimeoutMs must be a positive integer, got 0',
    );
    expect(problem(() => homieConvention({ reconnect: { jitter: 2 } }))).toBe(
      'homieConvention: reconnect.jitter must be within 0…1, got 2',
    );
    expect(problem(() => homieConvention({ baseTopic: 'homie/+' }))).toMatch(/baseTopic/);
    expect(problem(() => homieConvention({ statusDelayMs: 0, baseTopic: 'devices/' }))).toBe('accepted');
  });

  it('Modbus: the same shape of message', () => {
    expect(problem(() => modbusConvention({ scanMs: 0 }))).toBe(
      'modbusConvention: scanMs must be a positive integer, got 0',
    );
  });
});
