// The layering of src/, checked by `npm test` (test/layering.test.ts) and by `npx depcruise src`:
// models describe, the engine executes, analyses use the engine, the CLI parses and renders.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "No import cycle anywhere in src/.",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "models-describe",
      severity: "error",
      comment: "Architectures are descriptions: src/models imports nothing from src/engine.",
      from: { path: "^src/models/" },
      to: { path: "^src/engine/" },
    },
    {
      name: "checkpoint-below-models-and-engine",
      severity: "error",
      comment: "Readers of files know nothing of architectures or of the engine.",
      from: { path: "^src/checkpoint/" },
      to: { path: "^src/(models|engine)/" },
    },
    {
      name: "formats-below-engine",
      severity: "error",
      comment:
        "File formats, tokenizers, the Hub and data sets are libraries the engine and analyses use, never the reverse.",
      from: { path: "^src/(gguf|quant|tokenizer|hub|data)/" },
      to: { path: "^src/(engine|superweight|eval|export|compress|cli|report)/" },
    },
    {
      name: "analyses-below-cli-and-report",
      severity: "error",
      comment: "Analyses return typed results; rendering and argument parsing live above them.",
      from: { path: "^src/(superweight|eval|export|compress)/" },
      to: { path: "^src/(cli|report)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    // Type-only imports are dependencies too.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
};
