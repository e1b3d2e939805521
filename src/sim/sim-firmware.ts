/**
 * The simulated device's flash: A/B firmware slots, the transfer into the inactive slot, and the
 * bootloader that falls back from an image that was never confirmed (protocol §5).
 *
 * It knows nothing about links or timers: each `fw.*` message is answered by one method that
 * changes the slots and returns the `fw.ack` to send, plus the reboot it calls for (after the ack
 * went), which the device (sim-device.ts) carries out. All of it survives a reboot, as flash does;
 * {@link SimFirmware.boot} is what the bootloader does on the way back up.
 *
 * @example
 * const flash = new SimFirmware({ version: '1.0.0' }, 4 * 1024 * 1024);
 * flash.handle({ v: 1, type: 'fw.begin', transferId: 't1', version: '1.1.0', size, sha256, chunkBytes: 4096 });
 * // → { ack: { v: 1, type: 'fw.ack', transferId: 't1', step: 'begin', offset: 0 } }
 * flash.handle(apply); // → { ack, reboot: 'fwApply' }; then flash.boot() picks the new slot, on trial
 */
import { createHash } from 'node:crypto';
import type {
  FirmwareInfo,
  FwAckMessage,
  FwApplyMessage,
  FwBeginMessage,
  FwChunkMessage,
  FwConfirmMessage,
  FwRollbackMessage,
  FwStep,
  FwVerifyMessage,
  Slot,
  WireError,
} from '../transports/protocol.js';

export interface SimFirmwareOptions {
  /** Version in the active slot. */
  readonly version: string;
  /** Slot booted from; default `'A'`. */
  readonly slot?: Slot;
  /** Version held by the other slot; default `null` (empty). */
  readonly otherVersion?: string | null;
}

/** A firmware transfer into the inactive slot (kept across reboots, as in flash). */
export interface SimTransferState {
  readonly transferId: string;
  readonly version: string;
  readonly size: number;
  readonly sha256: string;
  readonly slot: Slot;
  /** Bytes held contiguously from 0. */
  readonly held: number;
  readonly verified: boolean;
}

/** The host → device firmware messages. */
export type FwRequest =
  | FwBeginMessage
  | FwChunkMessage
  | FwVerifyMessage
  | FwApplyMessage
  | FwConfirmMessage
  | FwRollbackMessage;

/** The answer to one `fw.*` message, and the reboot to do once it went. */
export interface FwOutcome {
  readonly ack: FwAckMessage;
  readonly reboot?: 'fwApply' | 'fwRollback';
}

interface Transfer {
  readonly transferId: string;
  readonly version: string;
  readonly size: number;
  readonly sha256: string;
  readonly slot: Slot;
  /** From the last fw.begin of this transfer: no chunk may be longer. */
  chunkBytes: number;
  image: Uint8Array;
  held: number;
  verified: boolean;
}

interface Applied {
  readonly transferId: string;
  readonly slot: Slot;
  readonly previous: Slot;
  state: 'trial' | 'confirmed' | 'rolledBack' | 'reverted';
}

const otherSlot = (slot: Slot): Slot => (slot === 'A' ? 'B' : 'A');

function ack(transferId: string, step: FwStep, offset: number, error?: WireError): FwOutcome {
  return {
    ack:
      error === undefined
        ? { v: 1, type: 'fw.ack', transferId, step, offset }
        : { v: 1, type: 'fw.ack', transferId, step, offset, error },
  };
}

function unknownTransfer(transferId: string, step: FwStep): FwOutcome {
  return ack(transferId, step, 0, {
    code: 'unknownTransfer',
    message: `no transfer '${transferId}' on this device`,
  });
}

/** The slots, the transfer and the bootloader of one simulated device (see the file comment). */
export class SimFirmware {
  private readonly slots: { A: string | null; B: string | null };
  private active: Slot;
  private confirmed = true;
  private nextBoot: { slot: Slot; confirmed: boolean } | undefined;
  private transfer: Transfer | undefined;
  private applied: Applied | undefined;

  constructor(
    options: SimFirmwareOptions,
    private readonly maxImageBytes: number,
  ) {
    this.active = options.slot ?? 'A';
    this.slots = this.active === 'A' ? { A: options.version, B: null } : { A: null, B: options.version };
    this.slots[otherSlot(this.active)] = options.otherVersion ?? null;
  }

  /** What the device reports in hello. */
  get info(): FirmwareInfo {
    return {
      version: this.slots[this.active] ?? '0',
      slot: this.active,
      confirmed: this.confirmed,
      slots: { A: this.slots.A, B: this.slots.B },
    };
  }

  /** The transfer in progress, as a snapshot. */
  transferState(): SimTransferState | undefined {
    const t = this.transfer;
    return (
      t && {
        transferId: t.transferId,
        version: t.version,
        size: t.size,
        sha256: t.sha256,
        slot: t.slot,
        held: t.held,
        verified: t.verified,
      }
    );
  }

  /**
   * The bootloader, on the way back up from a reboot: the slot a fw.apply or fw.rollback chose,
   * or, for an image still on trial, the previous slot (if it holds one).
   */
  boot(): void {
    if (this.nextBoot) {
      this.active = this.nextBoot.slot;
      this.confirmed = this.nextBoot.confirmed;
      this.nextBoot = undefined;
    } else if (!this.confirmed) {
      const previous = this.applied?.previous ?? otherSlot(this.active);
      if (this.slots[previous] !== null) {
        this.active = previous;
        this.confirmed = true;
        if (this.applied?.state === 'trial') this.applied.state = 'reverted';
      }
    }
  }

  /** Answers one `fw.*` message. */
  handle(msg: FwRequest): FwOutcome {
    switch (msg.type) {
      case 'fw.begin':
        return this.begin(msg);
      case 'fw.chunk':
        return this.chunk(msg);
      case 'fw.verify':
        return this.verify(msg);
      case 'fw.apply':
        return this.apply(msg);
      case 'fw.confirm':
        return this.confirm(msg);
      case 'fw.rollback':
        return this.rollback(msg);
    }
  }

  private heldFor(transferId: string): number {
    return this.transfer?.transferId === transferId ? this.transfer.held : 0;
  }

  /** Starts a transfer (erasing the inactive slot), or resumes the same one where it stopped. */
  begin(msg: FwBeginMessage): FwOutcome {
    const { transferId, size, sha256, version, chunkBytes } = msg;
    if (size > this.maxImageBytes) {
      return ack(transferId, 'begin', 0, {
        code: 'tooLarge',
        message: `image of ${size} bytes does not fit the ${this.maxImageBytes}-byte slot`,
      });
    }
    const t = this.transfer;
    if (t && t.transferId === transferId && t.size === size && t.sha256 === sha256) {
      t.chunkBytes = chunkBytes;
      // The host tries a rolled-back image again: forget the rollback, so fw.apply applies it anew.
      const a = this.applied;
      if (a && a.transferId === transferId && (a.state === 'rolledBack' || a.state === 'reverted')) {
        this.applied = undefined;
      }
      return ack(transferId, 'begin', t.held); // resume
    }
    if (!this.confirmed) {
      return ack(transferId, 'begin', 0, {
        code: 'busy',
        message: `slot ${this.active} runs on trial; confirm or roll back first`,
      });
    }
    const slot = otherSlot(this.active);
    this.slots[slot] = null; // erasing the inactive slot
    this.transfer = {
      transferId,
      version,
      size,
      sha256,
      slot,
      chunkBytes,
      image: new Uint8Array(size),
      held: 0,
      verified: false,
    };
    return ack(transferId, 'begin', 0);
  }

  /** Writes the bytes that continue what the slot holds; the ack says where to go on. */
  chunk(msg: FwChunkMessage): FwOutcome {
    const t = this.transfer;
    if (!t || t.transferId !== msg.transferId) return unknownTransfer(msg.transferId, 'chunk');
    if (msg.data.length > t.chunkBytes) {
      return ack(t.transferId, 'chunk', t.held, {
        code: 'badChunk',
        message: `chunk of ${msg.data.length} bytes is longer than chunkBytes ${t.chunkBytes}`,
      });
    }
    const end = msg.offset + msg.data.length;
    if (end > t.size) {
      return ack(t.transferId, 'chunk', t.held, {
        code: 'badOffset',
        message: `chunk ends at byte ${end}, past the image size ${t.size}`,
      });
    }
    if (msg.offset <= t.held && end > t.held && t.slot !== this.active) {
      t.image.set(msg.data.subarray(t.held - msg.offset), t.held);
      t.held = end;
    }
    // A gap (offset past what we hold) is not written: the ack says where to go back to.
    return ack(t.transferId, 'chunk', t.held);
  }

  /** Checks the whole image against its sha256; a bad one is erased. */
  verify(msg: FwVerifyMessage): FwOutcome {
    const t = this.transfer;
    if (!t || t.transferId !== msg.transferId) return unknownTransfer(msg.transferId, 'verify');
    if (t.held < t.size) {
      return ack(t.transferId, 'verify', t.held, {
        code: 'incomplete',
        message: `slot ${t.slot} holds ${t.held} of ${t.size} bytes`,
      });
    }
    if (!t.verified) {
      const actual = createHash('sha256').update(t.image).digest('hex');
      if (actual !== t.sha256) {
        // A bad image is erased, so a resumed transfer starts again from 0.
        t.held = 0;
        t.image.fill(0);
        return ack(t.transferId, 'verify', 0, {
          code: 'hashMismatch',
          message: `sha256 of slot ${t.slot} is ${actual}, expected ${t.sha256}`,
        });
      }
      t.verified = true;
      this.slots[t.slot] = t.version;
    }
    return ack(t.transferId, 'verify', t.held);
  }

  /** Boots the verified slot next, on trial. */
  apply(msg: FwApplyMessage): FwOutcome {
    const { transferId } = msg;
    const a = this.applied;
    if (a && a.transferId === transferId) {
      if (a.state === 'trial' || a.state === 'confirmed') {
        return ack(transferId, 'apply', this.heldFor(transferId)); // a repeat
      }
      return ack(transferId, 'apply', this.heldFor(transferId), {
        code: 'rolledBack',
        message: `transfer '${transferId}' was rolled back to slot ${a.previous}`,
      });
    }
    const t = this.transfer;
    if (!t || t.transferId !== transferId) return unknownTransfer(transferId, 'apply');
    if (!t.verified) {
      return ack(transferId, 'apply', t.held, {
        code: 'notVerified',
        message: `slot ${t.slot} has not passed fw.verify`,
      });
    }
    this.applied = { transferId, slot: t.slot, previous: this.active, state: 'trial' };
    this.nextBoot = { slot: t.slot, confirmed: false };
    return { ...ack(transferId, 'apply', t.held), reboot: 'fwApply' };
  }

  /** Makes the image on trial permanent. */
  confirm(msg: FwConfirmMessage): FwOutcome {
    const { transferId } = msg;
    const a = this.applied;
    if (!a || a.transferId !== transferId) {
      if (this.transfer?.transferId === transferId) {
        return ack(transferId, 'confirm', this.transfer.held, {
          code: 'notApplied',
          message: `transfer '${transferId}' has not been applied; nothing runs on trial`,
        });
      }
      return unknownTransfer(transferId, 'confirm');
    }
    if (a.state === 'trial' && this.active === a.slot) {
      this.confirmed = true;
      a.state = 'confirmed';
    }
    if (a.state === 'confirmed') return ack(transferId, 'confirm', this.heldFor(transferId));
    return ack(transferId, 'confirm', this.heldFor(transferId), {
      code: 'rolledBack',
      message:
        a.state === 'reverted'
          ? `rebooted before confirm; back on slot ${a.previous}`
          : `transfer '${transferId}' was rolled back to slot ${a.previous}`,
    });
  }

  /** Boots the previous slot next, or abandons a transfer never applied. */
  rollback(msg: FwRollbackMessage): FwOutcome {
    const { transferId } = msg;
    const a = this.applied;
    if (a && a.transferId === transferId) {
      if (a.state === 'rolledBack' || a.state === 'reverted') {
        return ack(transferId, 'rollback', this.heldFor(transferId)); // a repeat
      }
      if (this.slots[a.previous] === null) {
        return ack(transferId, 'rollback', this.heldFor(transferId), {
          code: 'noImage',
          message: `slot ${a.previous} holds no image to go back to`,
        });
      }
      a.state = 'rolledBack';
      this.nextBoot = { slot: a.previous, confirmed: true };
      return { ...ack(transferId, 'rollback', this.heldFor(transferId)), reboot: 'fwRollback' };
    }
    if (this.transfer?.transferId === transferId) {
      this.transfer = undefined; // abandon a transfer that was never applied
      return ack(transferId, 'rollback', 0);
    }
    return unknownTransfer(transferId, 'rollback');
  }
}
