/**
 * Static checks on the Electron shell's thin files, which cannot run here (no Electron binary):
 * electron/preload.ts exposes only the bridge through contextBridge, electron/main.ts installs
 * every guard of the security checklist and registers IPC through one wrapper, and no code the
 * tests or the headless server load imports `electron`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

/** The code without comments (block comments, and line comments on their own line). */
const code = (path: string) =>
  read(path)
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');

const count = (text: string, pattern: RegExp) => text.match(new RegExp(pattern, 'g'))?.length ?? 0;

const importsElectron = (text: string) =>
  /from\s+['"]electron(\/[^'"]*)?['"]|require\(\s*['"]electron['"]\s*\)|import\(\s*['"]electron['"]\s*\)/.test(
    text,
  );

function tsFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(ts|tsx|mts|cts)$/.test(f) && !f.split(sep).includes('node_modules'))
    .map((f) =>
      relative(root, join(root, dir, f))
        .split(sep)
        .join('/'),
    );
}

describe('electron/preload.ts', () => {
  const preload = code('electron/preload.ts');

  it('exposes exactly one thing, the bridge, through contextBridge', () => {
    expect(count(preload, /exposeInMainWorld\(/)).toBe(1);
    expect(preload).toMatch(/contextBridge\.exposeInMainWorld\(\s*'fleetvisor',\s*buildBridge\(/);
    expect(preload).not.toMatch(/exposeInMainWorld\([^)]*,\s*ipcRenderer\s*[,)]/);
    expect(preload).not.toMatch(/exposeInIsolatedWorld|webFrame|process\./);
  });

  it('uses ipcRenderer only for invoke, on and removeListener, never passing it along', () => {
    const uses = preload.match(/\bipcRenderer\b[^\n]{0,20}/g) ?? [];
    for (const use of uses)
      expect(use, use).toMatch(/^ipcRenderer(\.(invoke|on|removeListener)\(| } from 'electron')/);
    expect(preload).not.toMatch(/ipcRenderer\.(send|sendSync|sendTo|sendToHost|postMessage)\b/);
  });

  it('never hands the IPC event to the page', () => {
    expect(preload).toMatch(/\(_event: IpcRendererEvent, payload: unknown\) => listener\(payload\)/);
    expect(preload).not.toMatch(/listener\(\s*_?event/);
  });

  it('imports nothing but electron and the pure bridge builder (it is bundled into one file)', () => {
    const from = [...preload.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]);
    expect(from.sort()).toEqual(['./preload-api.js', 'electron']);
  });
});

describe('electron/main.ts', () => {
  const main = code('electron/main.ts');

  it('denies new windows, navigation, redirects and webviews on every webContents', () => {
    expect(main).toMatch(/app\.on\('web-contents-created'/);
    expect(main).toMatch(/setWindowOpenHandler\([\s\S]{0,200}action: 'deny'/);
    expect(main).not.toMatch(/action: 'allow'/);
    for (const event of ['will-navigate', 'will-frame-navigate', 'will-redirect'])
      expect(main).toMatch(new RegExp(`on\\('${event}'[\\s\\S]{0,120}isAllowedNavigation\\(`));
    expect(main).toMatch(/on\('will-attach-webview', \(event\) => event\.preventDefault\(\)\)/);
  });

  it('denies permissions and device pickers', () => {
    expect(main).toMatch(/setPermissionRequestHandler\([\s\S]{0,120}isPermissionGranted\(permission\)/);
    expect(main).toMatch(/setPermissionCheckHandler\([\s\S]{0,120}isPermissionGranted\(permission\)/);
    expect(main).toMatch(/setDevicePermissionHandler\(\(\) => false\)/);
    for (const picker of ['select-serial-port', 'select-hid-device', 'select-usb-device'])
      expect(main).toContain(`'${picker}'`);
  });

  it('serves the renderer from app://, sandboxed, with the CSP forced and remote requests cancelled', () => {
    expect(main).toMatch(/protocol\.registerSchemesAsPrivileged\(/);
    expect(main).toMatch(/protocol\.handle\(APP_SCHEME, /);
    expect(main).toMatch(/app\.enableSandbox\(\)/);
    expect(main).toMatch(/onHeadersReceived\([\s\S]{0,160}withSecurityHeaders\(/);
    expect(main).toMatch(/onBeforeRequest\([\s\S]{0,160}isAllowedRequest\(/);
    expect(main).toMatch(/new BrowserWindow\(windowOptions\(/);
    expect(main).toMatch(/loadURL\(APP_ENTRY_URL\)/);
    expect(main).not.toMatch(/loadFile\(|file:\/\/|openExternal|enableBlinkFeatures|allowpopups/);
    expect(main).not.toMatch(/nodeIntegration:\s*true|contextIsolation:\s*false|sandbox:\s*false/);
    expect(main).not.toMatch(/webSecurity:\s*false|bypassCSP:\s*true/);
  });

  it('registers every IPC channel through the one guarded wrapper', () => {
    expect(count(main, /ipcMain\.handle\(/)).toBe(1);
    expect(main).not.toMatch(/ipcMain\.(on|once|handleOnce|addListener)\(/);
    expect(main).toMatch(
      /ipcMain\.handle\(channel, \(event: IpcMainInvokeEvent, payload: unknown\) =>\s*fn\(senderOf\(event\)/,
    );
    for (const channel of ['call', 'subscribe', 'unsubscribe'])
      expect(main).toContain(`handle(PRELOAD_CHANNELS.${channel},`);
    expect(main).toMatch(/senderFrame/);
  });

  it('starts like the headless server (the data folder locked first) and stops the runtime, then releases the folder, before exiting', () => {
    expect(main).toMatch(/requestSingleInstanceLock\(\)/);
    expect(main).toMatch(/parseCommandLine\(appArgs\(process\.argv/);
    expect(main).toMatch(/startInstance\(\{ \.\.\.options, logger \}\)/);
    expect(main).not.toMatch(/startApp\(/);
    expect(main).toMatch(/createHostApi\(/);
    expect(main).toMatch(
      /app\.on\('before-quit'[\s\S]*event\.preventDefault\(\)[\s\S]*\.stop\(\)[\s\S]*folder\?\.release\(\)[\s\S]*app\.exit\(0\)/,
    );
    expect(main).toMatch(/actor: operatorName\(\(\) => userInfo\(\)\)/);
  });
});

describe('where electron may be imported', () => {
  const thin = new Set(['electron/main.ts', 'electron/preload.ts']);
  /** This file, whose patterns spell the imports it looks for. */
  const self = 'test/electron/static.test.ts';

  it('only electron/main.ts and electron/preload.ts import it', () => {
    const scanned = [...tsFiles('electron'), ...tsFiles('src'), ...tsFiles('test')];
    expect(scanned).toEqual(
      expect.arrayContaining(['electron/ipc-guard.ts', 'src/host/app.ts', 'test/electron/static.test.ts']),
    );
    const offenders = scanned
      .filter((f) => !thin.has(f) && f !== self)
      .filter((f) => importsElectron(code(f)));
    expect(offenders).toEqual([]);
    for (const f of thin) expect(importsElectron(code(f)), f).toBe(true);
  });

  it('the pure modules import only node: built-ins, each other, the contract and the content types', () => {
    for (const f of tsFiles('electron').filter((x) => !thin.has(x))) {
      for (const [, spec] of code(f).matchAll(/from\s+'([^']+)'/g))
        expect(spec, `${f}: ${spec}`).toMatch(
          /^(node:[a-z/]+|\.\/[a-z-]+\.js|\.\.\/src\/host\/(contract|content-types)\.js)$/,
        );
    }
  });
});
