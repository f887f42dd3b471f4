// A model = a validated checkpoint + its resolved spec + the architecture that knows how to run it.
// Opening reads headers only; weights stay on disk until a layer needs them.
import { join } from "node:path";
import { Checkpoint } from "../checkpoint/checkpoint.js";
import { CheckpointError } from "../errors.js";
import { ConfigReader, type ModelSpec } from "../models/spec.js";
import { architectureFor } from "../models/registry.js";
import type { Layout } from "./matmul.js";
import type { LayerRun } from "./layer.js";

/** What one architecture family supplies (one short file each under src/models/). */
export interface Architecture {
  readonly modelTypes: readonly string[];
  /** config.json → resolved spec. */
  config(c: ConfigReader): ModelSpec;
  /** Stored tensor name → canonical (transformers module) name, or null for a buffer to ignore. */
  sanitize(stored: string, spec: ModelSpec): string | null;
  /** Every tensor the spec implies, canonical name → shape. */
  tensors(spec: ModelSpec): Map<string, number[]>;
  /** How linear weights are stored: [out, in] ("nk") or GPT-2's Conv1D [in, out] ("kn"). */
  readonly layout: Layout;
  readonly embedding: string;
  readonly positionEmbedding?: string;
  /** Prefix of the final norm's weight/bias (without ".weight"). */
  readonly finalNorm: string;
  lmHead(spec: ModelSpec): string;
  /** The tensor whose input/output the paper's rule watches (down_proj, GPT-2's mlp.c_proj). */
  downProj(layer: number): string;
  /** Prefix of layer L's tensors, e.g. "model.layers.3.". */
  layerPrefix(layer: number): string;
  /** One decoder layer: residual in, residual out ([variants·T, hidden]). */
  layer(run: LayerRun, x: Float32Array): Promise<Float32Array>;
}

export class Model {
  private constructor(
    readonly checkpoint: Checkpoint,
    readonly spec: ModelSpec,
    readonly arch: Architecture,
    /** canonical name → stored name */
    private readonly stored: Map<string, string>,
  ) {}

  static open(folder: string): Model {
    const checkpoint = Checkpoint.open(folder);
    try {
      const configFile = join(folder, "config.json");
      const modelType = checkpoint.config["model_type"];
      const arch = architectureFor(modelType, configFile);
      const spec = arch.config(new ConfigReader(checkpoint.config, configFile));
      const stored = new Map<string, string>();
      for (const name of checkpoint.names()) {
        const canonical = arch.sanitize(name, spec);
        if (canonical !== null) stored.set(canonical, name);
      }
      const expected = arch.tensors(spec);
      for (const [name, shape] of expected) {
        const s = stored.get(name);
        if (s === undefined) throw new CheckpointError(folder, `tensor "${name}" is missing (model_type "${spec.modelType}" with this config.json needs it)`, "MISSING_TENSOR");
        checkpoint.expectShape(s, shape);
      }
      const unexpected = [...stored.keys()].filter((n) => !expected.has(n));
      if (unexpected.length)
        throw new CheckpointError(checkpoint.fileOf(stored.get(unexpected[0])!), `unexpected tensor(s) for model_type "${spec.modelType}" with this config.json: ${unexpected.slice(0, 5).join(", ")}${unexpected.length > 5 ? ` and ${unexpected.length - 5} more` : ""}`, "UNEXPECTED_TENSOR");
      return new Model(checkpoint, spec, arch, stored);
    } catch (e) {
      checkpoint.close();
      throw e;
    }
  }

  get folder(): string {
    return this.checkpoint.folder;
  }

  has(name: string): boolean {
    return this.stored.has(name);
  }

  shape(name: string): number[] {
    return this.checkpoint.info(this.storedName(name)).shape;
  }

  /** Rows [r0, r1) of a tensor as float32. */
  readRows(name: string, r0: number, r1: number, out?: Float32Array): Float32Array {
    return this.checkpoint.readRows(this.storedName(name), r0, r1, out);
  }

  dtype(name: string): string {
    return this.checkpoint.info(this.storedName(name)).dtype;
  }

  read(name: string): Float32Array {
    return this.checkpoint.read(this.storedName(name));
  }

  /** One weight by its stored [row, column] index. */
  weight(name: string, row: number, column: number): number {
    const shape = this.shape(name);
    if (shape.length !== 2 || row < 0 || column < 0 || row >= shape[0] || column >= shape[1])
      throw new RangeError(`[${row}, ${column}] is outside ${name} of shape [${shape}]`);
    return this.checkpoint.readElement(this.storedName(name), row * shape[1] + column);
  }

  close(): void {
    this.checkpoint.close();
  }

  private storedName(name: string): string {
    const s = this.stored.get(name);
    if (s === undefined) throw new CheckpointError(this.folder, `tensor "${name}" is missing from the checkpoint`, "MISSING_TENSOR");
    return s;
  }
}
