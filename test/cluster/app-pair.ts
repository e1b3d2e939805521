/**
 * What the tests of two real apps in one process on a shared PostgreSQL use alike
 * (routed-operations, cluster-rollouts): API calls that throw or answer a refusal, an id in the
 * shards an app leases, the shards split evenly, and a wait for an asynchronous condition.
 *
 * @example
 * const apis = new Map<App, HostApiHandle>();
 * const { call, refused } = apiCallers(apis);
 * await splitEvenly([alpha, beta], 16);
 * const id = idOn(beta, 'pump-'); // beta leases its shard
 * await until(async () => (await call(alpha, 'firmwareJobs', { deviceId: id }))[0]?.step === 'succeeded', 40_000, 'done');
 */
import type { HostApiHandle } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import type { ApiError, Results } from '../../src/host/contract.js';
import { uniqueId, waitFor } from '../transports/helpers.js';

/** `call` answers the method's value or throws its refusal; `refused` answers the refusal or throws. */
export function apiCallers(apis: ReadonlyMap<App, HostApiHandle>) {
  const handle = (on: App) => {
    const api = apis.get(on);
    if (!api) throw new Error('no API for this app (stopped?)');
    return api;
  };
  return {
    async call<M extends keyof Results>(
      on: App,
      method: M,
      args: unknown,
      actor?: string,
    ): Promise<Results[M]> {
      const r = await handle(on).call(method, args, actor !== undefined ? { actor } : {});
      if (!r.ok) throw new Error(`${method}: ${r.error.code}: ${r.error.message}`);
      return r.value as Results[M];
    },
    async refused(on: App, method: keyof Results, args: unknown, actor?: string): Promise<ApiError> {
      const r = await handle(on).call(method, args, actor !== undefined ? { actor } : {});
      if (r.ok) throw new Error(`${method} succeeded: ${JSON.stringify(r.value).slice(0, 200)}`);
      return r.error;
    },
  };
}

/** A new device id in the shards `app` leases now. */
export function idOn(app: App, prefix: string): string {
  for (let i = 0; ; i++) {
    const id = uniqueId(`${prefix}${i}-`);
    if (app.cluster?.keeper.owns(id)) return id;
  }
}

/** Waits until the apps hold the `shards` evenly (a joining one takes them gradually). */
export async function splitEvenly(apps: readonly App[], shards: number, timeoutMs = 30_000): Promise<void> {
  const held = (app: App) => app.cluster?.keeper.held.size ?? 0;
  await waitFor(
    () => apps.every((a) => held(a) === shards / apps.length),
    timeoutMs,
    `the shards split ${apps.map(() => shards / apps.length).join('/')}`,
    50,
  );
}

/** Waits until an asynchronous condition holds, at most `ms`; `what` says what was waited for. */
export async function until(
  condition: () => Promise<boolean>,
  ms: number,
  what: string | (() => string),
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
