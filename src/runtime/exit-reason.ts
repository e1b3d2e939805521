/**
 * Why a process ended. OTP's vocabulary: `normal`, `shutdown` (optionally with a detail, OTP's
 * `{shutdown, Detail}`), `killed` (a brutal kill), or an error (any abnormal exit).
 */
export type ExitReason =
  | { readonly type: 'normal' }
  | { readonly type: 'shutdown'; readonly detail?: string }
  | { readonly type: 'killed' }
  | { readonly type: 'error'; readonly error: Error };

export const NORMAL: ExitReason = Object.freeze({ type: 'normal' });
export const SHUTDOWN: ExitReason = Object.freeze({ type: 'shutdown' });
export const KILLED: ExitReason = Object.freeze({ type: 'killed' });

export function shutdownWith(detail: string): ExitReason {
  return { type: 'shutdown', detail };
}

/** OTP's exit detail of a supervisor that gave up: more restarts than its intensity allows. */
export const REACHED_MAX_RESTART_INTENSITY = 'reached_max_restart_intensity';

/** The exit of a supervisor that gave up (past its restart intensity), as OTP names it. */
export function isGaveUp(reason: ExitReason): boolean {
  return reason.type === 'shutdown' && reason.detail === REACHED_MAX_RESTART_INTENSITY;
}

export function errorExit(cause: unknown): ExitReason {
  return { type: 'error', error: toError(cause) };
}

/** OTP's rule for transient children: normal, shutdown and {shutdown, _} are not failures. */
export function isCleanExit(reason: ExitReason): boolean {
  return reason.type === 'normal' || reason.type === 'shutdown';
}

export function formatExitReason(reason: ExitReason): string {
  switch (reason.type) {
    case 'normal':
    case 'killed':
      return reason.type;
    case 'shutdown':
      return reason.detail === undefined ? 'shutdown' : `shutdown: ${reason.detail}`;
    case 'error':
      return `error: ${reason.error.message}`;
  }
}

export function toError(cause: unknown): Error {
  if (cause instanceof Error) return cause;
  if (typeof cause === 'string') return new Error(cause);
  try {
    return new Error(JSON.stringify(cause));
  } catch {
    return new Error(String(cause));
  }
}
