/**
 * One discovered device in the Discovered view (renderer/src/views/DiscoveredView.tsx): what it
 * said (convention, kind, firmware), over which link, when first and last heard, why it waits, and
 * its Adopt and Ignore buttons. Memoized on what it shows: each poll brings new objects for the
 * same rows.
 *
 * @example
 * <DiscoveredRow d={d} now={now} selected={false} ignored={false} busy={false} onToggle={toggle} onAdopt={adoptOne} />
 */
import { memo } from 'react';
import type { DiscoveredView as Discovered } from '../../../src/host/contract.js';
import { setIgnored } from '../lib/discovered.js';
import { formatAgo, formatDateTime } from '../lib/format.js';

const REASONS: Readonly<Record<string, string>> = {
  manual: 'waits for adoption',
  unknownKind: 'unknown kind: cannot be adopted',
  adoptionPaused: 'automatic adoption paused',
  ignored: 'ignored',
};

function reasonText(reason: string): string {
  return REASONS[reason] ?? reason;
}

export interface RowProps {
  readonly d: Discovered;
  readonly now: number;
  readonly selected: boolean;
  readonly ignored: boolean;
  readonly busy: boolean;
  readonly onToggle: (id: string) => void;
  readonly onAdopt: (id: string) => Promise<void>;
}

/** Drawn again only when what it shows changed (each poll brings new objects for the same rows). */
function sameRow(a: RowProps, b: RowProps): boolean {
  const x = a.d;
  const y = b.d;
  return (
    a.selected === b.selected &&
    a.ignored === b.ignored &&
    a.busy === b.busy &&
    a.onToggle === b.onToggle &&
    a.onAdopt === b.onAdopt &&
    x.id === y.id &&
    x.convention === y.convention &&
    x.kind === y.kind &&
    x.firmware === y.firmware &&
    x.via === y.via &&
    x.reason === y.reason &&
    x.firstSeen === y.firstSeen &&
    x.lastSeen === y.lastSeen &&
    formatAgo(x.firstSeen, a.now) === formatAgo(y.firstSeen, b.now) &&
    formatAgo(x.lastSeen, a.now) === formatAgo(y.lastSeen, b.now)
  );
}

export const DiscoveredRow = memo(function DiscoveredRow({
  d,
  now,
  selected,
  ignored,
  busy,
  onToggle,
  onAdopt,
}: RowProps) {
  const adoptable = d.reason !== 'unknownKind';
  return (
    <div
      className={`tr discovered-cols${selected ? ' selected' : ''}`}
      role="row"
      aria-selected={selected}
      data-testid="discovered-row"
      data-device-id={d.id}
    >
      <span role="gridcell" className="cell check">
        <input
          type="checkbox"
          aria-label={`Select ${d.id}`}
          checked={selected}
          disabled={!adoptable}
          onChange={() => onToggle(d.id)}
        />
      </span>
      <span role="gridcell" className="cell mono strong" title={d.id}>
        {d.id}
      </span>
      <span role="gridcell" className="cell mono" title={`${d.kind} (${d.convention})`}>
        <span className={`convention convention-${d.convention}`}>{d.convention}</span> {d.kind}
      </span>
      <span role="gridcell" className="cell mono" title={d.firmware || 'the convention reports no firmware'}>
        {d.firmware || '—'}
      </span>
      <span role="gridcell" className="cell" title={d.via}>
        {d.via}
      </span>
      <span role="gridcell" className="cell num muted" title={formatDateTime(d.firstSeen)}>
        {formatAgo(d.firstSeen, now)}
      </span>
      <span role="gridcell" className="cell num muted" title={formatDateTime(d.lastSeen)}>
        {formatAgo(d.lastSeen, now)}
      </span>
      <span
        role="gridcell"
        className={`cell${adoptable ? ' muted' : ' tone-text-warn'}`}
        title={reasonText(d.reason)}
      >
        {reasonText(d.reason)}
      </span>
      <span role="gridcell" className="cell actions">
        <button
          type="button"
          className="btn small primary"
          disabled={!adoptable || busy}
          onClick={() => void onAdopt(d.id)}
        >
          Adopt
        </button>
        <button type="button" className="btn small ghost" onClick={() => setIgnored([d.id], !ignored)}>
          {ignored ? 'Unignore' : 'Ignore'}
        </button>
      </span>
    </div>
  );
}, sameRow);
