/**
 * Start-up helpers of the Electron shell (electron/launch.ts): the app's own arguments, the
 * operator's name for the audit log, and the fuses the packaged app must have.
 */
import { describe, expect, it } from 'vitest';
import { appArgs, FUSES, operatorName } from '../../electron/launch.js';
import { parseCommandLine } from '../../src/host/main.js';

describe('appArgs', () => {
  it('skips electron and the app path in development, only the executable when packaged', () => {
    expect(appArgs(['/x/electron', '.', '--no-demo'], true)).toEqual(['--no-demo']);
    expect(appArgs(['/opt/Fleetvisor/fleetvisor', '--no-demo', '--serial', 'auto'], false)).toEqual([
      '--no-demo',
      '--serial',
      'auto',
    ]);
    expect(appArgs(['/Applications/Fleetvisor.app/x', '-psn_0_12345'], false)).toEqual([]);
  });

  it('gives parseCommandLine what it accepts', () => {
    const cli = parseCommandLine(
      appArgs(['/x/electron', '.', '--no-demo', '--data-dir', '/tmp/fv'], true),
      {},
    );
    expect(cli).toMatchObject({ help: false, options: { dataDir: '/tmp/fv', demo: false } });
  });
});

describe('operatorName', () => {
  it('is the OS user, bounded, or "operator"', () => {
    expect(operatorName(() => ({ username: 'ana' }))).toBe('ana');
    expect(operatorName(() => ({ username: '  ' }))).toBe('operator');
    expect(operatorName(() => ({ username: 'x'.repeat(100) }))).toHaveLength(64);
    expect(
      operatorName(() => {
        throw new Error('ENOENT: no passwd entry');
      }),
    ).toBe('operator');
  });
});

describe('FUSES', () => {
  it('turns off Node-as-a-backdoor and turns on asar integrity', () => {
    expect(FUSES).toEqual({
      RunAsNode: false,
      EnableNodeOptionsEnvironmentVariable: false,
      EnableNodeCliInspectArguments: false,
      EnableEmbeddedAsarIntegrityValidation: true,
      OnlyLoadAppFromAsar: true,
      EnableCookieEncryption: true,
      GrantFileProtocolExtraPrivileges: false,
    });
  });
});
