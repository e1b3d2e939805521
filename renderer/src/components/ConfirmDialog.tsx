/**
 * A modal confirmation for destructive operations (send `reboot` to 300 devices, kill a process).
 * Built on `<dialog>`: focus is trapped, Escape cancels, and the safe button has the focus.
 *
 * @example
 * <ConfirmDialog open={asking} title="Reboot 3 devices?" confirmLabel="Reboot" onConfirm={send} onCancel={close}>
 *   They drop off the network for about a minute.
 * </ConfirmDialog>
 */
import type { ReactNode } from 'react';
import { useEffect, useRef } from 'react';

export function ConfirmDialog({
  open,
  title,
  confirmLabel,
  danger = true,
  onConfirm,
  onCancel,
  children,
}: {
  readonly open: boolean;
  readonly title: string;
  readonly confirmLabel: string;
  readonly danger?: boolean;
  readonly onConfirm: () => void;
  readonly onCancel: () => void;
  readonly children?: ReactNode;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const cancelRef = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    const dialog = ref.current;
    if (!open || !dialog) return;
    if (!dialog.open) dialog.showModal();
    cancelRef.current?.focus();
    return () => dialog.close();
  }, [open]);

  // Mounted only while open: one confirmation in the DOM at a time (and one `confirm-ok` for tests).
  if (!open) return null;
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby="confirm-title"
      onCancel={(e) => {
        e.preventDefault();
        onCancel();
      }}
    >
      <h2 id="confirm-title">{title}</h2>
      <div className="dialog-body">{children}</div>
      <div className="dialog-actions">
        <button type="button" className="btn" ref={cancelRef} onClick={onCancel} data-testid="confirm-cancel">
          Cancel
        </button>
        <button
          type="button"
          className={`btn ${danger ? 'danger' : 'primary'}`}
          onClick={onConfirm}
          data-testid="confirm-ok"
        >
          {confirmLabel}
        </button>
      </div>
    </dialog>
  );
}
