/**
 * One call that opens the firmware images of a database the way the CLI and the app both need
 * them: the firmware store on the database file, the images folder beside it, the data folder's
 * trusted keys (with the sample key for the demo's database) and the kinds' slot sizes.
 *
 * @example
 * const fw = await openFirmware({ dataDir, databaseFile: join(dataDir, 'demo.sqlite'), demo: true, kinds: fleet.kinds });
 * if (!fw.ok) throw new Error(fw.error.message);          // badKey / unreadable: a broken trust list
 * await fw.value.images.importImage({ manifest, image, actor: 'ui' });
 * await fw.value.close();
 */
import { err, type Failure, ok, type Result } from '../lib/result.js';
import type { Logger } from '../runtime/runtime.js';
import type { FirmwareStore } from '../store/firmware-store.js';
import { openSqliteFirmwareStore } from '../store/sqlite-firmware-store.js';
import type { KindSlot } from './check-image.js';
import type { FirmwareImages } from './firmware-images.js';
import { firmwareDirFor, openFirmwareImages } from './firmware-images.js';
import type { KeyErrorCode, TrustedKeys } from './keys.js';
import { loadTrustedKeys, trustedKeySourcesFor } from './keys.js';

export interface OpenFirmwareOptions {
  readonly dataDir: string;
  /** The database the images belong to (`fleetvisor.sqlite`, or `demo.sqlite` in the demo). */
  readonly databaseFile: string;
  /** The demo's database also trusts the sample key (assets/firmware). */
  readonly demo: boolean;
  /** The kinds the app knows (a fleet's kinds map, or a list reduced to one). */
  readonly kinds: ReadonlyMap<string, KindSlot>;
  /** More trusted public-key files. */
  readonly trustedKeyFiles?: readonly string[];
  readonly logger?: Logger;
  /**
   * Where the fleet's devices and their firmware are read (the Firmware view's "running on", the
   * drift reconciler): by default the database file's own devices; a cluster's shared database.
   */
  readonly devicesByFirmware?: FirmwareStore['devicesByFirmware'];
}

export interface OpenedFirmware {
  readonly images: FirmwareImages;
  /** The rows underneath (update jobs are saved here). */
  readonly store: FirmwareStore;
  /** The trust list now (the data folder's trusted-keys folder is read again at each import). */
  trustedKeys(): TrustedKeys;
  close(): Promise<void>;
}

/** Rejects with a StoreError when the database cannot be opened; a bad trust list is a value. */
export async function openFirmware(
  options: OpenFirmwareOptions,
): Promise<Result<OpenedFirmware, Failure<KeyErrorCode>>> {
  const sources = trustedKeySourcesFor({
    dataDir: options.dataDir,
    demo: options.demo,
    files: options.trustedKeyFiles ?? [],
  });
  const trusted = loadTrustedKeys(sources);
  if (!trusted.ok) return err(trusted.error.code, trusted.error.message);
  // A key trusted while the app runs (`fleetvisor firmware trust`) counts at the next import; a
  // trust list that stops loading keeps the last one that did, and says why once.
  let keys = trusted.value;
  let said = '';
  const trustedKeys = (): TrustedKeys => {
    const now = loadTrustedKeys(sources);
    if (now.ok) {
      keys = now.value;
      said = '';
    } else if (said !== now.error.message) {
      said = now.error.message;
      options.logger?.warn(`trusted keys not read again, the last ones kept: ${now.error.message}`);
    }
    return keys;
  };
  const opened = await openSqliteFirmwareStore({
    file: options.databaseFile,
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const store = options.devicesByFirmware
    ? { ...opened, devicesByFirmware: options.devicesByFirmware }
    : opened;
  try {
    const images = await openFirmwareImages({
      store,
      imagesDir: firmwareDirFor(options.databaseFile),
      trustedKeys,
      kinds: options.kinds,
      ...(options.logger ? { logger: options.logger } : {}),
    });
    return ok({ images, store, trustedKeys: () => keys, close: () => store.close() });
  } catch (error) {
    await store.close();
    throw error;
  }
}
