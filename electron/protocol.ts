/**
 * Serving the bundled renderer on `app://fleetvisor/…` (checklist items 1 and 18), pure: which
 * file a request maps to, with path-traversal checks, its content type, and the headers every
 * response carries (the CSP among them). electron/main.ts reads the file and answers from
 * `protocol.handle`.
 *
 * A request for a path without an extension (a client-side route such as `/devices/pump-7`)
 * gets `index.html`; anything that would leave the renderer's folder — `..` raw or
 * percent-encoded, backslashes, NUL, dot-files — gets nothing.
 *
 * @example
 * const file = rendererFileFor(RENDERER_DIR, request.url); // absolute path or null
 * new Response(await readFile(file), { headers: { ...RENDERER_HEADERS, 'Content-Type': contentTypeOf(file) } });
 */
import { extname, isAbsolute, relative, resolve, sep } from 'node:path';
import { contentTypeOf } from '../src/host/content-types.js';
import { APP_ORIGIN, CSP, originOf } from './window-options.js';

export { contentTypeOf };

/** Security headers forced on every response the renderer's session receives. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
});

/** Headers on every `app://` response. */
export const RENDERER_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  ...SECURITY_HEADERS,
  'Cache-Control': 'no-cache',
});

function within(root: string, full: string): boolean {
  const rel = relative(root, full);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/**
 * The file under `rootDir` (absolute) that `requestUrl` asks for, or null when the URL is not on
 * the app's origin or its path is malformed or would leave the folder.
 */
export function rendererFileFor(rootDir: string, requestUrl: string, appOrigin = APP_ORIGIN): string | null {
  if (originOf(requestUrl) !== appOrigin) return null;
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(requestUrl).pathname);
  } catch {
    return null;
  }
  if (pathname.includes('\0') || pathname.includes('\\')) return null;
  const segments = pathname.split('/').filter((s) => s !== '');
  if (segments.some((s) => s.startsWith('.'))) return null;
  const last = segments.at(-1);
  const rel = last === undefined || extname(last) === '' ? 'index.html' : segments.join('/');
  const full = resolve(rootDir, rel);
  return within(rootDir, full) ? full : null;
}

/**
 * Response headers with the renderer's CSP forced on, whatever the response said (for
 * `session.webRequest.onHeadersReceived`): any CSP already there, in any letter case, is replaced.
 */
export function withSecurityHeaders(
  headers: Readonly<Record<string, string | string[]>> | undefined,
): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const forced = new Set(Object.keys(SECURITY_HEADERS).map((k) => k.toLowerCase()));
  for (const [name, value] of Object.entries(headers ?? {}))
    if (!forced.has(name.toLowerCase())) out[name] = Array.isArray(value) ? value : [value];
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) out[name] = [value];
  return out;
}
