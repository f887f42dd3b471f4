// model_type → architecture. One entry per family; aliases share a file (mistral, qwen2 → llama).
import { CheckpointError } from "../errors.js";
import type { Architecture } from "./architecture.js";
import { llama } from "./llama.js";
import { olmo } from "./olmo.js";
import { phi3 } from "./phi3.js";
import { gemma } from "./gemma.js";
import { gpt2 } from "./gpt2.js";
import { qwen3 } from "./qwen3.js";
import { gemma2 } from "./gemma2.js";
import { gemma3 } from "./gemma3.js";
import { olmo2 } from "./olmo2.js";
import { mixtral } from "./mixtral.js";
import { qwen2Moe } from "./qwen2-moe.js";
import { olmoe } from "./olmoe.js";
import { qwen3Moe } from "./qwen3-moe.js";

export const ARCHITECTURES: readonly Architecture[] = [
  llama,
  olmo,
  phi3,
  gemma,
  gpt2,
  qwen3,
  gemma2,
  gemma3,
  olmo2,
  mixtral,
  qwen2Moe,
  olmoe,
  qwen3Moe,
];

export function supportedModelTypes(): string[] {
  return ARCHITECTURES.flatMap((a) => a.modelTypes);
}

export function architectureFor(modelType: unknown, configFile: string): Architecture {
  if (modelType === undefined || modelType === null)
    throw new CheckpointError(
      configFile,
      `has no "model_type"; supported: ${supportedModelTypes().join(", ")}`,
      "UNSUPPORTED_MODEL_TYPE",
    );
  const arch = ARCHITECTURES.find((a) => a.modelTypes.includes(modelType as string));
  if (!arch)
    throw new CheckpointError(
      configFile,
      `model_type ${JSON.stringify(modelType)} is not supported; supported: ${supportedModelTypes().join(", ")}`,
      "UNSUPPORTED_MODEL_TYPE",
    );
  return arch;
}
