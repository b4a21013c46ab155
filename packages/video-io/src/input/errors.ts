/** An input image that cannot be read or used (missing, unsupported format, corrupt, bad size). */
export class ImageReadError extends Error {
  constructor(
    message: string,
    readonly path?: string,
  ) {
    super(path ? `${path}: ${message}` : message);
    this.name = 'ImageReadError';
  }
}
