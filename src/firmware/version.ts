/**
 * Firmware versions as image manifests state them (docs/firmware.md): dotted numbers, one to four
 * of them, with an optional `-prerelease` and `+build` as in Semantic Versioning 2.0, within the
 * protocol's version rule (docs/protocol.md §1: at most 64 printable ASCII characters). The rule is
 * stricter than the wire's on purpose: an import must tell an upgrade from a downgrade.
 *
 * @example
 * parseFirmwareVersion('2.0.0-rc.1'); // { ok: true, value: '2.0.0-rc.1' }
 * compareFirmwareVersions('1.10.0', '1.9.0') > 0; // true
 */
import { err, type Failure, ok, type Result } from '../lib/result.js';
import { LIMITS } from '../transports/protocol.js';

const IDENT = '[0-9A-Za-z-]+';
const VERSION = new RegExp(
  `^(\\d+(?:\\.\\d+){0,3})(?:-(${IDENT}(?:\\.${IDENT})*))?(?:\\+(${IDENT}(?:\\.${IDENT})*))?$`,
);

/**
 * The version itself, or `badVersion` with the rule.
 *
 * @example
 * parseFirmwareVersion('v1'); // { ok: false, error: { code: 'badVersion', message: "… like 1.4.2 …" } }
 */
export function parseFirmwareVersion(text: unknown): Result<string, Failure<'badVersion'>> {
  if (typeof text !== 'string' || text.length > LIMITS.versionChars || !VERSION.test(text))
    return err(
      'badVersion',
      `a firmware version is 1 to 4 dotted numbers with an optional -prerelease and +build, like 1.4.2 or ` +
        `2.0.0-rc.1 (at most ${LIMITS.versionChars} characters), not ${JSON.stringify(text)?.slice(0, 80)}`,
    );
  return ok(text);
}

/**
 * Precedence of two valid versions: negative when `a` is older, 0 when equal (missing numbers
 * count as 0, so 1.0 = 1.0.0; the build part is ignored), positive when newer. Prereleases come
 * before their release and compare field by field, numbers numerically, as in SemVer 2.0 §11.
 * Throws on an invalid version (misuse: parse it first).
 */
export function compareFirmwareVersions(a: string, b: string): number {
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < Math.max(pa.numbers.length, pb.numbers.length); i++) {
    const d = (pa.numbers[i] ?? 0) - (pb.numbers[i] ?? 0);
    if (d !== 0) return d;
  }
  if (pa.pre === undefined || pb.pre === undefined)
    return pa.pre === pb.pre ? 0 : pa.pre === undefined ? 1 : -1;
  for (let i = 0; i < Math.max(pa.pre.length, pb.pre.length); i++) {
    const x = pa.pre[i];
    const y = pb.pre[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const d = compareIdentifiers(x, y);
    if (d !== 0) return d;
  }
  return 0;
}

function parts(v: string): { numbers: number[]; pre: string[] | undefined } {
  const m = VERSION.exec(v);
  if (m === null) throw new Error(`compareFirmwareVersions: '${v}' is not a firmware version`);
  return { numbers: m[1]!.split('.').map(Number), pre: m[2]?.split('.') };
}

function compareIdentifiers(x: string, y: string): number {
  const nx = /^\d+$/.test(x);
  const ny = /^\d+$/.test(y);
  if (nx && ny) return Number(x) - Number(y);
  if (nx !== ny) return nx ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}
