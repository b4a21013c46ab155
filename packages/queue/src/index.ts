export * from './errors.js';
export * from './types.js';
export { isPidAlive, isProcessAlive, processStartId, hostIdentity } from './process-identity.js';
export { Queue, type JobPatch, type QueueOptions, type JobOwner, type RecoveredJob, type QueueEvents } from './queue.js';
export { Worker, JobAbortedError, type WorkerOptions, type JobOutcome, type AbortKind, type WorkerEvents } from './worker.js';
export { jsonParams, parseSubmission, parseJobOptions, applyAssignments, type Submission, type Base64File } from './params.js';
export { startQueueServer, createQueueHandler, isLoopback, HttpError, type QueueServer, type QueueServerOptions } from './http.js';
export { registerQueueCommands, defaultQueuePath, formatTable, formatJob, type QueueCommandDeps } from './cli.js';
