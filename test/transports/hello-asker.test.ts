/**
 * Asking a device for its hello: again 5 s after the first ask if no hello came, then after twice
 * as long each time up to HELLO_ASK_EVERY_MS, per device (on a simulated clock), at once again after its hello came, and the replies to the hub's own hello commands
 * recognised once.
 */
import { describe, expect, it } from 'vitest';
import { createSimulatedClock } from '../../src/runtime/clock.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import {
  createHelloAsker,
  HELLO_ASK_EVERY_MS,
  HELLO_ASK_FIRST_RETRY_MS,
  helloAskWaitMs,
} from '../../src/transports/hello-asker.js';
import type { LinkHandle } from '../../src/transports/link-session.js';
import type { Message } from '../../src/transports/protocol.js';

function rig(accepts = true) {
  const clock = createSimulatedClock({ wallStartMs: 1_800_000_000_000 });
  const runtime = createRuntime({ clock });
  const sent: { deviceId: string; message: Message }[] = [];
  const link: LinkHandle = {
    via: 'mqtt',
    presence: 'status',
    send: (deviceId, message) => {
      sent.push({ deviceId, message });
      return accepts;
    },
  };
  return { clock, asker: createHelloAsker({ runtime }), sent, link, dispose: () => runtime.dispose() };
}

const cmdIdOf = (m: Message) => (m.type === 'cmd' ? m.cmdId : undefined);

describe('hello asker', () => {
  it('asks with the hello command, at most once per interval per device', () => {
    const { clock, asker, sent, link, dispose } = rig();
    asker.ask('pump-7', link);
    asker.ask('pump-7', link);
    asker.ask('pump-8', link);
    expect(sent.map((s) => [s.deviceId, s.message.type === 'cmd' && s.message.action])).toEqual([
      ['pump-7', 'hello'],
      ['pump-8', 'hello'],
    ]);
    clock.advance(HELLO_ASK_FIRST_RETRY_MS - 1);
    asker.ask('pump-7', link);
    expect(sent).toHaveLength(2);
    clock.advance(1);
    asker.ask('pump-7', link);
    expect(sent).toHaveLength(3);
    dispose();
  });

  it('an ask left unanswered is repeated after 5, 10, 20, then every 30 s (an ask or its answer can be dropped too)', () => {
    const { clock, asker, sent, link, dispose } = rig();
    const askedAt: number[] = [];
    const t0 = clock.wallNow();
    for (let t = 0; t <= 120_000; t += 500) {
      const before = sent.length;
      asker.ask('pump-7', link);
      if (sent.length > before) askedAt.push(clock.wallNow() - t0);
      clock.advance(500);
    }
    expect(askedAt).toEqual([0, 5_000, 15_000, 35_000, 65_000, 95_000]);
    expect([1, 2, 3, 4, 5, 9].map(helloAskWaitMs)).toEqual([
      5_000,
      10_000,
      20_000,
      30_000,
      30_000,
      HELLO_ASK_EVERY_MS,
    ]);
    dispose();
  });

  it('asks at once again once its hello came and went missing', () => {
    const { asker, sent, link, dispose } = rig();
    asker.ask('pump-7', link);
    asker.heard('pump-7');
    asker.ask('pump-7', link);
    expect(sent).toHaveLength(2);
    dispose();
  });

  it('knows the replies to its own commands, once each; another id is not its', () => {
    const { asker, sent, link, dispose } = rig();
    asker.ask('pump-7', link);
    const cmdId = cmdIdOf(sent[0]!.message)!;
    expect(cmdId).toMatch(/hello/);
    expect(asker.ownReply('some-other-command')).toBe(false);
    expect(asker.ownReply(cmdId)).toBe(true);
    expect(asker.ownReply(cmdId)).toBe(false);
    dispose();
  });

  it('a link that cannot send still counts as asked (no retry storm)', () => {
    const { asker, sent, link, dispose } = rig(false);
    asker.ask('pump-7', link);
    asker.ask('pump-7', link);
    expect(sent).toHaveLength(1);
    dispose();
  });

  it('asks only when the gate allows, and the gate is asked only when it would send', () => {
    const { asker, sent, link, dispose } = rig();
    let allowed = 0;
    const gate = () => allowed++ < 1;
    asker.ask('stranger-1', link, gate);
    asker.ask('stranger-1', link, gate); // within the interval: the gate is not even asked
    asker.ask('stranger-2', link, gate); // refused by the gate: not sent, not remembered
    expect(sent.map((s) => s.deviceId)).toEqual(['stranger-1']);
    expect(allowed).toBe(2);
    asker.ask('stranger-2', link);
    expect(sent.map((s) => s.deviceId)).toEqual(['stranger-1', 'stranger-2']);
    dispose();
  });

  it('remembers a bounded number of asks: past it the oldest may be asked again early', () => {
    const { asker, sent, link, dispose } = rig();
    for (let i = 0; i <= 20_000; i++) asker.ask(`d${i}`, link);
    expect(sent).toHaveLength(20_001);
    asker.ask('d20000', link); // the newest is remembered
    expect(sent).toHaveLength(20_001);
    asker.ask('d0', link); // the oldest was forgotten
    expect(sent).toHaveLength(20_002);
    dispose();
  });
});
