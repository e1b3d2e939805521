/**
 * Pseudo-terminal pairs for simulated serial devices and for the tests: two linked ptys made by
 * Debian's `socat`, reachable under stable symlink paths. Writing to one end reads from the
 * other, like a USB-serial cable with a device on its far side.
 *
 * `unplug()` kills socat: both ends vanish, exactly as when a USB adapter is pulled (the host's
 * open port sees its read end close). `replug()` starts a new socat on the same paths, which
 * then point at new /dev/pts/N devices, as a re-enumerated adapter does.
 *
 * A process killed with -9 cannot end its socats: they run on, orphaned, holding the links. The
 * next pair opened on the same paths (the app's demo port, started again on the same data folder)
 * ends such a socat first: one whose command line names exactly these links (read from /proc on
 * Linux; elsewhere nothing is looked for).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';

export interface PtyPair {
  /** The host's end (what Fleetvisor opens). */
  readonly hostPath: string;
  /** The device's end (what the simulated device opens). */
  readonly devicePath: string;
  readonly plugged: boolean;
  /** Kills socat: both ends disappear. Resolves when the links are gone. */
  unplug(): Promise<void>;
  /** Creates a fresh pair on the same paths. */
  replug(): Promise<void>;
  /** Same as unplug; safe to call twice. */
  close(): Promise<void>;
}

export class PtyError extends Error {
  override readonly name = 'PtyError';
}

let socatChecked: boolean | undefined;

/** Every socat still running, ended when this process exits however it exits. */
const live = new Set<ChildProcess>();
let exitHook = false;
function ensureExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGTERM');
  });
}

/** True when `socat` can be run (Debian: `apt-get install -y socat`). */
export function socatAvailable(): boolean {
  socatChecked ??= spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0;
  return socatChecked;
}

const exists = (p: string): boolean => {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new PtyError(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Pids of the socats, not this process's own, whose command line is exactly `args`. */
export function orphanSocats(args: readonly string[]): number[] {
  if (!existsSync('/proc/self/cmdline')) return [];
  const ours = new Set([...live].map((c) => c.pid));
  const want = ['socat', ...args].join('\0');
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0 || ours.has(pid)) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '');
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    if (cmd === want) found.push(pid);
  }
  return found;
}

/** Creates a linked pty pair whose ends appear at `hostPath` and `devicePath` (symlinks). */
export async function openPtyPair(hostPath: string, devicePath: string, timeoutMs = 5000): Promise<PtyPair> {
  if (!socatAvailable()) throw new PtyError('socat is not installed (Debian: apt-get install -y socat)');
  ensureExitHook();
  let proc: ChildProcess | undefined;
  let stderr = '';

  const args = [`pty,raw,echo=0,link=${hostPath}`, `pty,raw,echo=0,link=${devicePath}`];
  const start = async (): Promise<void> => {
    // A socat left on these links by a process killed with -9: ended, it removes them.
    const orphans = orphanSocats(args);
    for (const pid of orphans) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone already
      }
    }
    if (orphans.length > 0)
      await waitFor(
        () => !existsSync(hostPath) && !existsSync(devicePath),
        timeoutMs,
        'an orphaned socat to end',
      );
    for (const p of [hostPath, devicePath]) if (exists(p) && !existsSync(p)) unlinkSync(p); // dangling link
    stderr = '';
    const child = spawn('socat', args, {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    proc = child;
    live.add(child);
    let exited = false;
    child.once('exit', () => {
      exited = true;
      live.delete(child);
    });
    await waitFor(
      () => exited || (existsSync(hostPath) && existsSync(devicePath)),
      timeoutMs,
      `socat to create ${hostPath} and ${devicePath}`,
    );
    if (exited) throw new PtyError(`socat exited before creating the pair: ${stderr.trim() || 'no message'}`);
  };

  const stop = async (): Promise<void> => {
    const child = proc;
    proc = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await gone;
    await waitFor(
      () => !existsSync(hostPath) && !existsSync(devicePath),
      timeoutMs,
      'socat to remove its links',
    );
  };

  await start();
  return {
    hostPath,
    devicePath,
    get plugged() {
      return proc !== undefined;
    },
    unplug: stop,
    async replug() {
      await stop();
      await start();
    },
    close: stop,
  };
}
