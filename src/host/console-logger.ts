/**
 * The log a person reads in a terminal: one line per entry, time, level, message, then the
 * fields as `key=value` (strings with spaces quoted). Debug lines only when asked for. Control and
 * invisible characters (device-supplied text) are shown escaped, never written raw.
 *
 * @example
 * const logger = createConsoleLogger({ level: 'info' });
 * logger.info('device online', { deviceId: 'sim-m001', via: 'mqtt' });
 * // 12:04:07.311 INFO  device online deviceId=sim-m001 via=mqtt
 */
import type { Logger } from '../runtime/runtime.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface ConsoleLoggerOptions {
  readonly level?: LogLevel;
  /** Where lines go; default process.stderr for warn/error and process.stdout otherwise. */
  readonly write?: (line: string, level: LogLevel) => void;
  readonly now?: () => Date;
}

/**
 * Characters a terminal acts on or hides instead of showing: C0/C1 controls (ESC starts a control
 * sequence), format characters (U+202E reverses the text after it, U+200B is invisible), line and
 * paragraph separators, and lone surrogates. Device-supplied text (ids, names, topics) reaches
 * the log, so each is shown as its `\uXXXX` escape instead.
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

/** `text` with every {@link UNSAFE} character replaced by its `\uXXXX` escape. */
export function escapeForTerminal(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function show(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.message);
  if (typeof value === 'string')
    return /^[\w.:/@+-]*$/.test(value) && value !== '' ? value : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined)
    return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export function formatLine(
  level: LogLevel,
  message: string,
  fields: Record<string, unknown> | undefined,
  at: Date,
): string {
  const time = at.toISOString().slice(11, 23);
  const tail = fields
    ? Object.entries(fields)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => ` ${k}=${show(v)}`)
        .join('')
    : '';
  // Escaped last, over the whole line: the message and the keys carry device text too, and
  // JSON.stringify leaves U+2028, U+202E and friends raw.
  return escapeForTerminal(`${time} ${level.toUpperCase().padEnd(5)} ${message}${tail}`);
}

export function createConsoleLogger(options: ConsoleLoggerOptions = {}): Logger {
  const min = RANK[options.level ?? 'info'];
  const now = options.now ?? (() => new Date());
  const write =
    options.write ??
    ((line: string, level: LogLevel) =>
      (level === 'warn' || level === 'error' ? process.stderr : process.stdout).write(`${line}\n`));
  const at =
    (level: LogLevel) =>
    (message: string, fields?: Record<string, unknown>): void => {
      if (RANK[level] >= min) write(formatLine(level, message, fields, now()), level);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
