/**
 * A benchmark's helper in a child process (a publisher, simulated devices, a broker), driven over
 * the IPC channel, so that what it costs stays out of the measured process's CPU. Replies come
 * back in order; `{ type: 'failed', error }` is printed as it arrives; a helper that exits
 * rejects every wait for a reply.
 *
 * @example
 * const pub = startChildHelper<PublisherCommand, PublisherReply>('links', 'links-publisher.ts', ['publish', url]);
 * await expectReply(pub, 'ready');
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

export interface ChildHelper<C extends { readonly cmd: string }, R extends { readonly type: string }> {
  readonly child: ChildProcess;
  /** The next reply from the child, in order. */
  next(): Promise<R>;
  send(command: C): void;
  /** SIGTERM, resolved once it exited (at once if it has). */
  kill(): Promise<void>;
}

/**
 * More node flags for every helper, from FLEETVISOR_BENCH_CHILD_ARGS (space-separated), to profile
 * them: `FLEETVISOR_BENCH_CHILD_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'` (a helper writes its
 * profile when it exits, SIGTERM included if it exits on it).
 */
function childNodeArgs(): string[] {
  return (process.env.FLEETVISOR_BENCH_CHILD_ARGS ?? '').split(' ').filter(Boolean);
}

/** Runs `test/bench/<script>` with tsx (plus `nodeArgs`) and the IPC channel. */
export function startChildHelper<C extends { readonly cmd: string }, R extends { readonly type: string }>(
  suite: string,
  script: string,
  args: readonly string[],
  nodeArgs: readonly string[] = [],
): ChildHelper<C, R> {
  const name = `${script} ${args[0] ?? ''}`.trim();
  const child = spawn(
    process.execPath,
    [...nodeArgs, ...childNodeArgs(), '--import', 'tsx', join(import.meta.dirname, script), ...args],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const queue: R[] = [];
  const waiting: { resolve: (m: R) => void; reject: (e: Error) => void }[] = [];
  let gone: Error | undefined;
  child.on('message', (m: R) => {
    if (m.type === 'failed')
      console.error(`# ${suite}: helper ${name} reported: ${(m as { error?: unknown }).error}`);
    const w = waiting.shift();
    if (w) w.resolve(m);
    else queue.push(m);
  });
  child.on('error', (e) => console.error(`# ${suite}: helper ${name}: ${e.message}`));
  child.on('exit', (code, signal) => {
    gone = new Error(`helper ${name} exited (${code ?? signal})`);
    for (const w of waiting.splice(0)) w.reject(gone);
  });
  return {
    child,
    next() {
      const m = queue.shift();
      if (m) return Promise.resolve(m);
      if (gone) return Promise.reject(gone);
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    send(command) {
      if (!child.connected) throw new Error(`helper ${name} is gone; cannot send ${command.cmd}`);
      child.send(command);
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The next reply, which must be of `type`. */
export async function expectReply<R extends { readonly type: string }, T extends R['type']>(
  helper: { next(): Promise<R> },
  type: T,
): Promise<Extract<R, { type: T }>> {
  const m = await helper.next();
  if (m.type !== type) throw new Error(`expected '${type}' from the helper, got ${JSON.stringify(m)}`);
  return m as Extract<R, { type: T }>;
}
