/**
 * Commands to devices: the actions a kind offers, a command's record, what `act` answers per
 * device, and the guards (circuit breaker, rate limit) in front of them (docs/commands.md).
 */

import type { ApiError, Json } from './envelope.js';

export interface ActionView {
  readonly name: string;
  readonly description: string;
  readonly destructive: boolean;
  readonly target: 'command' | 'event';
  /** JSON Schema of the arguments, for a generated form. */
  readonly argsSchema: Json;
}

export interface CommandView {
  readonly commandId: string;
  readonly deviceId: string;
  readonly action: string;
  readonly args: Json;
  readonly actor: string;
  readonly status: string;
  readonly requestedAt: number;
  readonly completedAt: number | null;
  readonly expiresAt: number | null;
  readonly result: Json;
  readonly error: ApiError | null;
}

export interface ActResult {
  readonly id: string;
  readonly ok: boolean;
  readonly commandId?: string;
  readonly state?: string;
  readonly commandStatus?: string;
  readonly error?: ApiError;
}

/** A device's command guards: its circuit breaker and its token bucket. */
export interface GuardsView {
  readonly breaker: {
    /** `halfOpen`: the cool-down is over, the next command is the probe. */
    readonly state: 'closed' | 'open' | 'halfOpen';
    readonly consecutiveFailures: number;
    /** How many times it opened since the app started. */
    readonly opens: number;
    /** Wall-clock ms when a probe may go; null while closed. */
    readonly nextProbeAt: number | null;
    readonly probing: boolean;
    readonly lastFailure: string | null;
    /** Failures in a row that open it, and its cool-down. */
    readonly failures: number;
    readonly coolDownMs: number;
  };
  readonly rate: { readonly perSecond: number; readonly burst: number; readonly tokens: number };
}
