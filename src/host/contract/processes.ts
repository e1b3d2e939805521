/**
 * The supervision tree as the observer shows it: its nodes, one process's info and restart
 * timeline, and the timers a process runs.
 */

/**
 * A tree node's status. `stopped`: nothing runs and its last exit was clean (stopped on purpose,
 * finished); `failed`: nothing runs because its last exit was a crash or its supervisor gave up
 * (reached its restart intensity) — OTP's which_children shows both as `undefined`; `restarting`:
 * its supervisor is starting it again.
 */
export type ProcessStatus = 'running' | 'restarting' | 'stopped' | 'failed' | 'undefined';

/** One node of the supervision tree (the observer view). The root is the app's root supervisor. */
export interface TreeNode {
  /** Stable key for the UI: `<parent key>/<child id>`. */
  readonly key: string;
  readonly pid: number | null;
  readonly name: string;
  /** The child id under its parent. */
  readonly childId: string;
  readonly type: 'supervisor' | 'worker' | 'app';
  readonly status: ProcessStatus;
  /**
   * Why its last process ended, when it ended: `error: …`, `killed`, `shutdown:
   * reached_max_restart_intensity` (its supervisor gave up), `shutdown`, or a failed device's
   * failure. Shown for `failed` and `stopped` nodes; kept after a restart as the last exit.
   */
  readonly reason?: string;
  readonly restartType?: 'permanent' | 'transient' | 'temporary';
  /** Restarts of this child by its supervisor (for a device: of its machine). */
  readonly restarts: number;
  /** Supervisors: strategy and intensity (restarts inside the period against the maximum). */
  readonly strategy?: string;
  readonly intensity?: {
    readonly restartsInWindow: number;
    readonly maxRestarts: number;
    readonly periodMs: number;
  };
  /** The device this node belongs to, if any. */
  readonly deviceId?: string;
  /** Workers with a state machine: the current state. */
  readonly state?: string;
  readonly children?: readonly TreeNode[];
}

/**
 * One entry of a process's restart timeline (`processInfo`): how one of its processes ended and
 * what started in its place. Kept by the host since it started, per process name, the last 20.
 */
export interface ProcessLifeEntry {
  /** Wall-clock ms when the process ended (for `gaveUp`: when its supervisor gave up). */
  readonly at: number;
  /** The pid that ended. */
  readonly pid: number;
  /**
   * `crash`: an abnormal exit (`killed`, `error: …`); `stop`: `normal` or `shutdown` (stopped on
   * purpose, or with its supervisor's group); `gaveUp`: this supervisor passed its restart intensity.
   */
  readonly kind: 'crash' | 'stop' | 'gaveUp';
  /** The exit reason as the tree shows it, e.g. `killed`, `error: boom`, `shutdown`. */
  readonly reason: string;
  /**
   * The process that took its place: `restart` when its supervisor restarted it (with the
   * restarts in its window then and how long the restart took), `start` when it was started again
   * otherwise (its supervisor was restarted as a whole, restartChild, an operator restarting a
   * failed device). Absent: nothing yet.
   */
  readonly replacedBy?: {
    readonly pid: number;
    readonly at: number;
    readonly by: 'restart' | 'start';
    readonly restartsInWindow?: number;
    readonly maxRestarts?: number;
    readonly durationMs?: number;
  };
}

/**
 * One process as Erlang's observer shows it (`processInfo`): what it is, what it holds, how its
 * last process ended and its restart timeline. Fields that cannot be measured honestly say so
 * (`null` with a `note`) rather than guess.
 */
export interface ProcessInfo {
  /** Null: the child has no running process (stopped, failed, restarting). */
  readonly pid: number | null;
  readonly name: string;
  /** The runtime's process kind; null without a running process. */
  readonly kind: 'statem' | 'server' | 'eventManager' | 'task' | 'supervisor' | null;
  readonly type: 'supervisor' | 'worker';
  readonly status: ProcessStatus;
  /** Its supervisor; null for the root. */
  readonly supervisor: { readonly pid: number; readonly name: string } | null;
  readonly childId: string | null;
  readonly restartType?: 'permanent' | 'transient' | 'temporary';
  /** Restarts of this child by its supervisor. */
  readonly restarts: number;
  readonly deviceId?: string;
  /** A state machine's current state, and whether it is hibernating (its actor dropped). */
  readonly state?: string;
  readonly hibernating?: boolean;
  /** Messages queued and not handled yet; `length` null when the process keeps none the host can read. */
  readonly mailbox: { readonly length: number | null; readonly note: string };
  /**
   * Its running timers, earliest first. A machine's timeouts name their event; other timers (a
   * supervisor's restart retry, a link's check) have the runtime's label as `kind` and `key` and
   * an empty `event`.
   */
  readonly timers: readonly TimerView[];
  /** `bytes` null: JavaScript keeps one heap for every process, so a share of it is not measurable. */
  readonly memory: { readonly bytes: number | null; readonly note: string };
  /** How its last process ended; null while its first process runs. */
  readonly lastExit: {
    readonly reason: string;
    readonly type: 'normal' | 'shutdown' | 'killed' | 'error';
    /** An error's stack (first lines), code and cause; a shutdown's detail. */
    readonly detail: string | null;
    /** Wall-clock ms, when the host saw it. */
    readonly at: number | null;
  } | null;
  /** Oldest first, at most 20. */
  readonly timeline: readonly ProcessLifeEntry[];
  /** Wall-clock ms since when the timeline is kept (older exits are not known). */
  readonly timelineSince: number;
}

export interface TimerView {
  /** `after` (a state's own timeout), `state`, `event` or `named` (e.g. `liveness`). */
  readonly kind: string;
  /** The timer's id: xstate's for `after`, the name for named timeouts. */
  readonly key: string;
  /** The event it sends when it fires, e.g. `LIVENESS_TIMEOUT`. */
  readonly event: string;
  /** Wall-clock deadline (ms since epoch) and the total delay, for a countdown bar. */
  readonly deadline: number;
  readonly delayMs: number;
}
