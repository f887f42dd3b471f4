// A classification test's candidate, built by hand (no model): a persistent creator in layer 1 of 4 — residual
// channel 3 at token 0 goes 1 → 300 right after its layer and stays, and zeroing it alone brings it back to 2.
// Tests derive the other cases from it by changing one field.
import type { Candidate } from "../src/superweight/detect.js";

export const creator: Candidate = {
  layer: 1,
  row: 3,
  column: 9,
  tensor: "t",
  index: [3, 9],
  value: 2,
  iteration: 1,
  token: 0,
  inputToken: 0,
  inputActivation: 100,
  outputActivation: 300,
  inputToMedian: 500,
  outputToMedian: 600,
  residual: [1, 300, 290, 280],
  medianAbsResidual: [1, 1, 1, 1],
  residualBefore: 1,
  ablation: { residual: [null, 2, 2, 2], meanNll: 2 },
  baseMeanNll: 1,
};
