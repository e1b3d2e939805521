import { describe, expect, it } from 'vitest';
import { SHUTDOWN } from '../../src/runtime/exit-reason.js';
import { serviceSupervisor } from '../../src/runtime/service-supervisor.js';
import type { Supervisor } from '../../src/runtime/supervisor.js';
import { startSupervisor } from '../../src/runtime/supervisor.js';
import type { TestRig } from './helpers.js';
import { createRig, workers } from './helpers.js';

async function sup(
  rig: TestRig,
  name: string,
  children = [] as ReturnType<ReturnType<typeof workers>['spec']>[],
) {
  const res = await startSupervisor(rig.rt, { name, children });
  if (!res.ok) throw new Error(res.error.message);
  return res.value;
}

/** A root with one service-owned supervisor `svc` (holding worker `w`) as a significant child. */
async function rootWithService(rig: TestRig) {
  const w = workers(rig);
  const stops: string[] = [];
  let inner: Supervisor | undefined;
  const root = await startSupervisor(rig.rt, {
    name: 'root',
    autoShutdown: 'anySignificant',
    children: [
      w.spec('before'),
      {
        id: 'svc',
        type: 'supervisor',
        restart: 'temporary',
        significant: true,
        shutdown: 'infinity',
        start: async () => {
          inner = await sup(rig, 'svc', [w.spec('w')]);
          const owned = inner;
          return serviceSupervisor(rig.rt, owned, async () => {
            stops.push(`service saves while w is ${w.get('w').alive ? 'alive' : 'gone'}`);
            await owned.stop();
          });
        },
      },
    ],
  });
  if (!root.ok) throw new Error(root.error.message);
  return { root: root.value, inner: inner!, w, stops };
}

describe('a service-owned supervisor under a root', () => {
  it('is the same process in the tree: same pid, same children', async () => {
    const rig = createRig();
    const { root, inner } = await rootWithService(rig);
    const child = root.whichChildren().find((c) => c.id === 'svc')!;
    expect(child.pid).toBe(inner.pid);
    expect(child.status).toBe('running');
    const asSup = child.process as Supervisor;
    expect(asSup.whichChildren().map((c) => c.id)).toEqual(['w']);
    expect(asSup.strategy).toBe('oneForOne');
  });

  it("the root's graceful stop runs the service's own stop before its supervisor stops", async () => {
    const rig = createRig();
    const { root, inner, w, stops } = await rootWithService(rig);
    await root.stop();
    await rig.settle();
    expect(stops).toEqual(['service saves while w is alive']);
    expect(inner.exitReason).toEqual(SHUTDOWN);
    expect(w.get('before').alive).toBe(false);
  });

  it('when it gives up on its own, the root shuts down the rest (significant child, anySignificant)', async () => {
    const rig = createRig();
    const { root, inner, w } = await rootWithService(rig);
    inner.kill();
    await rig.settle();
    expect(root.alive).toBe(false);
    expect(root.exitReason).toEqual(SHUTDOWN);
    expect(w.get('before').alive).toBe(false);
  });

  it('a service stop that leaves its supervisor running still ends it', async () => {
    const rig = createRig();
    const inner = await sup(rig, 'svc');
    const owned = serviceSupervisor(rig.rt, inner, async () => {});
    expect(await owned.stop()).toEqual(SHUTDOWN);
    expect(inner.alive).toBe(false);
  });

  it('a service stop that fails is reported and the supervisor is killed, so a shutdown never hangs', async () => {
    const rig = createRig();
    const inner = await sup(rig, 'svc');
    const owned = serviceSupervisor(rig.rt, inner, async () => {
      throw new Error('disk full');
    });
    expect((await owned.stop()).type).toBe('killed');
    expect(rig.events.some((e) => e.type === 'report' && e.message.includes('stopping svc failed'))).toBe(
      true,
    );
  });
});
