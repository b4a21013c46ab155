/** Every failure of this package is a LoraError with a stable `code`. */
export type LoraErrorCode =
  | 'E_FORMAT' // the file is not a LoRA format we know
  | 'E_SHAPE' // down/up/target shapes do not agree
  | 'E_AMBIGUOUS' // a kohya name resolves to more than one module
  | 'E_UNMATCHED' // strict mode: some LoRA modules target nothing in the model
  | 'E_WEIGHT' // invalid user weight
  | 'E_STATE'; // merge/unmerge used in the wrong order

export class LoraError extends Error {
  constructor(
    message: string,
    readonly code: LoraErrorCode,
    /** The LoRA (file name or label) the error is about, when known. */
    readonly lora?: string,
  ) {
    super(lora ? `${lora}: ${message}` : message);
    this.name = 'LoraError';
  }
}
