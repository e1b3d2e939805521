/**
 * What one pass changes on the broker (planDynsecSync), as a table: which accounts are made with
 * their handed-over secret, which clients are deleted, and which are never touched (the host's,
 * the broker admin's, another instance's, a demo's). The pass on a real Mosquitto:
 * test/host/app/broker-accounts-sync.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { DeviceAccountView } from '../../src/transports/broker-accounts.js';
import { deviceRoleName, dynsecOwnerText } from '../../src/transports/broker-accounts-dynsec.js';
import type { DynsecClientInfo } from '../../src/transports/mosquitto-dynsec-sync.js';
import { planDynsecSync } from '../../src/transports/mosquitto-dynsec-sync.js';

const OWNER = '3f9a0c21';
const live = (id: string): DeviceAccountView => ({
  id,
  createdAt: 1,
  revokedAt: null,
  convention: { convention: 'native' },
});
const revoked = (id: string): DeviceAccountView => ({
  id,
  createdAt: null,
  revokedAt: 2,
  convention: { convention: 'native' },
});
const ours = (id: string, owner = OWNER): DynsecClientInfo => ({
  username: id,
  textdescription: dynsecOwnerText(owner),
  roles: [deviceRoleName(id)],
});
const unmarked = (id: string): DynsecClientInfo => ({ username: id, roles: [deviceRoleName(id)] });
const admins = (id: string): DynsecClientInfo => ({ username: id, roles: ['dashboards'] });

const plan = (
  accounts: DeviceAccountView[],
  clients: DynsecClientInfo[],
  secrets: Record<string, string> = {},
) => planDynsecSync({ accounts, clients, secrets: new Map(Object.entries(secrets)), owner: OWNER });

describe('planDynsecSync', () => {
  it.each([
    ['a new account with its secret is made', [live('a')], [], { a: 's' }, { make: ['a'] }],
    ['a rotated account (client there) is made again', [live('a')], [ours('a')], { a: 's' }, { make: ['a'] }],
    [
      'a client from an older plugin file (no mark) is made again too',
      [live('a')],
      [unmarked('a')],
      { a: 's' },
      { make: ['a'] },
    ],
    ['an account in step is left alone', [live('a')], [ours('a')], {}, {}],
    ['an account with no client and no secret is missing', [live('a')], [], {}, { missing: ['a'] }],
    [
      'a revoked account: its client goes, marked or not',
      [revoked('a'), revoked('b')],
      [ours('a'), unmarked('b')],
      {},
      { remove: ['a', 'b'] },
    ],
    ['a revoked account with no client: nothing', [revoked('a')], [], {}, {}],
    ['a client of ours with no account goes', [], [ours('gone')], {}, { remove: ['gone'] }],
    [
      'an unmarked device-like client with no account stays (a demo, an admin)',
      [],
      [unmarked('demo-m001')],
      {},
      {},
    ],
    ["another instance's client stays", [], [ours('x', 'aaaaaaaa')], {}, {}],
    [
      "the admin's clients and the host stay",
      [],
      [admins('tool'), { username: 'fleetvisor.host', roles: ['fleetvisor-host'] }],
      {},
      {},
    ],
    [
      'a revoked account whose name the admin uses for another client: that client stays',
      [revoked('tool')],
      [admins('tool')],
      {},
      {},
    ],
    [
      'a secret for a name the admin uses: a conflict, nothing forced',
      [live('tool')],
      [admins('tool')],
      { tool: 's' },
      { conflicts: ['tool'] },
    ],
  ] as const)('%s', (_what, accounts, clients, secrets, expected) => {
    const p = plan([...accounts], [...clients], secrets);
    expect({
      make: p.make.map((m) => m.id),
      remove: p.remove,
      missing: p.missing,
      conflicts: p.conflicts,
    }).toEqual({ make: [], remove: [], missing: [], conflicts: [], ...expected });
  });

  it("makes an account with its secret and its convention's topics", () => {
    const homie: DeviceAccountView = {
      ...live('boiler'),
      convention: { convention: 'homie', base: 'homie' },
    };
    expect(plan([homie], [], { boiler: 'pw' }).make).toEqual([
      { id: 'boiler', secret: 'pw', rights: { convention: 'homie', base: 'homie' } },
    ]);
  });
});
