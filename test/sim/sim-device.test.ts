/**
 * The transport-independent device core, driven directly: `attach` with a recording `send`,
 * `receive` for host messages. The link behaviour is covered over real links in the other files.
 */
import { describe, expect, it } from 'vitest';
import { SimDevice } from '../../src/sim/sim-device.js';
import type { HeartbeatMessage, Message, ReplyMessage } from '../../src/transports/protocol.js';
import { encodeMessage } from '../../src/transports/protocol.js';
import { cmd, registerCleanups, waitFor } from './helpers.js';

const cleanup = registerCleanups();

function device(options: Partial<ConstructorParameters<typeof SimDevice>[0]> = {}): {
  d: SimDevice;
  sent: Message[];
} {
  const d = new SimDevice({ id: 'core-1', ...options });
  cleanup(() => d.stop());
  const sent: Message[] = [];
  d.attach((m) => {
    encodeMessage(m); // everything the device sends must be a valid v1 message
    sent.push(m);
  });
  return { d, sent };
}

const replies = (sent: Message[], cmdId: string) =>
  sent.filter((m): m is ReplyMessage => m.type === 'reply' && m.cmdId === cmdId);

describe('SimDevice', () => {
  it('validates its options', () => {
    expect(() => new SimDevice({ id: 'a/b' })).toThrow(/bad id/);
    expect(() => new SimDevice({ id: 'a', telemetryIntervalMs: 5 })).toThrow(/telemetryIntervalMs/);
    expect(() => new SimDevice({ id: 'a', boot: -1 })).toThrow(/boot/);
    expect(() => new SimDevice({ id: 'a', kind: 'has space' })).toThrow(/kind/);
  });

  it('uses the boot option and a random one otherwise', () => {
    const { d, sent } = device({ boot: 7, random: () => 0.5 });
    expect(d.boot).toBe(7);
    expect(sent[0]).toMatchObject({ type: 'hello', boot: 7 });
    const r = new SimDevice({ id: 'b', random: () => 0.5 });
    expect(r.boot).toBe(2 ** 31);
  });

  it('sends a heartbeat only when nothing else was sent for heartbeatMs', async () => {
    const { d, sent } = device({ telemetryIntervalMs: 3_600_000, heartbeatMs: 100 });
    await waitFor(() => sent.filter((m) => m.type === 'heartbeat').length >= 2, 5000, 'heartbeats');
    const hb = sent.find((m): m is HeartbeatMessage => m.type === 'heartbeat')!;
    expect(hb.boot).toBe(d.boot);
    expect(hb.uptimeMs).toBeGreaterThanOrEqual(50);

    // Busy with telemetry every 100 ms: no heartbeat at 1 s.
    const busy = device({ id: 'core-2', telemetryIntervalMs: 100, heartbeatMs: 1000 });
    await waitFor(() => busy.sent.filter((m) => m.type === 'telemetry').length >= 15, 10_000, 'telemetry');
    expect(busy.sent.some((m) => m.type === 'heartbeat')).toBe(false);
  });

  it('keeps the last 32 replies: a cmdId within them is not executed again', () => {
    const { d, sent } = device();
    const first = cmd('ping');
    d.receive(first);
    for (let i = 0; i < 31; i++) d.receive(cmd('ping'));
    d.receive(first);
    expect(d.executed.get(first.cmdId)).toBe(1);
    expect(replies(sent, first.cmdId)).toHaveLength(2);
    for (let i = 0; i < 32; i++) d.receive(cmd('ping'));
    d.receive(first); // evicted: a device keeps only so many
    expect(d.executed.get(first.cmdId)).toBe(2);
  });

  it('identify defaults to 5 s and sends an identify event with the shared seq', () => {
    const { d, sent } = device();
    d.receive(cmd('identify'));
    expect(d.identifying).toBe(true);
    const event = sent.find((m) => m.type === 'event');
    expect(event).toMatchObject({ name: 'identify', seq: 0, data: { seconds: 5 } });
    expect(d.seq).toBe(1);
  });

  it('ignores host messages while detached, muted or rebooting', async () => {
    const { d, sent } = device({ bootDelayMs: 50, boot: 5 });
    d.detach();
    d.receive(cmd('ping'));
    expect(d.ignored).toBe(1);
    d.attach((m) => sent.push(m));
    d.reboot();
    expect(d.rebooting).toBe(true);
    d.receive(cmd('ping'));
    expect(d.ignored).toBe(2);
    // Without transport hooks it re-attaches to the last link by itself after the boot delay.
    await waitFor(() => !d.rebooting && d.attached, 5000, 'the boot');
    expect(sent.filter((m) => m.type === 'hello').map((m) => m.type === 'hello' && m.boot)).toEqual([
      5, 5, 6,
    ]);
  });

  it('stop clears every timer and sends nothing more', async () => {
    const { d, sent } = device({ telemetryIntervalMs: 100, heartbeatMs: 100 });
    d.receive(cmd('identify', { seconds: 60 }));
    d.stop();
    const n = sent.length;
    d.receive(cmd('ping'));
    d.reboot();
    // A control device with the same timers shows that enough time passed for them to fire.
    const control = device({ id: 'core-3', telemetryIntervalMs: 100, heartbeatMs: 100 });
    await waitFor(() => control.sent.filter((m) => m.type === 'telemetry').length >= 3, 10_000, 'control');
    expect(sent.length).toBe(n);
    expect(d.isStopped).toBe(true);
  });
});
