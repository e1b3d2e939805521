/**
 * The layers of the codebase, checked on every import of every source file: a layer imports only
 * the layers below it. Lower layers never know who uses them, so each can be read, tested and
 * replaced on its own.
 *
 *   lib ← runtime ← store ← devices ← transports ← firmware ← conventions ← host
 *   sim (the device side) imports lib, devices (the id rule) and transports (the wire format) only
 *
 * Nothing in src/ imports electron or react; the renderer imports only types from src/ (the host
 * contract and what it names); electron/ reaches src/ only through the host.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const SRC = join(ROOT, 'src');

/** What each layer of src/ may import (besides itself). */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  lib: [],
  runtime: ['lib'],
  store: ['lib', 'runtime'],
  devices: ['lib', 'runtime', 'store'],
  transports: ['lib', 'runtime', 'store', 'devices'],
  firmware: ['lib', 'runtime', 'store', 'devices', 'transports'],
  conventions: ['lib', 'runtime', 'store', 'devices', 'transports', 'firmware'],
  sim: ['lib', 'devices', 'transports'],
  alarms: ['lib', 'runtime', 'store', 'devices'],
  host: [
    'lib',
    'runtime',
    'store',
    'devices',
    'transports',
    'firmware',
    'conventions',
    'sim',
    'cluster',
    'alarms',
  ],
  cluster: ['lib', 'runtime', 'store', 'devices', 'transports', 'firmware', 'conventions'],
};

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else if (/\.(ts|tsx|mts)$/.test(name)) out.push(path);
  }
  return out;
}

interface Import {
  readonly file: string;
  readonly specifier: string;
  readonly typeOnly: boolean;
}

function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const out: Import[] = [];
  const re = /^\s*(import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm;
  for (let m = re.exec(text); m; m = re.exec(text))
    out.push({ file, specifier: m[3]!, typeOnly: m[2] !== undefined });
  for (const m of text.matchAll(/(?:import|require)\(\s*['"]([^'"]+)['"]\s*\)/g))
    out.push({ file, specifier: m[1]!, typeOnly: false });
  return out;
}

const layerOf = (path: string): string | undefined => {
  const rel = relative(SRC, path);
  if (rel.startsWith('..')) return undefined;
  return rel.split(/[\\/]/)[0];
};

describe('layers', () => {
  const srcFiles = filesUnder(SRC);

  it('every folder of src/ is a known layer', () => {
    const unknown = [...new Set(srcFiles.map((f) => layerOf(f)!))].filter((l) => !(l in ALLOWED));
    expect(unknown).toEqual([]);
  });

  it('a layer of src/ imports only the layers below it', () => {
    const violations: string[] = [];
    for (const file of srcFiles) {
      const from = layerOf(file)!;
      for (const i of importsOf(file)) {
        if (!i.specifier.startsWith('.')) continue;
        const to = layerOf(resolve(dirname(file), i.specifier));
        if (to === undefined) violations.push(`${relative(ROOT, file)} reaches outside src/: ${i.specifier}`);
        else if (to !== from && !ALLOWED[from]?.includes(to))
          violations.push(`${relative(ROOT, file)} (${from}) imports ${to}: ${i.specifier}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('nothing in src/ imports electron or react', () => {
    const bad = srcFiles.flatMap((f) =>
      importsOf(f)
        .filter((i) => /^(electron|react|react-dom)(\/|$)/.test(i.specifier))
        .map((i) => `${relative(ROOT, f)}: ${i.specifier}`),
    );
    expect(bad).toEqual([]);
  });

  it('the renderer imports only types from src/', () => {
    const bad = filesUnder(join(ROOT, 'renderer')).flatMap((f) =>
      importsOf(f)
        .filter((i) => i.specifier.startsWith('.') && layerOf(resolve(dirname(f), i.specifier)) !== undefined)
        .filter((i) => !i.typeOnly)
        .map((i) => `${relative(ROOT, f)}: ${i.specifier}`),
    );
    expect(bad).toEqual([]);
  });

  it('electron/ reaches the core only through src/host', () => {
    const bad = filesUnder(join(ROOT, 'electron')).flatMap((f) =>
      importsOf(f)
        .filter((i) => i.specifier.startsWith('.'))
        .map((i) => ({ i, layer: layerOf(resolve(dirname(f), i.specifier)) }))
        .filter(({ layer }) => layer !== undefined && layer !== 'host' && layer !== 'lib')
        .map(({ i }) => `${relative(ROOT, f)}: ${i.specifier}`),
    );
    expect(bad).toEqual([]);
  });

  it('the checker sees a violation (a devices file importing transports would be caught)', () => {
    const fake = join(SRC, 'devices', 'x.ts');
    const to = layerOf(resolve(dirname(fake), '../transports/protocol.js'));
    expect(ALLOWED.devices?.includes(to!)).toBe(false);
    expect(
      importsOf(join(SRC, 'transports', 'protocol.ts')).some((i) => i.specifier.includes('devices')),
    ).toBe(true);
  });
});
