/**
 * The public entry src/transports/protocol.ts: it re-exports the parts, and its runtime surface is
 * exactly this list (about 50 files import it, so dropping a name breaks them; adding one widens
 * what they can reach).
 */
import { describe, expect, it } from 'vitest';
import * as protocol from '../../src/transports/protocol.js';
import * as codec from '../../src/transports/protocol-codec.js';
import * as topics from '../../src/transports/protocol-topics.js';

describe('protocol.ts', () => {
  it('exports exactly the runtime names it always has', () => {
    expect(Object.keys(protocol).sort()).toEqual(
      [
        'CHANNELS',
        'DEFAULT_MAX_PAYLOAD_BYTES',
        'LIMITS',
        'MAX_DEPTH',
        'PROTOCOL_VERSION',
        'ProtocolError',
        'channelFor',
        'decodeMessage',
        'decodePublish',
        'directionOf',
        'encodeMessage',
        'newCommandId',
        'nextSeq',
        'parseDeviceId',
        'parseTopic',
        'seqDelta',
        'topicFilterFor',
        'topicFor',
      ].sort(),
    );
  });

  it('re-exports the parts themselves, not copies', () => {
    expect(protocol.decodeMessage).toBe(codec.decodeMessage);
    expect(protocol.parseTopic).toBe(topics.parseTopic);
    expect(protocol.CHANNELS).toBe(topics.CHANNELS);
  });
});
