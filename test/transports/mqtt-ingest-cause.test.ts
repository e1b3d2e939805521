/**
 * Issue 12 §0: every message the host received and did not store is data loss shown with its
 * cause. A store write that rejects counts under the store's own code (a failed commit is
 * `writeFailed`, as the contract's dataLoss promises), not a bare `error`; anything else that
 * rejects is `error`; a refusal answered as a result keeps its code.
 */
import { describe, expect, it } from 'vitest';
import type { Pid } from '../../src/runtime/process.js';
import { createRuntime, silentLogger } from '../../src/runtime/runtime.js';
import { StoreError } from '../../src/store/store.js';
import { MqttIngest, rejectionCode } from '../../src/transports/mqtt-ingest.js';

function ingest() {
  const runtime = createRuntime({ logger: silentLogger });
  return new MqttIngest({
    runtime,
    pid: 1 as Pid,
    name: 'mqtt-link',
    maxPendingIngest: 100,
    ackAfterCommit: false,
    client: () => undefined,
    isRunning: () => true,
  });
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('lost store writes by cause', () => {
  it('counts a rejected write under the store code, an unknown rejection as error, a refusal by its code', async () => {
    const i = ingest();
    i.delivered(Promise.reject(new StoreError('writeFailed', 'write failed: SQLITE_IOERR')));
    i.delivered(Promise.reject(new StoreError('writeFailed', 'write failed: disk full')));
    i.delivered(Promise.reject(new Error('socket hang up')));
    i.delivered(Promise.resolve({ ok: false, error: { code: 'overloaded', message: 'buffer full' } }));
    i.delivered(Promise.resolve({ ok: true, value: 2 }));
    await settle();
    expect(i.stats().lost).toEqual({ writeFailed: 2, error: 1, overloaded: 1 });
    expect(i.stats().pendingIngest).toBe(0);
  });

  it('counts messages that share one write (a fleet turn) once each, with one reaction for all', async () => {
    const i = ingest();
    let refuse!: (r: unknown) => void;
    const turn = new Promise((r) => {
      refuse = r;
    });
    let reactions = 0;
    const counted: PromiseLike<unknown> = {
      // biome-ignore lint/suspicious/noThenProperty: a thenable that counts its reactions
      then: (ok, failed) => {
        reactions++;
        return turn.then(ok, failed);
      },
    };
    for (let n = 0; n < 5; n++) i.delivered(counted);
    expect(i.stats().pendingIngest).toBe(5);
    expect(reactions).toBe(1);
    refuse({ ok: false, error: { code: 'overloaded', message: 'buffer full' } });
    await settle();
    expect(i.stats()).toMatchObject({ pendingIngest: 0, lost: { overloaded: 5 } });
    // A later turn is counted on its own; a settled write delivered again is a new count.
    const failed = Promise.reject(new StoreError('writeFailed', 'disk full'));
    i.delivered(failed);
    i.delivered(failed);
    await settle();
    const done = Promise.resolve({ ok: true, value: undefined });
    i.delivered(done);
    await settle();
    i.delivered(done);
    await settle();
    expect(i.stats()).toMatchObject({ pendingIngest: 0, lost: { overloaded: 5, writeFailed: 2 } });
  });

  it('reads the code only off a StoreError', () => {
    expect(rejectionCode(new StoreError('closed', 'the store is closed'))).toBe('closed');
    const system = Object.assign(new Error('EIO'), { code: 'EIO' });
    expect(rejectionCode(system)).toBe('error');
    expect(rejectionCode('a string')).toBe('error');
  });
});
