/**
 * The security pieces of the headless server, kept apart so each is small and testable:
 * the per-launch token (≥ 256 bits, compared in constant time), the exact Host and Origin
 * allowlists against DNS rebinding and cross-site WebSocket hijacking, the auth-failure rate
 * limit, the response security headers (CSP and friends) and the static-path resolver that
 * refuses directory traversal.
 *
 * @example
 * const token = generateToken();
 * tokensEqual(given, token);                       // constant time, any lengths
 * const names = allowedNames({ port: 8080 });     // hosts: '127.0.0.1:8080', 'localhost:8080', '[::1]:8080'
 * names.hosts.has(req.headers.host?.toLowerCase() ?? '');
 * names.origins.has(req.headers.origin ?? '');    // 'http://127.0.0.1:8080', …
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import { isIP } from 'node:net';
import { isAbsolute, relative, resolve, sep } from 'node:path';

/** A fresh secret: 32 random bytes, base64url (43 characters, safe in a URL fragment). */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * Whether `given` equals `expected`, in time independent of where they differ. Both are hashed
 * to 32 bytes first so `timingSafeEqual` always sees equal lengths (a length mismatch is then
 * just a mismatch, and the expected length is not revealed).
 */
export function tokensEqual(given: string | null | undefined, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const same = timingSafeEqual(digest(given), digest(expected));
  return same && given.length === expected.length;
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (typeof header !== 'string') return null;
  const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}

/** Whether a host name or address is the loopback interface. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (/^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return true;
  return false;
}

/** Whether a host is a wildcard address (all interfaces). */
export function isWildcardHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === '0.0.0.0' || h === '::' || h === '0:0:0:0:0:0:0:0';
}

/** A host as it appears in a Host header or URL: IPv6 addresses in brackets, lower case. */
export function hostForUrl(host: string): string {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return isIP(h) === 6 ? `[${h}]` : h;
}

export interface AllowedNames {
  /** Exact `Host` header values (lower case), e.g. `127.0.0.1:8080`. */
  readonly hosts: ReadonlySet<string>;
  /** Exact `Origin` values, e.g. `http://127.0.0.1:8080`. */
  readonly origins: ReadonlySet<string>;
}

/**
 * The only names the server answers to: the loopback names with the exact port, plus an
 * explicit bind host (not a wildcard: a LAN name cannot be guessed safely, so with 0.0.0.0 the
 * UI is still reached through a loopback name, e.g. over an SSH tunnel).
 */
export function allowedNames(options: { readonly port: number; readonly bindHost?: string }): AllowedNames {
  const names = ['127.0.0.1', 'localhost', '[::1]'];
  const bind = options.bindHost;
  if (bind !== undefined && !isWildcardHost(bind)) {
    const h = hostForUrl(bind);
    if (!names.includes(h)) names.push(h);
  }
  const hosts = new Set(names.map((n) => `${n}:${options.port}`));
  const origins = new Set([...hosts].map((h) => `http://${h}`));
  return { hosts, origins };
}

/** Whether a request's Host header is one of the allowed names (absent: refused). */
export function hostAllowed(names: AllowedNames, host: string | undefined): boolean {
  return typeof host === 'string' && names.hosts.has(host.toLowerCase());
}

/** Whether an Origin header is exactly one of the server's own origins (absent: refused). */
export function originAllowed(names: AllowedNames, origin: string | undefined): boolean {
  return typeof origin === 'string' && names.origins.has(origin);
}

/**
 * Limits wrong-token attempts: after `max` failures inside `windowMs`, token checks are refused
 * outright (not even compared) until the window has passed. Requests with no token at all do
 * not count, so a web page firing blind no-cors requests cannot lock the operator out.
 */
export interface AuthLimiter {
  /** False while locked: refuse without comparing. */
  allow(): boolean;
  fail(): void;
}

export function createAuthLimiter(
  options: { readonly max?: number; readonly windowMs?: number; readonly now?: () => number } = {},
): AuthLimiter {
  const max = options.max ?? 20;
  const windowMs = options.windowMs ?? 10_000;
  const now = options.now ?? Date.now;
  let failures: number[] = [];
  const prune = () => {
    const from = now() - windowMs;
    if (failures.length > 0 && (failures[0] ?? 0) <= from) failures = failures.filter((t) => t > from);
  };
  return {
    allow() {
      prune();
      return failures.length < max;
    },
    fail() {
      prune();
      failures.push(now());
    },
  };
}

/** The CSP for pages served from `host` (a validated Host header value). */
export function contentSecurityPolicy(host: string): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    `connect-src 'self' ws://${host}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "object-src 'none'",
  ].join('; ');
}

/** Headers every response carries. No CORS headers, ever. */
export function securityHeaders(host: string): Record<string, string> {
  return {
    'Content-Security-Policy': contentSecurityPolicy(host),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
  };
}

/**
 * Maps a raw request path (`req.url` without the query) to a file under `root`, or null when
 * the path is malformed or would leave the root: `..` segments (raw or percent-encoded),
 * backslashes, NUL bytes, and symbolic links pointing outside are all refused. The file may
 * not exist; callers stat it. `root` must be absolute.
 */
export function staticPathFor(root: string, rawPath: string): string | null {
  if (!rawPath.startsWith('/')) return null;
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const segments = decoded.split('/');
  if (segments.some((s) => s === '..' || s === '.')) return null;
  const full = resolve(root, `.${decoded}`);
  return within(root, full) ? full : null;
}

function within(root: string, full: string): boolean {
  const rel = relative(root, full);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** Whether `file` (existing) really lies under `root` once symbolic links are resolved. */
export async function realPathWithin(root: string, file: string): Promise<boolean> {
  try {
    const [r, f] = await Promise.all([realpath(root), realpath(file)]);
    return within(r, f);
  } catch {
    return false;
  }
}

/** How deep call arguments may nest (arrays and objects); deeper is refused at the boundary. */
export const MAX_ARGS_DEPTH = 64;

/**
 * Whether a parsed JSON value nests deeper than `max` levels (the value itself is level 1).
 * Iterative, so a 10,000-deep value is measured without recursion, and it stops at the first
 * path past `max`: the API's validators below never see such a value (they would overflow the stack).
 *
 * @example
 * jsonDeeperThan({ a: { b: [1] } }, 2); // true (3 levels)
 */
export function jsonDeeperThan(value: unknown, max: number): boolean {
  const stack: { v: unknown; depth: number }[] = [{ v: value, depth: 1 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push({ v: child, depth: depth + 1 });
  }
  return false;
}
