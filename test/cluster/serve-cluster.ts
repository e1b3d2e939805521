/**
 * A cluster of real `fleetvisor serve` processes for the process-level cluster tests: each with its
 * own data folder, `--no-demo --adopt auto`, the shared test database and broker, `--cluster`
 * under its name; calls go through the command line's client (the data folder's lock and token),
 * as `fleetvisor` would. Shared by cluster.process and leadership.process, which each built it.
 *
 * @example
 * const cluster = createServeCluster('fv-cluster', () => ({ brokerUrl: broker.url, dbUrl: db.url }));
 * const a = await cluster.start('a');
 * await cluster.until('a holds shards', 30_000, async () => ({ ok: (await cluster.clusterOf(a)).instances.length > 0, why: '' }));
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectToRunningApp } from '../../src/host/app-client.js';
import type { ArgsOf, ClusterInfo, Method, Results } from '../../src/host/contract.js';
import { LOCK_FILE_NAME } from '../../src/host/data-folder.js';
import { type Serve, startServe } from '../host/serve-rig.js';

export interface ServeInstance {
  readonly name: string;
  readonly dataDir: string;
  serve: Serve;
}

export interface ServeCluster {
  /** Every instance started, by name (stopped ones stay, for their logs). */
  readonly instances: Map<string, ServeInstance>;
  /** `extra`: more options for this instance (e.g. `--serial PORT`). */
  start(name: string, extra?: readonly string[]): Promise<ServeInstance>;
  call<M extends Method>(inst: ServeInstance, method: M, args: ArgsOf<M>): Promise<Results[M]>;
  clusterOf(inst: ServeInstance): Promise<ClusterInfo>;
  /** The app's own pid (the lock file's; `fleetvisor serve` is its launcher). */
  appPid(inst: ServeInstance): number;
  /** Polls `check` every `everyMs` until ok; past `timeoutMs` throws with its last why and every instance's log tail. */
  until(
    what: string,
    timeoutMs: number,
    check: () => Promise<{ ok: boolean; why: string }>,
    everyMs?: number,
  ): Promise<void>;
}

export function createServeCluster(
  prefix: string,
  where: () => { readonly brokerUrl: string; readonly dbUrl: string },
): ServeCluster {
  const instances = new Map<string, ServeInstance>();
  const call = async <M extends Method>(inst: ServeInstance, method: M, args: ArgsOf<M>) => {
    const c = connectToRunningApp(inst.dataDir);
    if (!c.ok) throw new Error(`${inst.name}: ${c.error.message}`);
    const r = await c.value.call(method, args);
    if (!r.ok) throw new Error(`${inst.name} ${method}: ${r.error.code} ${r.error.message}`);
    return r.value as Results[M];
  };
  const logs = () =>
    [...instances.values()]
      .map(
        (i) =>
          `--- ${i.name} (exit ${i.serve.process.exitCode ?? i.serve.process.signalCode}):\n${i.serve.output().split('\n').slice(-25).join('\n')}`,
      )
      .join('\n');
  return {
    instances,
    async start(name, extra = []) {
      const dataDir = mkdtempSync(join(tmpdir(), `${prefix}-${name}-`));
      const { brokerUrl, dbUrl } = where();
      const serve = await startServe(
        dataDir,
        [
          '--no-demo',
          '--mqtt-url',
          brokerUrl,
          '--adopt',
          'auto',
          '--store',
          dbUrl,
          '--cluster',
          '--instance',
          name,
          ...extra,
        ],
        { timeoutMs: 90_000 },
      );
      const inst = { name, dataDir, serve };
      instances.set(name, inst);
      return inst;
    },
    call,
    async clusterOf(inst) {
      const c = await call(inst, 'cluster', {});
      if (!c) throw new Error(`${inst.name} is not in a cluster`);
      return c;
    },
    appPid: (inst) =>
      (JSON.parse(readFileSync(join(inst.dataDir, LOCK_FILE_NAME), 'utf8')) as { pid: number }).pid,
    async until(what, timeoutMs, check, everyMs = 250) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      for (;;) {
        try {
          const r = await check();
          if (r.ok) return;
          last = r.why;
        } catch (error) {
          last = (error as Error).message;
        }
        if (Date.now() > deadline)
          throw new Error(`${what}: not within ${timeoutMs} ms (${last})\n${logs()}`);
        await new Promise((r) => setTimeout(r, everyMs));
      }
    },
  };
}
