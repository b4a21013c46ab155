export { ImageReadError } from './errors.js';
export { readImage, jpegDecoder, findNearestBucket, cropImage, pyRound, BUCKET_OPTIONS, type RgbImage } from './image.js';
export { resizeImage, type ResampleFilter } from './resample.js';
export { jpegExifOrientation, applyOrientation } from './orientation.js';
export { resizeAndCenterCrop, imageToTensor, prepareInputImage, type PreparedImage } from './prepare.js';
