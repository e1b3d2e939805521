/**
 * The topic map's internal predicate: isMessageType answers from the channel map's own keys, so
 * it agrees with CHANNELS and no inherited name (`toString`, `__proto__`) passes as a type.
 */
import { describe, expect, it } from 'vitest';
import { CHANNELS, isMessageType } from '../../src/transports/protocol-topics.js';

describe('isMessageType', () => {
  it('is true for exactly the types the channels carry', () => {
    const types = Object.values(CHANNELS).flatMap((c) => c.types);
    expect(types).toHaveLength(14);
    for (const t of types) expect(isMessageType(t)).toBe(true);
  });

  it('is false for channel names that are not types, and for inherited names', () => {
    for (const s of ['fw', 'fw-ack', 'toString', '__proto__', 'constructor', 'hasOwnProperty', '', 'Hello']) {
      expect(isMessageType(s), s).toBe(false);
    }
  });
});
