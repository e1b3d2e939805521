import { describe, expect, it } from 'vitest';
import { type CheckImageInput, checkImage, type ImageRefusal } from '../../src/firmware/check-image.js';
import { generateSigningKeyPair, parsePublicKey, type TrustedKey } from '../../src/firmware/keys.js';
import { describeImage, type SignedManifest, sha256Hex, signManifest } from '../../src/firmware/manifest.js';

const trusted = generateSigningKeyPair();
const stranger = generateSigningKeyPair();
const trustedKey = ((): TrustedKey => {
  const k = parsePublicKey(trusted.publicKeyPem, 'trusted.pub');
  if (!k.ok) throw new Error(k.error.message);
  return k.value;
})();
const image = new Uint8Array(4096).map((_, i) => (i * 7) % 256);
const kinds = new Map([
  ['fleetvisor.generic', { firmwareSlotBytes: 8192 }],
  ['homie.device', {}],
]);

function input(over: Partial<CheckImageInput> & { signed?: Partial<SignedManifest>; key?: string } = {}) {
  const signed = {
    ...describeImage(image, { version: '1.1.0', kinds: ['fleetvisor.generic'] }),
    ...over.signed,
  };
  return {
    manifest: JSON.stringify(signManifest(signed, over.key ?? trusted.privateKeyPem)),
    image,
    trustedKeys: new Map([[trustedKey.keyId, trustedKey]]),
    kinds,
    stored: [],
    allowDowngrade: false,
    ...over,
  } satisfies CheckImageInput;
}

function refusal(i: CheckImageInput): { code: ImageRefusal; message: string } {
  const r = checkImage(i);
  if (r.ok) throw new Error('expected a refusal');
  return r.error;
}

describe('checking an image before it is imported', () => {
  it('accepts a signed image whose bytes match its manifest, naming the signer', () => {
    const r = checkImage(input());
    expect(r).toMatchObject({
      ok: true,
      value: {
        manifest: { signed: { version: '1.1.0', sha256: sha256Hex(image) } },
        signer: { keyId: trusted.keyId },
        alreadyStored: false,
      },
    });
  });

  it('refuses an unsigned manifest', () => {
    const { signature: _, ...unsigned } = JSON.parse(input().manifest as string);
    expect(refusal({ ...input(), manifest: JSON.stringify(unsigned) }).code).toBe('unsigned');
  });

  it('refuses a signature by a key that is not trusted, naming its key id', () => {
    const e = refusal(input({ key: stranger.privateKeyPem }));
    expect(e.code).toBe('unknownKey');
    expect(e.message).toContain(stranger.keyId);
  });

  it('refuses a manifest changed after signing (bad signature)', () => {
    const m = JSON.parse(input().manifest as string);
    m.signed.kinds = ['fleetvisor.generic', 'homie.device'];
    expect(refusal({ ...input(), manifest: JSON.stringify(m) }).code).toBe('badSignature');
  });

  it('refuses a signature that is not the trusted key’s, under its key id', () => {
    const m = JSON.parse(input({ key: stranger.privateKeyPem }).manifest as string);
    m.signature.keyId = trusted.keyId;
    expect(refusal({ ...input(), manifest: JSON.stringify(m) }).code).toBe('badSignature');
  });

  it('refuses a truncated manifest file as badManifest', () => {
    const text = input().manifest as string;
    expect(refusal({ ...input(), manifest: text.slice(0, text.length - 10) }).code).toBe('badManifest');
  });

  it('refuses a truncated image', () => {
    const e = refusal({ ...input(), image: image.subarray(0, 4000) });
    expect(e.code).toBe('truncated');
    expect(e.message).toMatch(/4000.*4096/);
  });

  it('refuses an image longer than its manifest says (size mismatch)', () => {
    const longer = new Uint8Array(4097);
    longer.set(image);
    expect(refusal({ ...input(), image: longer }).code).toBe('sizeMismatch');
  });

  it('refuses bytes whose hash differs from the manifest', () => {
    const changed = image.slice();
    changed[100] = changed[100]! ^ 1;
    expect(refusal({ ...input(), image: changed }).code).toBe('hashMismatch');
  });

  it('refuses an unknown kind, naming the known ones', () => {
    const e = refusal(input({ signed: { kinds: ['toaster'] } }));
    expect(e.code).toBe('unknownKind');
    expect(e.message).toContain('fleetvisor.generic');
  });

  it('refuses a kind that takes no firmware', () => {
    expect(refusal(input({ signed: { kinds: ['homie.device'] } })).code).toBe('firmwareNotSupported');
  });

  it('refuses an image bigger than the kind’s slot, naming both sizes', () => {
    const e = refusal({ ...input(), kinds: new Map([['fleetvisor.generic', { firmwareSlotBytes: 4095 }]]) });
    expect(e.code).toBe('tooLarge');
    expect(e.message).toMatch(/4096.*4095/);
  });

  it('refuses the same version of a kind with different bytes', () => {
    const e = refusal({
      ...input(),
      stored: [{ sha256: 'a'.repeat(64), version: '1.1.0', kinds: ['fleetvisor.generic'] }],
    });
    expect(e.code).toBe('versionConflict');
  });

  it('takes the same image again as already stored (nothing new)', () => {
    const r = checkImage({
      ...input(),
      stored: [{ sha256: sha256Hex(image), version: '1.1.0', kinds: ['fleetvisor.generic'] }],
    });
    expect(r.ok && r.value.alreadyStored).toBe(true);
  });

  it('refuses the same bytes stored under another version', () => {
    const e = refusal({
      ...input(),
      stored: [{ sha256: sha256Hex(image), version: '1.0.9', kinds: ['fleetvisor.generic'] }],
    });
    expect(e.code).toBe('duplicateImage');
  });

  it('refuses a downgrade unless asked for, and names what it goes back from', () => {
    const stored = [{ sha256: 'b'.repeat(64), version: '1.2.0', kinds: ['fleetvisor.generic'] }];
    const e = refusal({ ...input(), stored });
    expect(e.code).toBe('downgrade');
    expect(e.message).toMatch(/1\.2\.0/);
    const r = checkImage({ ...input(), stored, allowDowngrade: true });
    expect(r.ok && r.value.downgradeFrom).toBe('1.2.0');
  });

  it('an older version of another kind is no downgrade', () => {
    const stored = [{ sha256: 'b'.repeat(64), version: '1.2.0', kinds: ['other.kind'] }];
    expect(checkImage({ ...input(), stored }).ok).toBe(true);
  });
});
