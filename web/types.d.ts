// The URL of livekit-client's E2EE worker: build.mjs builds the worker with a content-hashed
// name and defines this constant in the client's bundle.
declare const VECHE_E2EE_WORKER: string;
