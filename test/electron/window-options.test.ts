/**
 * The window's web preferences, the CSP, and the navigation, request and permission policies of
 * the Electron shell (electron/window-options.ts), without Electron.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  APP_ENTRY_URL,
  APP_ORIGIN,
  CSP,
  CSP_DIRECTIVES,
  GRANTED_PERMISSIONS,
  isAllowedNavigation,
  isAllowedRequest,
  isPermissionGranted,
  originOf,
  preloadPath,
  SCHEME_PRIVILEGES,
  WEB_PREFERENCES,
  WINDOW_OPTIONS,
  windowOptions,
} from '../../electron/window-options.js';

describe('WINDOW_OPTIONS', () => {
  it('isolates and sandboxes the renderer, with no Node anywhere', () => {
    const p = WINDOW_OPTIONS.webPreferences;
    expect(p.contextIsolation).toBe(true);
    expect(p.sandbox).toBe(true);
    expect(p.nodeIntegration).toBe(false);
    expect(p.nodeIntegrationInWorker).toBe(false);
    expect(p.nodeIntegrationInSubFrames).toBe(false);
  });

  it('keeps web security on and everything risky off', () => {
    const p = WEB_PREFERENCES;
    expect(p.webSecurity).toBe(true);
    expect(p.allowRunningInsecureContent).toBe(false);
    expect(p.experimentalFeatures).toBe(false);
    expect(p.webviewTag).toBe(false);
    expect(p.spellcheck).toBe(false);
    expect(p.navigateOnDragDrop).toBe(false);
    expect(Object.keys(p)).not.toContain('enableBlinkFeatures');
    expect(Object.keys(p)).not.toContain('preload');
  });

  it('is frozen, so nothing can loosen it at run time', () => {
    expect(Object.isFrozen(WINDOW_OPTIONS)).toBe(true);
    expect(Object.isFrozen(WEB_PREFERENCES)).toBe(true);
  });

  it('windowOptions adds the bundled preload and keeps every preference', () => {
    const o = windowOptions('/opt/fleetvisor/electron/dist');
    expect(o.webPreferences.preload).toBe(join('/opt/fleetvisor/electron/dist', 'preload.cjs'));
    expect(preloadPath('/x')).toBe(join('/x', 'preload.cjs'));
    expect(o.webPreferences.devTools).toBe(false);
    expect(windowOptions('/x', { devTools: true }).webPreferences.devTools).toBe(true);
    const { preload: _p, devTools: _d, ...rest } = o.webPreferences;
    expect(rest).toEqual({ ...WEB_PREFERENCES });
    expect(o.show).toBe(false);
  });

  it('registers app:// as standard and secure, never bypassing the CSP', () => {
    expect(SCHEME_PRIVILEGES.standard).toBe(true);
    expect(SCHEME_PRIVILEGES.secure).toBe(true);
    expect(SCHEME_PRIVILEGES.bypassCSP).toBe(false);
    expect(SCHEME_PRIVILEGES.corsEnabled).toBe(false);
    expect(SCHEME_PRIVILEGES.allowServiceWorkers).toBe(false);
    expect(APP_ENTRY_URL.startsWith(`${APP_ORIGIN}/`)).toBe(true);
  });
});

describe('CSP', () => {
  const directives = new Map(
    CSP.split(';').map((d) => {
      const [name = '', ...sources] = d.trim().split(/\s+/);
      return [name, sources] as const;
    }),
  );

  it('is the serialisation of CSP_DIRECTIVES', () => {
    expect([...directives.keys()]).toEqual(Object.keys(CSP_DIRECTIVES));
  });

  it('has the strict directives', () => {
    expect(directives.get('default-src')).toEqual(["'self'"]);
    expect(directives.get('script-src')).toEqual(["'self'"]);
    expect(directives.get('connect-src')).toEqual(["'self'"]);
    expect(directives.get('img-src')).toEqual(["'self'", 'data:']);
    expect(directives.get('style-src')).toEqual(["'self'", "'unsafe-inline'"]);
    for (const name of ['object-src', 'base-uri', 'form-action', 'frame-ancestors', 'frame-src'])
      expect(directives.get(name), name).toEqual(["'none'"]);
  });

  it("has no 'unsafe-eval', no wasm eval, no inline scripts", () => {
    expect(CSP).not.toContain('unsafe-eval');
    expect(CSP).not.toContain('wasm-unsafe-eval');
    expect(directives.get('script-src')).not.toContain("'unsafe-inline'");
  });

  it('has no remote source: no scheme, host or wildcard beyond data:', () => {
    for (const [name, sources] of directives)
      for (const source of sources) {
        expect(source, `${name} ${source}`).toMatch(/^('self'|'none'|'unsafe-inline'|data:)$/);
      }
    expect(CSP).not.toMatch(/https?:|wss?:|\*|blob:|file:/);
  });
});

describe('isAllowedNavigation', () => {
  it.each([
    `${APP_ORIGIN}/index.html`,
    `${APP_ORIGIN}/devices/pump-7`,
    `${APP_ORIGIN}/`,
    `${APP_ORIGIN}/index.html#/tree`,
  ])('allows the app itself: %s', (url) => {
    expect(isAllowedNavigation(url, APP_ORIGIN)).toBe(true);
  });

  it.each([
    'https://evil.example/',
    'http://127.0.0.1:8080/',
    'http://localhost/',
    'file:///etc/passwd',
    'file://fleetvisor/index.html',
    'javascript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    'about:blank',
    'about:srcdoc',
    'blob:app://fleetvisor/1234',
    'app://evil/index.html',
    'app://fleetvisor.evil.example/index.html',
    'app://user:pw@fleetvisor/index.html',
    'app://user@fleetvisor/index.html',
    'app://fleetvisor:8080/index.html',
    'apps://fleetvisor/index.html',
    'ws://fleetvisor/',
    'chrome://settings',
    'devtools://devtools/bundled/inspector.html',
    'not a url',
    '',
  ])('refuses %s', (url) => {
    expect(isAllowedNavigation(url, APP_ORIGIN)).toBe(false);
  });

  it('originOf gives scheme://host for non-special schemes, null without a host', () => {
    expect(originOf('app://fleetvisor/a/b')).toBe('app://fleetvisor');
    expect(originOf('https://x.example:8443/a')).toBe('https://x.example:8443');
    expect(originOf('file:///x')).toBeNull();
    expect(originOf('javascript:1')).toBeNull();
    expect(originOf('%%%')).toBeNull();
  });
});

describe('isAllowedRequest', () => {
  it.each([
    [`${APP_ORIGIN}/assets/index-abc.js`, true],
    ['data:image/png;base64,iVBORw0KGgo=', true],
    [`blob:${APP_ORIGIN}/6c1a-…`, true],
    ['devtools://devtools/bundled/inspector.html', true],
    ['blob:https://evil.example/6c1a', false],
    ['https://cdn.example/lib.js', false],
    ['http://127.0.0.1:1883/', false],
    ['ws://127.0.0.1:8080/stream', false],
    ['file:///etc/passwd', false],
    ['ftp://x/', false],
    ['app://other/x.js', false],
  ])('%s → %s', (url, allowed) => {
    expect(isAllowedRequest(url, APP_ORIGIN)).toBe(allowed);
  });
});

describe('permissions', () => {
  it('grants none', () => {
    expect(GRANTED_PERMISSIONS).toEqual([]);
    for (const p of [
      'media',
      'geolocation',
      'notifications',
      'clipboard-read',
      'clipboard-sanitized-write',
      'fullscreen',
      'openExternal',
      'serial',
      'hid',
      'usb',
      'display-capture',
      'unknown',
    ])
      expect(isPermissionGranted(p), p).toBe(false);
  });
});
