// Helpers of tooling/device/pipeline-8g.sh (bundled to .device/pipeline/pipeline-tools.mjs by prepare-pipeline.sh):
//   image <path> <size>          write a size x size RGB test image (a smooth pattern, so the nearest bucket is square)
//   summary <dir> <run>...       one JSON line per run from its logs in <dir> (<run>.jsonl: the CLI's --json lines,
//                                <run>.stderr: /usr/bin/time -v, <run>.smi.log: nvidia-smi samples, <run>.rc), plus
//                                the rel-L2 of each run's saved latents (<run>.latents.safetensors) against the first run's
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint } from '@framepack/safetensors';
import { encodePng } from '@framepack/video-io';
import { relL2 } from '../golden/src/compare.js';

const [cmd, ...args] = process.argv.slice(2);

if (cmd === 'image') {
  const [path, sizeArg] = args;
  const size = Number(sizeArg ?? 640);
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = 3 * (y * size + x);
      const u = x / size, v = y / size;
      data[i] = Math.round(255 * (0.5 + 0.5 * Math.sin(6 * u + 2 * v)));
      data[i + 1] = Math.round(255 * (0.5 + 0.5 * Math.cos(5 * v - 3 * u)));
      data[i + 2] = Math.round(255 * u * v);
    }
  }
  writeFileSync(path, encodePng(data, size, size));
} else if (cmd === 'summary') {
  const [dir, ...runs] = args;
  const lines: Record<string, unknown>[] = [];
  let reference: Float32Array | null = null;
  for (const run of runs) {
    const line = summarize(dir, run);
    const latents = join(dir, `${run}.latents.safetensors`);
    const values = existsSync(latents) ? readLatents(latents) : null;
    if (values && !reference) reference = values;
    else if (values && reference) line.latents_rel_l2_vs_first = values.length === reference.length ? relL2(values, reference) : null;
    if (values) line.latents_non_finite = values.reduce((n, x) => n + (Number.isFinite(x) ? 0 : 1), 0);
    lines.push(line);
  }
  const text = lines.map((l) => JSON.stringify(l)).join('\n');
  writeFileSync(join(dir, 'summary.jsonl'), `${text}\n`);
  process.stdout.write(`${text}\n`);
} else {
  throw new Error(`usage: pipeline-tools image <path> <size> | summary <dir> <run>...`);
}

function summarize(dir: string, run: string): Record<string, unknown> {
  const read = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : '');
  // lines are "<epoch ms> <json>" (pipeline-8g.sh stamps them)
  const stamped = read(`${run}.jsonl`)
    .split('\n')
    .map((l) => /^(\d+) (\{.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ ms: Number(m[1]), e: JSON.parse(m[2]) as Record<string, unknown> }));
  const events = stamped.map((x) => x.e);
  const last = stamped.at(-1);
  const done = events.find((e) => e.event === 'done');
  const plan = events.find((e) => e.event === 'memory-plan');
  const stderr = read(`${run}.stderr`);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)/.exec(stderr);
  const smi = read(`${run}.smi.log`)
    .split('\n')
    .map((l) => Number(l.split(' ')[1]))
    .filter((x) => Number.isFinite(x));
  const rc = read(`${run}.rc`).trim();
  const error = stderr.split('\n').find((l) => l.startsWith('framepack: error'));
  // a failed job's sidecar still has the finished stages' times and peaks
  const sidecarText = read(`${run}.sidecar.json`);
  const sidecar = sidecarText ? (JSON.parse(sidecarText) as Record<string, unknown>) : null;
  return {
    what: 'pipeline', run, rc: rc === '' ? null : Number(rc), ok: !!done, ...(error ? { error } : {}),
    ...(!done && last ? { last_event: last.e, last_event_s_after_first: (last.ms - stamped[0].ms) / 1000 } : {}),
    ...(!done && sidecar ? { partial_timings_s: sidecar.timings, partial_memory: sidecar.memory } : {}),
    ...(done ? { width: done.width, height: done.height, frames: done.frames, sections: done.sections, timings_s: done.timings, memory: done.memory } : {}),
    host_max_rss_gib: rss ? Number((Number(rss[1]) / 2 ** 20).toFixed(3)) : null,
    wall: wall ? wall[1] : null,
    smi_peak_gib: smi.length ? Number((Math.max(...smi) / 1024).toFixed(3)) : null,
    smi_baseline_gib: smi.length ? Number((smi[0] / 1024).toFixed(3)) : null,
    smi_samples: smi.length,
    ...(plan ? { plan: { dit: plan.dit, llama: plan.llama, clip: plan.clip, siglip: plan.siglip, vae: plan.vae, allocatorBudgetGiB: plan.allocatorBudgetGiB, phasesGiB: plan.phasesGiB, hostPhasesGiB: plan.hostPhasesGiB } } : {}),
  };
}

function readLatents(path: string): Float32Array {
  const ckpt = openCheckpoint(path);
  try {
    const t = ckpt.tensor('latents', { dtype: 'f32' });
    const v = t.toHost() as Float32Array;
    t.dispose();
    return v;
  } finally {
    ckpt.close();
  }
}

