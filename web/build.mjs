// Builds the browser client into web/dist, which is what web/server.py serves:
//
//   dist/index.html            static/index.html, pointing at the files below
//   dist/favicon.svg           the tab icon, at the fixed address browsers ask for
//   dist/manifest.json         what was built (the server's readiness check and the tests read it)
//   dist/assets/…              everything else, minified, each name carrying a hash of its content
//
// The entry (app.js) is split: the home page loads only what it needs, the room page's code is
// a chunk fetched when a room opens, and livekit-client is a chunk fetched when a meeting starts
// video. The E2EE worker is built on its own and its URL given to the client. Each file also
// gets .gz and .br twins, so the server never compresses on the fly.
//
// Run from web/ with `node build.mjs` (`make install` does, whenever static/ changes).

import { build } from 'esbuild';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

const WEB = path.dirname(fileURLToPath(import.meta.url));
const STATIC = path.join(WEB, 'static');
const DIST = path.join(WEB, 'dist');
// Written next to dist and swapped in at the end, so a running server never sees half a build.
const NEXT = path.join(WEB, 'dist.next');
const OLD = path.join(WEB, 'dist.old');
const ASSETS = 'assets';
const PUBLIC = `/${ASSETS}/`;
const WORKER_SOURCE = 'node_modules/livekit-client/dist/livekit-client.e2ee.worker.mjs';
// The browsers the client supports all run ES2022; nothing newer is left for them to parse.
const TARGET = 'es2022';
// Compressed twins: the smallest these formats make. Only built once per deploy, so the slow
// settings cost nothing at request time.
const GZIP = { level: 9 };
const BROTLI = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } };
// Source maps are for the developer tools only: served as they are, never compressed.
const UNCOMPRESSED = /\.(map|br|gz)$/;

const gzip = promisify(zlib.gzip);
const brotli = promisify(zlib.brotliCompress);

/** What index.html links: its stylesheets in order, and its module script (the entry). */
function pageParts(html) {
  const styles = [...html.matchAll(/<link rel="stylesheet" href="\/([\w.-]+\.css)">/g)].map((m) => m[1]);
  const scripts = [...html.matchAll(/<script type="module" src="\/([\w.-]+\.js)"><\/script>/g)].map((m) => m[1]);
  if (!styles.length || scripts.length !== 1) {
    throw new Error('static/index.html: expected <link rel="stylesheet" href="/….css"> tags and one <script type="module" src="/….js">');
  }
  return { styles, entry: scripts[0] };
}

/** The CSS's absolute /icons/… and /favicon.svg URLs, resolved to static/ so they get hashed too. */
const rootUrls = {
  name: 'veche-root-urls',
  setup(builder) {
    builder.onResolve({ filter: /^\/(icons\/[\w-]+\.svg|favicon\.svg)$/ }, (args) => ({
      path: path.join(STATIC, args.path),
    }));
  },
};

/** The one stylesheet: index.html's stylesheets, concatenated in their order. */
function stylesheet(styles) {
  return {
    name: 'veche-stylesheet',
    setup(builder) {
      builder.onResolve({ filter: /^veche:style$/ }, () => ({ path: 'style', namespace: 'veche' }));
      builder.onLoad({ filter: /.*/, namespace: 'veche' }, () => ({
        contents: styles.map((name) => `@import "./${name}";`).join('\n'),
        resolveDir: STATIC,
        loader: 'css',
      }));
    },
  };
}

const common = {
  absWorkingDir: WEB,
  bundle: true,
  minify: true,
  target: TARGET,
  outdir: path.join(NEXT, ASSETS),
  publicPath: PUBLIC,
  entryNames: '[name]-[hash]',
  chunkNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
};

/** The output that was built from `source` (a path relative to web/), as a URL. */
function outputOf(metafile, source) {
  const found = Object.entries(metafile.outputs).find(([, output]) => output.entryPoint === source);
  if (!found) throw new Error(`no output for ${source}`);
  return urlOf(found[0]);
}

function urlOf(output) {
  return PUBLIC + path.basename(output);
}

/** The JS a page loads before it runs: the entry and every chunk it imports statically. */
function staticClosure(metafile, entryOutput) {
  const seen = new Set();
  const visit = (output) => {
    if (seen.has(output)) return;
    seen.add(output);
    for (const dep of metafile.outputs[output].imports) {
      if (dep.kind === 'import-statement' && !dep.external) visit(dep.path);
    }
  };
  visit(entryOutput);
  return [...seen].map(urlOf);
}

async function compress(dir) {
  const files = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  const jobs = files
    .filter((entry) => entry.isFile() && !UNCOMPRESSED.test(entry.name))
    .map(async (entry) => {
      const file = path.join(entry.parentPath ?? entry.path, entry.name);
      const body = await fs.readFile(file);
      const twins = [['.gz', await gzip(body, GZIP)], ['.br', await brotli(body, BROTLI)]];
      // A twin no smaller than the file (a tiny icon) is not written; the file goes out as is.
      await Promise.all(twins.filter(([, packed]) => packed.length < body.length)
        .map(([suffix, packed]) => fs.writeFile(file + suffix, packed)));
    });
  await Promise.all(jobs);
}

async function main() {
  const started = Date.now();
  await fs.rm(NEXT, { recursive: true, force: true });
  const html = await fs.readFile(path.join(STATIC, 'index.html'), 'utf8');
  const { styles, entry } = pageParts(html);

  // The worker first: its hashed URL is compiled into the client.
  const worker = await build({
    ...common,
    entryPoints: [{ in: WORKER_SOURCE, out: 'e2ee-worker' }],
    format: 'esm',
  });
  const workerUrl = outputOf(worker.metafile, WORKER_SOURCE);

  const app = await build({
    ...common,
    entryPoints: [`static/${entry}`],
    format: 'esm',
    splitting: true,
    define: { VECHE_E2EE_WORKER: JSON.stringify(workerUrl) },
  });
  const entryUrl = outputOf(app.metafile, `static/${entry}`);
  const entryOutput = Object.keys(app.metafile.outputs).find((name) => urlOf(name) === entryUrl);
  const preload = staticClosure(app.metafile, entryOutput);

  const css = await build({
    ...common,
    entryPoints: [{ in: 'veche:style', out: 'style' }],
    loader: { '.svg': 'file' },
    plugins: [stylesheet(styles), rootUrls],
  });
  const cssUrl = Object.keys(css.metafile.outputs).map(urlOf).find((url) => url.endsWith('.css'));

  // index.html: the three stylesheets become one, the entry its hashed name, and every chunk
  // the entry imports is preloaded, so they download side by side instead of one after another.
  const head = [
    `<link rel="stylesheet" href="${cssUrl}">`,
    ...preload.map((url) => `<link rel="modulepreload" href="${url}">`),
    `<script type="module" src="${entryUrl}"></script>`,
  ];
  const page = html
    .split('\n')
    .filter((line) => !/<link rel="(stylesheet|modulepreload)"|<script type="module"/.test(line))
    .join('\n')
    .replace('</head>', head.map((line) => `  ${line}\n`).join('') + '</head>');
  await fs.writeFile(path.join(NEXT, 'index.html'), page);
  await fs.copyFile(path.join(STATIC, 'favicon.svg'), path.join(NEXT, 'favicon.svg'));

  const manifest = {
    entry: entryUrl,
    preload,
    css: cssUrl,
    worker: workerUrl,
    room: outputOf(app.metafile, 'static/room.js'),
    livekit: outputOf(app.metafile, 'node_modules/livekit-client/dist/livekit-client.esm.mjs'),
  };
  await fs.writeFile(path.join(NEXT, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  await compress(NEXT);

  await fs.rm(OLD, { recursive: true, force: true });
  await fs.rename(DIST, OLD).catch((error) => {
    if (error.code !== 'ENOENT') throw error;
  });
  await fs.rename(NEXT, DIST);
  await fs.rm(OLD, { recursive: true, force: true });

  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  const home = await Promise.all(preload.map(async (url) => ({ url, ...(await sizeIn(DIST, url)) })));
  const total = (key) => home.reduce((sum, file) => sum + file[key], 0);
  const report = [
    ['home page JS', { raw: total('raw'), gzip: total('gzip'), br: total('br') }],
    ['room chunk', await sizeIn(DIST, manifest.room)],
    ['livekit-client chunk', await sizeIn(DIST, manifest.livekit)],
    ['E2EE worker', await sizeIn(DIST, manifest.worker)],
    ['stylesheet', await sizeIn(DIST, manifest.css)],
  ];
  for (const [name, size] of report) {
    console.log(`${name.padEnd(22)} ${kb(size.raw).padStart(10)}  gzip ${kb(size.gzip).padStart(9)}  br ${kb(size.br).padStart(9)}`);
  }
  console.log(`web/dist built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** A built file's size as it is and as its twins (a missing twin: the file goes out as is). */
async function sizeIn(dir, url) {
  const file = path.join(dir, url);
  const size = async (name) => (await fs.stat(name).catch(() => fs.stat(file))).size;
  return { raw: await size(file), gzip: await size(`${file}.gz`), br: await size(`${file}.br`) };
}

await main();
