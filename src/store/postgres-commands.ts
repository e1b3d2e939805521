/**
 * The command audit log on PostgreSQL: a command recorded once before it is sent (`'full'`,
 * fenced by its device), its progress and outcome (fenced by the device it was recorded for), and
 * the paged query, newest first.
 *
 * @example
 * const commands = createPostgresCommands(context);
 * await commands.recordCommand({ commandId, deviceId: 'pump-1', action: 'reboot', args: {}, actor: 'ui', requestedAt: Date.now() });
 */
import type { PostgresContext } from './postgres-context.js';
import type { CommandRow } from './rows.js';
import { commandFromRow } from './rows.js';
import type { Store } from './store.js';
import { commandParams, commandUpdateParams } from './store-inputs.js';
import { commandRecorded, commandUpdated } from './store-outcomes.js';
import { commandPageQuery, pageOf } from './store-queries.js';

const UPDATE_COMMAND = `UPDATE commands SET status = $1, result = coalesce($2, result), error = coalesce($3, error),
           completed_at = coalesce($4, completed_at)
         WHERE command_id = $5`;

export function createPostgresCommands(
  context: PostgresContext,
): Pick<Store, 'recordCommand' | 'updateCommand' | 'queryCommands'> {
  const { life, write, change, rows, fence } = context;
  return {
    async recordCommand(command) {
      life.ensureOpen();
      const params = commandParams(command);
      const changed = await fence.change(
        params[1],
        `INSERT INTO commands (command_id, device_id, action, args, actor, status, requested_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (command_id) DO NOTHING`,
        params,
      );
      return commandRecorded(changed, params[0]);
    },

    async updateCommand(commandId, update) {
      life.ensureOpen();
      const params = commandUpdateParams(commandId, update);
      const id = params[4];
      const changed = fence.active
        ? await write('full', 'one', async (conn) => {
            const of = await conn.query<{ device_id: string }>(
              'SELECT device_id FROM commands WHERE command_id = $1',
              [id],
            );
            const deviceId = of.rows[0]?.device_id;
            if (deviceId === undefined) return 0;
            await fence.check(conn, [deviceId]);
            return (await conn.query(UPDATE_COMMAND, params)).rowCount ?? 0;
          })
        : await change('full', UPDATE_COMMAND, params);
      return commandUpdated(changed, id);
    },

    queryCommands(query) {
      return life.read('queryCommands', async () => {
        const { sql, params, limit } = commandPageQuery(query, '$');
        const found = await rows<CommandRow>(sql, params);
        return pageOf(found.map(commandFromRow), found, limit);
      });
    },
  };
}
