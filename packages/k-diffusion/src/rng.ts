// A seed-compatible copy of torch.Generator('cpu') and torch.randn's CPU float32 algorithm, so a seed gives the
// same initial noise as the reference (FramePack seeds one CPU generator per job and shares it by all sections).
import * as T from '@framepack/tensor-core';
import { RngError } from './errors.js';
import { bitsToF32, f, f32Bits, fmaf } from './f32.js';

const N = 624;
const M = 397;

/** The 32-bit Mersenne Twister with torch's seeding (init_genrand with the low 32 bits of the seed). */
class MT19937 {
  readonly state = new Uint32Array(N);
  index = N;

  seed(s: number): void {
    const st = this.state;
    st[0] = s >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = st[i - 1];
      st[i] = (Math.imul(1812433253, prev ^ (prev >>> 30)) + i) >>> 0;
    }
    this.index = N;
  }

  private twist(): void {
    const st = this.state;
    for (let i = 0; i < N; i++) {
      const y = (st[i] & 0x80000000) | (st[(i + 1) % N] & 0x7fffffff);
      st[i] = st[(i + M) % N] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.index = 0;
  }

  next(): number {
    if (this.index >= N) this.twist();
    let y = this.state[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }
}

/**
 * Which of torch's CPU kernels turns uniforms into normals for float tensors of 16+ elements:
 * 'avx2' (torch's x86 builds with AVX2/AVX-512, i.e. almost every Linux/Windows PC) uses Cephes polynomials
 * compiled with FMA contraction; 'scalar' (the DEFAULT dispatch, non-x86 builds) uses libm logf/cosf/sinf.
 * The two differ in the last bits.
 */
export type RandnKernel = 'avx2' | 'scalar';

export interface GeneratorState {
  mt: Uint32Array;
  index: number;
  seed: bigint;
  nextDoubleNormal: number | null;
}

/** The low 32 bits torch seeds its engine with; negative seeds wrap as in torch.Generator.manual_seed. */
function seedLow32(seed: number | bigint): { seed: bigint; low: number } {
  let s: bigint;
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed)) throw new RngError(`seed must be an integer (got ${seed}); pass a bigint for seeds beyond 2^53`);
    s = BigInt(seed);
  } else s = seed;
  if (s < -(1n << 63n) || s > (1n << 64n) - 1n) throw new RngError(`seed ${s} is outside torch's range [-2^63, 2^64 - 1]`);
  if (s < 0n) s = 0xffffffffffffffffn + s;
  return { seed: s, low: Number(s & 0xffffffffn) };
}

/** torch.Generator('cpu'): `new TorchGenerator(seed)` is `torch.Generator('cpu').manual_seed(seed)`. */
export class TorchGenerator {
  readonly #mt = new MT19937();
  #seed = 0n;
  /** torch's cached second Box-Muller normal of the element-wise (numel < 16) path. */
  #nextDoubleNormal: number | null = null;
  readonly kernel: RandnKernel;

  constructor(seed: number | bigint = 67280421310721n, opts: { kernel?: RandnKernel } = {}) {
    this.kernel = opts.kernel ?? 'avx2';
    if (this.kernel !== 'avx2' && this.kernel !== 'scalar') throw new RngError(`unknown randn kernel '${this.kernel}' (expected 'avx2' or 'scalar')`);
    this.manualSeed(seed);
  }

  /** Reseed (also drops the cached normal, as torch does). Returns this generator. */
  manualSeed(seed: number | bigint): this {
    const s = seedLow32(seed);
    this.#seed = s.seed;
    this.#mt.seed(s.low);
    this.#nextDoubleNormal = null;
    return this;
  }
  initialSeed(): bigint {
    return this.#seed;
  }

  /** One 32-bit draw (torch's `random()`). */
  random(): number {
    return this.#mt.next();
  }
  /** Two draws, the first as the high word (torch's `random64()`), as a bigint. */
  random64(): bigint {
    const hi = this.#mt.next();
    const lo = this.#mt.next();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }
  /** uniform_real_distribution<float>(0, 1): 24 random bits. */
  uniformF32(): number {
    return (this.#mt.next() & 0xffffff) * 2 ** -24;
  }
  /** uniform_real_distribution<double>(0, 1): 53 bits of random64(). */
  uniformF64(): number {
    const hi = this.#mt.next();
    const lo = this.#mt.next();
    return ((hi & 0x1fffff) * 2 ** 32 + lo) * 2 ** -53;
  }

  /** normal_distribution<double>(0, 1): Box-Muller with the second value cached in the generator. */
  normalF64(): number {
    if (this.#nextDoubleNormal !== null) {
      const v = this.#nextDoubleNormal;
      this.#nextDoubleNormal = null;
      return v;
    }
    const u1 = this.uniformF64();
    const u2 = this.uniformF64();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.#nextDoubleNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Fill `out` like torch.randn(out.length, generator=this) for a contiguous float32 tensor. */
  fillNormal(out: Float32Array): Float32Array {
    const n = out.length;
    if (n < 16) {
      // element-wise path: one double normal per element, narrowed to float
      for (let i = 0; i < n; i++) out[i] = this.normalF64();
      return out;
    }
    const fill16 = this.kernel === 'avx2' ? normal16Avx2 : normal16Scalar;
    for (let i = 0; i < n; i++) out[i] = this.uniformF32();
    for (let i = 0; i + 16 <= n; i += 16) fill16(out, i);
    if (n % 16 !== 0) {
      // torch redraws the last 16 positions and transforms them again
      for (let i = n - 16; i < n; i++) out[i] = this.uniformF32();
      fill16(out, n - 16);
    }
    return out;
  }

  /** A snapshot to resume the same stream later (e.g. after a crash between sections). */
  getState(): GeneratorState {
    return { mt: this.#mt.state.slice(), index: this.#mt.index, seed: this.#seed, nextDoubleNormal: this.#nextDoubleNormal };
  }
  setState(s: GeneratorState): this {
    if (!(s.mt instanceof Uint32Array) || s.mt.length !== N || !(s.index >= 0 && s.index <= N)) throw new RngError('invalid generator state');
    this.#mt.state.set(s.mt);
    this.#mt.index = s.index;
    this.#seed = s.seed;
    this.#nextDoubleNormal = s.nextDoubleNormal;
    return this;
  }
  clone(): TorchGenerator {
    return new TorchGenerator(0, { kernel: this.kernel }).setState(this.getState());
  }
}

/** torch.randn(shape, generator=gen) as an f32 tensor (created on the CPU, then moved to `device`). */
export function randn(shape: readonly number[], gen: TorchGenerator, opts: { device?: T.DeviceType } = {}): T.Tensor {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RngError(`randn: invalid shape [${shape}]`);
    n *= d;
  }
  const host = gen.fillNormal(new Float32Array(n));
  const t = T.fromHost(host, shape, 'f32', 'cpu');
  if (!opts.device || opts.device === 'cpu') return t;
  const moved = T.toDevice(t, opts.device);
  t.dispose();
  return moved;
}

// ---- torch's Box-Muller kernels for 16 floats: pairs (j, j + 8), u1 = 1 - d[j] feeds the log ----

const TWO_PI_F = f(2 * Math.PI);

function normal16Scalar(d: Float32Array, o: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = f(1 - d[o + j]);
    const u2 = d[o + j + 8];
    const radius = f(Math.sqrt(f(-2 * f(Math.log(u1)))));
    const theta = f(2 * Math.PI * u2); // computed in double, stored as float
    d[o + j] = f(radius * f(Math.cos(theta)));
    d[o + j + 8] = f(radius * f(Math.sin(theta)));
  }
}

function normal16Avx2(d: Float32Array, o: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = f(1 - d[o + j]);
    const u2 = d[o + j + 8];
    const radius = f(Math.sqrt(f(-2 * cephesLog(u1))));
    const theta = f(TWO_PI_F * u2);
    cephesSincos(theta);
    d[o + j] = f(radius * sincosOut[1]);
    d[o + j + 8] = f(radius * sincosOut[0]);
  }
}

// Cephes single-precision constants (as used by avx_mathfun's log256_ps / sincos256_ps), rounded to f32.
const MIN_NORM_POS = bitsToF32(0x00800000);
const SQRTHF = f(0.707106781186547524);
const LOG_P = [7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1].map(f);
const LOG_Q1 = f(-2.12194440e-4);
const LOG_Q2 = f(0.693359375);

/**
 * One lane of log256_ps. The vector code is written as separate mul/add intrinsics, but GCC contracts each
 * multiply whose only use is an add into an FMA (torch's AVX2 objects are built with -mfma and GCC's default
 * -ffp-contract=fast), so those pairs round once here.
 */
function cephesLog(x0: number): number {
  if (!(x0 > 0)) return NaN; // the kernel ORs an all-ones mask into non-positive inputs
  let x = Math.max(x0, MIN_NORM_POS);
  const bits = f32Bits(x);
  let e = f((bits >>> 23) - 127 + 1);
  x = bitsToF32((bits & ~0x7f800000) | 0x3f000000); // mantissa scaled into [0.5, 1)
  if (x < SQRTHF) {
    e = f(e - 1);
    x = f(f(x - 1) + x);
  } else x = f(x - 1);
  const z = f(x * x);
  let y = LOG_P[0];
  for (let k = 1; k < LOG_P.length; k++) y = fmaf(y, x, LOG_P[k]);
  y = f(y * x);
  y = fmaf(y, z, f(e * LOG_Q1)); // y*z fused into "+ e*q1"
  y = f(y - f(z * 0.5)); // z*0.5 is exact, so fused or not is the same
  return fmaf(e, LOG_Q2, f(x + y));
}

const FOPI = f(1.27323954473516);
const DP1 = f(-0.78515625);
const DP2 = f(-2.4187564849853515625e-4);
const DP3 = f(-3.77489497744594108e-8);
const SIN_P = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(f);
const COS_P = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(f);
const sincosOut = new Float64Array(2); // [sin, cos]

/** One lane of sincos256_ps (Cephes range reduction by pi/4 in three parts), with the same FMA contraction. */
function cephesSincos(theta: number): void {
  let signSin = theta < 0 || Object.is(theta, -0);
  let x = Math.abs(theta);
  let q = Math.trunc(f(x * FOPI)) | 0; // cvttps
  q = (q + 1) & ~1;
  const y = f(q);
  if (q & 4) signSin = !signSin;
  const polySin = (q & 2) === 0; // sin uses the sine polynomial when true
  const signCos = ((~(q - 2)) & 4) !== 0;
  x = fmaf(y, DP1, x);
  x = fmaf(y, DP2, x);
  x = fmaf(y, DP3, x);
  const z = f(x * x);
  let yc = fmaf(COS_P[0], z, COS_P[1]);
  yc = fmaf(yc, z, COS_P[2]);
  yc = f(yc * z);
  yc = fmaf(yc, z, -f(z * 0.5));
  yc = f(yc + 1);
  let ys = fmaf(SIN_P[0], z, SIN_P[1]);
  ys = fmaf(ys, z, SIN_P[2]);
  ys = f(ys * z);
  ys = fmaf(ys, x, x);
  const s = polySin ? ys : yc;
  const c = polySin ? yc : ys;
  sincosOut[0] = signSin ? -s : s;
  sincosOut[1] = signCos ? -c : c;
}
