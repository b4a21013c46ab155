/** A model folder or config that cannot be used (missing file, bad field, unsupported option). */
export class EncoderConfigError extends Error {
  constructor(
    message: string,
    readonly path?: string,
  ) {
    super(path ? `${path}: ${message}` : message);
    this.name = 'EncoderConfigError';
  }
}

/** Checkpoint keys that do not match the model built from its config: one error listing every problem. */
export class CheckpointMismatchError extends Error {
  constructor(
    readonly what: string,
    readonly source: string,
    readonly missing: readonly string[],
    readonly unexpected: readonly string[],
    readonly misshaped: readonly { key: string; expected: readonly number[]; found: readonly number[] }[],
  ) {
    const list = (xs: readonly string[]) => (xs.length > 8 ? `${xs.slice(0, 8).join(', ')}, ... (${xs.length} in all)` : xs.join(', '));
    const parts: string[] = [];
    if (missing.length) parts.push(`missing keys: ${list(missing)}`);
    if (unexpected.length) parts.push(`unexpected keys: ${list(unexpected)}`);
    if (misshaped.length) parts.push(`wrong shapes: ${list(misshaped.map((m) => `${m.key} [${m.found}] (expected [${m.expected}])`))}`);
    super(`${source}: the weights do not match the ${what} described by its config.json; ${parts.join('; ')}. Check that the folder holds this model's weights and config.`);
    this.name = 'CheckpointMismatchError';
  }
}

/** Tokenizer files missing or unusable, or text that cannot be tokenized as asked. */
export class TokenizerError extends Error {
  constructor(
    message: string,
    readonly path?: string,
  ) {
    super(path ? `${path}: ${message}` : message);
    this.name = 'TokenizerError';
  }
}

/** Bad arguments to an encoder call (wrong shapes, dtypes, lengths). */
export class EncoderInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EncoderInputError';
  }
}
