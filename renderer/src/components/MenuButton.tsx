/**
 * A toolbar button that opens a small panel below it (a menu, a chooser) and closes it on Escape,
 * on a click outside, or when the panel asks. The panel is rendered only while open.
 *
 * @example
 * <MenuButton label="Columns" testId="columns-button">{(close) => <ColumnList onDone={close} />}</MenuButton>
 */
import type { ReactNode } from 'react';
import { useEffect, useRef, useState } from 'react';
import './fleet-tools.css';

export function MenuButton({
  label,
  title,
  testId,
  children,
}: {
  readonly label: ReactNode;
  readonly title?: string;
  readonly testId: string;
  readonly children: (close: () => void) => ReactNode;
}) {
  const [open, setOpen] = useState(false);
  const ref = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!open) return;
    const onDown = (e: globalThis.MouseEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) setOpen(false);
    };
    const onKey = (e: globalThis.KeyboardEvent) => {
      if (e.key === 'Escape') setOpen(false);
    };
    document.addEventListener('mousedown', onDown);
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('mousedown', onDown);
      document.removeEventListener('keydown', onKey);
    };
  }, [open]);

  return (
    <div className="menu-button" ref={ref}>
      <button
        type="button"
        className={`btn${open ? ' pressed' : ''}`}
        aria-expanded={open}
        aria-haspopup="dialog"
        title={title}
        onClick={() => setOpen((o) => !o)}
        data-testid={testId}
      >
        {label} ▾
      </button>
      {open ? (
        <div className="menu-panel" role="dialog" aria-label={typeof label === 'string' ? label : undefined}>
          {children(() => setOpen(false))}
        </div>
      ) : null}
    </div>
  );
}
