/**
 * Downloads an export of the headless server (`GET /api/export/<kind>?…`, src/host/export.ts) as
 * a file, from the browser.
 *
 * Authentication: the UI's token travels as `Authorization: Bearer …`, as on every call, so this
 * is a `fetch` whose body becomes a Blob, saved through a temporary `<a download>`. A plain link
 * cannot carry the header, and the server on purpose takes the token in no URL (URLs end up in the
 * history, in logs and in Referer headers), so there is no short-lived query token either. The
 * price: the browser holds the file in memory before saving it; for very large exports the
 * `fleetvisor export` command streams to disk instead.
 *
 * Inside the desktop shell there is no HTTP server and downloads are refused: the preload's
 * `exportToFile` has the main process ask where to save (a save dialog) and stream the export
 * into that file (src/host/export-file.ts), with the same query. Without either (no token, as
 * with the simulated `?fake=` fleet) {@link exportAvailable} is false.
 *
 * @example
 * const r = await downloadExport('telemetry', { device: ['pump-7'], metric: ['temp'], from: String(Date.now() - 3_600_000) });
 * if (!r.ok) show(r.message);
 */
import { takeTokenFromLocation } from '../api/http-client.js';

export type ExportKind = 'events' | 'commands' | 'telemetry';
export type ExportParams = Readonly<Record<string, string | readonly string[] | undefined>>;

/** In the desktop shell (its preload saves exports), or a browser tab on `fleetvisor serve` that holds the token. */
export function exportAvailable(): boolean {
  if (typeof window === 'undefined') return false;
  if (window.fleetvisor !== undefined) return typeof window.fleetvisor.exportToFile === 'function';
  return typeof fetch === 'function' && takeTokenFromLocation() !== null;
}

/** The export's query string (arrays repeat, undefined and '' are left out), without `?`. */
export function exportQuery(params: ExportParams): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined) continue;
    for (const v of typeof value === 'string' ? [value] : value) if (v !== '') query.append(name, v);
  }
  return query.toString();
}

/** `GET /api/export/<kind>?…` with the parameters. */
export function exportPath(kind: ExportKind, params: ExportParams): string {
  const text = exportQuery(params);
  return `/api/export/${kind}${text ? `?${text}` : ''}`;
}

/** The file name from `Content-Disposition: attachment; filename="…"`, else `fallback`. */
export function fileNameOf(disposition: string | null, fallback: string): string {
  const match = disposition === null ? null : /filename="([^"\\/]+)"/.exec(disposition);
  return match?.[1] ?? fallback;
}

export async function downloadExport(
  kind: ExportKind,
  params: ExportParams,
): Promise<{ ok: true; fileName: string; bytes: number } | { ok: false; message: string }> {
  const desktop = typeof window === 'undefined' ? undefined : window.fleetvisor?.exportToFile;
  if (desktop) {
    const r = await desktop(kind, exportQuery(params)).catch((error: unknown) => ({
      ok: false as const,
      code: 'unavailable',
      message: error instanceof Error ? error.message : String(error),
    }));
    if (r.ok) return { ok: true, fileName: r.fileName, bytes: r.bytes };
    return { ok: false, message: r.code === 'cancelled' ? 'not saved: no file chosen' : r.message };
  }
  const token = takeTokenFromLocation();
  if (!token) return { ok: false, message: 'no access token in this tab: open the link Fleetvisor printed' };
  let res: Response;
  try {
    res = await fetch(exportPath(kind, params), { headers: { Authorization: `Bearer ${token}` } });
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
    return { ok: false, message: body?.error?.message ?? `HTTP ${res.status}` };
  }
  let blob: Blob;
  try {
    blob = await res.blob();
  } catch (error) {
    return {
      ok: false,
      message: `the export was cut off: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
  const fileName = fileNameOf(
    res.headers.get('content-disposition'),
    `fleetvisor-${kind}.${params.format ?? 'csv'}`,
  );
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  // The click has handed the Blob to the download; revoking later keeps the memory bounded.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return { ok: true, fileName, bytes: blob.size };
}
