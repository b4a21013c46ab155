/** Base class of every vae-tiling error; `code` is stable for programmatic handling. */
export class VaeError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A config.json / constructor config this implementation cannot build (or that is inconsistent). */
export class VaeConfigError extends VaeError {
  constructor(message: string) {
    super(message, 'E_VAE_CONFIG');
  }
}

/** An input tensor with the wrong rank, channel count, dtype or a size too small to process. */
export class VaeInputError extends VaeError {
  constructor(message: string) {
    super(message, 'E_VAE_INPUT');
  }
}

/** Tile parameters that the tiled encode/decode cannot use (non-integers, stride 0, gaps between tiles). */
export class VaeTilingError extends VaeError {
  constructor(message: string) {
    super(message, 'E_VAE_TILING');
  }
}

export interface MisShapedKey {
  key: string;
  expected: number[];
  found: number[];
}

/** The checkpoint does not match the config: every missing, unexpected and mis-shaped key, in one error. */
export class VaeWeightsError extends VaeError {
  constructor(
    readonly source: string,
    readonly missing: string[],
    readonly unexpected: string[],
    readonly misShaped: MisShapedKey[],
  ) {
    const list = (xs: string[]) => (xs.length > 12 ? `${xs.slice(0, 12).join(', ')} ... (${xs.length} in all)` : xs.join(', '));
    const parts: string[] = [];
    if (missing.length) parts.push(`missing ${missing.length}: ${list(missing)}`);
    if (unexpected.length) parts.push(`unexpected ${unexpected.length}: ${list(unexpected)}`);
    if (misShaped.length) parts.push(`mis-shaped ${misShaped.length}: ${list(misShaped.map((m) => `${m.key} [${m.found}] (expected [${m.expected}])`))}`);
    super(
      `${source}: the weights do not match the VAE config (${parts.join('; ')}). ` +
        'Check that config.json belongs to these weights (block_out_channels, layers_per_block, latent_channels).',
      'E_VAE_WEIGHTS',
    );
  }
}
