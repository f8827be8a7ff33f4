/**
 * Bundles the action into `dist/index.js` (committed: the runner runs it as is). The build is
 * deterministic, so `.ci/run` can check that a fresh build matches the committed file.
 */
import { build } from "esbuild"

await build({
  entryPoints: ["src/index.ts"],
  outfile: "dist/index.js",
  bundle: true,
  platform: "node",
  target: "node24",
  format: "esm",
  legalComments: "none",
  // CommonJS dependencies (`@actions/core`) call `require` for Node's modules.
  banner: {
    js: 'import { createRequire as __tMinusRequire } from "node:module"; const require = __tMinusRequire(import.meta.url);'
  },
  logLevel: "warning"
})
