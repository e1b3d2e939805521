/**
 * The Electron main process: the same composition root as the headless server (`startInstance`
 * with the options `parseCommandLine` gives: the data folder's lock, then the app with this
 * instance's broker names; src/host/instance.ts), the host API over IPC, and one hardened window showing
 * the bundled renderer from `app://fleetvisor`. Thin on purpose: every decision that can be made
 * without Electron lives in a pure module beside it (and is tested there); this file only wires
 * them to Electron's APIs. Typechecked only (electron/tsconfig.json): Electron cannot run in CI.
 *
 * Bundled by electron/build.mjs to electron/dist/main.mjs (ESM; node_modules stay external).
 *
 * Electron's security checklist, item by item:
 *  1. no remote content: the UI is bundled and served from `app://`; `onBeforeRequest` cancels
 *     every request off the app's origin (`isAllowedRequest`).
 *  2. `nodeIntegration: false` (and in workers and subframes) — WEB_PREFERENCES.
 *  3. `contextIsolation: true` — WEB_PREFERENCES.
 *  4. `sandbox: true`, and `app.enableSandbox()` for every renderer.
 *  5. permission requests and checks denied (`setPermissionRequestHandler`,
 *     `setPermissionCheckHandler`, `setDevicePermissionHandler`; HID/USB/serial pickers cancelled).
 *  6. `webSecurity: true` — WEB_PREFERENCES.
 *  7. strict CSP — CSP, sent by the protocol handler and forced by `onHeadersReceived`.
 *  8. `allowRunningInsecureContent: false`.   9. `experimentalFeatures: false`.
 *  10. no `enableBlinkFeatures`.   11. `webviewTag: false`.
 *  12. `will-attach-webview` → preventDefault, on every webContents.
 *  13. `will-navigate`, `will-frame-navigate`, `will-redirect`: only the app's origin.
 *  14. `setWindowOpenHandler` → deny, on every webContents.
 *  15. `shell.openExternal` is not used at all.
 *  16. Electron is current (45): keeping it so is a dependency update, not code.
 *  17. every IPC channel goes through one guard (`handle` below → createIpcHandlers, which checks
 *      the sender frame's origin and that it is the main frame), and payloads are validated.
 *  18. no `file://`: `protocol.handle('app', …)` with path-traversal checks (rendererFileFor).
 *  19. fuses: FUSES (electron/launch.ts), flipped at packaging time.
 *  20. the preload exposes narrow functions only (electron/preload-api.ts).
 *
 * Quit: `before-quit` is held once while the host API closes and `app.stop()` stops the runtime
 * children in reverse order and closes the store; the data folder's lock is released; then the
 * process exits.
 */
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  app,
  BrowserWindow,
  dialog,
  type IpcMainInvokeEvent,
  ipcMain,
  Notification,
  protocol,
  type Session,
  session,
  type WebContents,
} from 'electron';
import { createHostApi, type HostApiHandle } from '../src/host/api.js';
import type { App } from '../src/host/app.js';
import { createConsoleLogger } from '../src/host/console-logger.js';
import type { PushMessage } from '../src/host/contract.js';
import type { DataFolder } from '../src/host/data-folder.js';
import { DataFolderLockedError } from '../src/host/data-folder.js';
import { exportToFile } from '../src/host/export-file.js';
import { startInstance } from '../src/host/instance.js';
import { parseCommandLine, USAGE, UsageError } from '../src/host/main.js';
import { alarmNotification } from './alarm-notifications.js';
import type { IpcSender } from './ipc-guard.js';
import { createIpcHandlers, type IpcHandlers } from './ipc-handlers.js';
import { appArgs, operatorName, STOP_TIMEOUT_MS } from './launch.js';
import { PRELOAD_CHANNELS } from './preload-api.js';
import { contentTypeOf, RENDERER_HEADERS, rendererFileFor, withSecurityHeaders } from './protocol.js';
import {
  APP_ENTRY_URL,
  APP_ORIGIN,
  APP_SCHEME,
  isAllowedNavigation,
  isAllowedRequest,
  isPermissionGranted,
  SCHEME_PRIVILEGES,
  windowOptions,
} from './window-options.js';

/** electron/dist, where the bundles lie. */
const DIST_DIR = dirname(fileURLToPath(import.meta.url));
/** The built renderer (vite's output). */
const RENDERER_DIR = join(DIST_DIR, '..', '..', 'renderer', 'dist');

// ---- before `ready`: these must run synchronously at load ----

protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { ...SCHEME_PRIVILEGES } }]);
app.enableSandbox();

let cli: ReturnType<typeof parseCommandLine> | undefined;
try {
  cli = parseCommandLine(appArgs(process.argv, process.defaultApp === true), process.env);
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`fleetvisor: ${error.message}\n\n${USAGE}`);
  dialog.showErrorBox('Fleetvisor: bad command line', `${error.message}\n\n${USAGE}`);
  app.exit(2);
}

if (cli?.help) {
  process.stdout.write(USAGE);
  app.exit(0);
} else if (cli && !app.requestSingleInstanceLock()) {
  // Another Fleetvisor owns the data folder and the broker port: it gets focused instead.
  app.exit(0);
} else if (cli) {
  run(cli.logLevel, cli.options);
}

function run(
  logLevel: Exclude<ReturnType<typeof parseCommandLine>, { help: true }>['logLevel'],
  options: Exclude<ReturnType<typeof parseCommandLine>, { help: true }>['options'],
): void {
  const logger = createConsoleLogger({ level: logLevel });
  let mainWindow: BrowserWindow | undefined;
  let started: Promise<App> | undefined;
  let hostApi: Promise<HostApiHandle> | undefined;
  let handlers: IpcHandlers | undefined;
  /** The data folder's lock, held while the app runs (released after it stopped). */
  let folder: DataFolder | undefined;

  app.on('second-instance', () => {
    if (!mainWindow || mainWindow.isDestroyed()) return;
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.focus();
  });

  // Items 12, 13, 14 on every webContents there will ever be, not only the main window's.
  app.on('web-contents-created', (_event, contents) => {
    contents.setWindowOpenHandler(({ url }) => {
      logger.warn('refused to open a window', { url: url.slice(0, 200) });
      return { action: 'deny' };
    });
    contents.on('will-navigate', (event) => {
      if (!isAllowedNavigation(event.url, APP_ORIGIN)) {
        event.preventDefault();
        logger.warn('refused a navigation', { url: event.url.slice(0, 200) });
      }
    });
    contents.on('will-frame-navigate', (event) => {
      if (!isAllowedNavigation(event.url, APP_ORIGIN)) event.preventDefault();
    });
    contents.on('will-redirect', (event) => {
      if (!isAllowedNavigation(event.url, APP_ORIGIN)) event.preventDefault();
    });
    contents.on('will-attach-webview', (event) => event.preventDefault());
  });

  app.on('window-all-closed', () => {
    // The fleet keeps running on macOS until Cmd-Q, as Mac apps do; elsewhere closing quits.
    if (process.platform !== 'darwin') app.quit();
  });
  app.on('activate', () => {
    if (app.isReady() && BrowserWindow.getAllWindows().length === 0) mainWindow = createWindow();
  });

  let stopping = false;
  app.on('before-quit', (event) => {
    if (stopping) {
      event.preventDefault();
      return;
    }
    stopping = true;
    event.preventDefault();
    const timer = setTimeout(() => {
      logger.error('the runtime did not stop in time; exiting anyway', { ms: STOP_TIMEOUT_MS });
      app.exit(1);
    }, STOP_TIMEOUT_MS);
    void (async () => {
      handlers?.closeAll();
      try {
        (await hostApi?.catch(() => undefined))?.close();
        const running = await started?.catch(() => undefined);
        await running?.stop();
        folder?.release();
        logger.info('stopped cleanly');
      } catch (error) {
        logger.error('stopping failed', { error });
      }
      clearTimeout(timer);
      app.exit(0);
    })();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => app.quit());

  void app.whenReady().then(() => {
    hardenSession(session.defaultSession);
    protocol.handle(APP_SCHEME, serveRenderer);

    // One app per data folder, the same as `fleetvisor serve`: a headless app (or an Electron of
    // another profile) already on this folder stops this start with its pid and URL named.
    const instance = startInstance({ ...options, logger });
    const starting = instance.then((i) => i.app);
    instance.then(
      (i) => {
        folder = i.folder;
      },
      () => {},
    );
    started = starting;
    hostApi = starting.then((running) => createHostApi(running));
    handlers = createIpcHandlers({
      api: hostApi,
      saveExport: async (payload, choosePath) =>
        exportToFile({ exports: (await starting).exports, choosePath }, payload),
      appOrigin: APP_ORIGIN,
      actor: operatorName(() => userInfo()),
      onRefused: (channel, reason, sender) =>
        logger.warn('refused an IPC message', { channel, reason, url: sender.url?.slice(0, 200) }),
    });
    registerIpc(handlers);
    starting.then(
      (running) => {
        logger.info('fleetvisor is running', { broker: running.brokerUrl, demo: running.demo });
        // New alarms as desktop notifications (the renderer's own Notification API stays unused here).
        running.alarms.listen((alarm, event) => {
          const notice = alarmNotification(alarm, event);
          if (notice && Notification.isSupported()) new Notification(notice).show();
        });
      },
      (error: unknown) => {
        logger.error('the app could not start', { error });
        dialog.showErrorBox(
          error instanceof DataFolderLockedError
            ? 'Fleetvisor already runs on this data folder'
            : 'Fleetvisor could not start',
          (error as Error)?.message ?? String(error),
        );
        app.exit(1);
      },
    );

    mainWindow = createWindow();
  });

  function createWindow(): BrowserWindow {
    const win = new BrowserWindow(windowOptions(DIST_DIR, { devTools: !app.isPackaged }));
    win.once('ready-to-show', () => win.show());
    win.loadURL(APP_ENTRY_URL).catch((error: unknown) => {
      logger.error('the renderer did not load', { url: APP_ENTRY_URL, error });
      win.show();
    });
    return win;
  }

  /** Item 17: the one wrapper every IPC channel is registered through. */
  function handle(
    channel: string,
    fn: (sender: IpcSender, payload: unknown, contents: WebContents) => unknown,
  ) {
    ipcMain.handle(channel, (event: IpcMainInvokeEvent, payload: unknown) =>
      fn(senderOf(event), payload, event.sender),
    );
  }

  function registerIpc(h: IpcHandlers): void {
    const watched = new Set<number>();
    handle(PRELOAD_CHANNELS.call, (sender, payload) => h.call(sender, payload));
    handle(PRELOAD_CHANNELS.subscribe, (sender, _payload, contents) => {
      if (!watched.has(contents.id)) {
        watched.add(contents.id);
        const gone = () => h.senderGone(contents.id);
        contents.once('destroyed', () => {
          watched.delete(contents.id);
          gone();
        });
        contents.on('render-process-gone', gone);
        // A reload or navigation: the page's listeners are gone; the new page subscribes again.
        contents.on('did-start-navigation', (details) => {
          if (details.isMainFrame && !details.isSameDocument) gone();
        });
      }
      const send = (message: PushMessage) => {
        // IPC has no bufferedAmount, so the sink is never congested (see ipc-handlers.ts).
        if (!contents.isDestroyed()) contents.send(PRELOAD_CHANNELS.push, message);
      };
      return h.subscribe(sender, send);
    });
    handle(PRELOAD_CHANNELS.unsubscribe, (sender) => h.unsubscribe(sender));
    handle(PRELOAD_CHANNELS.export, async (sender, payload, contents) =>
      h.export(sender, payload, async (suggestedName) => {
        const win = BrowserWindow.fromWebContents(contents);
        const options = {
          title: 'Save the export',
          defaultPath: join(app.getPath('downloads'), suggestedName),
          properties: ['createDirectory', 'showOverwriteConfirmation'] as (
            | 'createDirectory'
            | 'showOverwriteConfirmation'
          )[],
        };
        const chosen = win ? await dialog.showSaveDialog(win, options) : await dialog.showSaveDialog(options);
        return chosen.canceled ? undefined : chosen.filePath;
      }),
    );
  }

  function senderOf(event: IpcMainInvokeEvent): IpcSender {
    let url: string | undefined;
    let isMainFrame = false;
    try {
      const frame = event.senderFrame;
      if (frame && !frame.isDestroyed()) {
        url = frame.url;
        isMainFrame = frame.parent === null;
      }
    } catch {
      // the frame went away (navigated or destroyed) while the message was in flight
    }
    return { id: event.sender.id, url, isMainFrame };
  }

  async function serveRenderer(request: Request): Promise<Response> {
    const file = request.method === 'GET' ? rendererFileFor(RENDERER_DIR, request.url, APP_ORIGIN) : null;
    if (file === null) return new Response('Not found', { status: 404, headers: RENDERER_HEADERS });
    try {
      const body = await readFile(file);
      return new Response(new Uint8Array(body), {
        status: 200,
        headers: { ...RENDERER_HEADERS, 'Content-Type': contentTypeOf(file) },
      });
    } catch {
      const hint = file.endsWith('index.html')
        ? `The renderer is not built: ${file} is missing (build the renderer first).`
        : 'Not found';
      return new Response(hint, {
        status: 404,
        headers: { ...RENDERER_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' },
      });
    }
  }
}

/** Items 1, 5 and 7 on the renderer's session. */
function hardenSession(ses: Session): void {
  ses.setPermissionRequestHandler((_contents, permission, callback) =>
    callback(isPermissionGranted(permission)),
  );
  ses.setPermissionCheckHandler((_contents, permission) => isPermissionGranted(permission));
  ses.setDevicePermissionHandler(() => false);
  ses.on('select-serial-port', (event, _ports, _contents, callback) => {
    event.preventDefault();
    callback('');
  });
  ses.on('select-hid-device', (event, _details, callback) => {
    event.preventDefault();
    callback();
  });
  ses.on('select-usb-device', (event, _details, callback) => {
    event.preventDefault();
    callback();
  });
  ses.on('will-download', (event) => event.preventDefault());
  ses.webRequest.onBeforeRequest((details, callback) =>
    callback({ cancel: !isAllowedRequest(details.url, APP_ORIGIN) }),
  );
  ses.webRequest.onHeadersReceived((details, callback) =>
    callback({ responseHeaders: withSecurityHeaders(details.responseHeaders) }),
  );
}
