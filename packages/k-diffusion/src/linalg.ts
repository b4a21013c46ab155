// Tiny dense solves for the UniPC coefficients (k <= 3), in float32 like torch.linalg.solve on f32 inputs:
// LU with partial pivoting (LAPACK getrf: first largest pivot, column scaled by the pivot's reciprocal), then
// forward substitution with the unit lower factor and back substitution with the upper one.
import { SamplerOptionError } from './errors.js';
import { f } from './f32.js';

/** Solve A x = b for a small square float32 system (A given as rows). */
export function solveF32(A: readonly (readonly number[])[], b: readonly number[]): number[] {
  const n = b.length;
  if (A.length !== n || A.some((r) => r.length !== n)) throw new SamplerOptionError(`solve: matrix must be ${n}x${n}`);
  const a = A.map((r) => r.map(f));
  const y = b.map(f);
  for (let k = 0; k < n; k++) {
    let p = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(a[i][k]) > Math.abs(a[p][k])) p = i;
    if (a[p][k] === 0) throw new SamplerOptionError('solve: singular matrix (repeated sigmas?)');
    if (p !== k) {
      [a[p], a[k]] = [a[k], a[p]];
      [y[p], y[k]] = [y[k], y[p]];
    }
    const inv = f(1 / a[k][k]);
    for (let i = k + 1; i < n; i++) {
      const l = f(a[i][k] * inv);
      a[i][k] = l;
      for (let j = k + 1; j < n; j++) a[i][j] = f(a[i][j] - f(l * a[k][j]));
    }
  }
  for (let i = 0; i < n; i++) for (let k = 0; k < i; k++) y[i] = f(y[i] - f(a[i][k] * y[k]));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = i + 1; j < n; j++) y[i] = f(y[i] - f(a[i][j] * y[j]));
    y[i] = f(y[i] / a[i][i]);
  }
  return y;
}
