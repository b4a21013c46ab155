/** Base class of every tensor-core error; `code` is stable for programmatic handling. */
export class TensorError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
/** Shapes that do not fit the op (broadcast, matmul inner dims, reshape sizes ...). */
export class ShapeError extends TensorError {
  constructor(message: string) {
    super(message, 'E_SHAPE');
  }
}
/** A dtype the op does not accept, or two operands of different dtypes. */
export class DTypeError extends TensorError {
  constructor(message: string) {
    super(message, 'E_DTYPE');
  }
}
/** Operands on different devices, or a device that is not available on this machine. */
export class DeviceError extends TensorError {
  constructor(message: string) {
    super(message, 'E_DEVICE');
  }
}
/** A tensor used after `dispose()` (or after the scope that owned it ended). */
export class DisposedTensorError extends TensorError {
  constructor(message: string) {
    super(message, 'E_DISPOSED');
  }
}
/** An allocation that would exceed the device's memory or its configured budget. */
export class OutOfMemoryError extends TensorError {
  constructor(
    message: string,
    readonly device: string,
    readonly requestedBytes: number,
  ) {
    super(message, 'E_OOM');
  }
}
