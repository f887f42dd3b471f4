// model_type → architecture. One entry per family; aliases share a file (mistral, qwen2 → llama).
import { CheckpointError } from "../errors.js";
import type { Architecture } from "./architecture.js";
import { llama } from "./llama.js";
import { olmo } from "./olmo.js";
import { phi3 } from "./phi3.js";
import { gemma } from "./gemma.js";
import { gpt2 } from "./gpt2.js";

export const ARCHITECTURES: readonly Architecture[] = [llama, olmo, phi3, gemma, gpt2];

export function supportedModelTypes(): string[] {
  return ARCHITECTURES.flatMap((a) => a.modelTypes);
}

export function architectureFor(modelType: unknown, configFile: string): Architecture {
  if (modelType === undefined || modelType === null)
    throw new CheckpointError(configFile, `has no "model_type"; supported: ${supportedModelTypes().join(", ")}`, "UNSUPPORTED_MODEL_TYPE");
  const arch = ARCHITECTURES.find((a) => a.modelTypes.includes(modelType as string));
  if (!arch)
    throw new CheckpointError(configFile, `model_type ${JSON.stringify(modelType)} is not supported; supported: ${supportedModelTypes().join(", ")}`, "UNSUPPORTED_MODEL_TYPE");
  return arch;
}
