/**
 * The desktop shell's security settings, as plain data and pure functions (no `electron` import,
 * so tests and the headless build can load them): the window's web preferences, the renderer's
 * Content-Security-Policy, the one origin the renderer may be at, which navigations and requests
 * are allowed, and the permissions granted (none).
 *
 * The renderer is served from the custom `app://fleetvisor` origin (a privileged, standard,
 * secure scheme), never from `file://` and never from the network, so the CSP, the same-origin
 * checks and the IPC sender check all have one real origin to compare against.
 *
 * Items of Electron's security checklist covered here: 2, 3, 4, 6, 7, 8, 9, 10, 11, 13, 18
 * (see electron/main.ts for the map of all 20).
 *
 * @example
 * new BrowserWindow(windowOptions(distDir, { devTools: !app.isPackaged }));
 * contents.on('will-navigate', (e) => { if (!isAllowedNavigation(e.url, APP_ORIGIN)) e.preventDefault(); });
 */
import { join } from 'node:path';

/** The custom scheme the renderer is served from. */
export const APP_SCHEME = 'app';
/** Its one host. */
export const APP_HOST = 'fleetvisor';
/** The renderer's origin: the only origin navigations, requests and IPC senders may have. */
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
/** The page the window loads. */
export const APP_ENTRY_URL = `${APP_ORIGIN}/index.html`;

/**
 * Privileges for `protocol.registerSchemesAsPrivileged`: `standard` (a real origin, relative URLs
 * resolve), `secure` (a secure context), fetch for the renderer's own assets. Deliberately not
 * `bypassCSP`, not `corsEnabled`, no service workers.
 */
export const SCHEME_PRIVILEGES = Object.freeze({
  standard: true,
  secure: true,
  supportFetchAPI: true,
  bypassCSP: false,
  corsEnabled: false,
  allowServiceWorkers: false,
  stream: false,
  codeCache: true,
} as const);

/** File name of the bundled preload (CommonJS: sandboxed preloads cannot be ES modules). */
export const PRELOAD_FILE = 'preload.cjs';

/** Where the bundled preload lies, given the folder of the bundled main. */
export function preloadPath(distDir: string): string {
  return join(distDir, PRELOAD_FILE);
}

/** The renderer's web preferences: isolated, sandboxed, no Node, no webview, nothing experimental. */
export const WEB_PREFERENCES = Object.freeze({
  contextIsolation: true,
  sandbox: true,
  nodeIntegration: false,
  nodeIntegrationInWorker: false,
  nodeIntegrationInSubFrames: false,
  webviewTag: false,
  webSecurity: true,
  allowRunningInsecureContent: false,
  experimentalFeatures: false,
  spellcheck: false,
  navigateOnDragDrop: false,
  safeDialogs: true,
  enableWebSQL: false,
  plugins: false,
} as const);

/** The main window, without the preload path (see {@link windowOptions}). */
export const WINDOW_OPTIONS = Object.freeze({
  title: 'Fleetvisor',
  width: 1440,
  height: 900,
  minWidth: 960,
  minHeight: 600,
  /** Shown on `ready-to-show`, so no white flash. */
  show: false,
  backgroundColor: '#111418',
  autoHideMenuBar: true,
  webPreferences: WEB_PREFERENCES,
} as const);

/**
 * The window's icon (Linux and Windows take it from here; macOS from the bundle): the 512 px PNG of
 * assets/icons, two folders up from the bundled main (electron/dist), in a checkout and in a package.
 */
export function windowIconPath(distDir: string): string {
  return join(distDir, '..', '..', 'assets', 'icons', 'png', '512x512.png');
}

/** {@link WINDOW_OPTIONS} with the preload path and icon; DevTools only where asked (development). */
export function windowOptions(distDir: string, options: { readonly devTools?: boolean } = {}) {
  return {
    ...WINDOW_OPTIONS,
    icon: windowIconPath(distDir),
    webPreferences: {
      ...WEB_PREFERENCES,
      preload: preloadPath(distDir),
      devTools: options.devTools ?? false,
    },
  };
}

/**
 * The renderer's CSP. No remote source anywhere, no `eval`, no plugins, no frames, no `<base>`,
 * no form posts; inline styles only (React style props and chart libraries need them).
 * `connect-src 'self'`: the renderer talks to the host over IPC, not the network.
 */
export const CSP_DIRECTIVES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  'default-src': ["'self'"],
  'script-src': ["'self'"],
  'style-src': ["'self'", "'unsafe-inline'"],
  'img-src': ["'self'", 'data:'],
  'font-src': ["'self'"],
  'connect-src': ["'self'"],
  'object-src': ["'none'"],
  'frame-src': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
  'frame-ancestors': ["'none'"],
});

export const CSP = Object.entries(CSP_DIRECTIVES)
  .map(([name, sources]) => `${name} ${sources.join(' ')}`)
  .join('; ');

/**
 * The origin of a URL as `scheme://host[:port]`, for any scheme with a host (Node's URL gives
 * `null` as the origin of non-special schemes such as `app:`). Null for URLs without a host
 * (`file:///…`, `javascript:`, `data:`, `about:`), with credentials, or that do not parse.
 */
export function originOf(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (parsed.protocol === 'file:' || parsed.host === '') return null;
  if (parsed.username !== '' || parsed.password !== '') return null;
  return `${parsed.protocol}//${parsed.host}`;
}

/** Whether the renderer may navigate to `url`: only within the app's own origin. */
export function isAllowedNavigation(url: string, appOrigin: string = APP_ORIGIN): boolean {
  return originOf(url) === appOrigin;
}

/**
 * Whether the renderer's session may make this request: its own origin, `data:` images, blobs it
 * made itself, and DevTools' own pages. Everything else (http, https, ws, file, ftp…) is
 * cancelled: the UI is bundled and loads nothing remote.
 */
export function isAllowedRequest(url: string, appOrigin: string = APP_ORIGIN): boolean {
  if (originOf(url) === appOrigin) return true;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol === 'data:' || parsed.protocol === 'devtools:') return true;
  if (parsed.protocol === 'blob:') return originOf(parsed.pathname) === appOrigin;
  return false;
}

/**
 * The permissions the renderer is granted: none. Notifications, media, geolocation, clipboard
 * reads, HID/USB/serial, fullscreen requests from the page: all refused. (The host opens serial
 * ports itself, in the main process; the renderer never needs Web Serial.)
 */
export const GRANTED_PERMISSIONS: readonly string[] = Object.freeze([]);

export function isPermissionGranted(permission: string): boolean {
  return GRANTED_PERMISSIONS.includes(permission);
}
