export { hubCacheDir, isOffline, resolveSnapshot, snapshotRevision, repoFolderName } from './cache.js';
export {
  type ModelComponent, type ComponentStatus, framepackComponents, requiredFiles, checkComponents,
  HUNYUAN_REPO, REDUX_REPO, FRAMEPACK_I2V_REPO, FRAMEPACK_F1_REPO,
} from './models.js';
export { pullComponents, wantedFile, HubOfflineError, type PullProgress } from './download.js';
