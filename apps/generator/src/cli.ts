#!/usr/bin/env node
/** `framepack`: generate videos, manage models (and, when the queue package is present, run jobs from a queue). */
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { realpathSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkComponents, framepackComponents, hubCacheDir, pullComponents } from '@framepack/hub';
import { encodePng } from '@framepack/video-io';
import { Queue, defaultQueuePath, registerQueueCommands } from '@framepack/queue';
import { GeneratorError } from './errors.js';
import { createJobRunner, validateJobParams, type QueueJobParams } from './queue-jobs.js';
import { HunyuanVideoGenerator } from './generator.js';
import { DEFAULTS, resolveParams, type GenerateParams } from './params.js';
import type { ProgressEvent } from './pipeline.js';
import { memoryPlanFor, summarizePlan } from './components.js';
import { fmtGiB, STREAM_WEIGHTS, type MemoryPlan } from './memory-plan.js';

/** `--stream-weights`: how the streamed DiT blocks are stored (only with --vram-budget). */
const streamWeightsOption = () =>
  new Option('--stream-weights <format>', 'with --vram-budget: store the streamed DiT blocks as bf16 (default), int8 or fp8 (e4m3, sm_89+) with per-row scales: half the bytes per forward, some quality cost').choices(
    [...STREAM_WEIGHTS],
  );

const number = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('not a number');
  return n;
};
const integer = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('not an integer');
  return n;
};

/** `path` or `path:weight` (the weight is the text after the last colon when it is a number). */
function collectLora(value: string, previous: { path: string; weight: number }[]) {
  const m = /^(.*):(-?\d+(?:\.\d+)?)$/.exec(value);
  return [...previous, m ? { path: m[1], weight: Number(m[2]) } : { path: value, weight: 1 }];
}

export function buildProgram(): Command {
  const program = new Command('framepack')
    .description('FramePack image-to-video (HunyuanVideo packed DiT) in Node')
    .showHelpAfterError();

  program
    .command('generate')
    .description('generate a video from an image (or from text alone) and a prompt')
    .option('-i, --image <path>', 'start image (PNG/JPEG); omit for text-to-video')
    .requiredOption('-p, --prompt <text>', 'what happens in the video; timestamped: "[0s: a cat sits] [2s: it stands up]" (see @framepack/prompt-blender)')
    .option('--prompt-blend <sections>', 'timestamped prompts: blend width at each change, in sections', integer, DEFAULTS.promptBlendSections)
    .option('-n, --negative-prompt <text>', 'negative prompt (used only when --cfg > 1)', DEFAULTS.negativePrompt)
    .option('-o, --out <path>', 'output MP4 (written as <name>.partial.mp4 until the job completes)', 'framepack.mp4')
    .option('--png-frames <dir>', 'also write the final frames as PNGs here (works without ffmpeg)')
    .option('--no-mp4', 'do not write an MP4 (use with --png-frames when ffmpeg is missing)')
    .option('-s, --seconds <n>', 'video length in seconds at 30 fps', number, DEFAULTS.seconds)
    .addOption(new Option('-m, --mode <mode>', 'original: inverted anti-drifting sections; f1: forward').choices(['original', 'f1']).default(DEFAULTS.mode))
    .option('--end-image <path>', 'end frame (original mode)')
    .option('--end-strength <x>', 'end-frame strength in (0, 1]', number, DEFAULTS.endStrength)
    .option('--steps <n>', 'denoising steps per section', integer, DEFAULTS.steps)
    .option('--gs <x>', 'distilled guidance scale', number, DEFAULTS.gs)
    .option('--cfg <x>', 'real CFG scale (1 = off, one model call per step)', number, DEFAULTS.cfg)
    .option('--rs <x>', 'CFG re-scale', number, DEFAULTS.rs)
    .option('--seed <n>', 'random seed', integer, DEFAULTS.seed)
    .option('--window <n>', 'latent frames per section', integer, DEFAULTS.window)
    .option('--resolution <n>', 'bucket resolution', integer, DEFAULTS.resolution)
    .option('--teacache [threshold]', 'skip steps with TeaCache (rel-L1 threshold)')
    .option('--magcache [threshold]', 'skip steps with MagCache (accumulated error threshold)')
    .option('--magcache-max-skips <n>', 'MagCache: most consecutive skipped steps', integer, DEFAULTS.magcacheMaxSkips)
    .option('--magcache-retention <x>', 'MagCache: fraction of first steps always computed', number, DEFAULTS.magcacheRetention)
    .option('--crf <n>', 'x264 CRF (0-51)', integer, DEFAULTS.crf)
    .addOption(new Option('--device <device>', 'compute device').choices(['cpu', 'cuda']).default('cpu'))
    .option('--vram-budget <GiB>', 'device-memory budget (CUDA): plans what stays resident, what streams, the VAE tiles; caps the allocator', number)
    .addOption(streamWeightsOption())
    .option('--preview <png>', 'keep writing a latent->RGB preview of the current step to this PNG')
    .option('--lora <path[:weight]>', 'merge a LoRA (diffusers/PEFT, kohya/musubi or original HunyuanVideo names); repeatable', collectLora, [])
    .option('--tiny', 'use the embedded tiny test models (fast, no download; the video is NOT meaningful)')
    .option('--save-latents <file>', 'also write the generated latents (f32) as safetensors (key `latents`), e.g. to compare runs')
    .option('--json', 'print progress and the result as JSON lines')
    .option('-v, --verbose', 'say more (the memory plan under --vram-budget)')
    .action(async (o) => {
      if (o.teacache && o.magcache) throw new GeneratorError('choose one of --teacache and --magcache', 'BAD_PARAMS');
      const params: Partial<GenerateParams> = {
        image: o.image, endImage: o.endImage, endStrength: o.endStrength, prompt: o.prompt, negativePrompt: o.negativePrompt,
        seconds: o.seconds, mode: o.mode, steps: o.steps, gs: o.gs, cfg: o.cfg, rs: o.rs, seed: o.seed, window: o.window,
        resolution: o.resolution, crf: o.crf, magcacheMaxSkips: o.magcacheMaxSkips, promptBlendSections: o.promptBlend, magcacheRetention: o.magcacheRetention,
        cache: o.teacache ? 'teacache' : o.magcache ? 'magcache' : 'none',
        ...(typeof o.teacache === 'string' ? { teacacheThreshold: number(o.teacache) } : {}),
        ...(typeof o.magcache === 'string' ? { magcacheThreshold: number(o.magcache) } : {}),
      };
      resolveParams(params); // bad parameters fail before any model is loaded
      const log = (line: string) => (o.json ? undefined : process.stderr.write(`${line}\n`));
      if (o.tiny) log('framepack: using the embedded tiny test models; the video is NOT meaningful (it only exercises the pipeline)');
      const gen = await HunyuanVideoGenerator.load({
        tiny: !!o.tiny, mode: o.mode, device: o.device, vramBudgetGiB: o.vramBudget, loras: o.lora, planFor: { resolution: o.resolution, window: o.window },
        ...(o.streamWeights !== undefined ? { streamWeights: o.streamWeights } : {}),
      });
      printPlan(gen.memoryPlan, { json: !!o.json, verbose: !!o.verbose, log });
      for (const l of (gen.models.loras ?? []) as { path: string; format: string; modules: number; unmatched: number }[]) {
        log(`framepack: LoRA ${l.path} (${l.format}): ${l.modules} module(s) merged${l.unmatched ? `, ${l.unmatched} key(s) unmatched` : ''}`);
      }
      const controller = new AbortController();
      const onSignal = () => {
        log('\nframepack: stopping after the current step (press Ctrl-C again to quit now)');
        if (controller.signal.aborted) process.exit(130);
        controller.abort();
      };
      process.on('SIGINT', onSignal);
      const bar = !o.json && process.stderr.isTTY
        ? new cliProgress.SingleBar({ format: '{bar} {percentage}% | section {section}/{sections} step {step}/{steps} | ETA {eta_formatted} | {stage}', stream: process.stderr }, cliProgress.Presets.shades_classic)
        : null;
      bar?.start(1000, 0, { section: 1, sections: '?', step: 0, steps: '?', stage: 'loading' });
      let lastLine = '';
      const onProgress = (e: ProgressEvent) => {
        if (e.preview && o.preview) {
          writeFileSync(o.preview, encodePng(e.preview.data, e.preview.width, e.preview.height));
        }
        const payload = { stage: e.stage, section: e.section + 1, sections: e.totalSections, step: e.step, steps: e.totalSteps };
        if (o.json) process.stdout.write(`${JSON.stringify({ event: 'progress', ...payload, fraction: e.fraction, message: e.message })}\n`);
        else if (bar) bar.update(Math.round(e.fraction * 1000), payload);
        else {
          const line = `${e.stage} section ${payload.section}/${payload.sections}${e.stage === 'sample' ? ` step ${e.step}/${e.totalSteps}` : ''}${e.message ? `: ${e.message}` : ''}`;
          if (e.stage !== 'sample' || e.step === e.totalSteps) if (line !== lastLine) log((lastLine = line));
        }
      };
      try {
        const result = await gen.generateToFiles(params, {
          out: o.mp4 === false ? undefined : o.out,
          pngFramesDir: o.pngFrames,
          signal: controller.signal,
          onProgress,
          previews: !!o.preview,
          saveLatents: o.saveLatents,
        });
        bar?.stop();
        if (o.json) process.stdout.write(`${JSON.stringify({ event: 'done', ...result })}\n`);
        else {
          if (result.promptTruncated) log('framepack: the prompt was longer than 256 LLaMA tokens and was truncated to its first 256');
          if (result.stepSkipping) log(`framepack: ${result.stepSkipping.text}`);
          log(`framepack: wrote ${result.files.join(', ')} (${result.frames} frames, ${result.width}x${result.height}, ${result.timings.total.toFixed(1)} s)`);
        }
      } finally {
        bar?.stop();
        process.off('SIGINT', onSignal);
        gen.dispose();
      }
    });

  const models = program.command('models').description('the model checkpoints in the Hugging Face cache');
  models
    .command('list')
    .description('show which model files are present and which are missing')
    .addOption(new Option('-m, --mode <mode>', 'which transformer').choices(['original', 'f1', 'all']).default('all'))
    .action((o) => {
      const comps = componentsFor(o.mode);
      process.stdout.write(`cache: ${hubCacheDir()}\n`);
      let missing = 0;
      for (const s of checkComponents(comps)) {
        const c = s.component;
        const state = s.missing.length ? `MISSING ${s.missing.join(', ')}` : `ok (${s.revision?.slice(0, 10)})`;
        if (s.missing.length) missing++;
        process.stdout.write(`${c.name.padEnd(18)} ${`${c.repo}/${c.subfolder}`.padEnd(58)} ${state}\n`);
      }
      process.stdout.write(missing ? `${missing} component(s) missing: run \`framepack models pull\`\n` : 'all components present\n');
    });
  models
    .command('pull')
    .description('download the needed files (only those) with @huggingface/hub; HF_TOKEN is honoured')
    .addOption(new Option('-m, --mode <mode>', 'which transformer').choices(['original', 'f1', 'all']).default('all'))
    .action(async (o) => {
      const files = await pullComponents(componentsFor(o.mode), {
        onFile: (p) => process.stderr.write(`[${p.index + 1}/${p.total}] ${p.file}\n`),
      });
      process.stdout.write(`${files.length} file(s) in ${hubCacheDir()}\n`);
    });
  models
    .command('plan')
    .description('show the low-VRAM memory plan for a budget (reads config.json and safetensors headers only, loads nothing)')
    .requiredOption('--vram-budget <GiB>', 'device-memory budget', number)
    .addOption(new Option('-m, --mode <mode>', 'which transformer').choices(['original', 'f1']).default('original'))
    .option('--resolution <n>', 'bucket resolution of the jobs', integer, DEFAULTS.resolution)
    .option('--window <n>', 'latent frames per section', integer, DEFAULTS.window)
    .addOption(new Option('--dtype <dtype>', 'compute dtype').choices(['bf16', 'f16', 'f32']).default('bf16'))
    .addOption(streamWeightsOption())
    .option('--tiny', 'plan for the embedded tiny test models')
    .option('--json', 'print the plan as one JSON line')
    .action((o) => {
      const plan = memoryPlanFor({ tiny: !!o.tiny, mode: o.mode, vramBudgetGiB: o.vramBudget, dtype: o.dtype, planFor: { resolution: o.resolution, window: o.window }, streamWeights: o.streamWeights });
      printPlan(plan, { json: !!o.json, verbose: true, log: (line) => process.stdout.write(`${line}\n`) });
      if (!plan.fits) throw new GeneratorError(`the models do not fit a ${o.vramBudget} GiB budget: ${plan.problem}`, 'OUT_OF_MEMORY');
    });
  registerQueueCommands<QueueJobParams>(program, {
    openQueue: () => Queue.open(defaultQueuePath()),
    runner: async () => createJobRunner(),
    validateParams: validateJobParams,
  });
  return program;
}

/** The memory plan: a JSON line with --json, its decisions and reasons with --verbose, one summary line otherwise. */
function printPlan(plan: MemoryPlan | null, o: { json: boolean; verbose: boolean; log: (line: string) => void }): void {
  if (!plan) return;
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ event: 'memory-plan', ...summarizePlan(plan) })}\n`);
    return;
  }
  const dit = plan.dit.mode === 'resident' ? 'DiT resident' : `DiT streamed (${plan.dit.weights8bit ? `${plan.dit.weights8bit}, ` : ''}${plan.dit.slots} slots, ${plan.dit.residentBlocks} blocks resident)`;
  const peak = Math.max(...plan.phases.map((p) => p.bytes));
  o.log(`framepack: memory plan for ${fmtGiB(plan.budgetBytes)}${plan.fits ? '' : ' (DOES NOT FIT)'}: ${dit}, VAE ${plan.vae.tileLabel}, estimated peak ${fmtGiB(peak)}`);
  if (!o.verbose) return;
  for (const r of plan.reasons) o.log(`  - ${r}`);
  for (const step of plan.order) o.log(`  > ${step}`);
}

function componentsFor(mode: 'original' | 'f1' | 'all') {
  if (mode !== 'all') return framepackComponents(mode);
  const all = [...framepackComponents('original'), ...framepackComponents('f1')];
  return all.filter((c, i) => all.findIndex((d) => d.repo === c.repo && d.subfolder === c.subfolder) === i);
}

export async function main(argv = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    const code = e instanceof GeneratorError ? e.code : undefined;
    process.stderr.write(`framepack: error${code ? ` [${code}]` : ''}: ${(e as Error).message}\n`);
    if (process.env.FRAMEPACK_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    process.exitCode = code === 'CANCELLED' ? 130 : 1;
  }
}

// Run only when this file is the entry point (not when imported, e.g. by tests).
const entry = process.argv[1] ? realpathSync(process.argv[1]) : '';
if (entry && entry === realpathSync(fileURLToPath(import.meta.url))) void main();
