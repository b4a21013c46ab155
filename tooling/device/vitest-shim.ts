// A minimal stand-in for the parts of vitest that packages/tensor-core/test/cuda.test.ts uses, so the device
// machine (no node_modules there) can run that test file as a bundle: prepare.sh aliases 'vitest' to this.
type Fn = () => unknown | Promise<unknown>;
const tests: { name: string; fn: Fn; skip: boolean }[] = [];
let prefix = '';
export function describe(name: string, body: () => void): void {
  const saved = prefix;
  prefix = `${saved}${name} > `;
  body();
  prefix = saved;
}
export const it = Object.assign((name: string, fn: Fn) => void tests.push({ name: prefix + name, fn, skip: false }), {
  skipIf: (cond: boolean) => (name: string, fn: Fn) => void tests.push({ name: prefix + name, fn, skip: cond }),
});
class Expectation {
  constructor(
    private v: any,
    private msg = '',
  ) {}
  private ok(c: boolean, what: string): void {
    if (!c) throw new Error(`${this.msg ? this.msg + ': ' : ''}expected ${String(this.v)} ${what}`);
  }
  toBe(x: unknown) { this.ok(Object.is(this.v, x), `to be ${String(x)}`); }
  toBeLessThanOrEqual(x: number) { this.ok(this.v <= x, `<= ${x}`); }
  toBeGreaterThanOrEqual(x: number) { this.ok(this.v >= x, `>= ${x}`); }
  toMatch(r: RegExp) { this.ok(r.test(String(this.v)), `to match ${r}`); }
  toBeInstanceOf(c: new (...a: never[]) => unknown) { this.ok(this.v instanceof c, `to be a ${c.name}`); }
  toThrow(c?: (new (...a: never[]) => unknown) | RegExp) {
    try {
      (this.v as () => unknown)();
    } catch (e) {
      if (c instanceof RegExp) return this.ok(c.test((e as Error).message), `to throw ${c}`);
      if (c) return this.ok(e instanceof c, `to throw a ${c.name}, got ${(e as Error).name}`);
      return;
    }
    this.ok(false, 'to throw');
  }
}
export const expect = (v: unknown, msg?: string) => new Expectation(v, msg);
/** Run the collected tests; prints one line per failure and a summary; resolves to the number failed. */
export async function runCollected(): Promise<number> {
  let passed = 0, failed = 0, skipped = 0;
  for (const t of tests) {
    if (t.skip) {
      skipped++;
      continue;
    }
    try {
      await t.fn();
      passed++;
    } catch (e) {
      failed++;
      console.log(`FAIL ${t.name}: ${(e as Error).message}`);
    }
  }
  console.log(`cuda.test.ts (vitest shim): ${passed} passed, ${failed} failed, ${skipped} skipped`);
  return failed;
}
