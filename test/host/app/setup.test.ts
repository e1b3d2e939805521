/**
 * The app's stop steps (src/host/app/setup.ts): the order the app's stop and a failed start rely
 * on, without starting an app.
 */
import { describe, expect, it } from 'vitest';
import { createStopSteps } from '../../../src/host/app/setup.js';
import type { Logger } from '../../../src/runtime/runtime.js';

function recordingLogger(): Logger & { readonly errors: { message: string; data: unknown }[] } {
  const errors: { message: string; data: unknown }[] = [];
  return {
    errors,
    debug() {},
    info() {},
    warn() {},
    error(message: string, data?: unknown) {
      errors.push({ message, data });
    },
  };
}

describe('createStopSteps', () => {
  it('unwinds in reverse push order, each step awaited before the next', async () => {
    const steps = createStopSteps(recordingLogger());
    const ran: string[] = [];
    for (const name of ['store', 'root', 'devices', 'links'])
      steps.push(async () => {
        await new Promise((r) => setTimeout(r, name === 'devices' ? 5 : 0));
        ran.push(name);
      });
    await steps.unwind();
    expect(ran).toEqual(['links', 'devices', 'root', 'store']);
  });

  it('logs a failing step and still runs the ones before it', async () => {
    const log = recordingLogger();
    const steps = createStopSteps(log);
    const ran: string[] = [];
    steps.push(async () => {
      ran.push('store');
    });
    steps.push(async () => {
      throw new Error('broker would not close');
    });
    steps.push(async () => {
      ran.push('links');
    });
    await expect(steps.unwind()).resolves.toBeUndefined();
    expect(ran).toEqual(['links', 'store']);
    expect(log.errors).toEqual([
      { message: 'shutdown step failed', data: { error: new Error('broker would not close') } },
    ]);
  });

  it('runs each step once: a second unwind runs only what was pushed since', async () => {
    const steps = createStopSteps(recordingLogger());
    const ran: string[] = [];
    steps.push(async () => {
      ran.push('a');
    });
    await steps.unwind();
    await steps.unwind();
    steps.push(async () => {
      ran.push('b');
    });
    await steps.unwind();
    expect(ran).toEqual(['a', 'b']);
  });
});
