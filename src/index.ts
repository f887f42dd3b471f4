// superweight as a library: open a model, run it, scan it, and build the analyses on the same engine.
export { Model } from "./engine/model.js";
export { forward, type ForwardOptions, type ForwardResult } from "./engine/forward.js";
export type { HeadRequest, HeadResult, TopToken } from "./engine/head.js";
export { HOOK_POINTS, type Hook, type HookEvent, type HookPoint } from "./engine/hooks.js";
export {
  editWeights,
  replaceTensor,
  scaleWeights,
  zeroLargest,
  type TensorRows,
  type Variant,
  type WeightEdit,
  type WeightOverride,
} from "./engine/variants.js";
export { getBackend, jsBackend, type MatmulBackend } from "./engine/matmul.js";
export { Checkpoint } from "./checkpoint/checkpoint.js";
export type { RawConfig, SourceTensor, TensorSource } from "./checkpoint/source.js";
export { resolveModel, hubCacheDir } from "./checkpoint/resolve.js";
export { loadTokenizer, type TextTokenizer } from "./tokenizer/tokenizer.js";
export { ARCHITECTURES, architectureFor, supportedModelTypes } from "./models/registry.js";
export type { Architecture, DownProjection } from "./models/architecture.js";
export type { LayerOps, AttentionBlock, MlpBlock, ExpertsBlock } from "./models/ops.js";
export type { ModelSpec } from "./models/spec.js";
export { detect, type Candidate, type Detection, type LayerSpikes } from "./superweight/detect.js";
export { scan, DEFAULT_PROMPT, type ScanReport, type ScannedWeight } from "./superweight/scan.js";
export { classify, RULES } from "./superweight/classify.js";
export { DIRECTORY, lookupPublished } from "./superweight/directory.js";
export { renderScan, scanJson } from "./report/scan-text.js";
export { evaluate, EVAL_REPORT_VERSION, type EvalReport, type EvalRequest } from "./eval/eval.js";
export { audit, verdict as auditVerdict, type AuditReport } from "./superweight/audit.js";
export { planGgufExport, writeGgufExport, type GgufExportResult } from "./export/gguf.js";
export { GgufCheckpoint } from "./gguf/source.js";
export { writeGguf } from "./gguf/writer.js";
export { dequantize } from "./gguf/dequant.js";
export { quantizeRow } from "./gguf/quantize.js";
export { PackedCheckpoint } from "./quant/packed-source.js";
export { writePackedCheckpoint } from "./quant/packed-writer.js";
export { quantizeTensor } from "./quant/rtn.js";
export * as data from "./data/index.js";
export { CheckpointError, UserError } from "./errors.js";
