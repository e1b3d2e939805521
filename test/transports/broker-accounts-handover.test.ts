/**
 * New secrets handed to the host (broker-accounts-handover.ts): written only while the host
 * takes them, readable by the user alone, gone when the folder is closed; and issueDevice hands
 * the secret over before the accounts file says the account changed.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openBrokerAccounts } from '../../src/transports/broker-accounts.js';
import {
  closeHandover,
  dropHandover,
  HANDOVER_DIR,
  handOver,
  handoverOpen,
  openHandover,
  readHandovers,
} from '../../src/transports/broker-accounts-handover.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const dataDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'fv-handover-'));
  dirs.push(d);
  return d;
};

describe('broker account handover', () => {
  it('writes nothing unless the host opened the folder', () => {
    const dir = dataDir();
    const accounts = openBrokerAccounts(dir);
    accounts.issueDevice('pump-1');
    expect(handoverOpen(dir)).toBe(false);
    expect(handOver(dir, 'pump-1', 'secret')).toBe(false);
    expect(readHandovers(dir)).toEqual([]);
  });

  it('hands over each new secret (0600 in a 0700 folder) until dropped or closed', async () => {
    const dir = dataDir();
    const accounts = openBrokerAccounts(dir);
    openHandover(dir);
    const first = accounts.issueDevice('pump-1');
    const second = accounts.issueDevice('pump-1'); // a rotation: both kept, the host checks which is current
    const found = readHandovers(dir);
    expect(found.map((h) => [h.id, h.secret]).sort()).toEqual(
      [
        ['pump-1', first],
        ['pump-1', second],
      ].sort(),
    );
    expect(statSync(join(dir, HANDOVER_DIR)).mode & 0o777).toBe(0o700);
    for (const h of found) expect(statSync(h.file).mode & 0o777).toBe(0o600);
    // The account checks the current one only.
    expect((await accounts.verify('pump-1', Buffer.from(second), 'pump-1')).ok).toBe(true);
    expect((await accounts.verify('pump-1', Buffer.from(first), 'pump-1')).ok).toBe(false);
    dropHandover(found.find((h) => h.secret === first)!);
    expect(readHandovers(dir).map((h) => h.secret)).toEqual([second]);
    closeHandover(dir);
    expect(handoverOpen(dir)).toBe(false);
    expect(readHandovers(dir)).toEqual([]);
  });
});
