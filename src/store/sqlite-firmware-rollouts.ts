/**
 * Firmware rollouts on SQLite (migration 6, `firmware_rollouts`): each saved whole at every
 * change, its snapshot and policy as one JSON body; until it ends it holds its image as
 * `rollout:<id>`. A row is deleted with the image it held let go (a damaged one, by the firmware
 * layer's rule), audited as `firmware.rolloutDeleted`.
 *
 * @example
 * const rollouts = createSqliteFirmwareRollouts(context);
 * await rollouts.saveRollout(record, false);
 * (await rollouts.listRollouts()).filter((r) => r.ok).length; // 1
 */
import type { FirmwareRolloutRecord, FirmwareStore } from './firmware-store.js';
import { parseJsonObject, requireName, toJsonText } from './records.js';
import type { FirmwareContext } from './sqlite-firmware-context.js';
import { badRecord, fail, readColumns } from './sqlite-firmware-context.js';
import { holdImage, releaseImages } from './sqlite-firmware-refs.js';
import type { RowResult, StoreResult } from './store.js';

export type SqliteFirmwareRollouts = Pick<FirmwareStore, 'saveRollout' | 'listRollouts' | 'deleteRollout'>;

export function createSqliteFirmwareRollouts(context: FirmwareContext): SqliteFirmwareRollouts {
  const { conn, now, write, read, audit } = context;
  return {
    async saveRollout(r, ended) {
      requireName(r.id, 'id');
      const body = toJsonText(r.body, 'body');
      await write('save firmware rollout', async () => {
        await conn.run(
          `INSERT INTO firmware_rollouts (id, sha256, version, state, body, actor, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET state = excluded.state, body = excluded.body, updated_at = excluded.updated_at`,
          [r.id, r.sha256, r.version, r.state, body, r.actor, r.createdAt, r.updatedAt],
        );
        const holder = `rollout:${r.id}`;
        if (ended) await releaseImages(conn, holder);
        else await holdImage(conn, holder, r.sha256, now());
      });
    },

    async listRollouts() {
      const rows = await read<Record<string, unknown>>(
        'list firmware rollouts',
        'SELECT * FROM firmware_rollouts ORDER BY created_at, id',
      );
      return rows.map(rolloutFromRow);
    },

    deleteRollout(id, actor, reason) {
      requireName(id, 'id');
      requireName(actor, 'actor');
      return write('delete firmware rollout', async (): Promise<StoreResult<void, 'notFound'>> => {
        const row = await conn.get<{ sha256: unknown; version: unknown; state: unknown }>(
          'SELECT sha256, version, state FROM firmware_rollouts WHERE id = ?',
          [id],
        );
        if (row === undefined) return fail('notFound', `no stored rollout '${id}'`);
        await conn.run('DELETE FROM firmware_rollouts WHERE id = ?', [id]);
        await releaseImages(conn, `rollout:${id}`);
        await audit('firmware.rolloutDeleted', {
          rollout: id,
          sha256: String(row.sha256),
          version: String(row.version),
          state: String(row.state),
          actor,
          reason,
        });
        return { ok: true, value: undefined };
      });
    },
  };
}

function rolloutFromRow(row: Readonly<Record<string, unknown>>): RowResult<FirmwareRolloutRecord> {
  const body = parseJsonObject(row.body);
  const c = readColumns(row, {
    id: 'text',
    sha256: 'text',
    version: 'text',
    state: 'text',
    actor: 'text',
    created_at: 'number',
    updated_at: 'number',
  });
  if (!body.ok)
    return badRecord(String(row.id), `firmware rollout row '${String(row.id)}': body ${body.error}`);
  if (c === undefined)
    return badRecord(String(row.id), `firmware rollout row '${String(row.id)}': a column does not parse`);
  return {
    ok: true,
    value: {
      id: c.id,
      sha256: c.sha256,
      version: c.version,
      state: c.state,
      body: body.value,
      actor: c.actor,
      createdAt: c.created_at,
      updatedAt: c.updated_at,
    },
  };
}
