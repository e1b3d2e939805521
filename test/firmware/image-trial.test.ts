/**
 * Each device's trial per image (image-trial.ts): an image's signed manifest may declare
 * `trialSeconds`, covered by its signature and checked at parse; a job's trial is the rollout's
 * own, else the image's, else the job's default; a rollout hands its trial to every job it starts
 * and keeps it in its saved policy.
 */
import { describe, expect, it } from 'vitest';
import type { FirmwareUpdates, UpdateJobSettings } from '../../src/firmware/firmware-updates.js';
import { imageTrialSeconds, jobTrialMs } from '../../src/firmware/image-trial.js';
import { generateSigningKeyPair, parsePublicKey } from '../../src/firmware/keys.js';
import {
  describeImage,
  MANIFEST_FORMAT,
  parseManifest,
  signManifest,
  verifyManifestSignature,
} from '../../src/firmware/manifest.js';
import type { RolloutPolicy } from '../../src/firmware/rollout.js';
import { createRollout } from '../../src/firmware/rollout.js';
import { readSavedRollout } from '../../src/firmware/rollout-saved.js';
import type { UpdateJob, UpdateJobSnapshot } from '../../src/firmware/update-job.js';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/runtime.js';

const bytes = new Uint8Array(1000).map((_, i) => i % 251);

/** An image record as far as the trial reads it: its manifest, declaring `trialSeconds` or not. */
const image = (trialSeconds?: number) => ({
  manifest: { signed: { version: '1.1.0', ...(trialSeconds !== undefined ? { trialSeconds } : {}) } },
});

describe('trialSeconds in the manifest', () => {
  it('is signed with the rest: changing it breaks the signature', () => {
    const keys = generateSigningKeyPair();
    const signed = describeImage(bytes, {
      version: '1.1.0',
      kinds: ['fleetvisor.generic'],
      trialSeconds: 120,
    });
    expect(signed.trialSeconds).toBe(120);
    const parsed = parseManifest(JSON.stringify(signManifest(signed, keys.privateKeyPem)));
    if (!parsed.ok) throw new Error(parsed.error.message);
    expect(parsed.value.signed.trialSeconds).toBe(120);
    const key = parsePublicKey(keys.publicKeyPem, 'test');
    if (!key.ok) throw new Error(key.error.message);
    expect(verifyManifestSignature(parsed.value, key.value)).toBe(true);
    const shorter = { ...parsed.value, signed: { ...parsed.value.signed, trialSeconds: 1 } };
    expect(verifyManifestSignature(shorter, key.value)).toBe(false);
  });

  it('is left out when not given', () => {
    expect(describeImage(bytes, { version: '1.1.0', kinds: ['k'] })).not.toHaveProperty('trialSeconds');
  });

  it.each([0, -1, 1.5, 86_401, '60', null])(
    'a trialSeconds of %j is refused as badManifest, naming it',
    (trial) => {
      const r = parseManifest(
        JSON.stringify({
          signed: {
            format: MANIFEST_FORMAT,
            version: '1.0.0',
            kinds: ['k'],
            size: 1,
            sha256: 'a'.repeat(64),
            trialSeconds: trial,
          },
        }),
      );
      expect(r).toMatchObject({ ok: false, error: { code: 'badManifest' } });
      if (!r.ok)
        expect(r.error.message).toContain('signed.trialSeconds must be whole seconds from 1 to 86400');
    },
  );
});

describe('jobTrialMs', () => {
  it.each([
    ['the image declares 120 s, the rollout nothing', undefined, 120, 120_000],
    ['the rollout sets its own', 30_000, 120, 30_000],
    ['only the rollout', 5_000, undefined, 5_000],
    ['neither: the job default', undefined, undefined, undefined],
  ])('%s', (_name, requested, declared, expected) => {
    expect(jobTrialMs(requested, image(declared))).toBe(expected);
  });

  it('reads a stored manifest edited out of range as declaring none', () => {
    expect(imageTrialSeconds({ manifest: { signed: { trialSeconds: 0 } } })).toBeUndefined();
    expect(imageTrialSeconds({ manifest: { signed: { trialSeconds: '60' } } })).toBeUndefined();
    expect(imageTrialSeconds({ manifest: {} })).toBeUndefined();
  });
});

/** Update jobs that succeed at once; `settings` records what each start was given. */
function instantUpdates(
  settings: Map<string, UpdateJobSettings | undefined>,
): Pick<FirmwareUpdates, 'start' | 'cancel'> {
  return {
    start(deviceId, args) {
      settings.set(deviceId, args.settings);
      const final = { deviceId, step: 'succeeded' } as UpdateJobSnapshot;
      const job = { snapshot: () => ({ deviceId, step: 'transferring' }), done: Promise.resolve(final) };
      return { ok: true, value: job as unknown as UpdateJob };
    },
    cancel: () => ({ ok: false, error: { code: 'noJob', message: 'none' } }),
  };
}

async function runRollout(policy: RolloutPolicy): Promise<Map<string, UpdateJobSettings | undefined>> {
  const settings = new Map<string, UpdateJobSettings | undefined>();
  const clock = createSimulatedClock({ wallStartMs: 1_800_000_000_000 });
  const r = createRollout({
    runtime: { clock, logger: silentLogger },
    updates: instantUpdates(settings),
    id: 'ro-trial',
    image: new Uint8Array(16),
    version: '1.1.0',
    sha256: 'a'.repeat(64),
    devices: ['d1', 'd2'],
    policy: { waves: [{ share: 1 }], retries: 0, ...policy },
  });
  r.start();
  await flushMicrotasks(5);
  expect((await r.done).state).toBe('completed');
  return settings;
}

describe("a rollout's trial", () => {
  it("gives every job the image's trial when the rollout names none", async () => {
    const trialMs = jobTrialMs(undefined, image(120));
    const settings = await runRollout(trialMs !== undefined ? { trialMs } : {});
    expect([...settings.values()]).toEqual([{ soakMs: 120_000 }, { soakMs: 120_000 }]);
  });

  it("gives its own trial over the image's", async () => {
    const trialMs = jobTrialMs(2_000, image(120));
    const settings = await runRollout(trialMs !== undefined ? { trialMs } : {});
    expect([...settings.values()]).toEqual([{ soakMs: 2_000 }, { soakMs: 2_000 }]);
  });

  it("leaves the job's default when neither names one", async () => {
    const settings = await runRollout({});
    expect([...settings.values()]).toEqual([undefined, undefined]);
  });

  it('keeps its trial in the saved policy, and refuses a bad one naming the field', () => {
    const clock = createSimulatedClock({ wallStartMs: 1_800_000_000_000 });
    const r = createRollout({
      runtime: { clock, logger: silentLogger },
      updates: instantUpdates(new Map()),
      id: 'ro-saved',
      image: new Uint8Array(16),
      version: '1.1.0',
      sha256: 'a'.repeat(64),
      devices: ['d1'],
      policy: { trialMs: 120_000 },
    });
    const body = JSON.parse(JSON.stringify({ snapshot: r.snapshot(), policy: { trialMs: 120_000 } }));
    const read = readSavedRollout('ro-saved', body);
    expect(read.ok && read.value.policy.trialMs).toBe(120_000);
    const bad = readSavedRollout('ro-saved', { ...body, policy: { trialMs: 0 } });
    expect(bad).toMatchObject({ ok: false, error: { code: 'badRollout', field: 'policy.trialMs' } });
  });
});
