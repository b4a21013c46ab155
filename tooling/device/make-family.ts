// Writes the full-size random-weights family (apps/generator/src/full-family.ts) into a Hugging Face home, for
// `framepack generate` with HF_HOME pointing at it. One JSON line on stdout when done.
//   node make-family.mjs --hf-home /tmp/hf [--scale full|small] [--threads N] [--llama-tokenizer dir] [--headers-only]
import { writeFullSizeFamily, type FamilyScale } from '../../apps/generator/src/full-family.js';

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const hfHome = opt('hf-home');
if (!hfHome) throw new Error('--hf-home <dir> is required');
const scale = (opt('scale') ?? 'full') as FamilyScale;
if (scale !== 'full' && scale !== 'small') throw new Error(`--scale must be full or small, got ${scale}`);
let last = 0;
const r = await writeFullSizeFamily({
  hfHome, scale, threads: opt('threads') ? Number(opt('threads')) : undefined, llamaTokenizerDir: opt('llama-tokenizer'),
  headersOnly: args.includes('--headers-only'),
  onProgress: (done, total) => {
    const now = performance.now();
    if (now - last > 5000) {
      last = now;
      process.stderr.write(`[make-family] ${((100 * done) / total).toFixed(1)}% of ${(total / 1e9).toFixed(2)}e9 values\n`);
    }
  },
});
const gb = r.bytes / 1e9;
process.stdout.write(`${JSON.stringify({ what: 'family', scale, revision: r.revision, gb: Number(gb.toFixed(3)), seconds: Number(r.seconds.toFixed(2)), gb_per_s: Number((gb / r.seconds).toFixed(2)), parameters: r.parameters, files: r.files.length })}\n`);
