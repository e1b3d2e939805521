/**
 * The caller checks both transports of the headless server share: the Host/Origin allowlist, the
 * per-launch token with its limiter on wrong tokens, and a logger that never writes the token.
 *
 * @example
 * const gate: Gate = { names: allowedNames({ port }), token, limiter: createAuthLimiter(), logger };
 * const verdict = checkToken(gate, given);   // 'ok' | 'limited' | 'wrong'
 */
import type { Logger } from '../../runtime/runtime.js';
import type { AllowedNames, AuthLimiter } from '../security.js';
import { tokensEqual } from '../security.js';

/** What every request and socket is checked against; one per running server. */
export interface Gate {
  /**
   * The Host and Origin allowlist. Replaced once the port is known: until then it allows
   * nothing, so a request reaching a listener before the server is ready is refused (421).
   */
  names: AllowedNames;
  readonly token: string;
  readonly limiter: AuthLimiter;
  readonly logger: Logger;
}

/** `limited`: refused without comparing; `wrong`: compared, refused and counted. */
export type TokenCheck = 'ok' | 'limited' | 'wrong';

/**
 * The right token first, the limiter after: wrong tokens cannot lock the operator out. A wrong
 * token counts against the limiter only while the limiter still allows.
 */
export function checkToken(gate: Gate, given: string): TokenCheck {
  if (tokensEqual(given, gate.token)) return 'ok';
  if (!gate.limiter.allow()) return 'limited';
  gate.limiter.fail();
  return 'wrong';
}

const TOKEN_PROTOCOL_PREFIX = 'fleetvisor.token.';

/** The token offered as a subprotocol (`Sec-WebSocket-Protocol: fleetvisor, fleetvisor.token.<token>`). */
export function offeredToken(header: string | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  for (const p of header.split(',')) {
    const v = p.trim();
    if (v.startsWith(TOKEN_PROTOCOL_PREFIX)) return v.slice(TOKEN_PROTOCOL_PREFIX.length);
  }
  return undefined;
}

/** An Origin header as it may be logged: its parsed origin only (no path, no control characters). */
export function originForLog(origin: string | undefined): string {
  if (origin === undefined) return '(none)';
  try {
    const parsed = new URL(origin).origin;
    return parsed === 'null' ? 'null' : parsed.slice(0, 100);
  } catch {
    return '(malformed)';
  }
}

/** A logger that never writes the secret, whatever a field happens to hold (belt and braces). */
export function redacting(logger: Logger, secret: string): Logger {
  const clean = (value: unknown): unknown => {
    if (typeof value === 'string')
      return value.includes(secret) ? value.split(secret).join('[redacted]') : value;
    if (value instanceof Error) return clean(value.message);
    if (Array.isArray(value)) return value.map(clean);
    return value;
  };
  const wrap =
    (write: Logger['info']) =>
    (message: string, fields?: Record<string, unknown>): void => {
      const safe = fields && Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, clean(v)]));
      write(clean(message) as string, safe);
    };
  return {
    debug: wrap(logger.debug.bind(logger)),
    info: wrap(logger.info.bind(logger)),
    warn: wrap(logger.warn.bind(logger)),
    error: wrap(logger.error.bind(logger)),
  };
}
