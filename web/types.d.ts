// The vendored livekit-client is served at /vendor/ and imported at run time; its types come
// from the npm package.
declare module '/vendor/livekit-client.esm.mjs' {
  export * from 'livekit-client';
}
