/**
 * Firmware update jobs on SQLite (migration 5, `firmware_jobs`; its `settings` since 10): one row
 * per device, the newest job wins; while a job runs it holds its image as `job:<device id>`.
 * Settings that do not parse are read as none, with a warning: the job is still worth resuming.
 *
 * @example
 * const jobs = createSqliteFirmwareJobs(context);
 * await jobs.saveJob(job, false);                  // holds job.sha256 until saved final
 * for (const r of await jobs.listJobs()) if (r.ok) console.log(r.value.deviceId, r.value.step);
 */
import { isJsonObject } from '../lib/json.js';
import type { Logger } from '../runtime/runtime.js';
import { silentLogger } from '../runtime/runtime.js';
import type { FirmwareJobRecord, FirmwareJobSettings, FirmwareStore } from './firmware-store.js';
import { requireName } from './records.js';
import type { FirmwareContext } from './sqlite-firmware-context.js';
import { badRecord, readColumns } from './sqlite-firmware-context.js';
import { holdImage, releaseImages } from './sqlite-firmware-refs.js';
import type { RowResult } from './store.js';

export type SqliteFirmwareJobs = Pick<FirmwareStore, 'saveJob' | 'listJobs'>;

export function createSqliteFirmwareJobs(
  context: FirmwareContext,
  logger: Logger = silentLogger,
): SqliteFirmwareJobs {
  const { conn, now, write, read } = context;
  return {
    async saveJob(job, final) {
      requireName(job.deviceId, 'deviceId');
      await write('save firmware job', async () => {
        await conn.run(
          `INSERT INTO firmware_jobs (device_id, sha256, transfer_id, version, step, offset, boot, deadline, error, actor, started_at, updated_at, settings)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (device_id) DO UPDATE SET sha256 = excluded.sha256, transfer_id = excluded.transfer_id,
             version = excluded.version, step = excluded.step, offset = excluded.offset, boot = excluded.boot,
             deadline = excluded.deadline, error = excluded.error, actor = excluded.actor,
             started_at = excluded.started_at, updated_at = excluded.updated_at, settings = excluded.settings`,
          [
            job.deviceId,
            job.sha256,
            job.transferId,
            job.version,
            job.step,
            job.offset,
            job.boot,
            job.deadline,
            job.error === null ? null : JSON.stringify(job.error),
            job.actor,
            job.startedAt,
            job.updatedAt,
            job.settings === null ? null : JSON.stringify(job.settings),
          ],
        );
        const holder = `job:${job.deviceId}`;
        await releaseImages(conn, holder);
        if (!final) await holdImage(conn, holder, job.sha256, now());
      });
    },

    async listJobs() {
      const rows = await read<Record<string, unknown>>(
        'list firmware jobs',
        'SELECT * FROM firmware_jobs ORDER BY device_id',
      );
      return rows.map((r) => {
        const row = jobFromRow(r);
        if (!row.ok) return row;
        const settings = jobSettings(r.settings);
        if (settings === undefined)
          logger.warn('firmware job settings unreadable; read as none', {
            deviceId: row.value.deviceId,
            settings: String(r.settings).slice(0, 200),
          });
        return { ok: true, value: { ...row.value, settings: settings ?? null } };
      });
    },
  };
}

function jobFromRow(r: Readonly<Record<string, unknown>>): RowResult<Omit<FirmwareJobRecord, 'settings'>> {
  const c = readColumns(r, {
    device_id: 'text',
    sha256: 'text',
    transfer_id: 'text',
    version: 'text',
    step: 'text',
    actor: 'text',
    offset: 'number',
    started_at: 'number',
    updated_at: 'number',
  });
  if (c === undefined)
    return badRecord(String(r.device_id), `firmware job row of '${String(r.device_id)}' does not parse`);
  return {
    ok: true,
    value: {
      deviceId: c.device_id,
      sha256: c.sha256,
      transferId: c.transfer_id,
      version: c.version,
      step: c.step,
      offset: c.offset,
      boot: typeof r.boot === 'number' ? r.boot : null,
      deadline: typeof r.deadline === 'number' ? r.deadline : null,
      error: jobError(r.error),
      actor: c.actor,
      startedAt: c.started_at,
      updatedAt: c.updated_at,
    },
  };
}

// A job's error that does not parse is read as none: the job itself is still worth resuming.
function jobError(text: unknown): FirmwareJobRecord['error'] {
  if (typeof text !== 'string') return null;
  try {
    const e = JSON.parse(text) as { step?: unknown; code?: unknown; message?: unknown };
    if (typeof e.step === 'string' && typeof e.code === 'string' && typeof e.message === 'string')
      return { step: e.step, code: e.code, message: e.message };
  } catch {
    // falls through to null
  }
  return null;
}

/** The longest trial a job's settings may hold: a day, as the API's `trialMs` at most. */
const MAX_TRIAL_MS = 86_400_000;

/**
 * A job's settings column: null when there is none (a row saved before schema version 10, or
 * saved without); undefined when it does not parse or holds something else than it may.
 */
function jobSettings(text: unknown): FirmwareJobSettings | null | undefined {
  if (text === null || text === undefined) return null;
  if (typeof text !== 'string') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isJsonObject(value)) return undefined;
  const { trialMs, trialChecks, ...rest } = value;
  if (Object.keys(rest).length > 0) return undefined;
  const settings: { trialMs?: number; trialChecks?: readonly string[] } = {};
  if (trialMs !== undefined) {
    if (
      typeof trialMs !== 'number' ||
      !Number.isSafeInteger(trialMs) ||
      trialMs < 0 ||
      trialMs > MAX_TRIAL_MS
    )
      return undefined;
    settings.trialMs = trialMs;
  }
  if (trialChecks !== undefined) {
    if (!Array.isArray(trialChecks)) return undefined;
    const texts: string[] = [];
    for (const c of trialChecks) {
      if (typeof c !== 'string') return undefined;
      texts.push(c);
    }
    settings.trialChecks = texts;
  }
  return settings;
}
