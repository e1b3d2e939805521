/**
 * The preload: exposes {@link buildBridge}'s object — one function per contract method plus
 * `subscribe` — on `window.fleetvisor`, and nothing else. Only the two IPC primitives are wrapped
 * here; the IPC event (whose `sender` is `ipcRenderer`) never reaches the page.
 *
 * The window is sandboxed, and a sandboxed preload can `require` only `electron` (its renderer
 * modules) and a few Node built-ins: it cannot load local files. So this file is bundled with
 * electron/preload-api.ts into one CommonJS file, electron/dist/preload.cjs, by
 * electron/build.mjs (only types come from src/host/contract.ts: no zod in the bundle).
 *
 * Typechecked only (electron/tsconfig.json); never imported by tests or the headless server.
 */
import { contextBridge, type IpcRendererEvent, ipcRenderer } from 'electron';
import { buildBridge } from './preload-api.js';

contextBridge.exposeInMainWorld(
  'fleetvisor',
  buildBridge(
    (channel, payload) => ipcRenderer.invoke(channel, payload),
    (channel, listener) => {
      const forward = (_event: IpcRendererEvent, payload: unknown) => listener(payload);
      ipcRenderer.on(channel, forward);
      return () => {
        ipcRenderer.removeListener(channel, forward);
      };
    },
  ),
);
