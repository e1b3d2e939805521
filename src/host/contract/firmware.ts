/**
 * Firmware as the views show it: stored images, why an import was refused, one device's update
 * job, rollouts in waves, and the sizes `firmwareImport` takes (docs/firmware.md).
 */

/**
 * A stored firmware image (docs/firmware.md §4) with the devices of its kinds that run its
 * version and those whose spec asks for it.
 */
export interface FirmwareImageView {
  readonly sha256: string;
  readonly version: string;
  readonly kinds: readonly string[];
  readonly hardwareRevision: string | null;
  readonly size: number;
  /** The id of the key that signed its manifest (SHA-256 of the raw public key, hex). */
  readonly keyId: string;
  readonly importedAt: number;
  readonly importedBy: string;
  /** For an explicit downgrade: the newer version that was stored. */
  readonly downgradeFrom: string | null;
  /** The soak between waves its signed manifest declares for its rollouts (seconds); null: none. */
  readonly soakSeconds: number | null;
  /** Each device's time on trial its signed manifest declares (seconds); null: none (10 s then). */
  readonly trialSeconds: number | null;
  readonly runningOn: readonly string[];
  readonly wantedBy: readonly string[];
}

/**
 * Why `firmwareImport` refused an image: the firmware layer's closed codes, answered as the
 * error's code, with its message naming the reason (docs/firmware.md §3). Nothing is stored.
 */
export type FirmwareRefusalCode =
  | 'badManifest'
  | 'unsigned'
  | 'unknownKey'
  | 'badSignature'
  | 'unknownKind'
  | 'firmwareNotSupported'
  | 'tooLarge'
  | 'truncated'
  | 'sizeMismatch'
  | 'hashMismatch'
  | 'duplicateImage'
  | 'versionConflict'
  | 'downgrade'
  | 'writeFailed';

/** One device's firmware update job (src/firmware/update-job.ts), as the views show it. */
export interface FirmwareJobView {
  readonly deviceId: string;
  readonly transferId: string;
  readonly version: string;
  readonly size: number;
  /** SHA-256 of the image. */
  readonly sha256: string;
  /** queued, transferring, verifying, applying, rebooting, onTrial, confirming, rollingBack; or final: succeeded, rolledBack, failed, cancelled. */
  readonly step: string;
  /** Bytes the device acknowledged holding. */
  readonly offset: number;
  /** Where the transfer started (greater than 0 when it resumed). */
  readonly resumedFrom: number;
  readonly bytesPerSecond: number;
  readonly resent: number;
  /** Wall-clock ms by which the current step (reboot, trial) must end. */
  readonly deadline: number | null;
  /** `unhealthy` when a telemetry check of its trial failed (the message says which reading). */
  readonly error: { readonly step: string; readonly code: string; readonly message: string } | null;
  /** The telemetry checks of its trial as written (`temp<=90`, `rssi`); empty: none. */
  readonly trialChecks: readonly string[];
}

/** A rollout of one image to many devices in waves (src/firmware/rollout.ts). */
export interface RolloutView {
  readonly id: string;
  readonly version: string;
  readonly sha256: string;
  /** running, paused, completed, aborted, cancelled; or damaged (see `damage`). */
  readonly state: string;
  /** Why it paused or aborted; for a damaged one, its damage's message. */
  readonly reason: string | null;
  /** Its maintenance window as written; null when it has none. */
  readonly window: string | null;
  /** Outside its window: when the window opens next (wall ms); null when open or none. */
  readonly windowOpensAt: number | null;
  /** Soaking between two waves: when the next wave starts (wall ms); null otherwise. */
  readonly soakEndsAt: number | null;
  /** The telemetry checks of each device's trial (`temp<=90`, `rssi`); empty: none. */
  readonly trialChecks: readonly string[];
  /** 0-based index of the wave running (or last run). */
  readonly wave: number;
  /** Each wave's end (exclusive) in `order`. */
  readonly waveEnds: readonly number[];
  /** The frozen device list, in wave order. */
  readonly order: readonly string[];
  readonly devices: Readonly<
    Record<
      string,
      {
        readonly state: string;
        readonly wave: number;
        readonly attempts: number;
        readonly step: string | null;
        readonly error: { readonly code: string; readonly message: string } | null;
      }
    >
  >;
  readonly counts: Readonly<Record<string, number>>;
  readonly createdBy: string;
  readonly createdAt: number;
  /**
   * In a cluster, the instance that runs it when that is another one: shown as it last saved it
   * (at most a second old while it runs), read-only here (pause, resume and cancel it there).
   * Null: this instance runs it.
   */
  readonly runsOn: string | null;
  /**
   * A stored rollout that cannot be read back (state `damaged`; version, hash, creator and time
   * from its row when readable, else empty; no waves or devices): the field at fault, the message
   * naming it, the state it was saved in. It runs nothing and holds no image; `rolloutDelete`
   * removes it. Null for every other rollout.
   */
  readonly damage: {
    readonly field: string;
    readonly message: string;
    readonly savedState: string | null;
  } | null;
}

/** The largest image `firmwareImport` takes (twice the generic kind's 4 MiB slot); bigger is `badRequest`. */
export const MAX_FIRMWARE_IMAGE_BYTES = 8 * 1024 * 1024;
/** The largest manifest text `firmwareImport` takes. */
export const MAX_FIRMWARE_MANIFEST_CHARS = 64 * 1024;
