/** Stable codes for every failure of this package. */
export type PromptErrorCode =
  | 'E_UNCLOSED' // a `[` without its `]`
  | 'E_STRAY_BRACKET' // a `]` without a `[`
  | 'E_NESTED' // a `[` inside a bracket
  | 'E_TIME_SYNTAX' // bracket content is not `<t>s: text` or `<t>s-<t>s: text`
  | 'E_RANGE' // end <= start
  | 'E_BEYOND_VIDEO' // a time at or past the end of the video
  | 'E_OVERLAP' // two timed prompts claim the same time
  | 'E_GAP' // some time has no prompt and there is no untimed default text
  | 'E_OPTIONS' // invalid options (video length, sections, window, fps, blend)
  | 'E_ENCODING'; // the injected encoder returned something unusable

export class PromptBlenderError extends Error {
  constructor(
    message: string,
    readonly code: PromptErrorCode,
  ) {
    super(message);
    this.name = 'PromptBlenderError';
  }
}

/** A problem in the prompt text, with its 1-based line and column. */
export class PromptSyntaxError extends PromptBlenderError {
  constructor(
    message: string,
    code: PromptErrorCode,
    readonly line: number,
    readonly column: number,
  ) {
    super(`prompt line ${line}, column ${column}: ${message}`, code);
    this.name = 'PromptSyntaxError';
  }
}
