/** `fleetvisor broker`: accounts from the command line, and Mosquitto's files (run through the real script once). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBrokerCli } from '../../src/host/broker-cli.js';
import { openBrokerAccounts } from '../../src/transports/broker-accounts.js';

const dir = mkdtempSync(join(tmpdir(), 'fv-broker-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(...argv: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = runBrokerCli(
    [...argv, '--data-dir', dir],
    {},
    { out: (t) => (out += t), err: (t) => (err += t) },
  );
  return { code, out, err };
}

describe('fleetvisor broker', () => {
  it('adds a device and prints its secret once; the secret verifies; rotate and revoke work', async () => {
    const added = run('device', 'add', 'pump-7');
    expect(added.code).toBe(0);
    const secret = added.out.split('\n')[1]!;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const accounts = openBrokerAccounts(dir);
    expect((await accounts.verify('pump-7', Buffer.from(secret), 'pump-7')).ok).toBe(true);
    const rotated = run('device', 'rotate', 'pump-7').out.split('\n')[1]!;
    accounts.refresh();
    expect((await accounts.verify('pump-7', Buffer.from(secret), 'pump-7')).ok).toBe(false);
    expect((await accounts.verify('pump-7', Buffer.from(rotated), 'pump-7')).ok).toBe(true);
    expect(run('device', 'revoke', 'pump-7').out).toContain('revoked pump-7');
    accounts.refresh();
    expect((await accounts.verify('pump-7', Buffer.from(rotated), 'pump-7')).ok).toBe(false);
    expect(run('devices').out).toMatch(/pump-7\trevoked/);
  });

  it('refuses a bad id or command with a clear message', () => {
    const bad = run('device', 'add', 'a/b');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("'/'");
    expect(run('frobnicate').code).toBe(2);
    expect(run('device', 'add').err).toContain('device needs add|rotate|revoke');
  });

  it('writes the Mosquitto password file (hashes only) and the pattern ACL, through the real script', () => {
    run('device', 'add', 'valve-1');
    const out = join(dir, 'passwd');
    const r = spawnSync(
      process.execPath,
      ['scripts/fleetvisor.mjs', 'broker', 'mosquitto-passwd', '--data-dir', dir, '--out', out],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(0);
    const text = readFileSync(out, 'utf8');
    expect(text).toMatch(/^fleetvisor\.host:\$7\$101\$/m);
    expect(text).toMatch(/^valve-1:\$7\$101\$/m);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const acl = run('mosquitto-acl').out;
    expect(acl).toContain('pattern write fleetvisor/v1/%u/telemetry');
    expect(acl).toContain('pattern read fleetvisor/v1/%u/cmd');
    expect(acl).not.toContain('pattern write fleetvisor/v1/%u/cmd');
  });
});
