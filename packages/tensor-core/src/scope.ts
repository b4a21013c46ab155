import type { Tensor } from './tensor.js';

/** Tensors created while a scope is active are owned by it and disposed when it ends, unless returned or kept. */
class Scope {
  readonly owned = new Set<Tensor>();
}
const stack: Scope[] = [];

export function trackTensor(t: Tensor): void {
  stack[stack.length - 1]?.owned.add(t);
}

/** Remove a tensor from the active scope so it outlives it (the caller disposes it). */
export function keep<T extends Tensor>(t: T): T {
  for (const s of stack) s.owned.delete(t);
  return t;
}

function collectTensors(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if ((value as { __isTensor?: boolean }).__isTensor) {
    out.add(value as Tensor);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collectTensors(v, out, depth + 1);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collectTensors(v, out, depth + 1);
}

/**
 * Run `fn` in a scope: every tensor it creates is disposed at the end, except tensors found in its
 * return value (a tensor, or arrays / plain objects holding tensors), which move to the enclosing scope.
 * Synchronous on purpose: an async gap would let unrelated work allocate inside the scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Scope();
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    for (const t of scope.owned) t.dispose();
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) throw new TypeError('tidy() takes a synchronous function; use an explicit dispose() around awaits');
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors);
  for (const t of scope.owned) {
    if (survivors.has(t)) trackTensor(t);
    else t.dispose();
  }
  return result;
}

/** Dispose every tensor found in a value (tensor, array, plain object). */
export function disposeAll(value: unknown): void {
  const found = new Set<Tensor>();
  collectTensors(value, found);
  for (const t of found) t.dispose();
}
