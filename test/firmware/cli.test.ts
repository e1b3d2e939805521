import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { genericDevice } from '../../src/devices/generic-device.js';
import { checkImage } from '../../src/firmware/check-image.js';
import type { CliIo } from '../../src/firmware/cli.js';
import { DEMO_DATABASE, runFirmwareCli } from '../../src/firmware/cli.js';
import { loadTrustedKeys, SAMPLE_KEY_FILE } from '../../src/firmware/keys.js';
import { DEMO_DATABASE_FILE_NAME } from '../../src/host/app.js';

const ASSETS = join(import.meta.dirname, '../../assets/firmware');

describe('fleetvisor firmware (keygen, sign, trust, import, list on a data folder)', () => {
  let dir: string;
  let data: string;
  let out: string[];
  let errs: string[];
  /** On the test's data folder, with `io` added to the command's own (an app's answer). */
  const runWith = (io: Pick<CliIo, 'appImages'>, ...argv: string[]) => {
    out = [];
    errs = [];
    return runFirmwareCli([...argv, '--data-dir', data], {
      stdout: (t) => out.push(t),
      stderr: (t) => errs.push(t),
      env: {},
      cwd: dir,
      ...io,
    });
  };
  const run = (...argv: string[]) => runWith({}, ...argv);
  const runNoData = (...argv: string[]) => {
    out = [];
    errs = [];
    return runFirmwareCli(argv, {
      stdout: (t) => out.push(t),
      stderr: (t) => errs.push(t),
      env: {},
      cwd: dir,
    });
  };
  const json = () => JSON.parse(out.join(''));
  const jsonErr = () => JSON.parse(errs.join(''));

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleetvisor-fw-cli-'));
    data = join(dir, 'data');
    writeFileSync(
      join(dir, 'app.bin'),
      new Uint8Array(5000).map((_, i) => i % 199),
    );
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a lab user goes from no key to an imported image, and sees it listed', async () => {
    expect(await runNoData('keygen', 'lab', '--json')).toBe(0);
    const { keyId } = json().value;
    expect(keyId).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(join(dir, 'lab.key')).mode & 0o777).toBe(0o600);
    expect(await runNoData('keygen', 'lab')).toBe(1);
    expect(errs.join('')).toMatch(/exists already/);

    expect(
      await runNoData(
        'sign',
        'app.bin',
        '--key',
        'lab.key',
        '--version',
        '1.1.0',
        '--kind',
        'fleetvisor.generic',
      ),
    ).toBe(0);
    const manifest = JSON.parse(readFileSync(join(dir, 'app.bin.manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({ signed: { version: '1.1.0', size: 5000 }, signature: { keyId } });

    // Not trusted yet: refused, nothing stored.
    expect(await run('import', 'app.bin', '--json')).toBe(1);
    expect(jsonErr().error.code).toBe('unknownKey');
    expect(await run('list', '--json')).toBe(0);
    expect(json().value.images).toEqual([]);

    expect(await run('trust', 'lab.pub')).toBe(0);
    expect(await run('import', 'app.bin', '--json')).toBe(0);
    expect(json().value).toMatchObject({ created: true, image: { version: '1.1.0', importedBy: 'cli' } });
    expect(await run('import', 'app.bin', '--json')).toBe(0);
    expect(json().value.created).toBe(false);

    expect(await run('list')).toBe(0);
    expect(out.join('')).toMatch(/1\.1\.0\s+fleetvisor\.generic\s+5000 B/);
  });

  it('list takes what runs each image from the app running on the folder, for the rows of this same file only', async () => {
    expect(await runNoData('keygen', 'lab')).toBe(0);
    expect(
      await runNoData(
        'sign',
        'app.bin',
        '--key',
        'lab.key',
        '--version',
        '1.1.0',
        '--kind',
        'fleetvisor.generic',
      ),
    ).toBe(0);
    expect(await run('trust', 'lab.pub')).toBe(0);
    expect(await run('import', 'app.bin', '--json')).toBe(0);
    const { sha256, importedAt } = json().value.image as { sha256: string; importedAt: number };
    // What the app answers (on PostgreSQL the fleet's devices are not in the data folder's file).
    let answer: { sha256: string; importedAt: number; runningOn: string[] }[] | undefined;
    const withApp = (...argv: string[]) =>
      runWith(
        {
          appImages: async (asked) => {
            expect(asked).toBe(data);
            return answer;
          },
        },
        ...argv,
      );
    answer = [{ sha256, importedAt, runningOn: ['pump-7', 'pump-9'] }];
    expect(await withApp('list')).toBe(0);
    expect(out.join('')).toMatch(/running on 2: pump-7, pump-9/);
    // Another database's row of the same image (the demo's, another import): not this file's.
    answer = [{ sha256, importedAt: importedAt + 1, runningOn: ['elsewhere-1'] }];
    expect(await withApp('list')).toBe(0);
    expect(out.join('')).toMatch(/running on 0/);
    answer = undefined; // no app runs on the folder
    expect(await withApp('list')).toBe(0);
    expect(out.join('')).toMatch(/running on 0/);
  });

  it('refusals name their code; a downgrade needs --allow-downgrade', async () => {
    await runNoData('keygen', 'lab');
    await run('trust', 'lab.pub');
    await runNoData(
      'sign',
      'app.bin',
      '--key',
      'lab.key',
      '--version',
      '2.0.0',
      '--kind',
      'fleetvisor.generic',
    );
    expect(await run('import', 'app.bin')).toBe(0);

    writeFileSync(join(dir, 'old.bin'), new Uint8Array(100).fill(7));
    await runNoData(
      'sign',
      'old.bin',
      '--key',
      'lab.key',
      '--version',
      '1.0.0',
      '--kind',
      'fleetvisor.generic',
    );
    expect(await run('import', 'old.bin')).toBe(1);
    expect(errs.join('')).toMatch(/^fleetvisor firmware: downgrade: /);
    expect(await run('import', 'old.bin', '--allow-downgrade', '--json')).toBe(0);
    expect(json().value.image.downgradeFrom).toBe('2.0.0');

    writeFileSync(join(dir, 'old.bin'), new Uint8Array(99).fill(7));
    expect(await run('import', 'old.bin', '--json')).toBe(1);
    expect(jsonErr().error.code).toBe('truncated');

    await runNoData('sign', 'app.bin', '--key', 'lab.key', '--version', '1.5.0', '--kind', 'homie.device');
    expect(await run('import', 'app.bin', '--json')).toBe(1);
    expect(jsonErr().error.code).toBe('unknownKind');
  });

  it('delete removes an unused image by its hash (or a unique prefix), and refuses an unknown one', async () => {
    await runNoData('keygen', 'lab');
    await run('trust', 'lab.pub');
    await runNoData(
      'sign',
      'app.bin',
      '--key',
      'lab.key',
      '--version',
      '1.0.0',
      '--kind',
      'fleetvisor.generic',
    );
    await run('import', 'app.bin', '--json');
    const sha: string = json().value.image.sha256;
    expect(await run('delete', sha.slice(0, 12), '--json')).toBe(0);
    expect(json().value.image.sha256).toBe(sha);
    expect(await run('list', '--json')).toBe(0);
    expect(json().value.images).toEqual([]);
    expect(await run('delete', sha.slice(0, 12), '--json')).toBe(1);
    expect(jsonErr().error.code).toBe('notFound');
    expect(await run('delete', 'abc')).toBe(2);
  });

  it("sign --soak declares the soak of the image's rollouts; the list shows it; a bad one is a usage error", async () => {
    await runNoData('keygen', 'lab');
    await run('trust', 'lab.pub');
    const sign = (...more: string[]) =>
      runNoData(
        'sign',
        'app.bin',
        '--key',
        'lab.key',
        '--version',
        '1.0.0',
        '--kind',
        'fleetvisor.generic',
        ...more,
      );
    for (const bad of ['--soak=-5', '--soak=1.5', '--soak=86401', '--soak=soon']) {
      expect(await sign(bad)).toBe(2);
      expect(errs.join('')).toContain('--soak takes whole seconds from 0 to 86400');
    }
    expect(await sign('--soak', '600')).toBe(0);
    expect(out.join('')).toContain('soak:     600 s between the waves of its rollouts');
    const manifest = JSON.parse(readFileSync(join(dir, 'app.bin.manifest.json'), 'utf8'));
    expect(manifest.signed.soakSeconds).toBe(600);
    expect(await run('import', 'app.bin')).toBe(0);
    expect(await run('list')).toBe(0);
    expect(out.join('')).toMatch(/1\.0\.0 .* soak 600 s/);
  });

  it('sign --trial declares how long each device runs the image on trial; the list shows it; a bad one is a usage error', async () => {
    await runNoData('keygen', 'lab');
    await run('trust', 'lab.pub');
    const sign = (...more: string[]) =>
      runNoData(
        'sign',
        'app.bin',
        '--key',
        'lab.key',
        '--version',
        '1.0.0',
        '--kind',
        'fleetvisor.generic',
        ...more,
      );
    for (const bad of ['--trial=0', '--trial=-5', '--trial=1.5', '--trial=86401', '--trial=soon']) {
      expect(await sign(bad)).toBe(2);
      expect(errs.join('')).toContain('--trial takes whole seconds from 1 to 86400');
    }
    expect(await sign('--trial', '120')).toBe(0);
    expect(out.join('')).toContain('trial:    120 s on each device before it is confirmed');
    const manifest = JSON.parse(readFileSync(join(dir, 'app.bin.manifest.json'), 'utf8'));
    expect(manifest.signed.trialSeconds).toBe(120);
    expect(manifest.signed).not.toHaveProperty('soakSeconds');
    expect(await run('import', 'app.bin')).toBe(0);
    expect(await run('list')).toBe(0);
    expect(out.join('')).toMatch(/1\.0\.0 .* trial 120 s/);
  });

  it('usage errors exit 2 with the reason', async () => {
    expect(await runNoData('sign', 'app.bin', '--version', '1.0.0')).toBe(2);
    expect(errs.join('')).toMatch(/--key/);
    expect(await runNoData('sign', 'app.bin', '--key', 'x', '--version', 'latest', '--kind', 'k')).toBe(2);
    expect(errs.join('')).toMatch(/badVersion/);
    expect(await runNoData('frobnicate')).toBe(2);
    expect(await runNoData('list', '--bogus')).toBe(2);
    expect(await runNoData()).toBe(2);
  });

  it('the demo database trusts the sample key; the sample image imports into it', async () => {
    expect(DEMO_DATABASE).toBe(DEMO_DATABASE_FILE_NAME);
    expect(await run('import', join(ASSETS, 'sample-1.1.0.bin'), '--demo', '--json')).toBe(0);
    expect(json().value).toMatchObject({
      database: join(data, 'demo.sqlite'),
      image: { version: '1.1.0', kinds: ['fleetvisor.generic'] },
    });
    // The real fleet's database does not trust it; with the demo's beside it, the refusal says
    // where the sample goes (a newcomer's `npm start` runs the demo).
    expect(await run('import', join(ASSETS, 'sample-1.1.0.bin'), '--json')).toBe(1);
    expect(jsonErr().error.code).toBe('unknownKey');
    expect(jsonErr().error.message).toMatch(/For the demo fleet .* trusts the sample key: add --demo$/);
  });

  it('without a demo database, an unknown key is refused without the demo hint', async () => {
    expect(await run('import', join(ASSETS, 'sample-1.1.0.bin'), '--json')).toBe(1);
    expect(jsonErr().error.code).toBe('unknownKey');
    expect(jsonErr().error.message).not.toMatch(/--demo/);
  });

  it('the sample in assets/ is signed by its key and fits the generic kind’s slot', () => {
    const keys = loadTrustedKeys({ files: [SAMPLE_KEY_FILE] });
    if (!keys.ok) throw new Error(keys.error.message);
    const r = checkImage({
      manifest: readFileSync(join(ASSETS, 'sample-1.1.0.bin.manifest.json')),
      image: readFileSync(join(ASSETS, 'sample-1.1.0.bin')),
      trustedKeys: keys.value,
      kinds: new Map([[genericDevice.kind, genericDevice]]),
      stored: [],
      allowDowngrade: false,
    });
    expect(r).toMatchObject({ ok: true, value: { manifest: { signed: { version: '1.1.0' } } } });
  });

  it('`fleetvisor firmware` runs from any folder through the command entry', () => {
    const r = spawnSync(
      process.execPath,
      [
        join(import.meta.dirname, '../../scripts/fleetvisor.mjs'),
        'firmware',
        'list',
        '--json',
        '--data-dir',
        data,
      ],
      { cwd: dir, encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, value: { images: [] } });
  });
});
