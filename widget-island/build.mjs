// Bundle the React 18 island (widget + React 18 + CSS) into one ESM file under ../assets/.
//
// Run by `make island` (npm run build). The output is build output, never committed.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, "..", "assets", "widget-island");
const outFile = join(outDir, "chat-ai-widget-island.js");

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

const result = await build({
  entryPoints: [join(here, "src", "island.jsx")],
  outfile: outFile,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2020"],
  minify: true,
  legalComments: "linked",
  metafile: true,
  jsx: "transform",
  define: {
    "process.env.NODE_ENV": '"production"',
    "process.env.SC_DISABLE_SPEEDY": "false",
  },
  plugins: [stripRemoteCssImports],
  logLevel: "warning",
});

await mkdir(outDir, { recursive: true });
const bundle = await readFile(outFile);
const gzipBytes = gzipSync(bundle, { level: 9 }).length;
const manifest = {
  file: "chat-ai-widget-island.js",
  bytes: bundle.length,
  gzip_bytes: gzipBytes,
  sha256: createHash("sha256").update(bundle).digest("hex"),
  inputs: Object.keys(result.metafile.inputs).length,
};
await writeFile(join(outDir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(`island: ${outFile}: ${bundle.length} bytes, ${gzipBytes} bytes gzip`);
