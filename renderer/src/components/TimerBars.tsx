/**
 * Live countdowns for a device's running timers (connect timeout, liveness): a bar
 * that drains from full to empty over the timer's delay and the time left. Updated every frame
 * by writing to the DOM directly — a 60 Hz countdown must not re-render React.
 *
 * @example
 * <TimerBars timers={row.timers} />
 */
import { useEffect, useRef } from 'react';
import type { TimerView } from '../../../src/host/contract.js';
import { formatDuration, formatRemaining } from '../lib/format.js';
import { prettyEvent } from '../lib/machine-layout.js';

/**
 * A timer as its kind declares it: a state's `after` timer by its delay's name (`connectTimeout`,
 * or `after 5 s` for an unnamed delay) and the state it belongs to, not xstate's internal id
 * (`xstate.after.connectTimeout.device.connecting`); a named timer by its name.
 */
export function timerLabel(timer: Pick<TimerView, 'key' | 'event'>): { name: string; state: string } {
  const m = AFTER_ID.exec(timer.key) ?? AFTER_ID.exec(timer.event);
  if (!m) return { name: timer.key, state: '' };
  const [, delay, path] = m;
  // The path starts with the machine's id: `device.run.transfer` → `run.transfer`.
  const state = path!.split('.').slice(1).join('.') || path!;
  return { name: /^\d+$/.test(delay!) ? `after ${formatDuration(Number(delay))}` : delay!, state };
}

const AFTER_ID = /^xstate\.after\.([^.]+)\.(.+)$/;

export function TimerBars({ timers }: { readonly timers: readonly TimerView[] }) {
  if (timers.length === 0) return <p className="muted small-text">No timer running.</p>;
  return (
    <ul className="timers">
      {timers.map((t) => (
        <TimerBar key={`${t.kind}/${t.key}/${t.deadline}`} timer={t} />
      ))}
    </ul>
  );
}

function TimerBar({ timer }: { readonly timer: TimerView }) {
  const label = timerLabel(timer);
  const rowRef = useRef<HTMLLIElement>(null);
  const fillRef = useRef<HTMLDivElement>(null);
  const textRef = useRef<HTMLSpanElement>(null);

  useEffect(() => {
    let frame = 0;
    let last = -1;
    const paint = () => {
      const remaining = Math.max(0, timer.deadline - Date.now());
      const fraction = timer.delayMs > 0 ? Math.min(1, remaining / timer.delayMs) : 0;
      if (fillRef.current) fillRef.current.style.transform = `scaleX(${fraction})`;
      // Text and attribute 10× a second is plenty; the bar moves every frame.
      const tenth = Math.floor(remaining / 100);
      if (tenth !== last) {
        last = tenth;
        if (textRef.current) textRef.current.textContent = formatRemaining(remaining);
        if (rowRef.current) {
          rowRef.current.dataset.remainingMs = String(Math.round(remaining));
          rowRef.current.classList.toggle('urgent', fraction < 0.2);
          rowRef.current.classList.toggle('expired', remaining === 0);
        }
      }
      if (remaining > 0) frame = window.requestAnimationFrame(paint);
    };
    paint();
    return () => window.cancelAnimationFrame(frame);
  }, [timer.deadline, timer.delayMs]);

  return (
    <li
      className="timer"
      ref={rowRef}
      data-testid="timer-countdown"
      data-timer-key={timer.key}
      data-timer-name={label.name}
      data-remaining-ms=""
    >
      <div className="timer-head">
        <span className="mono" title={timer.key}>
          {label.name}
        </span>
        <span className="muted">
          {' '}
          · {label.state ? `in ${label.state}` : timer.kind} · {formatDuration(timer.delayMs)}
          {timer.event.startsWith('xstate.') ? '' : ` → ${prettyEvent(timer.event)}`}
        </span>
        <span className="timer-left mono" ref={textRef} />
      </div>
      <div className="bar" role="presentation">
        <div className="bar-fill" ref={fillRef} />
      </div>
    </li>
  );
}
