/** Which sampler steps ran the block stack and which reused the cached residual, per section and in total. */

export interface SectionStats {
  computedSteps: number[];
  skippedSteps: number[];
}

export interface StepSkipStats {
  /** Every section (one sampling run each) seen by this hook, oldest first. */
  sections: SectionStats[];
  /** Decisions taken (Studio's `total_cache_requests`). */
  requests: number;
  /** Skipped steps (Studio's `total_cache_hits`). */
  hits: number;
}

export class SkipStats {
  readonly #sections: SectionStats[] = [];
  #requests = 0;
  #hits = 0;

  beginSection(): void {
    this.#sections.push({ computedSteps: [], skippedSteps: [] });
  }
  add(step: number, skipped: boolean): void {
    if (this.#sections.length === 0) this.beginSection();
    const s = this.#sections[this.#sections.length - 1];
    (skipped ? s.skippedSteps : s.computedSteps).push(step);
    this.#requests++;
    if (skipped) this.#hits++;
  }
  /** The latest section (empty lists before the first decision). */
  get current(): SectionStats {
    const s = this.#sections[this.#sections.length - 1];
    return s ? { computedSteps: [...s.computedSteps], skippedSteps: [...s.skippedSteps] } : { computedSteps: [], skippedSteps: [] };
  }
  snapshot(): StepSkipStats {
    return {
      sections: this.#sections.map((s) => ({ computedSteps: [...s.computedSteps], skippedSteps: [...s.skippedSteps] })),
      requests: this.#requests,
      hits: this.#hits,
    };
  }
}

/** One line for logs, e.g. "MagCache skipped 12/25 steps (48.0%)" (Studio logs hits/requests the same way). */
export function formatSkipStats(name: string, s: StepSkipStats): string {
  const pct = s.requests === 0 ? 0 : (100 * s.hits) / s.requests;
  return `${name} skipped ${s.hits}/${s.requests} steps (${pct.toFixed(1)}%)`;
}

/** Stats of several hooks (one per CFG branch) added up, sections kept per hook in order. */
export function mergeStats(all: readonly StepSkipStats[]): StepSkipStats {
  return {
    sections: all.flatMap((s) => s.sections),
    requests: all.reduce((a, s) => a + s.requests, 0),
    hits: all.reduce((a, s) => a + s.hits, 0),
  };
}
