/**
 * Content types of the renderer's built files, shared by the headless server and the Electron
 * shell's app:// protocol (this module imports nothing, so both can use it).
 *
 * @example
 * contentTypeOf('/assets/index-3f2a.js'); // 'text/javascript; charset=utf-8'
 */

export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.otf': 'font/otf',
  '.wasm': 'application/wasm',
  '.webmanifest': 'application/manifest+json',
};

/** The content type for a file name by its extension; unknown ones are opaque bytes. */
export function contentTypeOf(file: string): string {
  const dot = file.lastIndexOf('.');
  const ext = dot >= 0 && dot > file.lastIndexOf('/') ? file.slice(dot).toLowerCase() : '';
  return CONTENT_TYPES[ext] ?? 'application/octet-stream';
}
