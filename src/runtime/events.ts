/**
 * The runtime's one typed event stream (inspection + telemetry). Every start, exit, restart,
 * give-up, transition, timer and measurement goes through it; the UI, the event log and the
 * metrics are all readers of this stream.
 *
 * Emitters check {@link EventStream.active} before building an event, so an unobserved runtime
 * pays nothing for it.
 *
 * @example
 * const off = runtime.events.subscribe((e) => { if (e.type === 'child.restarted') console.log(e.childId); });
 */
import type { ExitReason } from './exit-reason.js';
import type { Pid, ProcessKind } from './process.js';

interface Base {
  /** Wall-clock epoch milliseconds when it happened. */
  readonly at: number;
}

export type RuntimeEvent =
  | (Base & {
      readonly type: 'process.started';
      readonly pid: Pid;
      readonly kind: ProcessKind;
      readonly name: string;
      readonly parent?: Pid | undefined;
      readonly childId?: string | undefined;
    })
  | (Base & {
      readonly type: 'process.exited';
      readonly pid: Pid;
      readonly name: string;
      readonly reason: ExitReason;
    })
  | (Base & {
      readonly type: 'child.started';
      readonly supervisor: Pid;
      readonly childId: string;
      readonly pid: Pid;
      readonly childType: 'worker' | 'supervisor';
    })
  | (Base & {
      readonly type: 'child.restarted';
      readonly supervisor: Pid;
      readonly childId: string;
      readonly oldPid: Pid | undefined;
      readonly pid: Pid | undefined;
      /** Restarts inside the current intensity window, and its maximum. */
      readonly restartsInWindow: number;
      readonly maxRestarts: number;
      /** Exit detected → replacement running. */
      readonly durationMs: number;
    })
  | (Base & {
      readonly type: 'child.startFailed';
      readonly supervisor: Pid;
      readonly childId: string;
      readonly error: Error;
    })
  | (Base & {
      readonly type: 'supervisor.gaveUp';
      readonly supervisor: Pid;
      readonly name: string;
      readonly childId: string;
      readonly maxRestarts: number;
      readonly periodMs: number;
    })
  | (Base & { readonly type: 'supervisor.autoShutdown'; readonly supervisor: Pid; readonly childId: string })
  | (Base & {
      readonly type: 'state.transition';
      readonly pid: Pid;
      readonly name: string;
      readonly from: string;
      readonly to: string;
      readonly event: string;
    })
  /**
   * Every event a state machine processed, with its payload and the state before and after it
   * (equal when it changed only the context, or nothing). `state.transition` is only the changes.
   */
  | (Base & {
      readonly type: 'machine.event';
      readonly pid: Pid;
      readonly name: string;
      readonly event: { readonly type: string; readonly [key: string]: unknown };
      readonly from: string;
      readonly to: string;
    })
  | (Base & {
      readonly type: 'timer.scheduled';
      readonly pid: Pid;
      readonly label: string;
      readonly delayMs: number;
      readonly wallDeadlineMs: number;
    })
  | (Base & { readonly type: 'timer.cancelled'; readonly pid: Pid; readonly label: string })
  | (Base & { readonly type: 'timer.fired'; readonly pid: Pid; readonly label: string })
  | (Base & {
      readonly type: 'handler.removed';
      readonly pid: Pid;
      readonly handlerId: string;
      readonly error?: Error | undefined;
    })
  | (Base & {
      readonly type: 'measurement';
      readonly name: string;
      readonly value: number;
      readonly unit: 'ms' | 'count' | 'bytes';
      readonly pid?: Pid | undefined;
      readonly tags?: Readonly<Record<string, string>> | undefined;
    })
  | (Base & {
      readonly type: 'report';
      readonly level: 'warn' | 'error';
      readonly message: string;
      readonly pid?: Pid | undefined;
      readonly error?: Error | undefined;
    });

export type RuntimeEventType = RuntimeEvent['type'];
export type RuntimeEventOf<T extends RuntimeEventType> = Extract<RuntimeEvent, { type: T }>;

/** Distributes an event type over the union, so `Omit` keeps each member's own fields. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type RuntimeEventInput = DistributiveOmit<RuntimeEvent, 'at'>;

export type Listener = (event: RuntimeEvent) => void;

export interface EventStream {
  /** True when someone listens; emitters skip building events otherwise. */
  readonly active: boolean;
  emit(event: RuntimeEventInput): void;
  /** Adds a listener; returns its removal. A listener that throws is removed and reported. */
  subscribe(listener: Listener): () => void;
}

export function createEventStream(wallNow: () => number): EventStream {
  let listeners: Listener[] = [];
  const stream: EventStream = {
    get active() {
      return listeners.length > 0;
    },
    emit(input) {
      if (listeners.length === 0) return;
      const event = { ...input, at: wallNow() } as RuntimeEvent;
      for (const listener of listeners) {
        try {
          listener(event);
        } catch (error) {
          // gen_event parity: a crashing handler is removed and the removal reported, the
          // manager (here: the stream) lives on.
          listeners = listeners.filter((l) => l !== listener);
          stream.emit({
            type: 'report',
            level: 'error',
            message: `event listener threw on ${event.type} and was removed`,
            error: error instanceof Error ? error : new Error(String(error)),
          });
        }
      }
    },
    subscribe(listener) {
      listeners = [...listeners, listener];
      return () => {
        listeners = listeners.filter((l) => l !== listener);
      };
    },
  };
  return stream;
}
