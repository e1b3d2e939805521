/**
 * Who holds a firmware image on SQLite: named references (`job:<device>`, `rollout:<id>`, or a
 * holder of the caller's), and the devices whose running or desired firmware is its version. An
 * image with a holder is not deleted.
 *
 * @example
 * const refs = createSqliteFirmwareRefs(context);
 * await refs.addReference(sha256, 'pinned by ops');
 */
import type { DeviceFirmware, FirmwareImageRecord, FirmwareStore } from './firmware-store.js';
import { requireName } from './records.js';
import type { SqliteConnection } from './sqlite-connection.js';
import type { FirmwareContext } from './sqlite-firmware-context.js';
import { fail, field } from './sqlite-firmware-context.js';
import type { StoreResult } from './store.js';

export type SqliteFirmwareRefs = Pick<
  FirmwareStore,
  'devicesByFirmware' | 'addReference' | 'removeReference' | 'releaseReferences'
>;

export function createSqliteFirmwareRefs(context: FirmwareContext): SqliteFirmwareRefs {
  const { conn, now, write, read } = context;
  return {
    async devicesByFirmware() {
      const rows = await read<{ id: string; kind: string; running: string | null; desired: string | null }>(
        'list device firmware',
        `SELECT id, kind, ${field('status', '$.firmware')} AS running, ${field('spec', '$.firmware')} AS desired
         FROM devices ORDER BY id`,
      );
      return rows.map(
        (r): DeviceFirmware => ({ deviceId: r.id, kind: r.kind, running: r.running, desired: r.desired }),
      );
    },

    addReference(sha256, holder) {
      requireName(holder, 'holder');
      return write('add firmware reference', async (): Promise<StoreResult<void, 'notFound'>> => {
        const found = await conn.get<{ n: number }>('SELECT 1 AS n FROM firmware_images WHERE sha256 = ?', [
          sha256,
        ]);
        if (found === undefined) return fail('notFound', `no firmware image with SHA-256 ${sha256}`);
        await conn.run(
          'INSERT INTO firmware_image_refs (sha256, holder, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
          [sha256, holder, now()],
        );
        return { ok: true, value: undefined };
      });
    },

    async removeReference(sha256, holder) {
      await write('remove firmware reference', () =>
        conn.run('DELETE FROM firmware_image_refs WHERE sha256 = ? AND holder = ?', [sha256, holder]),
      );
    },

    async releaseReferences(holder) {
      requireName(holder, 'holder');
      // Read first: a holder with nothing held (the usual case) costs no write transaction.
      const held = await read<{ n: number }>(
        'find firmware references',
        'SELECT 1 AS n FROM firmware_image_refs WHERE holder = ? LIMIT 1',
        [holder],
      );
      if (held.length === 0) return;
      await write('release firmware references', () => releaseImages(conn, holder));
    },
  };
}

/** Inside a write: `holder` holds the image `sha256`, if it is stored (a job or rollout under way). */
export async function holdImage(conn: SqliteConnection, holder: string, sha256: string, at: number) {
  await conn.run(
    `INSERT INTO firmware_image_refs (sha256, holder, created_at)
             SELECT sha256, ?, ? FROM firmware_images WHERE sha256 = ? ON CONFLICT DO NOTHING`,
    [holder, at, sha256],
  );
}

/** Inside a write: `holder` holds no image any more. */
export async function releaseImages(conn: SqliteConnection, holder: string) {
  await conn.run('DELETE FROM firmware_image_refs WHERE holder = ?', [holder]);
}

/** Inside a write: who holds `image` (at most 20 devices and 20 references), for the `inUse` message. */
export async function holdersOf(conn: SqliteConnection, image: FirmwareImageRecord): Promise<string[]> {
  const devices = await conn.all<{ id: string; running: string | null; desired: string | null }>(
    `SELECT d.id, ${field('d.status', '$.firmware')} AS running, ${field('d.spec', '$.firmware')} AS desired
       FROM devices d JOIN firmware_image_kinds k ON k.kind = d.kind AND k.sha256 = ?1
       WHERE running = k.version OR desired = k.version ORDER BY d.id LIMIT 20`,
    [image.sha256],
  );
  const refs = await conn.all<{ holder: string }>(
    'SELECT holder FROM firmware_image_refs WHERE sha256 = ? ORDER BY holder LIMIT 20',
    [image.sha256],
  );
  return [
    ...devices.map((d) => `device ${d.id} (${d.running === image.version ? 'runs it' : 'wants it'})`),
    ...refs.map((r) => r.holder),
  ];
}
