/**
 * The desktop packages' configuration (electron-builder.json) against what it names: AppImage and
 * deb targets for Linux, the icon folder with every PNG size Linux desktops and Electron use (each
 * file really that size), the tray icons, the bundles the package's `main` points at, and the
 * window icon the shell sets. Building the packages needs Electron's binary, which these machines
 * cannot download, so this checks the configuration, not a built package.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { windowIconPath } from '../../electron/window-options.js';

const ROOT = join(import.meta.dirname, '../..');
const config = JSON.parse(readFileSync(join(ROOT, 'electron-builder.json'), 'utf8')) as {
  appId: string;
  productName: string;
  files: string[];
  linux: { target: string[]; icon: string; category: string; desktop: Record<string, string> };
  deb: { depends: string[] };
};
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  main: string;
  scripts: Record<string, string>;
};

/** Width and height from a PNG's IHDR chunk (refuses anything that is not a PNG). */
function pngSize(file: string): { width: number; height: number } {
  const b = readFileSync(file);
  if (b.subarray(0, 8).toString('hex') !== '89504e470d0a1a0a' || b.subarray(12, 16).toString() !== 'IHDR')
    throw new Error(`${file} is not a PNG`);
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

describe('desktop packages (electron-builder.json)', () => {
  it('builds an AppImage and a deb for Linux, with a desktop entry', () => {
    expect(config.linux.target).toEqual(expect.arrayContaining(['AppImage', 'deb']));
    expect(config.productName).toBe('Fleetvisor');
    expect(config.appId).toMatch(/^[a-z0-9.-]+$/);
    expect(config.linux.desktop.Name).toBe('Fleetvisor');
    expect(config.linux.category).toBeTruthy();
    expect(config.deb.depends.length).toBeGreaterThan(0);
    expect(pkg.scripts['package:linux']).toContain('electron-builder.json');
  });

  it('has the app icon in every size a Linux desktop asks for, each PNG really that size', () => {
    const dir = join(ROOT, config.linux.icon);
    for (const size of [16, 24, 32, 48, 64, 128, 256, 512]) {
      const file = join(dir, `${size}x${size}.png`);
      expect(existsSync(file), file).toBe(true);
      expect(pngSize(file)).toEqual({ width: size, height: size });
    }
    expect(readFileSync(join(ROOT, 'assets/icons/fleetvisor.svg'), 'utf8')).toContain(
      '<title>Fleetvisor</title>',
    );
  });

  it('has the tray icons and the favicon', () => {
    for (const size of [16, 32, 64])
      expect(pngSize(join(ROOT, `assets/icons/tray-${size}.png`))).toEqual({ width: size, height: size });
    expect(readFileSync(join(ROOT, 'renderer/public/favicon.svg'), 'utf8')).toContain(
      '<title>Fleetvisor</title>',
    );
  });

  it('packs the bundles the app starts from, and the window shows the icon from where the package puts it', () => {
    const covered = (path: string) =>
      config.files.some(
        (pattern) => pattern === path || (pattern.endsWith('/**/*') && path.startsWith(pattern.slice(0, -4))),
      );
    expect(covered(pkg.main)).toBe(true);
    expect(covered('electron/dist/preload.cjs')).toBe(true);
    expect(covered('renderer/dist/index.html')).toBe(true);
    expect(covered('assets/icons/png/512x512.png')).toBe(true);
    expect(windowIconPath(join(ROOT, 'electron', 'dist'))).toBe(join(ROOT, 'assets/icons/png/512x512.png'));
    expect(existsSync(windowIconPath(join(ROOT, 'electron', 'dist')))).toBe(true);
  });
});
