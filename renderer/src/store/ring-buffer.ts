/**
 * Fixed-capacity buffers for the live store, so a firehose of pushes never grows the renderer's
 * memory: the oldest entries are overwritten (DESIGN §10.1 — MQTT desktop tools that grow to
 * gigabytes are what we must not be).
 *
 * @example
 * const ring = createRing<EventView>(500);
 * ring.push(event);
 * ring.toArray(); // oldest → newest, at most 500
 *
 * const series = createSeriesRing(600);
 * series.push(Date.now(), 21.5);
 * series.columns(); // [times[], values[]] oldest → newest
 */

export interface Ring<T> {
  readonly capacity: number;
  readonly size: number;
  push(item: T): void;
  clear(): void;
  /** Oldest → newest. */
  toArray(): T[];
}

export function createRing<T>(capacity: number): Ring<T> {
  const items: (T | undefined)[] = new Array(capacity);
  let start = 0;
  let size = 0;
  return {
    capacity,
    get size() {
      return size;
    },
    push(item) {
      items[(start + size) % capacity] = item;
      if (size < capacity) size++;
      else start = (start + 1) % capacity;
    },
    clear() {
      items.fill(undefined);
      start = 0;
      size = 0;
    },
    toArray() {
      const out: T[] = new Array(size);
      for (let i = 0; i < size; i++) out[i] = items[(start + i) % capacity] as T;
      return out;
    },
  };
}

/** A time series of (ms, value) pairs in two typed arrays: no object per point. */
export interface SeriesRing {
  readonly capacity: number;
  readonly size: number;
  /** Time of the newest point; -Infinity when empty. */
  readonly lastAt: number;
  push(atMs: number, value: number): void;
  /** Two plain arrays, oldest → newest (what a chart takes). */
  columns(): [number[], number[]];
}

export function createSeriesRing(capacity: number): SeriesRing {
  const times = new Float64Array(capacity);
  const values = new Float64Array(capacity);
  let start = 0;
  let size = 0;
  let lastAt = Number.NEGATIVE_INFINITY;
  return {
    capacity,
    get size() {
      return size;
    },
    get lastAt() {
      return lastAt;
    },
    push(atMs, value) {
      // Points arrive in order per device/metric; a late one (reordered push) is dropped rather
      // than breaking the chart's sorted x axis.
      if (atMs < lastAt) return;
      const i = (start + size) % capacity;
      times[i] = atMs;
      values[i] = value;
      lastAt = atMs;
      if (size < capacity) size++;
      else start = (start + 1) % capacity;
    },
    columns() {
      const t: number[] = new Array(size);
      const v: number[] = new Array(size);
      for (let k = 0; k < size; k++) {
        const i = (start + k) % capacity;
        t[k] = times[i]!;
        v[k] = values[i]!;
      }
      return [t, v];
    },
  };
}
