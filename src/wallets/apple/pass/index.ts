export * from './types.js';
export * from './build-pass-json.js';
export { PassSigner } from './signer.js';
export * from './build-pkpass.js';
