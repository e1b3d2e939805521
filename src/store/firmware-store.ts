/**
 * The persistence port for firmware images: the rows that describe the images the data folder
 * holds (docs/firmware.md), which devices run or want which version, and what else holds an image
 * (update jobs, rollouts), so an image is deleted only when nothing refers to it. The bytes
 * themselves are files named by their SHA-256; the firmware layer writes and removes them.
 *
 * Same contract as {@link Store}: writes acknowledged after their commit (`'full'`), expected
 * outcomes as values from a closed set of codes, a row that does not parse is a per-row error,
 * promises reject only with a {@link StoreError}. Every import and delete is audited in the event
 * log (`firmware.imported`, `firmware.deleted`) in the same transaction as the change.
 *
 * @example
 * const fw = await openSqliteFirmwareStore({ file: join(dataDir, DATABASE_FILE_NAME) });
 * const r = await fw.insertImage({ sha256, version: '1.1.0', kinds: ['fleetvisor.generic'], … });
 * if (!r.ok && r.error.code === 'versionConflict') …
 */
import type { JsonObject } from '../lib/json.js';
import type { RowResult, StoreResult } from './store.js';

/** One stored image, as described by its signed manifest. */
export interface FirmwareImageRecord {
  /** 64 lowercase hex digits; also the file name of its bytes. */
  readonly sha256: string;
  readonly version: string;
  readonly kinds: readonly string[];
  readonly hardwareRevision: string | null;
  readonly size: number;
  /** The id of the key that signed the manifest. */
  readonly keyId: string;
  /** The manifest as imported (signed part and signature). */
  readonly manifest: JsonObject;
  readonly importedAt: number;
  /** Who imported it: `cli`, `ui`, `api`, an operator's name. */
  readonly importedBy: string;
  /** For an explicit downgrade: the newer version that was stored for its kinds. */
  readonly downgradeFrom: string | null;
}

export type FirmwareImageInput = Omit<FirmwareImageRecord, 'importedAt'>;

/** A device's firmware as the store knows it: reported (`status.firmware`) and desired (`spec.firmware`). */
export interface DeviceFirmware {
  readonly deviceId: string;
  readonly kind: string;
  /** The version it runs, or null when it has not said (or its status does not parse). */
  readonly running: string | null;
  /** The version its spec asks for, or null. */
  readonly desired: string | null;
}

/**
 * What a job was started with that a restarted app needs to continue it the same (issue 14):
 * its trial in ms and its telemetry checks as written (`temp<=90`, `rssi`).
 */
export interface FirmwareJobSettings {
  readonly trialMs?: number;
  readonly trialChecks?: readonly string[];
}

/** A device's current or last firmware update job (docs/firmware.md §7). */
export interface FirmwareJobRecord {
  readonly deviceId: string;
  readonly sha256: string;
  readonly transferId: string;
  readonly version: string;
  /** The job's step (src/firmware/update-job.ts `UpdateJobStep`). */
  readonly step: string;
  readonly offset: number;
  /** The device's boot before the image was applied. */
  readonly boot: number | null;
  readonly deadline: number | null;
  readonly error: { readonly step: string; readonly code: string; readonly message: string } | null;
  readonly actor: string;
  readonly startedAt: number;
  readonly updatedAt: number;
  /** Null for a row saved without (before schema version 10), or whose settings do not parse. */
  readonly settings: FirmwareJobSettings | null;
}

/** A rollout as saved: its snapshot and policy as one JSON body (src/firmware/rollout.ts). */
export interface FirmwareRolloutRecord {
  readonly id: string;
  readonly sha256: string;
  readonly version: string;
  readonly state: string;
  readonly body: JsonObject;
  readonly actor: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface FirmwareStore {
  /** Writes a rollout (`'full'`); while it is not ended it holds its image (`rollout:<id>`). */
  saveRollout(rollout: FirmwareRolloutRecord, ended: boolean): Promise<void>;
  /** Every rollout, oldest first. */
  listRollouts(): Promise<readonly RowResult<FirmwareRolloutRecord>[]>;
  /**
   * Deletes a rollout's row and lets go of the image it held, auditing it as
   * `firmware.rolloutDeleted` with `actor` and `reason` (`'full'`); `notFound` if there is none.
   * What may be deleted (a damaged rollout) is the caller's rule.
   */
  deleteRollout(id: string, actor: string, reason: string): Promise<StoreResult<void, 'notFound'>>;
  /**
   * Writes a device's job (`'full'`): one row per device, the newest job wins. While `final` is
   * false the job holds its image (`job:<device id>`), so the image cannot be deleted under it.
   */
  saveJob(job: FirmwareJobRecord, final: boolean): Promise<void>;
  /** Every device's current or last job. */
  listJobs(): Promise<readonly RowResult<FirmwareJobRecord>[]>;
  /**
   * Describes a new image and audits the import (`'full'`). `alreadyStored`: an image with these
   * bytes is stored; `versionConflict`: one of its kinds has this version already (other bytes).
   * Nothing is written on either.
   */
  insertImage(
    image: FirmwareImageInput,
  ): Promise<StoreResult<FirmwareImageRecord, 'alreadyStored' | 'versionConflict'>>;
  getImage(sha256: string): Promise<StoreResult<FirmwareImageRecord, 'notFound' | 'badRecord'>>;
  /** Every image, newest import first. */
  listImages(): Promise<readonly RowResult<FirmwareImageRecord>[]>;
  /** Every device with its running and desired version, ordered by id. */
  devicesByFirmware(): Promise<readonly DeviceFirmware[]>;
  /** Marks an image as held by `holder` (`job:<id>`, `rollout:<id>`); idempotent. `notFound` if not stored. */
  addReference(sha256: string, holder: string): Promise<StoreResult<void, 'notFound'>>;
  /** Lets go of an image; idempotent. */
  removeReference(sha256: string, holder: string): Promise<void>;
  /** Lets go of every image `holder` holds (a damaged rollout's `rollout:<id>`); idempotent. */
  releaseReferences(holder: string): Promise<void>;
  /**
   * Deletes an image's description and audits it (`'full'`), only if no device of its kinds runs
   * or wants its version and no holder refers to it: otherwise `inUse`, naming them. The caller
   * removes the file after this resolves ok.
   */
  deleteImage(sha256: string, actor: string): Promise<StoreResult<FirmwareImageRecord, 'notFound' | 'inUse'>>;
  close(): Promise<void>;
}
