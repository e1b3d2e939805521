/**
 * An export (events, commands or telemetry, as CSV or JSON Lines) saved to a file the operator
 * picks, for the desktop shell, which has no HTTP server for the browser's download path
 * (renderer/src/lib/export-download.ts) and refuses every download on purpose
 * (electron/main.ts, which passes the save dialog as `choosePath`). The query is the same as
 * `GET /api/export/<kind>?…` and checked by the same {@link parseExportRequest}, so a misspelt
 * filter is refused before the dialog opens. The rows are streamed from the store into the file
 * with backpressure (flat memory whatever the size, unlike the browser's Blob), written to
 * `<file>.part` (readable by the user alone) and renamed when complete: a failure mid-way leaves
 * no file that looks whole, and an existing file is replaced only by a complete export.
 *
 * @example
 * const r = await exportToFile({ exports: app.exports, choosePath: askWhere }, { kind: 'events', query: 'format=csv&device=pump-7' });
 * // { ok: true, path: '/home/ann/fleetvisor-events-20261206-2330.csv', bytes: 18234 }
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ExportReader } from '../store/sqlite-export.js';
import { EXPORT_KINDS, type ExportKind, exportChunks, exportFileName, parseExportRequest } from './export.js';

/** What the renderer sends on `fleetvisor:export`. */
export interface ExportFilePayload {
  readonly kind: ExportKind;
  /** The query string of `GET /api/export/<kind>?…`, without the `?`. */
  readonly query: string;
}

export type ExportFileResult =
  | { readonly ok: true; readonly path: string; readonly fileName: string; readonly bytes: number }
  | {
      readonly ok: false;
      readonly code: 'badRequest' | 'cancelled' | 'unavailable' | 'failed';
      readonly message: string;
    };

export interface ExportToFileOptions {
  /** The store's export reader; undefined when the app has none (it did not start). */
  readonly exports: ExportReader | undefined;
  /** Asks where to save (the save dialog), suggesting a file name; undefined when cancelled. */
  readonly choosePath: (suggestedName: string) => Promise<string | undefined>;
  readonly now?: () => number;
}

/** Longest query accepted over IPC (an export's filters are short; a device list can be long). */
export const MAX_EXPORT_QUERY_CHARS = 65_536;

/** The payload checked, or why it is refused. */
export function checkExportPayload(
  payload: unknown,
): { ok: true; value: ExportFilePayload } | { ok: false; message: string } {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
    return { ok: false, message: 'an export needs { kind, query }' };
  const { kind, query } = payload as Record<string, unknown>;
  if (typeof kind !== 'string' || !(EXPORT_KINDS as readonly string[]).includes(kind))
    return { ok: false, message: `kind must be one of ${EXPORT_KINDS.join(', ')}` };
  if (typeof query !== 'string') return { ok: false, message: 'query must be a string' };
  if (query.length > MAX_EXPORT_QUERY_CHARS)
    return { ok: false, message: `query longer than ${MAX_EXPORT_QUERY_CHARS} characters` };
  return { ok: true, value: { kind: kind as ExportKind, query } };
}

export async function exportToFile(
  options: ExportToFileOptions,
  payload: unknown,
): Promise<ExportFileResult> {
  const checked = checkExportPayload(payload);
  if (!checked.ok) return { ok: false, code: 'badRequest', message: checked.message };
  const request = parseExportRequest(checked.value.kind, new URLSearchParams(checked.value.query));
  if (!request.ok) return { ok: false, code: 'badRequest', message: request.error.message };
  if (!options.exports) return { ok: false, code: 'unavailable', message: 'the store is not open' };
  const suggested = exportFileName(request.value, (options.now ?? Date.now)());
  const path = await options.choosePath(suggested);
  if (path === undefined || path === '') return { ok: false, code: 'cancelled', message: 'no file chosen' };
  const partial = `${path}.part`;
  let bytes = 0;
  const counted = async function* (chunks: AsyncGenerator<string>) {
    for await (const chunk of chunks) {
      const data = Buffer.from(chunk, 'utf8');
      bytes += data.length;
      yield data;
    }
  };
  try {
    await pipeline(
      Readable.from(counted(exportChunks(options.exports, request.value))),
      createWriteStream(partial, { mode: 0o600 }),
    );
    await rename(partial, path);
  } catch (error) {
    await rm(partial, { force: true });
    return {
      ok: false,
      code: 'failed',
      message: `the export to ${path} failed, nothing was saved: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
  return { ok: true, path, fileName: basename(path), bytes };
}
