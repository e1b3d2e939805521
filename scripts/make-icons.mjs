#!/usr/bin/env node
// Renders the app's icons from their SVG sources (assets/icons/*.svg) into the PNG sizes Electron
// and Linux desktops need (assets/icons/png/<size>x<size>.png, the tray's tray-16/32/64.png), with
// Debian's Chromium through playwright-core (no other image tool needed). The PNGs are committed;
// run this again after changing an SVG: `node scripts/make-icons.mjs`.
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const icons = join(root, 'assets', 'icons');
export const APP_SIZES = [16, 24, 32, 48, 64, 128, 256, 512];
export const TRAY_SIZES = [16, 32, 64];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
try {
  const page = await browser.newPage();
  const render = async (svgFile, size, out) => {
    const svg = readFileSync(join(icons, svgFile), 'utf8');
    await page.setViewportSize({ width: size, height: size });
    await page.setContent(
      `<html><body style="margin:0;background:transparent"><img style="display:block;width:${size}px;height:${size}px" src="data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}"></body></html>`,
    );
    await page.locator('img').evaluate((img) => img.decode());
    mkdirSync(dirname(out), { recursive: true });
    await page.screenshot({
      path: out,
      omitBackground: true,
      clip: { x: 0, y: 0, width: size, height: size },
    });
  };
  for (const size of APP_SIZES)
    await render('fleetvisor.svg', size, join(icons, 'png', `${size}x${size}.png`));
  for (const size of TRAY_SIZES) await render('tray.svg', size, join(icons, `tray-${size}.png`));
  console.log(`icons written to ${icons}`);
} finally {
  await browser.close();
}
