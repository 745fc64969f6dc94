/**
 * ckpt as a library: the API the CLI is built on, for programs that open PyTorch checkpoints without
 * Python. Every function takes paths or plain data and returns plain data (the same objects the CLI prints
 * with --json); none prints, exits or reads tensor bytes unless asked. Unusable input throws `ReaderError`
 * with a stable `code` and a `nextStep`. Only what is exported here is the package's API: the modules
 * behind it may change between versions.
 */

// Inspecting: `ckpt inspect --json` as an object (ckpt.inspect/1).
export type { FindingCode, FindingReport, Severity } from "./inspect/findings.js";
export {
  globFilter,
  type InspectOptions,
  type InspectReport,
  inspectCheckpoint,
  type SummaryReport,
  type TensorReport,
} from "./inspect/report.js";
// Resuming: will a run resume, and from where (ckpt.resume-plan/1); every run of a tree at once
// (ckpt.audit/1); the manifest and pointer `resume-plan --write` writes.
export {
  type AuditOptions,
  type AuditReport,
  type AuditSummary,
  type AuditTreeOptions,
  auditExitCode,
  auditTree,
  type LooseFile,
} from "./inspect/runs/audit.js";
export { audit, planResume } from "./inspect/runs/node.js";
export {
  type Choice,
  type PlanOptions,
  type PointerReport,
  planRun,
  type ResumePlan,
  type RunPlanOptions,
  type VerifyMode,
} from "./inspect/runs/plan.js";
// Security: every callable a file's pickles can reach, without running any (ckpt.scan/1), and whether
// torch.load(weights_only=True) loads it.
export type { ScanReport } from "./inspect/security/report.js";
export type { FileScan, ScannedGlobal, ScanVerdict } from "./inspect/security/scan.js";
export { scanFile, scanReport } from "./inspect/security/scanFile.js";
export type { WeightsOnlyVerdict } from "./inspect/security/weightsOnly.js";
export {
  inspectSharded,
  type LogicalTensorReport,
  type ShardedInspectReport,
} from "./inspect/sharded/report.js";
export { type ShardedFileScan, scanSharded } from "./inspect/sharded/scan.js";
export { tensorSha256s } from "./inspect/tensorHashes.js";
export { type TreeFiles, treeFiles } from "./inspect/treeFiles.js";
export type { KeyPath } from "./inspect/walk.js";
// Reading: a file's structure (zip records, pickle, tensors' dtype/shape/storage); the caller closes
// `checkpoint.source` when done.
export type {
  Checkpoint,
  CheckpointFormat,
  PickleInfo,
  PlainPickle,
  PointerCheckpoint,
  SafetensorsCheckpoint,
  TensorCheckpoint,
  TorchLegacyCheckpoint,
  TorchScriptCheckpoint,
  TorchZipCheckpoint,
} from "./reader/checkpoint.js";
export { hasTensors } from "./reader/checkpoint.js";
export { isReaderError, ReaderError, type ReaderErrorCode } from "./reader/errors.js";
export { NodeTree, openShardedPath } from "./reader/nodeTree.js";
export { openCheckpoint } from "./reader/open.js";
// Sharded checkpoints (DCP, DeepSpeed ZeRO, Hugging Face indexes) as one logical checkpoint each.
export {
  closeSharded,
  detectSharded,
  type LogicalTensor,
  logicalTensorBytes,
  openSharded,
  type ShardedCheckpoint,
  type ShardedFinding,
  type ShardedKind,
  shardedTensors,
} from "./reader/sharded/index.js";
export type { TreeEntry, TreeSource, TreeStat } from "./reader/tree.js";
// Repairing: a corrected copy of one checkpoint (the input is never modified), or a run's resume plan
// applied (counter, pointer, manifest).
// Converting: a checkpoint (one file, or a DCP / DeepSpeed / Hugging Face sharded one) to safetensors (a file,
// or shards with the index transformers reads) or to a torch state dict, streamed, never over an input.
export {
  type ConvertOptions,
  type ConvertOutput,
  type ConvertProgress,
  type ConvertResult,
  type ConvertTarget,
  convertCheckpoint,
  convertTarget,
} from "./repair/convert/convert.js";
export { parseShardSize } from "./repair/convert/shards.js";
export type { PickleEdit } from "./repair/pickleEdit.js";
export { type RepairFileResult, repairCheckpointFile } from "./repair/repairFile.js";
export { writeResumeFiles } from "./repair/resumeWrite.js";
export { type RunRepairResult, type RunRepairStep, repairRun } from "./repair/runRepair.js";
