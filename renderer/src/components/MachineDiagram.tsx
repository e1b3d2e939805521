/**
 * A device's state machine drawn from its {@link MachineView}: states as rounded boxes (nested
 * states inside their parent), transitions as labelled arrows, the current state lit and its
 * parents outlined. Layout comes from lib/machine-layout.ts; labels are SVG text nodes.
 *
 * @example
 * <MachineDiagram machine={detail.machine} current="updating.verify" />
 */
import { useMemo } from 'react';
import type { MachineView } from '../../../src/host/contract.js';
import { layoutMachine, normalizePath } from '../lib/machine-layout.js';

const LINE_H = 13;

export function MachineDiagram({
  machine,
  current,
}: {
  readonly machine: MachineView;
  readonly current: string;
}) {
  const layout = useMemo(() => layoutMachine(machine), [machine]);
  const here = normalizePath(current, machine.id);
  const lit = (path: string) => (path === here ? 'current' : here.startsWith(`${path}.`) ? 'ancestor' : '');
  const markerId = `arrow-${machine.id.replace(/[^A-Za-z0-9_-]/g, '')}`;
  const initial = layout.boxes.find((b) => b.initial && b.depth === 0);

  return (
    <svg
      className="machine"
      viewBox={`0 0 ${layout.width} ${layout.height}`}
      width={layout.width}
      height={layout.height}
      role="img"
      aria-label={`State machine ${machine.id}, current state ${current}`}
      data-testid="machine-diagram"
    >
      <defs>
        <marker
          id={markerId}
          viewBox="0 0 10 10"
          refX="9"
          refY="5"
          markerWidth="7"
          markerHeight="7"
          orient="auto-start-reverse"
        >
          <path d="M 0 0 L 10 5 L 0 10 z" className="arrowhead" />
        </marker>
      </defs>
      {layout.boxes.map((b) => (
        <g
          key={b.path}
          className={`state ${b.compound ? 'compound' : 'leaf'} ${lit(b.path)}`}
          data-state-path={b.path}
        >
          <rect x={b.x} y={b.y} width={b.w} height={b.h} rx={b.compound ? 10 : 8} />
          <text
            x={b.x + (b.compound ? 10 : b.w / 2)}
            y={b.compound ? b.y + 16 : b.y + b.h / 2 + 4}
            textAnchor={b.compound ? 'start' : 'middle'}
          >
            {b.label}
          </text>
          {b.initial && b.depth > 0 ? (
            <circle cx={b.x - 5} cy={b.y + 6} r={3} className="initial-dot" />
          ) : null}
        </g>
      ))}
      {initial ? (
        <g className="initial-marker">
          <circle cx={initial.x + 12} cy={initial.y - 10} r={4} className="initial-dot" />
          <path
            d={`M ${initial.x + 12} ${initial.y - 6} L ${initial.x + 12} ${initial.y - 1}`}
            markerEnd={`url(#${markerId})`}
          />
        </g>
      ) : null}
      {layout.edges.map((e) => (
        <g
          key={`${e.from}->${e.to}`}
          className={`edge ${e.kind}${lit(e.from) === 'current' ? ' from-current' : ''}`}
        >
          <path d={e.d} markerEnd={`url(#${markerId})`} />
          <text x={e.labelX} y={e.labelY} textAnchor={e.anchor}>
            {e.labels.map((label, i) => (
              <tspan key={label} x={e.labelX} dy={i === 0 ? 0 : LINE_H}>
                {label}
              </tspan>
            ))}
          </text>
        </g>
      ))}
    </svg>
  );
}
