/**
 * The vocabulary every supervisor shares: the closed set of error codes its API answers with,
 * what `whichChildren` and `countChildren` report, and the contract every supervisor kind
 * (static, dynamic, and the supervisors of links and bridges) offers the tree view and the host.
 *
 * @example
 * const res = await sup.restartChild('link');
 * if (!res.ok && res.error.code === 'running') console.log('already up as', res.error.pid);
 */
import type { Result } from '../lib/result.js';
import type {
  ChildSpec,
  ChildType,
  RestartType,
  SpecErrorCode,
  Strategy,
  SupervisorFlags,
} from './child-spec.js';
import type { ExitReason } from './exit-reason.js';
import type { Pid, Process } from './process.js';

export type SupervisorErrorCode =
  | 'alreadyStarted'
  | 'alreadyPresent'
  | 'running'
  | 'restarting'
  | 'notFound'
  | 'startFailed'
  | 'noproc'
  | 'maxChildren'
  | SpecErrorCode;

export interface SupervisorError {
  readonly code: SupervisorErrorCode;
  readonly message: string;
  /** With `alreadyStarted`: the process that holds the id or name. */
  readonly pid?: Pid | undefined;
  /** With a spec error: the field at fault. */
  readonly field?: string | undefined;
  /** With `startFailed`: why. */
  readonly cause?: Error | undefined;
}

export type SupResult<T> = Result<T, SupervisorError>;

export type ChildStatus = 'running' | 'restarting' | 'stopped';

export interface ChildInfo {
  readonly id: string;
  readonly pid: Pid | undefined;
  readonly process: Process | undefined;
  readonly status: ChildStatus;
  readonly type: ChildType;
  readonly restart: RestartType;
  readonly significant: boolean;
  /** Restarts of this child since the supervisor started. */
  readonly restartCount: number;
  /**
   * How its last process ended (a crash, or `shutdown` when stopped on purpose); `undefined`
   * while its first process runs. With status `stopped` it says why nothing runs — OTP's
   * which_children shows only `undefined` there.
   */
  readonly lastExit: ExitReason | undefined;
}

export interface ChildCounts {
  /** Child specs held (running, restarting or stopped). */
  readonly specs: number;
  /** Children with a running process. */
  readonly active: number;
  readonly supervisors: number;
  readonly workers: number;
}

/** A name holder the supervisor registers itself with before starting its children (a via-name). */
export interface NameRegistration {
  register(process: Process): { ok: true } | { ok: false; error: { code: string; pid?: Pid | undefined } };
}

export interface SupervisorOptions extends Partial<SupervisorFlags> {
  readonly name?: string;
  readonly children?: readonly ChildSpec[];
  readonly via?: NameRegistration;
}

/** What every supervisor kind offers the tree view and the host. */
export interface SupervisorLike extends Process {
  readonly strategy: Strategy | 'dynamic';
  readonly maxRestarts: number;
  readonly periodMs: number;
  whichChildren(): ChildInfo[];
  countChildren(): ChildCounts;
  /** Restarts inside the current intensity window. */
  restartsInWindow(): number;
}

export const ok = <T>(value: T): SupResult<T> => ({ ok: true, value });
export const err = (error: SupervisorError): SupResult<never> => ({ ok: false, error });
