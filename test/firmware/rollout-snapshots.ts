/**
 * A paused rollout's saved snapshot, every device pending in one wave: the row the rollout
 * restore and damage tests write into a real SQLite file before they damage or restore it.
 */
import type { RolloutSnapshot } from '../../src/firmware/rollout.js';

export function pausedSnapshot(id: string, sha256: string, devices: string[]): RolloutSnapshot {
  return {
    id,
    version: '1.1.0',
    sha256,
    state: 'paused',
    reason: 'operator',
    wave: 0,
    waveEnds: [devices.length],
    order: devices,
    devices: Object.fromEntries(
      devices.map((d) => [d, { state: 'pending', wave: 0, attempts: 0, step: undefined, error: undefined }]),
    ),
    counts: { pending: devices.length, updating: 0, waitingRetry: 0, succeeded: 0, failed: 0, skipped: 0 },
    createdBy: 'ana',
    createdAt: 1_700_000_000_000,
  };
}
