import { describe, expect, it } from 'vitest';
import { announcedChunkBytes, fwChunkCapability } from '../../src/transports/fw-chunk-size.js';

describe('the fw.chunk.N capability', () => {
  it.each([
    [['fw', 'fw.binary', 'fw.chunk.8192'], 8192],
    [['fw.chunk.512'], 512],
    [['fw.chunk.1'], 1],
    [['fw'], undefined],
    [[], undefined],
    // Malformed or out of range: ignored, the host's default applies.
    [['fw.chunk.0'], undefined],
    [['fw.chunk.8193'], undefined],
    [['fw.chunk.65536'], undefined],
    [['fw.chunk.04096'], undefined],
    [['fw.chunk.4k'], undefined],
    [['fw.chunk.'], undefined],
    [['fw.chunk.-1'], undefined],
    [['fw.chunks.4096'], undefined],
    // The first well-formed one counts.
    [['fw.chunk.x', 'fw.chunk.2048', 'fw.chunk.8192'], 2048],
  ])('%j → %s', (capabilities, bytes) => {
    expect(announcedChunkBytes(capabilities)).toBe(bytes);
  });

  it('names a size in range, and refuses one outside it', () => {
    expect(fwChunkCapability(8192)).toBe('fw.chunk.8192');
    expect(announcedChunkBytes([fwChunkCapability(1024)])).toBe(1024);
    expect(() => fwChunkCapability(0)).toThrow(RangeError);
    expect(() => fwChunkCapability(8193)).toThrow(/1…8192/);
    expect(() => fwChunkCapability(1.5)).toThrow(RangeError);
  });
});
