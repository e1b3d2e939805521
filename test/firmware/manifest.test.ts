import { describe, expect, it } from 'vitest';
import { generateSigningKeyPair, parsePublicKey } from '../../src/firmware/keys.js';
import {
  canonicalJson,
  describeImage,
  MANIFEST_FORMAT,
  parseManifest,
  signManifest,
  verifyManifestSignature,
} from '../../src/firmware/manifest.js';

const image = new Uint8Array(1000).map((_, i) => i % 251);

describe('canonical JSON', () => {
  it('sorts keys at every depth and leaves out whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, 'x'], c: null } })).toBe('{"a":{"c":null,"d":[2,"x"]},"b":1}');
  });
});

describe('the image manifest', () => {
  it('describes an image: size and SHA-256 of its bytes', () => {
    const signed = describeImage(image, { version: '1.1.0', kinds: ['fleetvisor.generic'] });
    expect(signed).toEqual({
      format: MANIFEST_FORMAT,
      version: '1.1.0',
      kinds: ['fleetvisor.generic'],
      size: 1000,
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  it('is signed with ed25519 over its canonical form and verifies with the public key', () => {
    const keys = generateSigningKeyPair();
    const manifest = signManifest(
      describeImage(image, { version: '1.1.0', kinds: ['fleetvisor.generic'], hardwareRevision: 'B' }),
      keys.privateKeyPem,
    );
    expect(manifest.signature?.keyId).toBe(keys.keyId);
    const parsed = parseManifest(JSON.stringify(manifest, null, 2));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const key = parsePublicKey(keys.publicKeyPem, 'test');
    if (!key.ok) throw new Error(key.error.message);
    expect(verifyManifestSignature(parsed.value, key.value)).toBe(true);
    const tampered = { ...parsed.value, signed: { ...parsed.value.signed, version: '9.9.9' } };
    expect(verifyManifestSignature(tampered, key.value)).toBe(false);
  });

  it.each([
    ['not JSON', '{"signed":', /JSON/],
    ['no signed part', '{}', /signed/],
    ['another format', JSON.stringify({ signed: { format: 'x/9' } }), /format/],
    [
      'a size that is not an integer',
      JSON.stringify({
        signed: {
          format: MANIFEST_FORMAT,
          version: '1.0.0',
          kinds: ['k'],
          size: 1.5,
          sha256: 'a'.repeat(64),
        },
      }),
      /size/,
    ],
    [
      'a bad hash',
      JSON.stringify({
        signed: { format: MANIFEST_FORMAT, version: '1.0.0', kinds: ['k'], size: 1, sha256: 'xyz' },
      }),
      /sha256/,
    ],
    [
      'no kinds',
      JSON.stringify({
        signed: { format: MANIFEST_FORMAT, version: '1.0.0', kinds: [], size: 1, sha256: 'a'.repeat(64) },
      }),
      /kinds/,
    ],
    [
      'a bad version',
      JSON.stringify({
        signed: { format: MANIFEST_FORMAT, version: 'latest', kinds: ['k'], size: 1, sha256: 'a'.repeat(64) },
      }),
      /version/,
    ],
    [
      'an unknown field',
      JSON.stringify({
        signed: {
          format: MANIFEST_FORMAT,
          version: '1.0.0',
          kinds: ['k'],
          size: 1,
          sha256: 'a'.repeat(64),
          x: 1,
        },
      }),
      /signed\.x/,
    ],
    [
      'a malformed signature',
      JSON.stringify({
        signed: { format: MANIFEST_FORMAT, version: '1.0.0', kinds: ['k'], size: 1, sha256: 'a'.repeat(64) },
        signature: { keyId: 'k' },
      }),
      /signature/,
    ],
  ])('a manifest with %s is refused as badManifest, naming the field', (_name, text, field) => {
    const r = parseManifest(text);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('badManifest');
      expect(r.error.message).toMatch(field);
    }
  });

  it('may declare the soak of its rollouts, covered by the signature', () => {
    const keys = generateSigningKeyPair();
    const signed = describeImage(image, {
      version: '1.1.0',
      kinds: ['fleetvisor.generic'],
      soakSeconds: 600,
    });
    expect(signed.soakSeconds).toBe(600);
    const parsed = parseManifest(JSON.stringify(signManifest(signed, keys.privateKeyPem)));
    if (!parsed.ok) throw new Error(parsed.error.message);
    expect(parsed.value.signed.soakSeconds).toBe(600);
    const key = parsePublicKey(keys.publicKeyPem, 'test');
    if (!key.ok) throw new Error(key.error.message);
    expect(verifyManifestSignature(parsed.value, key.value)).toBe(true);
    const shorter = { ...parsed.value, signed: { ...parsed.value.signed, soakSeconds: 0 } };
    expect(verifyManifestSignature(shorter, key.value)).toBe(false);
  });

  it.each([-1, 1.5, 86_401, '600', null])(
    'a soakSeconds of %j is refused as badManifest, naming it',
    (soak) => {
      const r = parseManifest(
        JSON.stringify({
          signed: {
            format: MANIFEST_FORMAT,
            version: '1.0.0',
            kinds: ['k'],
            size: 1,
            sha256: 'a'.repeat(64),
            soakSeconds: soak,
          },
        }),
      );
      expect(r).toMatchObject({ ok: false, error: { code: 'badManifest' } });
      if (!r.ok)
        expect(r.error.message).toContain('signed.soakSeconds must be whole seconds from 0 to 86400');
    },
  );

  it('a manifest without a signature parses (the import refuses it as unsigned)', () => {
    const r = parseManifest(
      JSON.stringify({ signed: describeImage(image, { version: '1.0.0', kinds: ['k'] }) }),
    );
    expect(r.ok && r.value.signature).toBe(undefined);
  });
});
