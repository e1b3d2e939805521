/**
 * Serving the renderer on app:// (electron/protocol.ts): the file a URL maps to, with
 * path-traversal refused, content types, and the security headers forced on responses.
 */
import { join, resolve, sep } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  contentTypeOf,
  RENDERER_HEADERS,
  rendererFileFor,
  SECURITY_HEADERS,
  withSecurityHeaders,
} from '../../electron/protocol.js';
import { APP_ORIGIN, CSP } from '../../electron/window-options.js';

const root = resolve('/srv/fleetvisor/renderer/dist');
const at = (path: string) => rendererFileFor(root, `${APP_ORIGIN}${path}`, APP_ORIGIN);

describe('rendererFileFor', () => {
  it.each([
    ['/', 'index.html'],
    ['', 'index.html'],
    ['/index.html', 'index.html'],
    ['/assets/index-abc123.js', 'assets/index-abc123.js'],
    ['/assets/font%20name.woff2', 'assets/font name.woff2'],
    ['/devices/pump-7', 'index.html'],
    ['/index.html?x=1#/tree', 'index.html'],
  ])('%s → %s', (path, file) => {
    expect(at(path)).toBe(join(root, file));
  });

  it.each([
    '/..%2F..%2Fetc%2Fpasswd.txt',
    '/assets/..%2F..%2F..%2Fetc%2Fshadow.js',
    '/%2e%2e%2f%2e%2e%2fetc/passwd.js',
    '/a%5C..%5C..%5Cwin.ini',
    '/x%00.js',
    '/.env',
    '/assets/.hidden.js',
    '/%E0%A4%A.js',
    '/%2e%2e/x.js',
  ])('refuses %s', (path) => {
    const file = at(path);
    // The URL parser may resolve dot segments itself (staying inside); otherwise: refused.
    if (file !== null) expect(file.startsWith(root + sep)).toBe(true);
    expect(file === null || !file.includes('..')).toBe(true);
  });

  it('refuses the hostile ones outright', () => {
    for (const path of ['/..%2F..%2Fetc%2Fpasswd.txt', '/a%5C..%5Cb.js', '/x%00.js', '/.env', '/%E0%A4%A.js'])
      expect(at(path), path).toBeNull();
  });

  it('refuses other origins', () => {
    for (const url of [
      'app://evil/index.html',
      'https://fleetvisor/index.html',
      'file:///srv/fleetvisor/renderer/dist/index.html',
      'app://user@fleetvisor/index.html',
    ])
      expect(rendererFileFor(root, url, APP_ORIGIN), url).toBeNull();
  });

  it('never leaves the folder, whatever the path', () => {
    const segment = fc.oneof(
      fc.constantFrom('..', '.', '%2e%2e', '%2E%2E%2F', '%2f', '%5c', '%00', 'a', 'b.js', '', '%'),
      fc.string({ maxLength: 6 }),
    );
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 8 }), (segments) => {
        const file = at(`/${segments.join('/')}`);
        return file === null || file.startsWith(root + sep);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('headers', () => {
  it('content types', () => {
    expect(contentTypeOf('/x/index.html')).toBe('text/html; charset=utf-8');
    expect(contentTypeOf('/x/a.JS')).toBe('text/javascript; charset=utf-8');
    expect(contentTypeOf('/x/a.woff2')).toBe('font/woff2');
    expect(contentTypeOf('/x/a.bin')).toBe('application/octet-stream');
  });

  it('every app:// response carries the CSP and nosniff', () => {
    expect(RENDERER_HEADERS['Content-Security-Policy']).toBe(CSP);
    expect(RENDERER_HEADERS['X-Content-Type-Options']).toBe('nosniff');
  });

  it('withSecurityHeaders replaces any CSP, in any case, and keeps the rest', () => {
    const out = withSecurityHeaders({
      'content-security-policy': ["default-src *; script-src 'unsafe-eval'"],
      'CONTENT-SECURITY-POLICY': 'default-src *',
      'Content-Type': ['text/html'],
      'Cache-Control': 'max-age=60',
    });
    expect(Object.keys(out).filter((k) => k.toLowerCase() === 'content-security-policy')).toEqual([
      'Content-Security-Policy',
    ]);
    expect(out['Content-Security-Policy']).toEqual([CSP]);
    expect(out['Content-Type']).toEqual(['text/html']);
    expect(out['Cache-Control']).toEqual(['max-age=60']);
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) expect(out[name]).toEqual([value]);
    expect(withSecurityHeaders(undefined)['Content-Security-Policy']).toEqual([CSP]);
  });
});
