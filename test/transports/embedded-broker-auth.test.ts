/**
 * Unit tests of the embedded broker's gatekeeping without a broker: the refusal counter, the
 * three aedes hooks called directly (their order of checks, their answers to aedes), the
 * provisioning hello rule.
 */
import type { AuthenticateError, Client, PublishPacket, Subscription } from 'aedes';
import { describe, expect, it } from 'vitest';
import { parseDeviceId } from '../../src/devices/device-id.js';
import type { Result } from '../../src/lib/result.js';
import type { Logger } from '../../src/runtime/runtime.js';
import type { BrokerAccounts, BrokerRefusal } from '../../src/transports/broker-accounts.js';
import type { BrokerPrincipal } from '../../src/transports/broker-acl.js';
import type { Principals } from '../../src/transports/embedded-broker-auth.js';
import {
  createAccessHooks,
  createRefusalCounter,
  MAX_REFUSAL_CLIENTS,
  provisioningHelloCheck,
} from '../../src/transports/embedded-broker-auth.js';
import { topicFor } from '../../src/transports/protocol-topics.js';

type Line = { level: string; message: string; fields: Record<string, unknown> | undefined };
function recordingLogger(): Logger & { lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push({ level, message, fields });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function deviceId(s: string) {
  const r = parseDeviceId(s);
  if (!r.ok) throw new Error(s);
  return r.value;
}

const client = (id: string): Client => ({ id }) as unknown as Client;
const publish = (topic: string, payload: string | Buffer = 'x'): PublishPacket => ({
  cmd: 'publish',
  topic,
  payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
  qos: 0,
  retain: false,
  dup: false,
});

/** Calls authorizePublish and returns the error message it answered, or null for allowed. */
function authorize(
  hooks: ReturnType<typeof createAccessHooks>,
  who: Client | null,
  packet: PublishPacket,
): string | null {
  let answer: string | null | undefined;
  hooks.authorizePublish?.(who, packet, (error) => {
    answer = error ? error.message : null;
  });
  if (answer === undefined) throw new Error('authorizePublish did not answer at once');
  return answer;
}

/** Only `verify` is used by the hooks; the rest of the accounts is not reached. */
function stubAccounts(verify: () => Promise<Result<BrokerPrincipal, BrokerRefusal>>): BrokerAccounts {
  return { verify } as unknown as BrokerAccounts;
}

describe('createRefusalCounter', () => {
  it('counts per client, most recent first; the first refusal warns, repeats log at debug', () => {
    const logger = recordingLogger();
    const refusals = createRefusalCounter(logger);
    refusals.refuse('connect', 'a', 'user-a', 'badCredentials');
    refusals.refuse('publish', 'b', null, 't: no');
    refusals.refuse('subscribe', 'a', null, '#: no');
    const stats = refusals.stats();
    expect({ connect: stats.connect, publish: stats.publish, subscribe: stats.subscribe }).toEqual({
      connect: 1,
      publish: 1,
      subscribe: 1,
    });
    expect(stats.clients.map((c) => c.clientId)).toEqual(['a', 'b']);
    expect(stats.clients[0]).toMatchObject({
      username: 'user-a', // kept from the connect refusal
      connect: 1,
      publish: 0,
      subscribe: 1,
      lastReason: '#: no',
    });
    expect(logger.lines.map((l) => l.level)).toEqual(['warn', 'warn', 'debug']);
    expect(logger.lines[0]?.fields).toEqual({
      clientId: '"a"',
      username: '"user-a"',
      reason: 'badCredentials',
    });
  });

  it(`lists at most ${MAX_REFUSAL_CLIENTS} clients, dropping the oldest; totals still count`, () => {
    const refusals = createRefusalCounter(recordingLogger());
    for (let i = 0; i <= MAX_REFUSAL_CLIENTS; i++) refusals.refuse('connect', `c${i}`, null, 'noCredentials');
    const stats = refusals.stats();
    expect(stats.connect).toBe(MAX_REFUSAL_CLIENTS + 1);
    expect(stats.clients).toHaveLength(MAX_REFUSAL_CLIENTS);
    expect(stats.clients[0]?.clientId).toBe(`c${MAX_REFUSAL_CLIENTS}`);
    expect(stats.clients.some((c) => c.clientId === 'c0')).toBe(false);
  });

  it('truncates client ids and usernames to 128 characters', () => {
    const refusals = createRefusalCounter(recordingLogger());
    refusals.refuse('connect', 'x'.repeat(300), 'u'.repeat(300), 'badCredentials');
    const [entry] = refusals.stats().clients;
    expect(entry?.clientId).toHaveLength(128);
    expect(entry?.username).toHaveLength(128);
  });
});

describe('createAccessHooks without accounts', () => {
  const hooks = createAccessHooks({
    auth: undefined,
    principals: new WeakMap(),
    refusals: createRefusalCounter(recordingLogger()),
    logger: recordingLogger(),
    maxPayloadBytes: 10,
  });

  it('leaves authenticate and authorizeSubscribe out (aedes keeps its defaults)', () => {
    expect(Object.keys(hooks)).toEqual(['authorizePublish']);
  });

  it('still refuses an oversized payload and $SYS, and lets anything else through', () => {
    expect(authorize(hooks, client('a'), publish('any/topic', 'x'.repeat(11)))).toBe(
      'payload of 11 bytes exceeds 10',
    );
    expect(authorize(hooks, client('a'), publish('$SYS/broker'))).toBe('$SYS topics are reserved');
    expect(authorize(hooks, client('a'), publish('any/topic', 'x'.repeat(10)))).toBeNull();
    expect(authorize(hooks, null, publish('any/topic'))).toBeNull();
  });
});

describe('createAccessHooks with accounts', () => {
  function setup(
    verify: () => Promise<Result<BrokerPrincipal, BrokerRefusal>> = async () => ({
      ok: false,
      error: 'badCredentials',
    }),
  ) {
    const logger = recordingLogger();
    const principals: Principals = new WeakMap();
    const refusals = createRefusalCounter(logger);
    const hooks = createAccessHooks({
      auth: stubAccounts(verify),
      principals,
      refusals,
      logger,
      maxPayloadBytes: 100,
    });
    return { logger, principals, refusals, hooks };
  }
  const pump = deviceId('pump-7');

  it('checks size first, then $SYS, then the ACL; only ACL refusals are counted', () => {
    const { principals, refusals, hooks } = setup();
    const host = client('fleetvisor-host');
    principals.set(host, { principal: { role: 'host' }, at: 0 });
    expect(authorize(hooks, host, publish('$SYS/x', 'x'.repeat(101)))).toMatch(/exceeds 100/);
    expect(authorize(hooks, host, publish('$SYS/x'))).toBe('$SYS topics are reserved');
    expect(authorize(hooks, host, publish(topicFor(pump, 'cmd')))).toBeNull();
    expect(refusals.stats().publish).toBe(0);

    const device = client('pump-7');
    principals.set(device, { principal: { role: 'device', id: pump, via: 'account' }, at: 0 });
    expect(authorize(hooks, device, publish(topicFor(pump, 'hello')))).toBeNull();
    expect(authorize(hooks, device, publish(topicFor(deviceId('pump-8'), 'hello')))).toMatch(
      /^device pump-7 may publish only on/,
    );
    expect(authorize(hooks, device, publish(topicFor(pump, 'cmd')))).toMatch(/may publish only on/);
    expect(refusals.stats().clients).toMatchObject([{ clientId: 'pump-7', publish: 2 }]);
  });

  it('refuses a client nobody vouched for, and a will with no client', () => {
    const { refusals, hooks } = setup();
    expect(authorize(hooks, client('stranger'), publish('a/b'))).toBe('not authenticated');
    expect(authorize(hooks, null, publish('a/b'))).toBe('not authenticated');
    expect(refusals.stats().clients.map((c) => [c.clientId, c.lastReason])).toEqual([
      ['(none)', 'a/b: not authenticated'],
      ['stranger', 'a/b: not authenticated'],
    ]);
  });

  it('a provisioned device says hello only as its own kind', () => {
    const { principals, hooks } = setup();
    const device = client('pump-9');
    const id = deviceId('pump-9');
    principals.set(device, { principal: { role: 'device', id, via: 'provisioning', kind: 'pump' }, at: 0 });
    const hello = topicFor(id, 'hello');
    expect(authorize(hooks, device, publish(hello, JSON.stringify({ kind: 'pump' })))).toBeNull();
    expect(authorize(hooks, device, publish(hello, JSON.stringify({ kind: 'valve' })))).toBe(
      "provisioned as kind 'pump', its hello names another kind",
    );
  });

  it('authenticate answers aedes with the MQTT return code of each refusal', async () => {
    const answers: [BrokerRefusal, number][] = [
      ['noCredentials', 4],
      ['badCredentials', 4],
      ['clientIdMismatch', 5],
      ['busy', 3],
    ];
    for (const [refusal, code] of answers) {
      const { hooks, refusals } = setup(async () => ({ ok: false, error: refusal }));
      const done = await new Promise<[AuthenticateError | null, boolean | null]>((resolve) =>
        hooks.authenticate?.(client('pump-7'), 'pump-7', Buffer.from('s'), (e, ok) => resolve([e, ok])),
      );
      expect(done[1]).toBe(false);
      expect(done[0]?.message).toBe(refusal);
      expect((done[0] as { returnCode?: number } | null)?.returnCode).toBe(code);
      expect(refusals.stats().connect).toBe(1);
    }
  });

  it('authenticate remembers who got in; a failing check is "server unavailable", not counted', async () => {
    const ok = setup(async () => ({ ok: true, value: { role: 'device', id: pump, via: 'account' } }));
    const c = client('pump-7');
    const accepted = await new Promise<boolean | null>((resolve) =>
      ok.hooks.authenticate?.(c, 'pump-7', Buffer.from('s'), (_e, success) => resolve(success)),
    );
    expect(accepted).toBe(true);
    expect(ok.principals.get(c)?.principal).toEqual({ role: 'device', id: pump, via: 'account' });

    const failing = setup(() => Promise.reject(new Error('disk')));
    const error = await new Promise<AuthenticateError | null>((resolve) =>
      failing.hooks.authenticate?.(client('x'), 'x', Buffer.from('s'), (e) => resolve(e)),
    );
    expect((error as { returnCode?: number } | null)?.returnCode).toBe(3);
    expect(failing.logger.lines.map((l) => l.level)).toEqual(['error']);
    expect(failing.refusals.stats().connect).toBe(0);
  });

  it('authorizeSubscribe refuses a filter with SUBACK 0x80 (null) and counts it', () => {
    const { principals, refusals, hooks } = setup();
    const device = client('pump-7');
    principals.set(device, { principal: { role: 'device', id: pump, via: 'account' }, at: 0 });
    const results: (Subscription | null | undefined)[] = [];
    const subscribe = (who: Client, topic: string) =>
      hooks.authorizeSubscribe?.(who, { topic, qos: 0 }, (error, sub) => {
        expect(error).toBeNull();
        results.push(sub);
      });
    subscribe(device, topicFor(pump, 'cmd'));
    subscribe(device, '#');
    subscribe(client('stranger'), topicFor(pump, 'cmd'));
    expect(results.map((s) => s?.topic ?? null)).toEqual([topicFor(pump, 'cmd'), null, null]);
    expect(refusals.stats().subscribe).toBe(2);
  });
});

describe('provisioningHelloCheck', () => {
  const id = deviceId('pump-9');
  const provisioned: BrokerPrincipal = { role: 'device', id, via: 'provisioning', kind: 'pump' };
  const hello = topicFor(id, 'hello');
  it.each([
    [
      'an account device',
      { role: 'device', id, via: 'account' } as BrokerPrincipal,
      hello,
      '{"kind":"valve"}',
      true,
    ],
    ['the host', { role: 'host' } as BrokerPrincipal, hello, '{"kind":"valve"}', true],
    ['another channel', provisioned, topicFor(id, 'status'), '{"kind":"valve"}', true],
    ['an empty hello (clearing the retained one)', provisioned, hello, '', true],
    ['a hello that is not JSON', provisioned, hello, 'not json', true],
    ['its own kind', provisioned, hello, '{"kind":"pump"}', true],
    ['another kind', provisioned, hello, '{"kind":"valve"}', false],
    ['no kind', provisioned, hello, '{}', false],
  ])('%s', (_name, principal, topic, payload, passes) => {
    expect(provisioningHelloCheck(principal, topic, payload) === undefined).toBe(passes);
  });
});
