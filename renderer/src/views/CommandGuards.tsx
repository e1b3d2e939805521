/**
 * A device's command guards (docs/commands.md): its circuit breaker — state, failures in a row
 * against the threshold, how often it opened, the next probe counting down, the last failure —
 * and its rate limit. Shown in the device detail; the fleet row carries only the open mark
 * ({@link BreakerMark}).
 *
 * @example
 * <CommandGuards guards={detail.guards} now={now} />
 */
import type { DeviceRow, GuardsView } from '../../../src/host/contract.js';
import { formatDuration, formatTime } from '../lib/format.js';

type BreakerState = GuardsView['breaker']['state'];

/** The state as of `now`: an open breaker whose cool-down is over is half-open (the next command probes). */
export function breakerStateAt(breaker: GuardsView['breaker'], now: number): BreakerState {
  if (breaker.state === 'open' && breaker.nextProbeAt !== null && now >= breaker.nextProbeAt)
    return 'halfOpen';
  return breaker.state;
}

const LABEL: Record<BreakerState, string> = { closed: 'closed', open: 'open', halfOpen: 'half-open' };
const TONE: Record<BreakerState, string> = { closed: 'ok', open: 'err', halfOpen: 'warn' };

export function CommandGuards({
  guards,
  now,
}: {
  readonly guards: GuardsView | undefined;
  readonly now: number;
}) {
  if (!guards) return <p className="muted small-text">This host does not report command guards.</p>;
  const { breaker, rate } = guards;
  const state = breakerStateAt(breaker, now);
  return (
    <div data-testid="device-breaker" data-state={state}>
      <p>
        <span className={`badge tone-${TONE[state]}`} data-testid="breaker-state">
          breaker {LABEL[state]}
        </span>{' '}
        {state === 'open' && breaker.nextProbeAt !== null ? (
          <span data-testid="breaker-next-probe">
            commands refused (<code>circuitOpen</code>); next probe in{' '}
            <strong>{formatDuration(Math.max(0, breaker.nextProbeAt - now))}</strong>
            <span className="muted"> at {formatTime(breaker.nextProbeAt)}</span>
          </span>
        ) : state === 'halfOpen' ? (
          <span data-testid="breaker-next-probe">
            {breaker.probing ? 'a probe is on its way' : 'the next command goes as the probe'}
          </span>
        ) : (
          <span className="muted">commands go through</span>
        )}
      </p>
      <table className="kv">
        <tbody>
          <tr>
            <th>Failures in a row</th>
            <td data-testid="breaker-failures">
              {breaker.consecutiveFailures} <span className="muted">of {breaker.failures} to open</span>
            </td>
          </tr>
          <tr>
            <th>Opened</th>
            <td data-testid="breaker-opens">
              {breaker.opens} {breaker.opens === 1 ? 'time' : 'times'}{' '}
              <span className="muted">(cool-down {formatDuration(breaker.coolDownMs)})</span>
            </td>
          </tr>
          {breaker.lastFailure ? (
            <tr>
              <th>Last failure</th>
              <td className="small-text">{breaker.lastFailure}</td>
            </tr>
          ) : null}
          <tr>
            <th>Rate limit</th>
            <td>
              {rate.perSecond} a second, burst {rate.burst}{' '}
              <span className="muted">({Math.floor(rate.tokens)} available)</span>
            </td>
          </tr>
        </tbody>
      </table>
    </div>
  );
}

/** The fleet row's mark for a breaker that is not closed; nothing otherwise (cheap at 10,000 rows). */
export function BreakerMark({ breaker }: { readonly breaker: DeviceRow['breaker'] }) {
  if (!breaker) return null;
  return (
    <span
      className={`badge small fw-mark tone-${breaker === 'open' ? 'err' : 'warn'}`}
      title={
        breaker === 'open'
          ? 'Circuit breaker open: commands are refused (circuitOpen) until a probe succeeds after the cool-down'
          : 'Circuit breaker half-open: the next command goes as the probe'
      }
      data-testid="fleet-breaker"
      data-state={breaker}
    >
      {breaker === 'open' ? 'breaker open' : 'half-open'}
    </span>
  );
}
