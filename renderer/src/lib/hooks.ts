/**
 * Small hooks the views share: a coarse clock for relative times, a windowed list for tens of
 * thousands of rows, a call that tracks loading/error/value, and the colour scheme.
 *
 * @example
 * const now = useNow(1_000);
 * const win = useVirtualRows(rows.length, 28); // <div ref={win.ref}>: render rows win.start … win.end
 * const health = useCall((c) => c.call('health', {}), [], { refreshMs: 5_000 });
 */
import type { DependencyList } from 'react';
import { useCallback, useEffect, useLayoutEffect, useRef, useState, useSyncExternalStore } from 'react';
import type { Envelope, TypedClient } from '../../../src/host/contract.js';
import { messageOf } from '../api/client.js';
import { useClient } from '../store/use-live.js';
import { pollInTurn } from './poll.js';

/** The wall clock, re-read every `intervalMs` (one shared timer per interval). */
export function useNow(intervalMs = 1_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), intervalMs);
    return () => window.clearInterval(t);
  }, [intervalMs]);
  return now;
}

export interface RowWindow {
  readonly start: number;
  readonly end: number;
  readonly totalHeight: number;
  readonly offset: number;
}

/**
 * Which rows of a fixed-height list are visible in a scrolling container (plus `overscan` each
 * side). Only those get DOM nodes: 10,000 rows cost what 40 do. Attach `ref` to the scrolling
 * element; it may mount later than the component (after a loading state), hence a callback ref.
 */
export function useVirtualRows(
  count: number,
  rowHeight: number,
  options: { readonly overscan?: number; readonly headerHeight?: number } = {},
): RowWindow & {
  ref: (element: HTMLElement | null) => void;
  element: HTMLElement | null;
  scrollToIndex: (index: number) => void;
} {
  const [element, setElement] = useState<HTMLElement | null>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const frame = useRef(0);

  useLayoutEffect(() => {
    const el = element;
    if (!el) return;
    const onScroll = () => {
      // One state update per frame, however many scroll events the wheel produces.
      if (frame.current) return;
      frame.current = window.requestAnimationFrame(() => {
        frame.current = 0;
        setScrollTop(el.scrollTop);
      });
    };
    const observer = new ResizeObserver(() => setHeight(el.clientHeight));
    observer.observe(el);
    setHeight(el.clientHeight);
    setScrollTop(el.scrollTop);
    el.addEventListener('scroll', onScroll, { passive: true });
    return () => {
      el.removeEventListener('scroll', onScroll);
      observer.disconnect();
      if (frame.current) window.cancelAnimationFrame(frame.current);
      frame.current = 0;
    };
  }, [element]);

  const overscan = options.overscan ?? 8;
  // A sticky header inside the scroller pushes the rows down by its height.
  const headerHeight = options.headerHeight ?? 0;
  const first = Math.floor(Math.max(0, scrollTop - headerHeight) / rowHeight);
  const start = Math.max(0, Math.min(count, first - overscan));
  const end = Math.min(count, first + Math.ceil(height / rowHeight) + overscan);

  const scrollToIndex = useCallback(
    (index: number) => {
      if (!element) return;
      const top = headerHeight + index * rowHeight;
      if (top < element.scrollTop + headerHeight) element.scrollTop = top - headerHeight;
      else if (top + rowHeight > element.scrollTop + element.clientHeight)
        element.scrollTop = top + rowHeight - element.clientHeight;
    },
    [element, rowHeight, headerHeight],
  );

  return {
    ref: setElement,
    element,
    start,
    end,
    totalHeight: count * rowHeight,
    offset: start * rowHeight,
    scrollToIndex,
  };
}

export type CallState<T> =
  | { readonly status: 'loading'; readonly value?: T }
  | { readonly status: 'ok'; readonly value: T }
  | { readonly status: 'error'; readonly code: string; readonly message: string; readonly value?: T };

/**
 * Runs a call when its deps change (and `refreshMs` after each answer: {@link pollInTurn}, one
 * request at a time), keeping the last value while a new one loads. Answers to requests of
 * earlier deps are dropped.
 */
export function useCall<T>(
  run: (client: TypedClient) => Promise<Envelope<T>>,
  deps: DependencyList,
  options: { readonly refreshMs?: number; readonly enabled?: boolean } = {},
): CallState<T> & { reload: () => void } {
  const client = useClient();
  const [state, setState] = useState<CallState<T>>({ status: 'loading' });
  const [nonce, setNonce] = useState(0);
  const runRef = useRef(run);
  runRef.current = run;
  const enabled = options.enabled ?? true;

  // biome-ignore lint/correctness/useExhaustiveDependencies: the caller's deps decide when to call again
  useEffect(() => {
    if (!enabled) return;
    setState((s) => ({ status: 'loading', ...(s.value !== undefined ? { value: s.value } : {}) }));
    return pollInTurn(
      () => runRef.current(client),
      (result) => {
        if (result.ok) setState({ status: 'ok', value: result.value });
        else
          setState((s) => ({
            status: 'error',
            code: result.error.code,
            message: result.error.message,
            ...(s.value !== undefined ? { value: s.value } : {}),
          }));
      },
      options.refreshMs,
      (error) => setState({ status: 'error', code: 'unavailable', message: messageOf(error) }),
    );
  }, [client, enabled, nonce, options.refreshMs, ...deps]);

  const reload = useCallback(() => setNonce((n) => n + 1), []);
  return { ...state, reload };
}

const darkQuery = () => window.matchMedia('(prefers-color-scheme: dark)');

export function useDarkMode(): boolean {
  return useSyncExternalStore(
    (listener) => {
      const q = darkQuery();
      q.addEventListener('change', listener);
      return () => q.removeEventListener('change', listener);
    },
    () => darkQuery().matches,
  );
}

/** Reads a CSS custom property from the document (for canvas charts that cannot use CSS). */
export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/**
 * Runs `tick` now and again each time the delay it answers has passed after it ended, while the
 * component is mounted; a change of `deps` starts over. `alive()` says whether the component is
 * still there after an await (not to set the state of one that is gone).
 *
 * @example
 * usePolling(async (alive) => { const r = await client.call('rollouts', {}); if (alive()) set(r); return 2000; }, [client]);
 */
export function usePolling(tick: (alive: () => boolean) => Promise<number>, deps: DependencyList): void {
  // biome-ignore lint/correctness/useExhaustiveDependencies: the caller's deps decide, as for useEffect
  useEffect(() => {
    let live = true;
    let timer = 0;
    const alive = () => live;
    const loop = async () => {
      const next = await tick(alive);
      if (live) timer = window.setTimeout(() => void loop(), next);
    };
    void loop();
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
  }, [...deps]);
}
