/**
 * Unit tests of who credentials make a client, on hand-made accounts and a fake secret checker
 * (no scrypt, no file): the order of the checks and what each refusal is.
 */
import { describe, expect, it } from 'vitest';
import type { AccountsFile } from '../../src/transports/broker-accounts-file.js';
import type { HashedSecret, SecretChecker } from '../../src/transports/broker-accounts-hash.js';
import { BusyError } from '../../src/transports/broker-accounts-hash.js';
import { isStillValid, verifyCredentials } from '../../src/transports/broker-accounts-verify.js';
import type { BrokerPrincipal } from '../../src/transports/broker-acl.js';
import { HOST_USERNAME } from '../../src/transports/broker-acl.js';
import { parseDeviceId } from '../../src/transports/protocol.js';

/** A "hash" that is the secret itself, for a checker that compares them. */
const secret = (s: string, createdAt = 100): HashedSecret => ({ scrypt: s, mosquitto: `$7$${s}`, createdAt });

function fakeChecker(): SecretChecker & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async check(username, against, password) {
      calls.push(username);
      return password.toString() === against.scrypt;
    },
  };
}

const data: AccountsFile = {
  version: 1,
  host: secret('host-secret'),
  devices: {
    'pump-7': { secret: secret('pump-secret') },
    'homie-1': { secret: secret('homie-secret'), convention: { convention: 'homie', base: 'homie' } },
    'old-1': { revokedAt: 50 },
  },
  provisioning: { pump: secret('pump-kind-secret') },
};

function id(s: string) {
  const r = parseDeviceId(s);
  if (!r.ok) throw new Error(s);
  return r.value;
}

const verify = (
  checker: SecretChecker,
  user: string | undefined,
  pass: string | undefined,
  clientId: string,
) => verifyCredentials(data, checker, user, pass === undefined ? undefined : Buffer.from(pass), clientId);

describe('verifyCredentials', () => {
  it('wants a username and a password before anything is hashed', async () => {
    const checker = fakeChecker();
    for (const [u, p] of [
      [undefined, 'x'],
      ['', 'x'],
      ['pump-7', undefined],
      ['pump-7', ''],
    ] as const)
      expect(await verify(checker, u, p, 'pump-7')).toEqual({ ok: false, error: 'noCredentials' });
    expect(checker.calls).toEqual([]);
  });

  it('the host by its own secret only', async () => {
    const checker = fakeChecker();
    expect(await verify(checker, HOST_USERNAME, 'host-secret', 'any')).toEqual({
      ok: true,
      value: { role: 'host' },
    });
    expect(await verify(checker, HOST_USERNAME, 'pump-secret', 'any')).toEqual({
      ok: false,
      error: 'badCredentials',
    });
  });

  it('a device by its account, its client id its username, checked before its secret', async () => {
    const checker = fakeChecker();
    expect(await verify(checker, 'pump-7', 'pump-secret', 'pump-7')).toEqual({
      ok: true,
      value: { role: 'device', id: id('pump-7'), via: 'account' },
    });
    expect(await verify(checker, 'pump-7', 'pump-secret', 'other')).toEqual({
      ok: false,
      error: 'clientIdMismatch',
    });
    expect(await verify(checker, 'pump-7', 'wrong', 'pump-7')).toEqual({
      ok: false,
      error: 'badCredentials',
    });
    expect(await verify(checker, 'a/b', 'pump-secret', 'a/b')).toEqual({
      ok: false,
      error: 'badCredentials',
    });
    expect(checker.calls).toEqual(['pump-7', 'pump-7']);
  });

  it("a convention account may use another client id, but not the host's prefix or another account's id", async () => {
    const checker = fakeChecker();
    expect(await verify(checker, 'homie-1', 'homie-secret', 'random-123')).toEqual({
      ok: true,
      value: {
        role: 'device',
        id: id('homie-1'),
        via: 'account',
        rights: { convention: 'homie', base: 'homie' },
      },
    });
    for (const clientId of ['fleetvisor-x', 'pump-7', 'old-1'])
      expect(await verify(checker, 'homie-1', 'homie-secret', clientId)).toEqual({
        ok: false,
        error: 'clientIdMismatch',
      });
  });

  it('first contact by the kind secret; never for a revoked account or a reserved id', async () => {
    const checker = fakeChecker();
    expect(await verify(checker, 'pump-99', 'pump-kind-secret', 'pump-99')).toEqual({
      ok: true,
      value: { role: 'device', id: id('pump-99'), via: 'provisioning', kind: 'pump' },
    });
    expect(checker.calls).toEqual(['provisioning:pump']);
    expect(await verify(checker, 'old-1', 'pump-kind-secret', 'old-1')).toEqual({
      ok: false,
      error: 'badCredentials',
    });
    expect(await verify(checker, 'FleetVisor-9', 'pump-kind-secret', 'FleetVisor-9')).toEqual({
      ok: false,
      error: 'badCredentials',
    });
    // An account's own secret does not fall back to provisioning when wrong.
    expect(await verify(checker, 'pump-7', 'pump-kind-secret', 'pump-7')).toEqual({
      ok: false,
      error: 'badCredentials',
    });
    expect(checker.calls).toEqual(['provisioning:pump', 'pump-7']);
  });

  it("passes the checker's BusyError through (the accounts turn it into 'busy')", async () => {
    const busy: SecretChecker = {
      check: () => Promise.reject(new BusyError()),
    };
    await expect(verify(busy, 'pump-7', 'pump-secret', 'pump-7')).rejects.toBeInstanceOf(BusyError);
  });
});

describe('isStillValid', () => {
  const device = (s: string): BrokerPrincipal => ({ role: 'device', id: id(s), via: 'account' });
  it.each([
    ['the host', { role: 'host' } as BrokerPrincipal, 0, true],
    ['an account verified after its secret was made', device('pump-7'), 100, true],
    ['an account verified before a rotation', device('pump-7'), 99, false],
    ['a revoked account', device('old-1'), 1000, false],
    [
      'a provisioned device, its kind secret still there',
      { role: 'device', id: id('pump-99'), via: 'provisioning', kind: 'pump' } as BrokerPrincipal,
      0,
      true,
    ],
    [
      'a provisioned device whose kind secret was removed',
      { role: 'device', id: id('valve-1'), via: 'provisioning', kind: 'valve' } as BrokerPrincipal,
      0,
      false,
    ],
    [
      'a provisioned device that now has an account',
      { role: 'device', id: id('pump-7'), via: 'provisioning', kind: 'pump' } as BrokerPrincipal,
      1000,
      false,
    ],
  ])('%s', (_name, principal, verifiedAt, valid) => {
    expect(isStillValid(data, principal, verifiedAt)).toBe(valid);
  });
});
