import type { DType, HostArray } from './dtype.js';

export type DeviceType = 'cpu' | 'cuda';

/**
 * Device memory owned by a backend. Refcounted: views (reshape, outer-dim slices) share one storage;
 * the bytes are released when the last tensor referencing it is disposed (or garbage collected).
 */
export interface Storage {
  readonly device: DeviceType;
  readonly dtype: DType;
  readonly numel: number;
  /** Backend-private handle: a host typed array on the CPU, a native buffer on CUDA. */
  readonly handle: unknown;
}

/** What an op reads: contiguous elements [offset, offset + numel(shape)) of a storage. */
export interface View {
  readonly storage: Storage;
  readonly offset: number;
  readonly shape: readonly number[];
  readonly dtype: DType;
}

export type UnaryOp =
  | 'neg' | 'abs' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'square' | 'recip' | 'sin' | 'cos'
  | 'silu' | 'gelu_tanh' | 'gelu_erf' | 'quick_gelu' | 'sigmoid' | 'tanh' | 'relu';
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min' | 'pow';
export type CompareOp = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';
export type ReduceOp = 'sum' | 'mean' | 'max' | 'min' | 'argmax';
export type PadMode = 'constant' | 'replicate';
/** 'interleaved': pairs (2i, 2i+1) as HunyuanVideo/diffusers; 'half': rotate_half as LLaMA. */
export type RopeMode = 'interleaved' | 'half';

export interface AttentionParams {
  /** Bool mask broadcastable to (B, H, Lq, Lk); true = may attend (torch SDPA semantics). */
  mask?: View;
  causal?: boolean;
  scale: number;
}

/**
 * The one contract every device implements (CPU in TypeScript, CUDA in the native addon).
 * The frontend (`ops.ts`) validates shapes/dtypes and computes output shapes; backends may assume
 * valid, contiguous inputs and return fresh storages. Floating-point math accumulates in f32 or wider.
 */
export interface Backend {
  readonly device: DeviceType;
  /** Allocate `numel` elements, zero-filled. */
  zeros(numel: number, dtype: DType): Storage;
  fill(numel: number, dtype: DType, value: number): Storage;
  upload(data: HostArray, dtype: DType): Storage;
  download(v: View): HostArray;
  release(s: Storage): void;
  bytesOf(s: Storage): number;

  copy(v: View): Storage;
  cast(v: View, to: DType): Storage;
  unary(op: UnaryOp, v: View): Storage;
  /** Elementwise with numpy broadcasting of a and b to `outShape`. */
  binary(op: BinaryOp, a: View, b: View, outShape: readonly number[]): Storage;
  compare(op: CompareOp, a: View, b: View, outShape: readonly number[]): Storage;
  where(cond: View, a: View, b: View, outShape: readonly number[]): Storage;
  /** x * mul + add, computed in f32. */
  affine(v: View, mul: number, add: number): Storage;
  powScalar(v: View, p: number): Storage;
  clamp(v: View, lo: number, hi: number): Storage;
  /** Reduce along one axis (the axis is removed from the output shape). argmax returns i64. */
  reduce(op: ReduceOp, v: View, axis: number): Storage;
  /** Variance along one axis (correction 0 = population, 1 = unbiased). */
  variance(v: View, axis: number, correction: number): Storage;
  softmax(v: View): Storage;
  layerNorm(v: View, weight: View | null, bias: View | null, eps: number): Storage;
  rmsNorm(v: View, weight: View | null, eps: number): Storage;
  /** x (N, C, ...spatial) normalized over groups of C/groups channels and all spatial positions. */
  groupNorm(v: View, groups: number, weight: View | null, bias: View | null, eps: number): Storage;
  /** a (...batchA, M, K) @ b (...batchB, K, N) (or b (...batchB, N, K) with transB), batch dims broadcast to outBatch. */
  matmul(a: View, b: View, transB: boolean, outBatch: readonly number[]): Storage;
  /** x (..., K) @ w (N, K)^T + bias (N). */
  linear(x: View, w: View, bias: View | null): Storage;
  /** q (B, H, Lq, D), k/v (B, H, Lk, D|Dv) -> (B, H, Lq, Dv). */
  attention(q: View, k: View, v: View, p: AttentionParams): Storage;
  /**
   * Optional: attention on (B, L, H, D) operands read in place, output (B, L, H, Dv); null when this backend cannot serve
   * the request (ops.scaledDotProductAttentionBLHD then transposes and calls `attention`).
   */
  attentionBLHD?(q: View, k: View, v: View, p: AttentionParams): Storage | null;
  /** x (N, Cin, T, H, W), w (Cout, Cin, kT, kH, kW), zero padding. */
  conv3d(x: View, w: View, bias: View | null, stride: readonly number[], padding: readonly number[], outShape: readonly number[]): Storage;
  upsampleNearest(v: View, scale: readonly number[], outShape: readonly number[]): Storage;
  permute(v: View, dims: readonly number[], outShape: readonly number[]): Storage;
  concat(vs: readonly View[], axis: number, outShape: readonly number[]): Storage;
  slice(v: View, axis: number, start: number, step: number, outShape: readonly number[]): Storage;
  indexSelect(v: View, axis: number, index: View, outShape: readonly number[]): Storage;
  gather(v: View, axis: number, index: View): Storage;
  pad(v: View, pads: readonly (readonly [number, number])[], mode: PadMode, value: number, outShape: readonly number[]): Storage;
  /** In place: copy src into the box of dst that starts at `starts` (one per dim); src fits inside dst, same dtype. */
  writeRegion(dst: View, src: View, starts: readonly number[]): void;
  /**
   * In place: dst (rows*cols values, f32/f16/bf16) = decode(codes) * scales[row], the product in f32 then rounded
   * to dst's dtype; codes (rows, cols) u8 in the 8-bit format, scales (rows) f32 (see quant8-codec.ts).
   */
  dequantize8(dst: View, codes: View, scales: View, format: 'int8' | 'fp8', cols: number): void;
  /** out = x * cos + rotate(x) * sin, cos/sin broadcast to x's shape. */
  rope(x: View, cos: View, sin: View, mode: RopeMode, cosShape: readonly number[]): Storage;
}
