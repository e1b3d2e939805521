/**
 * A rollout's jobs on devices other instances run (src/host/rollout-remote-jobs.ts), with the
 * rollout process (src/firmware/rollout-process.ts) on a simulated clock and a scripted owner in
 * place of the router: what the owner is asked, and what the rollout makes of its answers. The
 * real router, two real apps and real devices: test/cluster/cluster-rollouts.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { RoutedOp } from '../../src/cluster/command-router.js';
import type { Rollout, RolloutPolicy } from '../../src/firmware/rollout.js';
import { createRollout } from '../../src/firmware/rollout.js';
import type { UpdateJobStep } from '../../src/firmware/update-job.js';
import type { RemoteCaller, RemoteRolloutJobs } from '../../src/host/rollout-remote-jobs.js';
import { remoteRolloutJobs } from '../../src/host/rollout-remote-jobs.js';
import type { JsonValue } from '../../src/lib/json.js';
import type { SimulatedClock } from '../../src/runtime/clock.js';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/runtime.js';

const SHA = 'b'.repeat(64);
const POLL_MS = 2000;

type Asked = RoutedOp<'firmwareUpdate' | 'firmwareCancel' | 'firmwareJobs' | 'device'>;

/**
 * An owner as the router reaches it: each device's job (its step, set by the test), and what it
 * refuses. Every call is recorded.
 */
function scriptedOwner() {
  const jobs = new Map<string, { step: UpdateJobStep; error?: { code: string; message: string } }>();
  const firmware = new Map<string, string>();
  const refuse = new Map<string, { code: string; message: string }>();
  const asked: Asked[] = [];
  let up = true;
  const caller: RemoteCaller = {
    // The answers of the owner's API handlers, as JSON (typed per kind by the router).
    call: (async (op: Asked) => {
      asked.push(op);
      if (!up) return { ok: false, error: { code: 'noOwner', message: 'no instance leases the shard' } };
      const job = (): JsonValue[] => {
        const j = jobs.get(op.deviceId);
        return j ? [{ deviceId: op.deviceId, sha256: SHA, step: j.step, error: j.error ?? null }] : [];
      };
      switch (op.kind) {
        case 'firmwareUpdate': {
          const no = refuse.get(op.deviceId);
          if (no) return { ok: false, error: no };
          jobs.set(op.deviceId, { step: 'transferring' });
          return { ok: true, value: job()[0]! };
        }
        case 'firmwareJobs':
          return { ok: true, value: job() };
        case 'firmwareCancel':
          jobs.set(op.deviceId, { step: 'cancelled' });
          return { ok: true, value: job()[0]! };
        default:
          return {
            ok: true,
            value: { id: op.deviceId, status: { firmware: firmware.get(op.deviceId) ?? '1.0.0' } },
          };
      }
    }) as RemoteCaller['call'],
  };
  return {
    caller,
    jobs,
    firmware,
    refuse,
    asked,
    setUp: (v: boolean) => {
      up = v;
    },
  };
}

function rig(devices: readonly string[], policy: RolloutPolicy = {}) {
  const clock = createSimulatedClock({ wallStartMs: 1_800_000_000_000 });
  const owner = scriptedOwner();
  const shared: string[] = [];
  const remote = remoteRolloutJobs({
    router: () => owner.caller,
    share: async (sha256) => {
      shared.push(sha256);
    },
    clock,
    logger: silentLogger,
    pollMs: POLL_MS,
  });
  const rollout = createRollout({
    runtime: { clock, logger: silentLogger },
    updates: {
      start: (deviceId, what) =>
        remote.start(deviceId, {
          sha256: SHA,
          version: what.version,
          actor: what.actor ?? '',
          ...(what.settings ? { settings: what.settings } : {}),
        }),
      cancel: (deviceId) => remote.cancel(deviceId),
    },
    id: 'ro-remote',
    image: new Uint8Array(16),
    version: '2.0.0',
    sha256: SHA,
    devices,
    policy: { waves: [{ share: 1, maxConcurrent: 10 }], retries: 1, retryDelayMs: 5000, ...policy },
    findJob: (deviceId) => remote.follow(deviceId, SHA, '2.0.0'),
  });
  return { clock, owner, shared, remote, rollout };
}

const settle = () => flushMicrotasks(6);

async function run(clock: SimulatedClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 500) {
    await clock.advanceAsync(500);
    await settle();
  }
}

const states = (r: Rollout) =>
  Object.fromEntries(Object.entries(r.snapshot().devices).map(([id, d]) => [id, `${d.state}/${d.attempts}`]));

describe("a rollout's jobs on another instance", () => {
  it('asks the owner for each job (the image shared once, the trial and its checks as asked) and follows each to its end', async () => {
    const { clock, owner, shared, rollout } = rig(['a', 'b'], {
      trialMs: 20_000,
      trialChecks: ['temp<=80'],
    });
    rollout.start();
    await settle();
    expect(shared).toEqual([SHA]);
    const updates = owner.asked.filter((o) => o.kind === 'firmwareUpdate');
    expect(updates).toEqual(
      ['a', 'b'].map((deviceId) => ({
        kind: 'firmwareUpdate',
        deviceId,
        sha256: SHA,
        actor: 'rollout:ro-remote',
        trialMs: 20_000,
        trialChecks: ['temp<=80'],
      })),
    );
    expect(states(rollout)).toEqual({ a: 'updating/1', b: 'updating/1' });
    owner.jobs.set('a', { step: 'onTrial' });
    await run(clock, POLL_MS);
    expect(states(rollout)).toEqual({ a: 'updating/1', b: 'updating/1' });
    // The rollout's device list follows the step the owner's job is at.
    expect(rollout.snapshot().devices.a?.step).toBe('onTrial');
    owner.jobs.set('a', { step: 'succeeded' });
    owner.jobs.set('b', { step: 'failed', error: { code: 'badHash', message: 'verify failed' } });
    await run(clock, POLL_MS);
    expect(states(rollout)).toEqual({ a: 'succeeded/1', b: 'waitingRetry/1' });
    expect(rollout.snapshot().devices.b?.error).toEqual({ code: 'badHash', message: 'verify failed' });
    // b's retry: a new job on the owner, which succeeds.
    await run(clock, 5000);
    expect(owner.asked.filter((o) => o.kind === 'firmwareUpdate' && o.deviceId === 'b')).toHaveLength(2);
    owner.jobs.set('b', { step: 'succeeded' });
    await run(clock, POLL_MS);
    expect(rollout.snapshot().state).toBe('completed');
    expect(shared).toEqual([SHA]);
  });

  it('no owner to ask (a failover): the device waits and spends no attempt; asked again once there is one', async () => {
    const { clock, owner, rollout } = rig(['a']);
    owner.setUp(false);
    rollout.start();
    await settle();
    expect(states(rollout)).toEqual({ a: 'waitingRetry/0' });
    expect(rollout.snapshot().devices.a?.error?.code).toBe('noOwner');
    await run(clock, 4000);
    expect(states(rollout)).toEqual({ a: 'waitingRetry/0' });
    owner.setUp(true);
    await run(clock, 2000);
    expect(states(rollout)).toEqual({ a: 'updating/1' });
    owner.jobs.set('a', { step: 'succeeded' });
    await run(clock, POLL_MS);
    expect(rollout.snapshot().state).toBe('completed');
  });

  it("the owner's refusals: alreadyRunning counts as done, notSupported skips, another code fails the attempt", async () => {
    const { owner, rollout } = rig(['done', 'homie', 'key'], { retries: 0 });
    owner.refuse.set('done', { code: 'alreadyRunning', message: "'done' runs 2.0.0 already (confirmed)" });
    owner.refuse.set('homie', { code: 'notSupported', message: 'firmware update not supported' });
    owner.refuse.set('key', {
      code: 'unknownKey',
      message: 'instance beta, which runs the device, refuses the image',
    });
    rollout.start();
    await settle();
    expect(states(rollout)).toEqual({ done: 'succeeded/1', homie: 'skipped/1', key: 'failed/1' });
    expect(rollout.snapshot().devices.key?.error?.message).toMatch(/^instance beta, which runs the device/);
  });

  it('a job its owner no longer has: succeeded if the device runs the image, else lost and tried again', async () => {
    const { clock, owner, rollout } = rig(['kept', 'lost']);
    rollout.start();
    await settle();
    // The owner restarted (or the devices moved): it has no job of either; one got there meanwhile.
    owner.jobs.clear();
    owner.firmware.set('kept', '2.0.0');
    await run(clock, 3 * POLL_MS);
    expect(states(rollout)).toEqual({ kept: 'succeeded/1', lost: 'waitingRetry/1' });
    expect(rollout.snapshot().devices.lost?.error?.code).toBe('jobLost');
    await run(clock, 5000);
    expect(owner.asked.filter((o) => o.kind === 'firmwareUpdate' && o.deviceId === 'lost')).toHaveLength(2);
  });

  it('a busy owner running this image (the job asked before a restart) is followed, not asked again', async () => {
    const { clock, owner, rollout } = rig(['a']);
    owner.jobs.set('a', { step: 'rebooting' });
    owner.refuse.set('a', { code: 'busy', message: "'a' is being updated already (rebooting)" });
    rollout.start();
    await settle();
    expect(states(rollout)).toEqual({ a: 'updating/1' });
    owner.jobs.set('a', { step: 'succeeded' });
    await run(clock, POLL_MS);
    expect(rollout.snapshot().state).toBe('completed');
  });

  it('cancelled while the owner has not answered the start: the job it started is cancelled on the owner', async () => {
    const clock = createSimulatedClock({ wallStartMs: 1_800_000_000_000 });
    const owner = scriptedOwner();
    let answer: () => void = () => {};
    const slow: RemoteCaller = {
      async call(op) {
        if (op.kind === 'firmwareUpdate') await new Promise<void>((r) => (answer = r));
        return owner.caller.call(op);
      },
    };
    const remote: RemoteRolloutJobs = remoteRolloutJobs({
      router: () => slow,
      share: async () => {},
      clock,
      logger: silentLogger,
    });
    const rollout = createRollout({
      runtime: { clock, logger: silentLogger },
      updates: {
        start: (deviceId, what) => remote.start(deviceId, { sha256: SHA, version: what.version, actor: 'x' }),
        cancel: (deviceId) => remote.cancel(deviceId),
      },
      id: 'ro-cancel',
      image: new Uint8Array(16),
      version: '2.0.0',
      sha256: SHA,
      devices: ['a'],
      policy: { waves: [{ share: 1 }] },
    });
    rollout.start();
    await settle();
    rollout.cancel();
    answer();
    await settle();
    expect(owner.jobs.get('a')?.step).toBe('cancelled');
    expect(rollout.snapshot()).toMatchObject({ state: 'cancelled', devices: { a: { state: 'skipped' } } });
  });
});
