/**
 * One row of the fleet table: the selection box, then one cell per column shown (the operator
 * chooses them, renderer/src/lib/fleet-columns.ts), metric columns reading the latest value from
 * the table's one model. Memoized: a push re-renders only the rows whose device changed, and the
 * metric values' version re-renders the ~37 rows on screen, never the 10,000 off it.
 *
 * @example
 * <FleetRow row={row} index={i} columns={columns} grid={{ gridTemplateColumns: gridTemplate(columns) }} latest={latest} … />
 */
import type { CSSProperties, MouseEvent } from 'react';
import { memo } from 'react';
import type { DeviceRow, FirmwareJobView, RemoteRowInfo } from '../../../src/host/contract.js';
import { LinkBadge, StateBadge } from '../components/StateBadge.js';
import { markText, markTitle } from '../lib/firmware-jobs.js';
import type { FleetColumn } from '../lib/fleet-columns.js';
import { formatAgo, formatDateTime } from '../lib/format.js';
import { formatReading } from '../lib/reading-format.js';
import type { LatestValues } from '../store/latest-values.js';
import { BreakerMark } from './CommandGuards.js';

/** A reading older than this is shown dimmed: the device has gone quiet, the value may be stale. */
const STALE_AFTER_MS = 5 * 60_000;

export const FleetRow = memo(function FleetRow({
  row,
  index,
  now,
  update,
  selected,
  active,
  columns,
  grid,
  latest,
  onToggle,
  onOpen,
  onFocusRow,
}: {
  readonly row: DeviceRow;
  readonly index: number;
  readonly now: number;
  /** Its firmware update job while one runs. */
  readonly update: FirmwareJobView | undefined;
  readonly selected: boolean;
  readonly active: boolean;
  readonly columns: readonly FleetColumn[];
  /** The grid's tracks for `columns` and the row's least width (one object for every row). */
  readonly grid: CSSProperties;
  readonly latest: LatestValues;
  /** Changes when the metric values did: a memoized row reads them again. */
  readonly latestVersion: number;
  readonly onToggle: (id: string, index: number, range: boolean) => void;
  readonly onOpen: (id: string) => void;
  readonly onFocusRow: (index: number) => void;
}) {
  const onCheck = (e: MouseEvent<HTMLInputElement>) => {
    e.stopPropagation();
    onToggle(row.id, index, e.shiftKey);
  };
  return (
    // biome-ignore lint/a11y/useKeyWithClickEvents: the grid's own onKeyDown handles Enter/Space for the active row
    <div
      id={`fleet-row-${row.id}`}
      role="row"
      aria-rowindex={index + 2}
      aria-selected={selected}
      className={`tr fleet-cols${selected ? ' selected' : ''}${active ? ' active' : ''}${row.health === 'failed' ? ' failed' : ''}`}
      style={grid}
      data-testid="fleet-row"
      data-device-id={row.id}
      onClick={() => {
        onFocusRow(index);
        onOpen(row.id);
      }}
    >
      <span role="gridcell" className="cell check">
        <input
          type="checkbox"
          tabIndex={-1}
          aria-label={`Select ${row.id}`}
          checked={selected}
          onClick={onCheck}
          onChange={() => {}}
          data-testid="row-check"
        />
      </span>
      {columns.map((c) =>
        c.metric !== undefined ? (
          <MetricCell key={c.key} row={row} column={c} latest={latest} now={now} />
        ) : (
          <OwnCell key={c.key} row={row} column={c} now={now} update={update} />
        ),
      )}
    </div>
  );
});

function OwnCell({
  row,
  column,
  now,
  update,
}: {
  readonly row: DeviceRow;
  readonly column: FleetColumn;
  readonly now: number;
  readonly update: FirmwareJobView | undefined;
}) {
  switch (column.key) {
    case 'id':
      return (
        <span role="gridcell" className="cell mono" title={row.id}>
          <span>{row.id}</span>
          {row.remote ? <OwnerChip row={row} remote={row.remote} now={now} /> : null}
        </span>
      );
    case 'name':
      return (
        <span role="gridcell" className="cell" title={row.name}>
          <span>{row.name}</span>
        </span>
      );
    case 'kind':
      return (
        <span role="gridcell" className="cell muted" title={`${row.kind} (${row.convention ?? 'own'})`}>
          <span className={`convention convention-${row.convention ?? 'own'}`}>
            {row.convention ?? 'own'}
          </span>
          <span className="kind-text">{row.kind}</span>
        </span>
      );
    case 'state':
      return (
        <span role="gridcell" className="cell">
          <StateBadge state={row.state} health={row.health} />
          {row.remote ? (
            <span
              className="remote-age muted"
              title={rowAgeTitle(row.remote, now)}
              data-testid="remote-age"
              data-read-at={row.remote.readAt}
            >
              read {formatAgo(row.remote.readAt, now)}
            </span>
          ) : null}
          {update ? (
            <span
              className={`badge small fw-mark tone-${update.step === 'rollingBack' ? 'warn' : 'info'}`}
              title={markTitle(update)}
              data-testid="fleet-updating"
              data-step={update.step}
            >
              {markText(update)}
            </span>
          ) : null}
          <BreakerMark breaker={row.breaker} />
        </span>
      );
    case 'link':
      return (
        <span role="gridcell" className="cell">
          <LinkBadge link={row.link} />
        </span>
      );
    case 'firmware':
      return (
        <span role="gridcell" className="cell mono" title={row.firmware ?? undefined}>
          {row.firmware ? <span>{row.firmware}</span> : <span className="muted">—</span>}
        </span>
      );
    case 'lastSeen':
    case 'drift':
    case 'restarts':
      // What only the owner knows: not in the shared database.
      if (row.remote)
        return (
          <span
            role="gridcell"
            className="cell num muted"
            title={`Known to ${row.remote.owner ?? 'its owner'} only: open the device to ask it`}
          >
            —
          </span>
        );
      return <OwnerOnlyCell row={row} column={column} now={now} />;
    default:
      return <span role="gridcell" className="cell" />;
  }
}

/** Last seen, drift and restarts: what the instance running the device knows. */
function OwnerOnlyCell({
  row,
  column,
  now,
}: {
  readonly row: DeviceRow;
  readonly column: FleetColumn;
  readonly now: number;
}) {
  switch (column.key) {
    case 'lastSeen':
      return (
        <span
          role="gridcell"
          className="cell num muted"
          title={row.lastSeen ? new Date(row.lastSeen).toISOString() : 'never'}
        >
          {formatAgo(row.lastSeen, now)}
        </span>
      );
    case 'drift':
      return (
        <span role="gridcell" className={`cell num${row.drift > 0 ? ' tone-text-warn strong' : ' muted'}`}>
          {row.drift}
        </span>
      );
    case 'restarts':
      return (
        <span role="gridcell" className={`cell num${row.restarts > 0 ? ' strong' : ' muted'}`}>
          {row.restarts}
        </span>
      );
    default:
      return <span role="gridcell" className="cell" />;
  }
}

/** Who supervises a remote row's device: another instance, or none while its shard has no owner. */
function OwnerChip({
  row,
  remote,
  now,
}: {
  readonly row: DeviceRow;
  readonly remote: RemoteRowInfo;
  readonly now: number;
}) {
  return (
    <span
      className={`owner-chip${remote.owner === null ? ' none' : ''}`}
      title={`${row.id} runs on ${remote.owner === null ? 'no instance now (its shard is between owners)' : `instance ${remote.owner}`}. ${rowAgeTitle(remote, now)}`}
      data-testid="owner-chip"
      data-owner={remote.owner ?? ''}
    >
      {remote.owner ?? 'no owner'}
    </span>
  );
}

/** How old a remote row is, in words: when it was read, and when its owner last saved its state. */
function rowAgeTitle(remote: RemoteRowInfo, now: number): string {
  const saved =
    remote.savedAt === null
      ? 'its owner has not saved its state yet'
      : `its owner saves its state at every change, last ${formatAgo(remote.savedAt, now)} (${formatDateTime(remote.savedAt)})`;
  return `Read from the shared database ${formatAgo(remote.readAt, now)}; ${saved}. Its owner signals every change; this instance reads it again and pushes it here within about a second.`;
}

function MetricCell({
  row,
  column,
  latest,
  now,
}: {
  readonly row: DeviceRow;
  readonly column: FleetColumn;
  readonly latest: LatestValues;
  readonly now: number;
}) {
  const metric = column.metric!;
  const v = latest.get(metric, row.id);
  const stale = v !== undefined && now - v.at > STALE_AFTER_MS;
  if (!v)
    return (
      <span
        role="gridcell"
        className="cell num muted"
        title={
          row.remote
            ? `${row.id} runs on ${row.remote.owner ?? 'another instance'}: its readings are charted in its detail, not followed here`
            : `no ${metric} reading from ${row.id} yet`
        }
        data-testid="metric-cell"
        data-metric={metric}
      >
        —
      </span>
    );
  return (
    <span
      role="gridcell"
      className={`cell num mono${stale ? ' muted' : ''}`}
      // No "N s ago" here: it would rewrite every visible cell's title every second (2,000 rows
      // sorted by a metric re-render each second); the time is enough, and "old" says stale.
      title={`${stale ? 'old reading: ' : ''}${metric} ${v.value}${column.unit ? ` ${column.unit}` : ''} at ${formatDateTime(v.at)}`}
      data-testid="metric-cell"
      data-metric={metric}
      data-value={v.value}
      data-stale={stale || undefined}
    >
      <span>
        {formatReading(v.value, latest.decimals(metric))}
        {column.unit ? <span className="metric-unit"> {column.unit}</span> : null}
      </span>
    </span>
  );
}
