/** Errors the generator raises at its boundary; `code` is stable for programs, the message says what to do. */
export type GeneratorErrorCode =
  | 'BAD_PARAMS'
  | 'BAD_IMAGE'
  | 'MODELS_MISSING'
  | 'OUT_OF_MEMORY'
  | 'OUTPUT'
  | 'CANCELLED';

export class GeneratorError extends Error {
  constructor(
    message: string,
    readonly code: GeneratorErrorCode,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'GeneratorError';
  }
}

/** The model files a job needs but the cache lacks, with the command that fetches them. */
export class ModelsMissingError extends GeneratorError {
  constructor(readonly missing: { component: string; repo: string; files: string[] }[]) {
    super(
      `model files are missing:\n${missing.map((m) => `  ${m.component} (${m.repo}): ${m.files.join(', ')}`).join('\n')}\n` +
        `run \`framepack models pull\` to download them (or pass --tiny to use the embedded tiny test models)`,
      'MODELS_MISSING',
      { missing },
    );
    this.name = 'ModelsMissingError';
  }
}
