import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSafetensors } from '@framepack/safetensors';
import { clipTextShapes, ditShapes, llamaShapes, siglipVisionShapes, vaeShapes, type ShapeMap } from '../src/tiny/shapes.js';

const golden = process.env.FRAMEPACK_GOLDEN_DIR ?? resolve(__dirname, '../../../../shared/golden');

function headerShapes(caseName: string): ShapeMap {
  const f = openSafetensors(join(golden, caseName, 'weights.safetensors'));
  try {
    return new Map(f.keys().map((k) => [k, [...f.info(k).shape]]));
  } finally {
    f.close();
  }
}
const config = (caseName: string) => JSON.parse(readFileSync(join(golden, caseName, 'case.json'), 'utf8')).config;
const sorted = (m: ShapeMap) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1));

// The reference's own checkpoints (written by PyTorch from these configs) pin every name and shape.
describe.skipIf(!existsSync(golden))('architecture shape maps match the reference checkpoints', () => {
  it('packed DiT', () => expect(sorted(ditShapes(config('dit-packed-forward')))).toEqual(sorted(headerShapes('dit-packed-forward'))));
  it('VAE', () => expect(sorted(vaeShapes(config('vae-hunyuan')))).toEqual(sorted(headerShapes('vae-hunyuan'))));
  it('LLaMA', () => expect(sorted(llamaShapes(config('text-llama')))).toEqual(sorted(headerShapes('text-llama'))));
  it('CLIP text', () => expect(sorted(clipTextShapes(config('text-clip-l'), ''))).toEqual(sorted(headerShapes('text-clip-l'))));
  it('SigLIP vision', () => expect(sorted(siglipVisionShapes(config('vision-siglip'), ''))).toEqual(sorted(headerShapes('vision-siglip'))));
});
