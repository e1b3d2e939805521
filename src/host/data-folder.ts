/**
 * One app per data folder (issue 12 §3). {@link openDataFolder} makes the folder the user's alone
 * (0700), takes its lock, and reads (or creates) the instance id kept there.
 *
 * - **Lock**: `fleetvisor.lock` is created exclusively (`O_EXCL`) and holds the owner's pid, host
 *   name, start time and UI origin. A second start on the same folder fails at once with
 *   {@link DataFolderLockedError}, naming that pid and origin. A lock whose pid is no longer alive
 *   on this host (a `kill -9`, a power cut) is stale and taken over, with a warning.
 * - **Instance id**: `instance-id` holds a random id made on the first start and kept for good.
 *   Every MQTT client id and the Sparkplug host id derive from it ({@link instanceNames}), so two
 *   instances on one broker (different data folders) never knock each other off or answer for
 *   each other, and one instance keeps its names across restarts.
 *
 * The lock file never holds the UI token: only the origin (`http://127.0.0.1:41234`).
 *
 * @example
 * const folder = openDataFolder('/home/ana/.local/share/fleetvisor', { logger });
 * // throws DataFolderLockedError: 'the data folder … is in use by Fleetvisor pid 4242 (UI at http://127.0.0.1:41234) …'
 * folder.setUrl(server.url);     // recorded without its token
 * folder.release();              // on a clean stop
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../runtime/runtime.js';

export const LOCK_FILE_NAME = 'fleetvisor.lock';
export const INSTANCE_ID_FILE_NAME = 'instance-id';
/** 8 lowercase hex digits: short enough for client ids and topic levels, random enough per machine. */
const INSTANCE_ID = /^[0-9a-f]{8}$/;

/** What the lock file says about its owner. */
export interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: number;
  /** The UI origin, once the server listens (never the token). */
  readonly url: string | null;
}

/** A second start on a folder in use. `owner` is the running instance. */
export class DataFolderLockedError extends Error {
  override readonly name = 'DataFolderLockedError';
  readonly code = 'dataFolderLocked';
  constructor(
    readonly dir: string,
    readonly owner: LockOwner,
  ) {
    super(
      `the data folder ${dir} is in use by Fleetvisor pid ${owner.pid}` +
        `${owner.host !== hostname() ? ` on ${owner.host}` : ''}` +
        ` (UI at ${owner.url ?? 'an address not known yet'}), started ${new Date(owner.startedAt).toISOString()}. ` +
        'Use that one, stop it, or start this one with another data folder (--data-dir). ' +
        `If no such process runs, delete ${join(dir, LOCK_FILE_NAME)}.`,
    );
  }
}

export interface DataFolder {
  readonly dir: string;
  /** Kept in the folder; see {@link instanceNames}. */
  readonly instanceId: string;
  /** Records where the UI is (its origin: any `#token=…` or query is left out). */
  setUrl(url: string): void;
  /** Removes the lock (only if it is still ours); idempotent. */
  release(): void;
}

export interface OpenDataFolderOptions {
  readonly logger?: Logger;
  /** Whether a pid is alive on this host; default `process.kill(pid, 0)`. For tests. */
  readonly isAlive?: (pid: number) => boolean;
}

/**
 * Creates the folder (0700) or tightens it to 0700, takes its lock, and reads or creates the
 * instance id. Throws {@link DataFolderLockedError} when a live instance holds the folder, and
 * the file system's error when the folder cannot be created or written.
 */
export function openDataFolder(dir: string, options: OpenDataFolderOptions = {}): DataFolder {
  const isAlive = options.isAlive ?? pidAlive;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (process.platform !== 'win32' && (statSync(dir).mode & 0o077) !== 0) {
    chmodSync(dir, 0o700);
    options.logger?.info('data folder made private (mode 0700)', { dir });
  }
  const lockFile = join(dir, LOCK_FILE_NAME);
  let owner: LockOwner = { pid: process.pid, host: hostname(), startedAt: Date.now(), url: null };
  takeLock(dir, lockFile, owner, isAlive, options.logger);
  let instanceId: string;
  try {
    instanceId = readOrCreateInstanceId(dir);
  } catch (error) {
    unlinkQuietly(lockFile);
    throw error;
  }
  let released = false;
  return {
    dir,
    instanceId,
    setUrl(url) {
      if (released) return;
      owner = { ...owner, url: originOf(url) };
      // Replaced whole (write, then rename), so a reader never sees half a lock.
      const next = `${lockFile}.${process.pid}.tmp`;
      writeFileSync(next, JSON.stringify(owner), { mode: 0o600 });
      renameSync(next, lockFile);
    },
    release() {
      if (released) return;
      released = true;
      const current = readOwner(lockFile);
      if (current?.pid === process.pid && current.host === owner.host) unlinkQuietly(lockFile);
    },
  };
}

/**
 * The names this instance uses on a broker, all from its instance id: the host's MQTT client ids
 * and the Sparkplug Primary Host id (`spBv1.0/STATE/<sparkplugHostId>`).
 *
 * @example
 * instanceNames('3f9a0c21').sparkplugHostId; // 'fleetvisor-3f9a0c21'
 */
export function instanceNames(instanceId: string): {
  readonly mqttClientId: string;
  readonly homieClientId: string;
  readonly sparkplugHostId: string;
  readonly sparkplugClientId: string;
} {
  const base = `fleetvisor-${instanceId}`;
  return {
    mqttClientId: `${base}-host`,
    homieClientId: `${base}-homie`,
    sparkplugHostId: base,
    sparkplugClientId: `${base}-sparkplug`,
  };
}

function takeLock(
  dir: string,
  lockFile: string,
  owner: LockOwner,
  isAlive: (pid: number) => boolean,
  logger: Logger | undefined,
): void {
  // Two rounds at most: a stale lock is removed once, then created exclusively; if another
  // starter won that race, its lock is live and we refuse.
  for (let round = 0; round < 2; round++) {
    let fd: number;
    try {
      fd = openSync(lockFile, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const current = readOwner(lockFile);
      if (current === undefined) {
        // Unreadable: a starter between its create and its write, or a torn file after a crash.
        const ageMs = Date.now() - statSync(lockFile).mtimeMs;
        if (ageMs < 2_000) throw new DataFolderLockedError(dir, unknownOwner());
        logger?.warn('data folder lock unreadable: taking it over', { dir });
      } else if (current.host !== owner.host || isAlive(current.pid)) {
        throw new DataFolderLockedError(dir, current);
      } else {
        logger?.warn('data folder lock left by a process that is gone: taking it over', {
          dir,
          pid: current.pid,
          startedAt: new Date(current.startedAt).toISOString(),
        });
      }
      unlinkQuietly(lockFile);
      continue;
    }
    try {
      writeSync(fd, JSON.stringify(owner));
    } finally {
      closeSync(fd);
    }
    return;
  }
  throw new DataFolderLockedError(dir, readOwner(lockFile) ?? unknownOwner());
}

function unknownOwner(): LockOwner {
  return { pid: 0, host: hostname(), startedAt: Date.now(), url: null };
}

function readOwner(lockFile: string): LockOwner | undefined {
  try {
    const v = JSON.parse(readFileSync(lockFile, 'utf8')) as Partial<LockOwner> | null;
    if (
      v === null ||
      typeof v !== 'object' ||
      !Number.isSafeInteger(v.pid) ||
      typeof v.host !== 'string' ||
      typeof v.startedAt !== 'number'
    )
      return undefined;
    return {
      pid: v.pid as number,
      host: v.host,
      startedAt: v.startedAt,
      url: typeof v.url === 'string' ? v.url : null,
    };
  } catch {
    return undefined;
  }
}

/**
 * The instance id kept in the data folder `dir`, made there on first use: for a part that needs it
 * without holding the folder (the demo names its devices on an external broker with it).
 *
 * @example
 * instanceIdOf('/home/ana/.local/share/fleetvisor'); // '3f9a0c21'
 */
export function instanceIdOf(dir: string): string {
  return readOrCreateInstanceId(dir);
}

function readOrCreateInstanceId(dir: string): string {
  const file = join(dir, INSTANCE_ID_FILE_NAME);
  try {
    const text = readFileSync(file, 'utf8').trim();
    if (INSTANCE_ID.test(text)) return text;
    throw new Error(
      `${file} does not hold an instance id (8 hex digits); delete it to get a new one (the broker then sees a new Fleetvisor)`,
    );
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const id = randomBytes(4).toString('hex');
  writeFileSync(file, `${id}\n`, { mode: 0o600, flag: 'wx' });
  return id;
}

/** `http://127.0.0.1:41234/#token=…` → `http://127.0.0.1:41234`. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url.replace(/[?#].*$/, '');
  }
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it is someone else's.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already gone.
  }
}
