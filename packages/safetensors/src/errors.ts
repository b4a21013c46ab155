/** Any problem with a safetensors file; names the file (and the tensor, when one is involved). */
export class SafetensorsError extends Error {
  constructor(
    message: string,
    readonly code: 'E_IO' | 'E_HEADER' | 'E_HEADER_TOO_LARGE' | 'E_TRUNCATED' | 'E_OFFSETS' | 'E_DTYPE' | 'E_MISSING' | 'E_INDEX',
    readonly file: string,
    readonly tensorName?: string,
  ) {
    super(`${file}${tensorName ? ` [${tensorName}]` : ''}: ${message}`);
    this.name = 'SafetensorsError';
  }
}
