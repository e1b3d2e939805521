/**
 * Builds the operator UI: `npx vite build --config renderer/vite.config.ts` → renderer/dist, with
 * relative asset URLs (`base: './'`) so the same bundle loads from file:// in Electron and from
 * the headless server's static folder. The built index.html gets a Content-Security-Policy meta
 * (scripts from 'self' only; no inline script, no eval), and the build checks it kept that promise.
 *
 * @example
 * npx vite build --config renderer/vite.config.ts
 * npx vite --config renderer/vite.config.ts      # dev server; open /?fake=2000 for a simulated fleet
 */
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import type { Plugin } from 'vite';
import { defineConfig } from 'vite';

const CSP = "script-src 'self'; object-src 'none'; base-uri 'none'";

/** Adds the CSP to the built page and fails the build on an inline script or an eval. */
function contentSecurityPolicy(): Plugin {
  return {
    name: 'fleetvisor-csp',
    apply: 'build',
    transformIndexHtml: {
      order: 'post',
      handler: (html) => {
        if (/<script(?![^>]*\bsrc=)[^>]*>/i.test(html))
          throw new Error('index.html has an inline <script>: the CSP forbids it');
        if (!/<meta charset="UTF-8" \/>/i.test(html))
          throw new Error('index.html lost its charset meta: nowhere to put the CSP');
        return html.replace(
          /<meta charset="UTF-8" \/>/i,
          (charset) => `${charset}\n    <meta http-equiv="Content-Security-Policy" content="${CSP}" />`,
        );
      },
    },
    generateBundle(_options, bundle) {
      for (const [name, chunk] of Object.entries(bundle))
        if (chunk.type === 'chunk' && /\beval\(|new Function\(/.test(chunk.code))
          this.error(`${name} uses eval or new Function: the CSP forbids it`);
    },
  };
}

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  plugins: [react(), contentSecurityPolicy()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    chunkSizeWarningLimit: 800,
  },
  server: { port: 5173, strictPort: false },
});
