/**
 * The update job's step planner, pure (no device, no clock): the message each step says, which
 * refusals end the job, what every hello does at every step (a lost apply ack, a device back on
 * the old image, a reboot on trial, a rollback's reboot), and where a job saved before an app
 * restart picks up.
 */
import { describe, expect, it } from 'vitest';
import { planHello, planRefusal, planResume, stepMessage } from '../../src/firmware/update-job-plan.js';
import type { UpdateJobResume, UpdateJobStep } from '../../src/firmware/update-job-types.js';
import type { DeviceId, FwAckMessage, FwStep, HelloMessage } from '../../src/transports/protocol.js';

const header = { transferId: 'fw-1', version: '1.1.0', size: 1000, sha256: 'ab'.repeat(32), chunkBytes: 256 };

const hello = (boot: number, version: string, confirmed: boolean): HelloMessage => ({
  v: 1,
  type: 'hello',
  deviceId: 'pump-7' as DeviceId,
  kind: 'pump',
  boot,
  firmware: { version, slot: 'B', confirmed, slots: { A: '1.0.0', B: '1.1.0' } },
  capabilities: ['fw'],
});

const refusal = (step: FwStep, code: string): FwAckMessage => ({
  v: 1,
  type: 'fw.ack',
  transferId: 'fw-1',
  step,
  offset: 0,
  error: { code, message: code },
});

describe('update job step planner', () => {
  it('says fw.begin while transferring, each step its fw.* message, and nothing while the device speaks next', () => {
    expect(stepMessage('transferring', header)).toEqual({ v: 1, type: 'fw.begin', ...header });
    expect(stepMessage('verifying', header)).toEqual({ v: 1, type: 'fw.verify', transferId: 'fw-1' });
    expect(stepMessage('applying', header)).toEqual({ v: 1, type: 'fw.apply', transferId: 'fw-1' });
    expect(stepMessage('confirming', header)).toEqual({ v: 1, type: 'fw.confirm', transferId: 'fw-1' });
    expect(stepMessage('rollingBack', header)).toEqual({ v: 1, type: 'fw.rollback', transferId: 'fw-1' });
    for (const step of ['queued', 'rebooting', 'onTrial', 'succeeded', 'failed'] as const)
      expect(stepMessage(step, header)).toBeUndefined();
  });

  it('a refusal of the step the job is at ends it; a late one of an earlier step does not', () => {
    expect(planRefusal('verifying', refusal('verify', 'hashMismatch'))).toBe('fail');
    expect(planRefusal('transferring', refusal('begin', 'tooLarge'))).toBe('fail');
    expect(planRefusal('applying', refusal('verify', 'busy'))).toBe('ignore');
    expect(planRefusal('rebooting', refusal('apply', 'busy'))).toBe('ignore');
  });

  it('a device that answers confirm with rolledBack went back by itself: a rollback, not a failure', () => {
    expect(planRefusal('confirming', refusal('confirm', 'rolledBack'))).toBe('rolledBack');
    expect(planRefusal('confirming', refusal('confirm', 'busy'))).toBe('fail');
  });

  it('before the reboot, a hello says the step again', () => {
    for (const step of ['transferring', 'verifying', 'applying'] as const) {
      expect(planHello(step, '1.1.0', false, hello(1, '1.0.0', true))).toEqual({ kind: 'sayAgain' });
      expect(planHello(step, '1.1.0', true, hello(2, '1.0.0', true))).toEqual({ kind: 'sayAgain' });
    }
  });

  it('confirming: a hello of the same boot, or a new boot still on the new image, says confirm again; a new boot on the old image is the bootloader going back', () => {
    expect(planHello('confirming', '1.1.0', false, hello(2, '1.1.0', false))).toEqual({ kind: 'sayAgain' });
    expect(planHello('confirming', '1.1.0', true, hello(3, '1.1.0', false))).toEqual({ kind: 'sayAgain' });
    expect(planHello('confirming', '1.1.0', true, hello(3, '1.1.0', true))).toEqual({ kind: 'sayAgain' });
    expect(planHello('confirming', '1.1.0', true, hello(3, '1.0.0', true))).toEqual({
      kind: 'rolledBack',
      why: {
        code: 'bootloaderRevert',
        message: 'the device rebooted before its confirm and went back to 1.0.0',
      },
    });
  });

  it('applying, a new boot on the new image unconfirmed: the apply ack was lost, the trial starts', () => {
    expect(planHello('applying', '1.1.0', true, hello(2, '1.1.0', false))).toEqual({ kind: 'startTrial' });
    expect(planHello('applying', '1.1.0', false, hello(1, '1.1.0', false))).toEqual({ kind: 'sayAgain' });
  });

  it('rebooting: the same boot is ignored; the new image starts its trial; the old one is a rollback', () => {
    expect(planHello('rebooting', '1.1.0', false, hello(1, '1.0.0', true))).toEqual({ kind: 'ignore' });
    expect(planHello('rebooting', '1.1.0', true, hello(2, '1.1.0', false))).toEqual({ kind: 'startTrial' });
    expect(planHello('rebooting', '1.1.0', true, hello(2, '1.0.0', true))).toEqual({
      kind: 'rolledBack',
      why: { code: 'notBooted', message: 'the device came back running 1.0.0, not 1.1.0' },
    });
  });

  it('on trial: a reboot into the old image is the bootloader going back; into the new one, a rollback', () => {
    expect(planHello('onTrial', '1.1.0', false, hello(2, '1.1.0', false))).toEqual({ kind: 'ignore' });
    expect(planHello('onTrial', '1.1.0', true, hello(3, '1.0.0', true))).toMatchObject({
      kind: 'rolledBack',
      why: { code: 'bootloaderRevert' },
    });
    expect(planHello('onTrial', '1.1.0', true, hello(3, '1.1.0', false))).toMatchObject({
      kind: 'rollBack',
      why: { code: 'rebootedOnTrial' },
    });
  });

  it('rolling back: the old image on a new boot ends it; the new one on a new boot is asked again', () => {
    expect(planHello('rollingBack', '1.1.0', true, hello(4, '1.0.0', true))).toEqual({ kind: 'rolledBack' });
    expect(planHello('rollingBack', '1.1.0', true, hello(4, '1.1.0', false))).toEqual({ kind: 'sayAgain' });
    expect(planHello('rollingBack', '1.1.0', false, hello(3, '1.1.0', false))).toEqual({ kind: 'ignore' });
  });

  it('a finished or queued job ignores hellos', () => {
    for (const step of ['queued', 'succeeded', 'rolledBack', 'failed', 'cancelled'] as UpdateJobStep[])
      expect(planHello(step, '1.1.0', true, hello(9, '1.0.0', true))).toEqual({ kind: 'ignore' });
  });
});

describe('update job resume after an app restart', () => {
  const now = 1_800_000_000_000;
  const saved = (step: UpdateJobStep, extra: Partial<UpdateJobResume> = {}): UpdateJobResume => ({
    step,
    boot: 1,
    deadline: undefined,
    startedAt: now - 60_000,
    ...extra,
  });

  it('a transfer starts again from fw.begin, whatever the device said meanwhile', () => {
    for (const step of ['queued', 'transferring'] as const)
      expect(planResume(saved(step), hello(2, '1.0.0', true), '1.1.0', now)).toEqual({
        plan: { kind: 'transfer' },
        replayHello: false,
      });
  });

  it('a waiting step is said again; a hello from another boot is heard after', () => {
    expect(planResume(saved('verifying'), hello(1, '1.0.0', true), '1.1.0', now)).toEqual({
      plan: { kind: 'say', step: 'verifying' },
      replayHello: false,
    });
    expect(planResume(saved('confirming'), hello(2, '1.1.0', false), '1.1.0', now)).toEqual({
      plan: { kind: 'say', step: 'confirming' },
      replayHello: true,
    });
    expect(planResume(saved('rollingBack'), undefined, '1.1.0', now).replayHello).toBe(false);
  });

  it('rebooting: a device back on the new image meanwhile starts a whole trial with its new boot', () => {
    expect(
      planResume(saved('rebooting', { deadline: now + 5000 }), hello(2, '1.1.0', false), '1.1.0', now),
    ).toEqual({ plan: { kind: 'trial', soakLeftMs: undefined, boot: 2 }, replayHello: false });
  });

  it('rebooting: otherwise it waits what is left of the reboot time (none when it is past)', () => {
    expect(
      planResume(saved('rebooting', { deadline: now + 5000 }), hello(1, '1.0.0', true), '1.1.0', now),
    ).toEqual({ plan: { kind: 'awaitReboot', leftMs: 5000 }, replayHello: false });
    expect(planResume(saved('rebooting', { deadline: now - 5000 }), undefined, '1.1.0', now)).toEqual({
      plan: { kind: 'awaitReboot', leftMs: 0 },
      replayHello: false,
    });
    // Back on the old image: the wait is planned and the hello heard after (it ends rolled back).
    expect(
      planResume(saved('rebooting', { deadline: now + 5000 }), hello(2, '1.0.0', true), '1.1.0', now),
    ).toEqual({ plan: { kind: 'awaitReboot', leftMs: 5000 }, replayHello: true });
  });

  it('on trial: the rest of the soak; a saved final step does nothing', () => {
    expect(
      planResume(saved('onTrial', { deadline: now + 3000 }), hello(1, '1.1.0', false), '1.1.0', now),
    ).toEqual({
      plan: { kind: 'trial', soakLeftMs: 3000 },
      replayHello: false,
    });
    expect(planResume(saved('succeeded'), hello(2, '1.1.0', true), '1.1.0', now)).toEqual({
      plan: { kind: 'none' },
      replayHello: false,
    });
  });
});
