/**
 * The command audit log on SQLite: a command recorded once before it is sent (`'full'`), its
 * progress and outcome, and the paged query, newest first.
 *
 * @example
 * const commands = createSqliteCommands(context);
 * await commands.recordCommand({ commandId, deviceId: 'pump-1', action: 'reboot', args: {}, actor: 'ui', requestedAt: Date.now() });
 */
import type { CommandRow } from './rows.js';
import { commandFromRow } from './rows.js';
import type { SqliteContext } from './sqlite-context.js';
import type { Store } from './store.js';
import { commandParams, commandUpdateParams } from './store-inputs.js';
import { commandRecorded, commandUpdated } from './store-outcomes.js';
import { commandPageQuery, pageOf } from './store-queries.js';

export function createSqliteCommands(
  context: SqliteContext,
): Pick<Store, 'recordCommand' | 'updateCommand' | 'queryCommands'> {
  const { reader, life, write } = context;
  return {
    async recordCommand(command) {
      life.ensureOpen();
      const params = commandParams(command);
      const info = await write('full', 'one', (conn) =>
        conn.run(
          `INSERT INTO commands (command_id, device_id, action, args, actor, status, requested_at, expires_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (command_id) DO NOTHING`,
          params,
        ),
      );
      return commandRecorded(info.changes, params[0]);
    },

    async updateCommand(commandId, update) {
      life.ensureOpen();
      const params = commandUpdateParams(commandId, update);
      const info = await write('full', 'one', (conn) =>
        conn.run(
          `UPDATE commands SET status = ?1, result = coalesce(?2, result), error = coalesce(?3, error),
             completed_at = coalesce(?4, completed_at)
           WHERE command_id = ?5`,
          params,
        ),
      );
      return commandUpdated(info.changes, params[4]);
    },

    queryCommands(query) {
      return life.read('queryCommands', async () => {
        const { sql, params, limit } = commandPageQuery(query, '?');
        const rows = await reader.all<CommandRow>(sql, params);
        return pageOf(rows.map(commandFromRow), rows, limit);
      });
    },
  };
}
