#!/usr/bin/env node
// Builds the CUDA addon (native/build/framepack_cuda.node) by calling nvcc directly: no node-gyp, no header
// download (node-api-headers + node-addon-api come from npm). Without nvcc it prints a note and exits 0, and
// tensor-core then offers the CPU backend only.
//   FRAMEPACK_CUDA_ARCHS  semicolon list of targets, default "90a;80-virtual": SASS for sm_90a (H100/H200, with the wgmma attention) plus
//                         compute_80 PTX that the driver JIT-compiles for any newer GPU (Ampere, Ada, Blackwell).
//                         Add "75" for Turing (RTX 20xx), "86"/"89"/"120" for native code on those cards.
//   NVCC / CUDA_HOME      where nvcc is; FRAMEPACK_SKIP_CUDA_BUILD=1 skips the build.
//   FRAMEPACK_REQUIRE_CUDA=1  a missing nvcc or a failed compile exits non-zero (default: a note, exit 0).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const out = join(here, 'build');
const target = join(out, 'framepack_cuda.node');
const note = (m) => console.error(`[tensor-core native] ${m}`);

if (process.env.FRAMEPACK_SKIP_CUDA_BUILD === '1') {
  note('FRAMEPACK_SKIP_CUDA_BUILD=1: not building the CUDA addon (CPU backend only)');
  process.exit(0);
}
function findNvcc() {
  const cands = [process.env.NVCC, process.env.CUDA_HOME && join(process.env.CUDA_HOME, 'bin/nvcc'), '/usr/local/cuda/bin/nvcc', '/usr/local/cuda-13.0/bin/nvcc'];
  for (const c of cands) if (c && existsSync(c)) return c;
  const w = spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' });
  return w.status === 0 && w.stdout.trim() ? w.stdout.trim() : null;
}
const nvcc = findNvcc();
if (!nvcc) {
  note('nvcc not found (set NVCC or CUDA_HOME to build the CUDA backend); tensor-core will use the CPU backend only');
  process.exit(process.env.FRAMEPACK_REQUIRE_CUDA === '1' ? 1 : 0);
}
const cudaHome = dirname(dirname(nvcc));
const require = createRequire(import.meta.url);
const napiInclude = join(dirname(require.resolve('node-api-headers/package.json')), 'include');
const addonInclude = dirname(require.resolve('node-addon-api/package.json'));

const archs = (process.env.FRAMEPACK_CUDA_ARCHS ?? '90a;80-virtual').split(/[;,\s]+/).filter(Boolean);
const gencode = archs.flatMap((a) => {
  const m = /^(\d+a?)(-virtual)?$/.exec(a);
  if (!m) throw new Error(`bad arch '${a}' in FRAMEPACK_CUDA_ARCHS (expected e.g. 90 or 80-virtual)`);
  return ['-gencode', m[2] ? `arch=compute_${m[1]},code=compute_${m[1]}` : `arch=compute_${m[1]},code=sm_${m[1]}`];
});
const common = ['-std=c++17', '-O3', '-Xcompiler', '-fPIC,-fvisibility=hidden', `-I${napiInclude}`, `-I${addonInclude}`, '-DNAPI_VERSION=8', '-DNAPI_CPP_EXCEPTIONS', `-DFRAMEPACK_CUDA_ARCHS="${archs.join(';')}"`];

const sources = readdirSync(src).filter((f) => /\.(cu|cpp)$/.test(f) && !f.endsWith('_abi_check.cpp'));
const headers = readdirSync(src).filter((f) => /\.(h|cuh)$/.test(f)).map((f) => join(src, f));
const newest = (files) => Math.max(...files.map((f) => statSync(f).mtimeMs));
mkdirSync(out, { recursive: true });
const hdrTime = Math.max(newest(headers), statSync(fileURLToPath(import.meta.url)).mtimeMs);

function run(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(nvcc, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`nvcc ${args.slice(-3).join(' ')} exited with ${code}`))));
  });
}
const t0 = Date.now();
const jobs = Math.max(1, Math.min(cpus().length, 8));
const queue = sources.map((f) => {
  const obj = join(out, f.replace(/\.(cu|cpp)$/, '.o'));
  const fresh = existsSync(obj) && statSync(obj).mtimeMs > Math.max(statSync(join(src, f)).mtimeMs, hdrTime);
  const args = f.endsWith('.cu') ? [...common, ...gencode, '-c', join(src, f), '-o', obj] : [...common, '-c', join(src, f), '-o', obj];
  return { f, obj, fresh, args };
});
const todo = queue.filter((q) => !q.fresh);
note(`nvcc ${nvcc}; targets ${archs.join(', ')}; compiling ${todo.length}/${queue.length} sources with ${jobs} jobs`);
try {
  let next = 0;
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      while (next < todo.length) await run(todo[next++].args);
    }),
  );
  if (todo.length || !existsSync(target)) await run(['-shared', '-o', target, ...queue.map((q) => q.obj), '-cudart', 'static', '-ldl', '-lpthread', '-lrt']);
  // Where the real cuBLASLt header exists, check that our own declarations match its ABI.
  if (existsSync(join(cudaHome, 'include/cublasLt.h'))) {
    await run([...common, '-c', join(src, 'cublaslt_abi_check.cpp'), '-o', join(out, 'cublaslt_abi_check.o')]);
    note('cuBLASLt declarations match the installed cublasLt.h');
  }
  // Likewise for cuDNN (the optional conv3d path), where cudnn.h is found ($CUDNN_INCLUDE or the toolkit's include/).
  const cudnnInc = [process.env.CUDNN_INCLUDE, join(cudaHome, 'include'), '/usr/include'].find((d) => d && existsSync(join(d, 'cudnn.h')));
  if (cudnnInc) {
    await run([...common, `-I${cudnnInc}`, '-c', join(src, 'cudnn_abi_check.cpp'), '-o', join(out, 'cudnn_abi_check.o')]);
    note(`cuDNN declarations match ${join(cudnnInc, 'cudnn.h')}`);
  }
} catch (e) {
  // a failed CUDA build must not break installs: tensor-core then runs CPU-only (FRAMEPACK_REQUIRE_CUDA=1 makes it fatal)
  note(`build FAILED: ${e.message}; tensor-core will offer the CPU backend only`);
  process.exit(process.env.FRAMEPACK_REQUIRE_CUDA === '1' ? 1 : 0);
}
note(`built ${target} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
