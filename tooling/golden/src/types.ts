import type { DeviceType, DType } from '@framepack/tensor-core';
import type { SafetensorsFile } from '@framepack/safetensors';

export type Metric = 'max_rel_l2' | 'max_abs';

export interface Tolerance {
  metric: Metric;
  limit: number;
}

/** One case folder, as a kind's run() sees it. */
export interface GoldenCase {
  dir: string;
  /** Folder name. */
  name: string;
  /** Parsed case.json. */
  json: Record<string, any>;
  /** tensors.safetensors of this case (opened on first use). */
  readonly tensors: SafetensorsFile;
  /** This case's weights.safetensors, or the one of the case named by `json[key]` (default key 'weights_from'). */
  weightsPath(key?: string): string;
  /** Device and storage dtype the numeric code should run on (cpu/f32 by default). */
  device: DeviceType;
  dtype: DType;
  /** The case's tolerance, adjusted for the device dtype (see compare.ts). */
  tolerance: Tolerance;
}

export interface CaseResult {
  metric: Metric;
  /** The worst error over every compared output. */
  value: number;
  pass: boolean;
  /** Error per output name, for debugging. */
  details?: Record<string, number>;
  /** Extra facts worth printing (e.g. skipped steps). */
  note?: string;
}

export interface GoldenKind {
  /** The `kind` value in case.json this handles. */
  name: string;
  run(c: GoldenCase): Promise<CaseResult>;
}
