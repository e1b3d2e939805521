/**
 * Where Fleetvisor keeps its data: `--data-dir`, else `FLEETVISOR_DATA_DIR`, else the OS
 * convention for per-user application data:
 *
 * | platform | folder |
 * |---|---|
 * | Linux and other Unix | `$XDG_DATA_HOME/fleetvisor`, or `~/.local/share/fleetvisor` |
 * | macOS | `~/Library/Application Support/Fleetvisor` |
 * | Windows | `%APPDATA%\Fleetvisor`, or `~\AppData\Roaming\Fleetvisor` |
 *
 * {@link resolveDataDir} is pure (environment, platform, home and working folder are inputs), so
 * every platform's rule is testable on any machine. Tests pass a fresh temp folder.
 *
 * @example
 * const dataDir = resolveDataDir({ ...currentDataDirInput(), explicit: dataDirArg(process.argv) });
 * const store = await openSqliteStore({ file: join(dataDir, DATABASE_FILE_NAME) });
 */
import { homedir } from 'node:os';
import path from 'node:path';
import { StoreError } from './store.js';

/** The database's file name inside the data folder. */
export const DATABASE_FILE_NAME = 'fleetvisor.sqlite';
/** The environment variable that overrides the data folder. */
export const DATA_DIR_ENV = 'FLEETVISOR_DATA_DIR';
/** The command-line option that overrides everything. */
export const DATA_DIR_OPTION = '--data-dir';

export interface DataDirInput {
  /** The `--data-dir` value, if given; a relative path is taken from `cwd`. */
  readonly explicit?: string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly platform: NodeJS.Platform;
  readonly homeDir: string;
  readonly cwd: string;
}

/** This process's environment, platform, home and working folder. */
export function currentDataDirInput(): DataDirInput {
  return { env: process.env, platform: process.platform, homeDir: homedir(), cwd: process.cwd() };
}

/**
 * The absolute data folder (not created here; opening the store creates it). Throws
 * {@link StoreError} `invalidArgument` when the OS convention applies and no home folder is known.
 *
 * @example
 * resolveDataDir({ env: {}, platform: 'linux', homeDir: '/home/ana', cwd: '/' });
 * // '/home/ana/.local/share/fleetvisor'
 */
export function resolveDataDir(input: DataDirInput): string {
  const p = input.platform === 'win32' ? path.win32 : path.posix;
  const explicit = nonEmpty(input.explicit);
  if (explicit !== undefined) return p.resolve(input.cwd, explicit);
  const fromEnv = nonEmpty(input.env[DATA_DIR_ENV]);
  if (fromEnv !== undefined) return p.resolve(input.cwd, fromEnv);

  if (input.platform === 'win32') {
    const appData = nonEmpty(input.env.APPDATA);
    if (appData !== undefined && p.isAbsolute(appData)) return p.join(appData, 'Fleetvisor');
    return p.join(requireHome(input), 'AppData', 'Roaming', 'Fleetvisor');
  }
  if (input.platform === 'darwin')
    return p.join(requireHome(input), 'Library', 'Application Support', 'Fleetvisor');
  // XDG Base Directory spec: a relative $XDG_DATA_HOME is invalid and must be ignored.
  const xdg = nonEmpty(input.env.XDG_DATA_HOME);
  if (xdg !== undefined && p.isAbsolute(xdg)) return p.join(xdg, 'fleetvisor');
  return p.join(requireHome(input), '.local', 'share', 'fleetvisor');
}

/**
 * The value of `--data-dir <path>` or `--data-dir=<path>` in `argv`, if present (the last one
 * wins). Throws {@link StoreError} `invalidArgument` when the option has no value.
 *
 * @example
 * dataDirArg(['node', 'app', '--data-dir', '/srv/fleet']); // '/srv/fleet'
 */
export function dataDirArg(argv: readonly string[]): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === DATA_DIR_OPTION) {
      const value = argv[i + 1];
      if (value === undefined || value.length === 0 || value.startsWith('--'))
        throw new StoreError('invalidArgument', `${DATA_DIR_OPTION} needs a folder`, {
          field: DATA_DIR_OPTION,
        });
      found = value;
      i++;
    } else if (arg.startsWith(`${DATA_DIR_OPTION}=`)) {
      const value = arg.slice(DATA_DIR_OPTION.length + 1);
      if (value.length === 0)
        throw new StoreError('invalidArgument', `${DATA_DIR_OPTION} needs a folder`, {
          field: DATA_DIR_OPTION,
        });
      found = value;
    }
  }
  return found;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim().length === 0 ? undefined : value;
}

function requireHome(input: DataDirInput): string {
  if (nonEmpty(input.homeDir) === undefined)
    throw new StoreError(
      'invalidArgument',
      `no home folder is known; set ${DATA_DIR_ENV} or pass ${DATA_DIR_OPTION}`,
      { field: 'homeDir' },
    );
  return input.homeDir;
}
