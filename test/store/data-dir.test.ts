import { describe, expect, it } from 'vitest';
import type { DataDirInput } from '../../src/store/data-dir.js';
import { DATA_DIR_ENV, dataDirArg, resolveDataDir } from '../../src/store/data-dir.js';
import { StoreError } from '../../src/store/store.js';

const linux: DataDirInput = { env: {}, platform: 'linux', homeDir: '/home/ana', cwd: '/work' };

describe('resolveDataDir', () => {
  it.each<[string, DataDirInput, string]>([
    ['Linux default', linux, '/home/ana/.local/share/fleetvisor'],
    ['Linux with XDG_DATA_HOME', { ...linux, env: { XDG_DATA_HOME: '/data/xdg' } }, '/data/xdg/fleetvisor'],
    [
      'Linux ignores a relative XDG_DATA_HOME (XDG spec)',
      { ...linux, env: { XDG_DATA_HOME: 'rel/xdg' } },
      '/home/ana/.local/share/fleetvisor',
    ],
    ['other Unix follows XDG', { ...linux, platform: 'freebsd' }, '/home/ana/.local/share/fleetvisor'],
    [
      'macOS',
      { ...linux, platform: 'darwin', homeDir: '/Users/ana' },
      '/Users/ana/Library/Application Support/Fleetvisor',
    ],
    [
      'Windows with APPDATA',
      {
        env: { APPDATA: 'C:\\Users\\ana\\AppData\\Roaming' },
        platform: 'win32',
        homeDir: 'C:\\Users\\ana',
        cwd: 'C:\\',
      },
      'C:\\Users\\ana\\AppData\\Roaming\\Fleetvisor',
    ],
    [
      'Windows without APPDATA',
      { env: {}, platform: 'win32', homeDir: 'C:\\Users\\ana', cwd: 'C:\\' },
      'C:\\Users\\ana\\AppData\\Roaming\\Fleetvisor',
    ],
    [
      'FLEETVISOR_DATA_DIR overrides the OS convention',
      { ...linux, env: { [DATA_DIR_ENV]: '/srv/fv' } },
      '/srv/fv',
    ],
    [
      'a relative FLEETVISOR_DATA_DIR is taken from cwd',
      { ...linux, env: { [DATA_DIR_ENV]: 'fv-data' } },
      '/work/fv-data',
    ],
    [
      'an empty FLEETVISOR_DATA_DIR is ignored',
      { ...linux, env: { [DATA_DIR_ENV]: '  ' } },
      '/home/ana/.local/share/fleetvisor',
    ],
    [
      '--data-dir overrides FLEETVISOR_DATA_DIR',
      { ...linux, env: { [DATA_DIR_ENV]: '/srv/fv' }, explicit: '/mnt/usb/fv' },
      '/mnt/usb/fv',
    ],
    ['a relative --data-dir is taken from cwd', { ...linux, explicit: './here' }, '/work/here'],
    [
      'Windows --data-dir relative to cwd',
      { env: {}, platform: 'win32', homeDir: 'C:\\Users\\ana', cwd: 'D:\\fleet', explicit: 'data' },
      'D:\\fleet\\data',
    ],
  ])('%s', (_name, input, expected) => {
    expect(resolveDataDir(input)).toBe(expected);
  });

  it('refuses to guess without a home folder, naming the way out', () => {
    const error = catchError(() => resolveDataDir({ ...linux, homeDir: '' }));
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: 'invalidArgument', field: 'homeDir' });
    expect((error as Error).message).toContain(DATA_DIR_ENV);
  });
});

describe('dataDirArg', () => {
  it('reads --data-dir <path> and --data-dir=<path>; the last one wins', () => {
    expect(dataDirArg(['node', 'app'])).toBeUndefined();
    expect(dataDirArg(['node', 'app', '--data-dir', '/srv/fv'])).toBe('/srv/fv');
    expect(dataDirArg(['node', 'app', '--data-dir=/srv/fv', '--sim-only'])).toBe('/srv/fv');
    expect(dataDirArg(['--data-dir', 'a', '--data-dir=b'])).toBe('b');
  });

  it.each([[['--data-dir']], [['--data-dir', '--sim-only']], [['--data-dir=']]])(
    'refuses %j without a folder',
    (argv) => {
      expect(catchError(() => dataDirArg(argv))).toMatchObject({
        code: 'invalidArgument',
        field: '--data-dir',
      });
    },
  );
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
