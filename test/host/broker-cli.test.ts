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

  it('writes the dynamic security configuration: every account hashed, each device bound to its client id, the host to none', () => {
    run('device', 'add', 'boiler', '--convention', 'homie');
    const out = join(dir, 'dynsec.json');
    const r = spawnSync(
      process.execPath,
      ['scripts/fleetvisor.mjs', 'broker', 'mosquitto-dynsec', '--data-dir', dir, '--out', out],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    // The mosquitto.conf lines, naming the file just written.
    expect(r.stdout).toContain(`plugin_opt_config_file ${out}`);
    expect(r.stdout).toMatch(/^plugin \/\S+mosquitto_dynamic_security\.so$/m);
    expect(r.stdout).toContain('allow_anonymous false');
    const config = JSON.parse(readFileSync(out, 'utf8')) as {
      clients: { username: string; clientid?: string; password: string; salt: string; iterations: number }[];
      roles: { rolename: string; acls: { acltype: string; topic: string }[] }[];
    };
    const byName = new Map(config.clients.map((c) => [c.username, c]));
    expect(byName.get('fleetvisor.host')?.clientid).toBeUndefined();
    expect(byName.get('valve-1')?.clientid).toBe('valve-1');
    expect(byName.get('boiler')?.clientid).toBe('boiler');
    expect(byName.has('pump-7')).toBe(false); // revoked above
    // The same PBKDF2 hash as the password file, in the plugin's three fields.
    const passwd = run('mosquitto-passwd').out;
    for (const c of config.clients)
      expect(passwd).toContain(`${c.username}:$7$${c.iterations}$${c.salt}$${c.password}\n`);
    const valve = config.roles.find((role) => role.rolename === 'fleetvisor-device-valve-1');
    expect(valve?.acls).toContainEqual({
      acltype: 'subscribeLiteral',
      topic: 'fleetvisor/v1/valve-1/cmd',
      allow: true,
    });
    expect(valve?.acls.some((a) => a.topic.includes('#') || a.topic.includes('+'))).toBe(false);
    // Without --out: the JSON alone, for a pipe.
    expect(() => JSON.parse(run('mosquitto-dynsec').out)).not.toThrow();
  });
});
