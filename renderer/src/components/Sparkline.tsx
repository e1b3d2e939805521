/**
 * A tiny inline trend line (SVG polyline) for the system view's figures: the client keeps the
 * history (the store's last 300 stats samples), so it needs no call.
 *
 * @example
 * <Sparkline values={history.map((s) => s.ingestRate)} label="ingest rate" />
 */
export function Sparkline({
  values,
  label,
  width = 120,
  height = 28,
  tone = 'accent',
}: {
  readonly values: readonly (number | null)[];
  readonly label: string;
  readonly width?: number;
  readonly height?: number;
  readonly tone?: 'accent' | 'ok' | 'warn' | 'err';
}) {
  const points = values.filter((v): v is number => v !== null && Number.isFinite(v));
  if (points.length < 2)
    return (
      <svg
        className="sparkline empty"
        width={width}
        height={height}
        role="img"
        aria-label={`${label}: not enough data yet`}
      />
    );
  const min = Math.min(...points);
  const max = Math.max(...points);
  const flat = max === min;
  const span = max - min || 1;
  const step = width / (values.length - 1);
  let d = '';
  let firstX = 0;
  let lastX = 0;
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) return;
    const x = i * step;
    if (d === '') firstX = x;
    lastX = x;
    const y = flat ? height / 2 : height - 2 - ((v - min) / span) * (height - 4);
    d += `${d === '' ? 'M' : 'L'}${x.toFixed(1)},${y.toFixed(1)} `;
  });
  return (
    <svg
      className={`sparkline tone-${tone}`}
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={`${label}: from ${min} to ${max}`}
    >
      <path d={`${d}L${lastX.toFixed(1)},${height} L${firstX.toFixed(1)},${height} Z`} className="area" />
      <path d={d} className="line" />
    </svg>
  );
}
