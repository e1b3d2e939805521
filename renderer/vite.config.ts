/**
 * Builds the operator UI: `npx vite build --config renderer/vite.config.ts` → renderer/dist, with
 * relative asset URLs (`base: './'`) so the same bundle loads from file:// in Electron and from
 * the headless server's static folder. The built index.html gets a Content-Security-Policy meta
 * (scripts from 'self' only; no inline script, no eval), and the build checks it kept that promise.
 * The production build carries neither source maps nor the simulated fleet (`?fake=N`).
 *
 * @example
 * npx vite build --config renderer/vite.config.ts
 * npx vite build --config renderer/vite.config.ts --mode fake   # with ?fake=N, for tests and benches
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

/**
 * Fails a production build that still holds the simulated fleet (renderer/src/dev): the headless
 * server serves this bundle to anyone with the URL, and `?fake=N` must not turn it into a toy.
 */
function noDevCode(): Plugin {
  return {
    name: 'fleetvisor-no-dev-code',
    apply: 'build',
    generateBundle(_options, bundle) {
      for (const [name, chunk] of Object.entries(bundle)) {
        if (chunk.type !== 'chunk') continue;
        const dev = chunk.moduleIds.find((id) => id.replaceAll('\\', '/').includes('/renderer/src/dev/'));
        if (dev !== undefined) this.error(`${name} holds ${dev}: development code in a production build`);
      }
    },
  };
}

/**
 * Modes: `production` (the default of `vite build`: what the app serves) has no source maps and no
 * simulated fleet; `fake` (`vite build --mode fake`, for the browser tests and the UI bench) and
 * the dev server keep the simulated fleet behind `?fake=N`.
 */
export default defineConfig(({ mode }) => {
  const production = mode === 'production';
  return {
    root: fileURLToPath(new URL('.', import.meta.url)),
    base: './',
    plugins: [react(), contentSecurityPolicy(), ...(production ? [noDevCode()] : [])],
    // Replaced at build time, so the production bundle drops the fake client's import altogether.
    define: { __FLEETVISOR_FAKE_FLEET__: JSON.stringify(!production) },
    build: {
      outDir: 'dist',
      emptyOutDir: true,
      target: 'es2022',
      sourcemap: !production,
      chunkSizeWarningLimit: 800,
    },
    server: { port: 5173, strictPort: false },
  };
});
