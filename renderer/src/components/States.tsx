/**
 * The empty, loading and error states every view uses, so a blank panel always says why it is
 * blank and what to do.
 *
 * @example
 * if (state.status === 'error') return <ErrorState title="Could not load" message={state.message} onRetry={reload} />;
 */
import type { ReactNode } from 'react';
import { useLive } from '../store/use-live.js';

export function Loading({ label = 'Loading…' }: { readonly label?: string }) {
  return (
    <div className="placeholder" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

/**
 * Before the first snapshot: says what is awaited, or — when the connection already failed — why
 * it will not come (not signed in, host unreachable), instead of spinning forever.
 */
export function Waiting({ what }: { readonly what: string }) {
  const connection = useLive((s) => s.connection);
  if (connection.kind === 'unauthorized')
    return <ErrorState title="Not signed in" message={connection.reason} />;
  if (connection.kind === 'reconnecting')
    return <Loading label={`Waiting for ${what}: ${connection.reason}…`} />;
  return <Loading label={`Waiting for ${what}…`} />;
}

export function Empty({ title, children }: { readonly title: string; readonly children?: ReactNode }) {
  return (
    <div className="placeholder">
      <strong>{title}</strong>
      {children ? <div className="muted">{children}</div> : null}
    </div>
  );
}

export function ErrorState({
  title,
  message,
  onRetry,
}: {
  readonly title: string;
  readonly message: string;
  readonly onRetry?: () => void;
}) {
  return (
    <div className="placeholder error" role="alert">
      <strong>{title}</strong>
      <div className="muted">{message}</div>
      {onRetry ? (
        <button type="button" className="btn" onClick={onRetry}>
          Retry
        </button>
      ) : null}
    </div>
  );
}
