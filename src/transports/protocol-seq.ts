/**
 * Device protocol v1, sequence numbers and command ids: what orders a device's messages and what
 * matches a reply to its command.
 *
 * protocol.ts is the public entry.
 *
 * @example
 * if (seqDelta(lastSeq, msg.seq) <= 0) return; // late or duplicate
 * const cmdId = newCommandId('ping');          // 'ping-3q2x…'
 */

import { randomBytes } from 'node:crypto';

/**
 * Signed distance from `from` to `to` on the uint32 circle (RFC 1982 serial arithmetic):
 * positive when `to` is newer. Correct across the wrap as long as the two are within 2³¹.
 *
 * @example
 * seqDelta(4294967295, 0); // 1
 * seqDelta(10, 7);         // -3 (a late or duplicate message)
 */
export function seqDelta(from: number, to: number): number {
  return (to - from) | 0;
}

/**
 * The seq after `seq`, wrapping 2³²−1 → 0 (what a device, or the simulator, sends next).
 *
 * @example
 * nextSeq(4294967295); // 0
 */
export function nextSeq(seq: number): number {
  return (seq + 1) >>> 0;
}

/**
 * A fresh command id (`[A-Za-z0-9_-]`) for the host's own presence commands (`hello`, `ping`):
 * random, not a counter, because a device caches replies by `cmdId` and would answer a restarted
 * host's `hello-1` from its cache instead of saying hello.
 */
export function newCommandId(action: string): string {
  return `${action}-${randomBytes(9).toString('base64url')}`;
}
