// Bundle the React 18 island (widget + React 18 + CSS) into one ESM file under ../assets/.
//
// Run by `make island` (npm run build). The output is build output, never committed:
//
//   chat-ai-widget-island.<hash>.js         the bundle; <hash> = first 12 hex of its SHA-256
//   chat-ai-widget-island.<hash>.js.br/.gz  the same bytes, precompressed (nginx, /embed)
//   chat-ai-widget-island.<hash>.LEGAL.txt  the bundled licenses (its own content hash),
//                                           named by a comment at the end of the bundle
//   manifest.json                           names the current bundle (and, as
//                                           "previous", the one before); written last
//
// The name changes whenever the content does, so servers can mark the bundle immutable and
// browsers keep it for a year without revalidating. The build before the current one stays:
// a page loaded before a rebuild still names it and loads it later (the embed route serves
// it). Files of older builds are removed once the manifest names the new one.
//
// Options (for tests): --out-dir DIR writes elsewhere; --banner TEXT prepends a comment,
// which changes the content, hence the name.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { brotliCompressSync, constants as zlib, gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";

const STEM = "chat-ai-widget-island";
const HASH_LENGTH = 12;

const here = dirname(fileURLToPath(import.meta.url));
const { values: options } = parseArgs({
  options: {
    "out-dir": { type: "string", default: join(here, "..", "assets", "widget-island") },
    banner: { type: "string", default: "" },
  },
});
const outDir = resolve(options["out-dir"]);

// The widget's CSS starts with an @import of Google Fonts; the island must make no
// request the host did not ask for, so the import is dropped (the font falls back).
const stripRemoteCssImports = {
  name: "strip-remote-css-imports",
  setup(b) {
    b.onLoad({ filter: /\.css$/ }, async (args) => {
      const css = await readFile(args.path, "utf8");
      const contents = css.replace(/@import\s*(url\()?["']?https?:[^;]*;/g, "");
      return { contents, loader: "text" };
    });
  },
};

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

const result = await build({
  entryPoints: [join(here, "src", "island.jsx")],
  // Only names the outputs in memory (write: false); the files get hashed names below.
  outfile: join(outDir, `${STEM}.js`),
  write: false,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2020"],
  minify: true,
  // Extracted without a link comment: the link names the hashed file, added below.
  legalComments: "external",
  banner: options.banner ? { js: options.banner } : undefined,
  metafile: true,
  jsx: "transform",
  define: {
    "process.env.NODE_ENV": '"production"',
    "process.env.SC_DISABLE_SPEEDY": "false",
  },
  plugins: [stripRemoteCssImports],
  logLevel: "warning",
});

const output = (suffix) => result.outputFiles.find((file) => file.path.endsWith(suffix));
const legal = output(".LEGAL.txt")?.contents;
let code = Buffer.from(output(".js").contents);
const files = {};
if (legal) {
  files.legal = `${STEM}.${sha256(legal).slice(0, HASH_LENGTH)}.LEGAL.txt`;
  code = Buffer.concat([code, Buffer.from(`/*! For license information please see ${files.legal} */\n`)]);
}
const digest = sha256(code);
const hash = digest.slice(0, HASH_LENGTH);
files.bundle = `${STEM}.${hash}.js`;
files.gzip = `${files.bundle}.gz`;
files.brotli = `${files.bundle}.br`;

const gzipped = gzipSync(code, { level: 9 });
const brotli = brotliCompressSync(code, {
  params: {
    [zlib.BROTLI_PARAM_MODE]: zlib.BROTLI_MODE_TEXT,
    [zlib.BROTLI_PARAM_QUALITY]: zlib.BROTLI_MAX_QUALITY,
    [zlib.BROTLI_PARAM_SIZE_HINT]: code.length,
  },
});

// Each file appears whole (written aside, then renamed), and the manifest goes last: a
// server reading it in the meantime still finds the previous build complete.
async function writeAtomically(name, bytes) {
  const path = join(outDir, name);
  await writeFile(`${path}.tmp`, bytes);
  await rename(`${path}.tmp`, path);
}

// The build the manifest named until now becomes "previous" (a rebuild of the same content
// keeps the one before it), if its bundle is still on disk: its name, hash and licenses.
async function readManifest() {
  try {
    return JSON.parse(await readFile(join(outDir, "manifest.json"), "utf8"));
  } catch {
    return null; // none yet, or unreadable: there is no earlier build to keep
  }
}
const HASHED_BUNDLE = new RegExp(`^${STEM}\\.([0-9a-f]{${HASH_LENGTH}})\\.js$`);
const entry = (manifest) =>
  typeof manifest?.file === "string" && HASHED_BUNDLE.test(manifest.file)
    ? {
        file: manifest.file,
        hash: HASHED_BUNDLE.exec(manifest.file)[1],
        legal: typeof manifest.legal === "string" ? manifest.legal : null,
      }
    : null;
const onDisk = async (found) =>
  found && (await stat(join(outDir, found.file)).catch(() => null))?.isFile() ? found : null;
const earlier = await readManifest();
const previous = await onDisk(
  entry(earlier)?.hash === hash ? entry(earlier?.previous) : entry(earlier),
);

await mkdir(outDir, { recursive: true });
await writeAtomically(files.bundle, code);
await writeAtomically(files.gzip, gzipped);
await writeAtomically(files.brotli, brotli);
if (legal) await writeAtomically(files.legal, legal);
const manifest = {
  file: files.bundle,
  hash,
  sha256: digest,
  bytes: code.length,
  gzip_bytes: gzipped.length,
  brotli_bytes: brotli.length,
  legal: files.legal ?? null,
  inputs: Object.keys(result.metafile.inputs).length,
  previous,
};
await writeAtomically("manifest.json", JSON.stringify(manifest, null, 2) + "\n");

// Older builds (and the unhashed name of older checkouts) go: nothing names them now. The
// previous build keeps its bundle, its siblings and its licenses (named at the bundle's end).
const current = new Set(Object.values(files));
if (previous) {
  for (const suffix of ["", ".br", ".gz"]) current.add(previous.file + suffix);
  if (previous.legal) current.add(previous.legal);
}
for (const name of await readdir(outDir)) {
  if (name.startsWith(`${STEM}.`) && !current.has(name)) await rm(join(outDir, name));
}

console.log(
  `island: ${join(outDir, files.bundle)}: ${code.length} bytes, ` +
    `${gzipped.length} bytes gzip, ${brotli.length} bytes brotli`,
);
