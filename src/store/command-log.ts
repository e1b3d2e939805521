/**
 * The command audit log in the store: every command to a device, recorded before it is sent
 * (who asked what of which device, with which arguments), then its progress and how it ended.
 * Engine-neutral: the types and the part of the {@link Store} port that writes and reads them;
 * the SQL is in sqlite-commands.ts and postgres-commands.ts.
 *
 * @example
 * await store.recordCommand({ commandId: 'c-1', deviceId: 'pump-1', action: 'reboot', args: {}, actor: 'ana', requestedAt: Date.now() });
 * await store.updateCommand('c-1', { status: 'succeeded', result: { ok: true }, completedAt: Date.now() });
 * const page = await store.queryCommands({ deviceId: 'pump-1', limit: 50 }); // newest first
 */
import type { JsonValue, Page, StoreFailure, StoreResult } from './store.js';

/** The life of a command; `pending` and `sent` are open, the rest are final. */
export type CommandStatus =
  | 'pending'
  | 'sent'
  | 'succeeded'
  | 'failed'
  | 'timedOut'
  | 'cancelled'
  | 'expired';

export const COMMAND_STATUSES: readonly CommandStatus[] = [
  'pending',
  'sent',
  'succeeded',
  'failed',
  'timedOut',
  'cancelled',
  'expired',
];

/** One command as audited: who asked what of which device, and how it ended. */
export interface CommandAuditRecord {
  /** Paging cursor, in recording order. */
  readonly seq: number;
  /** Unique; the same id travels to the device so a resend is deduplicated there. */
  readonly commandId: string;
  readonly deviceId: string;
  readonly action: string;
  readonly args: JsonValue;
  /** Who asked: an operator's name, or `system:<component>` for automatic actions. */
  readonly actor: string;
  readonly status: CommandStatus;
  readonly result: JsonValue | null;
  readonly error: StoreFailure<string> | null;
  readonly requestedAt: number;
  readonly completedAt: number | null;
  /** After this (ms since epoch) the command is not sent any more and ends `expired`; null: never. */
  readonly expiresAt: number | null;
}

export interface CommandInput {
  readonly commandId: string;
  readonly deviceId: string;
  readonly action: string;
  readonly args: JsonValue;
  readonly actor: string;
  /** Defaults to `'pending'`. */
  readonly status?: CommandStatus;
  readonly requestedAt: number;
  /** Defaults to null (never expires). */
  readonly expiresAt?: number | null;
}

export interface CommandUpdate {
  readonly status: CommandStatus;
  readonly result?: JsonValue;
  readonly error?: StoreFailure<string>;
  readonly completedAt?: number;
}

export interface CommandQuery {
  readonly deviceId?: string;
  readonly status?: CommandStatus;
  /** `requestedAt >= fromMs`. */
  readonly fromMs?: number;
  /** `requestedAt < toMs`. */
  readonly toMs?: number;
  /** Newest first; only commands recorded before this seq. */
  readonly beforeSeq?: number;
  /** Page size, 1…10 000. */
  readonly limit: number;
}

/** The part of the {@link Store} that keeps the command audit log. */
export interface CommandLogStore {
  /**
   * Audits a command before it is sent (`'full'`). Recording the same `commandId` again changes
   * nothing and resolves `alreadyRecorded`, so a retry after a crash is harmless.
   */
  recordCommand(command: CommandInput): Promise<StoreResult<void, 'alreadyRecorded'>>;
  /** Records a command's progress or outcome (`'full'`); `notFound` if it was never recorded. */
  updateCommand(commandId: string, update: CommandUpdate): Promise<StoreResult<void, 'notFound'>>;
  /** A page of the command audit log, newest first. */
  queryCommands(query: CommandQuery): Promise<Page<CommandAuditRecord>>;
}
